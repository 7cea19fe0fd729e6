"""The floor every package stands on: the DuckDB store (migrations, writer lock, archive, quarantine, upserts),
encrypted tokens, sync bookmarks and retention. Imports nothing from features/, alerts/ or pipelines/."""
