"""A person's rights over their own data: change preferences, stop, and be forgotten."""

from __future__ import annotations

import os
from pathlib import Path

from alerts.transport import outbox_stem
from storage.store import Store


def forget(store: Store, person_id: str, outbox_dir: Path) -> tuple[int, int]:
    """Remove every row about the person and their emails in the outbox. Returns (rows, files) removed."""
    store.person(person_id)  # a clear error for an unknown id
    message_ids = [r[0] for r in store.query_rows(
        "SELECT message_id FROM email_ledger WHERE person_id = ?", [person_id])]
    files = 0
    for mid in message_ids:
        for suffix in (".eml", ".html"):
            path = Path(outbox_dir) / f"{outbox_stem(mid)}{suffix}"
            if path.exists():
                path.unlink()
                files += 1
    return store.forget_person(person_id, files_removed=files), files


# Secrets are not "data about the person": exporting an encrypted token helps nobody and widens its reach.
EXPORT_SKIP = {"oauth_tokens"}

TABLE_NOTES = {
    "persons": "Your enrolment: id, address, time zone, source, email preferences.",
    "raw_payloads": "Every payload fetched or imported for you, exactly as received (body as bytes).",
    "quarantine": "Items that could not be read, with the reason.",
    "sleep_sessions": "Your sleep logs (main sleep and naps), instants in UTC with the zone in force.",
    "sleep_segments": "Stage segments of each sleep log.",
    "daily_activity": "Steps and active/sedentary minutes per day.",
    "daily_resting_hr": "Resting heart rate per day.",
    "nightly_hrv": "Overnight heart-rate variability (RMSSD).",
    "nightly_vitals": "Overnight breathing rate, skin temperature deviation, SpO2.",
    "nightly_features": "Features computed for each night (see docs/signals.md).",
    "night_signals": "Each night compared with your usual, and the domain flags.",
    "alerts": "Alerts decided for you, with their explanation.",
    "email_ledger": "Emails queued or sent to you (message bodies are dropped once sent).",
    "email_audit": "When each email was sent (no content).",
    "run_failures": "Runs that failed for you, with the error class.",
    "tags": "Context you tagged (illness, travel, on-call, …).",
    "sync_state": "Where each data type's sync stands.",
    "history_arrivals": "Nights that arrived in bulk (an import, a backfill) and the day they arrived (retention).",
}


def export_person(store: Store, person_id: str, out_dir: Path) -> list[Path]:
    """Everything held about a person, one Parquet and one CSV file per table, plus a README."""
    store.person(person_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tables = [r[0] for r in store.query_rows(
        "SELECT DISTINCT table_name FROM duckdb_columns() WHERE column_name = 'person_id' ORDER BY 1")]
    written, lines = [], [f"# Everything emberwatch holds about {person_id}", ""]
    for table in tables:
        if table in EXPORT_SKIP:
            continue
        df = store.query_df(f'SELECT * FROM "{table}" WHERE person_id = ?', [person_id])
        for suffix in (".parquet", ".csv"):
            path = out_dir / f"{table}{suffix}"
            df.to_parquet(path, index=False) if suffix == ".parquet" else df.to_csv(path, index=False)
            os.chmod(path, 0o600)
            written.append(path)
        lines.append(f"- `{table}.parquet` / `{table}.csv` ({len(df)} rows): {TABLE_NOTES.get(table, '')}")
    lines += ["", "Each table comes twice: Parquet (exact types) and CSV (opens anywhere).",
              "Encrypted sign-in tokens are not included: they are secrets, not data about you."]
    readme = out_dir / "README.md"
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(readme, 0o600)
    return written + [readme]
