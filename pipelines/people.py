"""A person's rights over their own data: change preferences, stop, and be forgotten."""

from __future__ import annotations

from pathlib import Path

from alerts.transport import outbox_stem
from features.store import Store


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
