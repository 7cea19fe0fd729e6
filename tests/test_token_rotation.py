"""Token-key rotation: `emberwatch rotate-key` re-seals every stored token with the newest key, and changes
nothing when any token cannot be opened."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from connectors.token_vault import MissingSecretKey, TokenCipher
from storage.store import Store
from storage.tokens import DbTokenStore, token_rows
from pipelines.cli import app

TOKEN = {"access_token": "ya29.secret-access", "refresh_token": "1//secret-refresh", "expires_at": 1_800_000_000}


def _seed(db_path, key: bytes, people: list[str]) -> None:
    with Store(db_path) as store:
        tokens = DbTokenStore(store, TokenCipher(key))
        for person_id in people:
            store.add_person(person_id, f"{person_id}@example.org", "Europe/Oslo", "google-health", {})
            tokens.save(person_id, "google-health", {**TOKEN, "person": person_id}, ("sleep",), new_consent=True)


def _ciphertexts(db_path) -> dict[str, bytes]:
    with Store(db_path) as store:
        return {r[0]: bytes(r[1]) for r in token_rows(store, "SELECT person_id, token_ciphertext FROM oauth_tokens")}


def test_rotation_reseals_every_token_so_the_new_key_alone_opens_them(ew_home, monkeypatch):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    db_path = ew_home / "emberwatch.duckdb"
    _seed(db_path, old, ["c01", "c02", "c03"])
    before = _ciphertexts(db_path)

    monkeypatch.setenv("EMBERWATCH_SECRET_KEY", f"{new.decode()},{old.decode()}")
    done = CliRunner().invoke(app, ["rotate-key"])
    assert done.exit_code == 0, done.output
    assert "Re-encrypted 3 token(s)" in done.output and "remove the old key" in done.output

    after = _ciphertexts(db_path)
    assert after.keys() == before.keys() and all(after[p] != before[p] for p in before)
    only_new = TokenCipher(new)
    assert {p: only_new.open(c)["person"] for p, c in after.items()} == {"c01": "c01", "c02": "c02", "c03": "c03"}
    assert only_new.open(after["c01"])["refresh_token"] == TOKEN["refresh_token"]
    with pytest.raises(MissingSecretKey):
        TokenCipher(old).open(after["c01"])
    assert "secret" not in done.output  # no token material in what the operator sees


def test_a_token_no_listed_key_opens_stops_rotation_and_changes_nothing(ew_home, monkeypatch):
    old, new, lost = Fernet.generate_key(), Fernet.generate_key(), Fernet.generate_key()
    db_path = ew_home / "emberwatch.duckdb"
    _seed(db_path, old, ["c01", "c02"])
    _seed(db_path, lost, ["c03"])  # sealed with a key nobody listed any more
    before = _ciphertexts(db_path)

    monkeypatch.setenv("EMBERWATCH_SECRET_KEY", f"{new.decode()},{old.decode()}")
    done = CliRunner().invoke(app, ["rotate-key"])
    assert done.exit_code == 1
    assert "Nothing was changed" in done.output and "cannot be decrypted with any key" in done.output
    assert _ciphertexts(db_path) == before  # the transaction rolled back: c01/c02 still under the old key


def test_a_malformed_key_in_the_list_is_named_by_position_not_echoed(monkeypatch):
    good = Fernet.generate_key().decode()
    with pytest.raises(MissingSecretKey, match="Key 2 in EMBERWATCH_SECRET_KEY is not a Fernet key") as raised:
        TokenCipher(f"{good},not-a-key-but-maybe-a-secret")
    assert "not-a-key-but-maybe-a-secret" not in str(raised.value)


def test_one_key_seals_and_opens_as_before():
    key = Fernet.generate_key()
    cipher = TokenCipher(key)
    assert cipher.key_count == 1
    assert TokenCipher(key.decode()).open(cipher.seal(TOKEN)) == TOKEN


def test_a_side_file_opened_by_many_threads_at_once_never_fails_on_its_switch_to_wal(tmp_path):
    """The nightly run's fetch threads each open the token file. Switching a new file to WAL takes a lock SQLite
    does not wait for, so two threads opening it at once used to fail one fetch with "database is locked" (seen
    in a demo run: one person not fetched that night). Many fresh files, several threads each: no failure."""
    import threading

    from storage.side_file import SideFile

    failures: list[str] = []
    schema = ["CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT)"]
    for trial in range(40):
        path = tmp_path / f"f{trial}.tokens.sqlite"

        def work(i: int) -> None:
            try:
                for j in range(10):
                    with SideFile(path, schema).transaction() as con:
                        con.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (str(i), str(j)))
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                failures.append(repr(exc))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert SideFile(path, schema).query_rows("PRAGMA journal_mode") == [("wal",)]
        assert SideFile(path, schema).query_rows("SELECT k, v FROM t ORDER BY k") == [
            (str(i), "9") for i in range(4)]
    assert failures == []
