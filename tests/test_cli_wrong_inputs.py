"""Every wrong thing a person types gets one short sentence, a non-zero exit status, no traceback, and changes
nothing: not a row in the database, not a file in the home folder or beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from storage.store import Store

EXCERPT = Path(__file__).parent / "fixtures" / "pmdata_p03_excerpt"
PMSYS = Path(__file__).parent / "fixtures" / "pmdata_p01_pmsys_excerpt" / "wellness.csv"

# (command as typed, with {tmp} for a scratch folder and {export} for a real export folder; words the answer says)
WRONG_COMMANDS = [
    # person add
    (["person", "add", "../x", "--email", "x@example.org", "--timezone", "Europe/Oslo"], "cannot be a person id"),
    (["person", "add", "p 02", "--email", "x@example.org", "--timezone", "Europe/Oslo"], "cannot be a person id"),
    (["person", "add", "", "--email", "x@example.org", "--timezone", "Europe/Oslo"], "cannot be a person id"),
    (["person", "add", "p01", "--email", "someone-else@example.org", "--timezone", "Europe/Oslo"],
     "already enrolled"),
    (["person", "add", "p02", "--email", "a@example.org\nBcc: all@example.org", "--timezone", "Europe/Oslo"],
     "line break"),
    (["person", "add", "p02", "--email", "a@example.org, b@example.org", "--timezone", "Europe/Oslo"],
     "not one plain address"),
    (["person", "add", "p02", "--email", "Ann <a@example.org>", "--timezone", "Europe/Oslo"],
     "not one plain address"),
    (["person", "add", "p02", "--email", "nobody", "--timezone", "Europe/Oslo"], "exactly one '@'"),
    (["person", "add", "p02", "--email", "a@localhost", "--timezone", "Europe/Oslo"], "no domain"),
    (["person", "add", "p02", "--email", "a@example.org", "--timezone", "Mars/Olympus"], "IANA time zone"),
    (["person", "add", "p02", "--email", "a@example.org", "--timezone", "../../etc/passwd"], "IANA time zone"),
    (["person", "add", "p02", "--email", "a@example.org", "--timezone", "europe/oslo"], "IANA time zone"),
    (["person", "add", "p02", "--email", "a@example.org", "--timezone", "Europe/Oslo", "--source", "dropbox"],
     "fitbit-export, google-health, fitbit-web"),
    (["person", "add", "p02", "--email", "a@example.org", "--timezone", "Europe/Oslo", "--source", "synthetic"],
     "fitbit-export, google-health, fitbit-web"),
    # person set
    (["person", "set", "p01", "--detail", "verbose"], "minimal, numbers, charts"),
    (["person", "set", "p01", "--window", "25:00-26:00"], "not a time of day"),
    (["person", "set", "p01", "--window", "01:00-02:00", "--detail", "charts"], "reaches into the night"),
    (["person", "set", "p01", "--days", "Funday"], "Funday"),
    (["person", "set", "p01", "--email", "x@example.org\r\nBcc: y@example.org"], "line break"),
    (["person", "set", "p01", "--timezone", "Oslo"], "IANA time zone"),
    (["person", "set", "p01", "--pause", "--resume"], "Choose one of"),
    (["person", "set", "nobody", "--detail", "charts"], "No person with id 'nobody'"),
    (["person", "set", "../p01", "--detail", "charts"], "cannot be a person id"),
    # person add-source, person prefer
    (["person", "add-source", "p01", "--source", "dropbox"], "fitbit-export, google-health, fitbit-web"),
    (["person", "add-source", "nobody", "--source", "oura"], "No person with id 'nobody'"),
    (["person", "prefer", "p01", "--data", "mood", "--source", "fitbit-export"], "sleep, resting_hr, hrv"),
    (["person", "prefer", "p01", "--data", "hrv", "--source", "oura"], "p01 has no source 'oura'"),
    # import
    (["import", "fitbit-export", "{tmp}/missing", "--person", "p01"], "There is no folder"),
    (["import", "fitbit-export", "{tmp}/empty", "--person", "p01"], "No Fitbit export files"),
    (["import", "fitbit-export", "{export}/sleep.json", "--person", "p01"], "is a file"),
    (["import", "fitbit-export", "{export}", "--person", "nobody"], "No person with id 'nobody'"),
    (["import", "fitbit-export", "{export}", "--person", "g01"], "not from a Fitbit export"),
    (["import", "check-ins", "{tmp}/missing.csv", "--person", "p01"], "There is no file"),
    (["import", "check-ins", "{tmp}/empty", "--person", "p01"], "is a folder"),
    (["import", "check-ins", "{export}/sleep.json", "--person", "p01"], "does not start with the header"),
    (["import", "check-ins", "{pmsys}", "--person", "p01", "--format", "xlsx"], "pmsys, csv"),
    (["import", "check-ins", "{pmsys}", "--person", "p01", "--format", "csv"], "(or is it --format pmsys?)"),
    (["import", "check-ins", "{pmsys}", "--person", "nobody"], "No person with id 'nobody'"),
    (["import", "check-ins", "{pmsys}", "--person", "../p01"], "cannot be a person id"),
    # validate
    (["validate"], "No one has check-ins to compare with yet"),
    (["validate", "--person", "c01"], "c01 has no check-ins to compare with yet"),
    (["validate", "--person", "nobody"], "No person with id 'nobody'"),
    (["validate", "--person", "p/01"], "cannot be a person id"),
    # nightly and weekly
    (["nightly", "--date", "2020-13-45"], "is not a date"),
    (["nightly", "--date", "20200301"], "is not a date"),
    (["nightly", "--date", "2020-03-01T00:00"], "is not a date"),
    (["nightly", "--date", "2999-01-01"], "is in the future"),
    (["nightly", "--date", "0001-01-01"], "before 2000-01-01"),
    (["weekly", "--date", "yesterday"], "is not a date"),
    # demo
    (["demo", "--people", "0"], "--people 0 is out of range"),
    (["demo", "--nights", "-5"], "--nights -5 is out of range"),
    (["demo", "--seed", "-1"], "--seed -1 is out of range"),
    (["demo", "--people", "1"], "would take over those ids"),
    # forget and export
    (["forget", "nobody", "--yes"], "No person with id 'nobody'"),
    (["forget", "../p01", "--yes"], "cannot be a person id"),
    (["export", "p01", "--out", "{tmp}/full"], "already holds files"),
    (["export", "p01", "--out", "{tmp}/full/a-file.txt"], "is a file"),
    (["export", "p01", "--out", "{tmp}/no/such/folder"], "does not exist"),
    (["export", "nobody", "--out", "{tmp}/new"], "No person with id 'nobody'"),
    # connectors
    (["enroll", "p01", "--source", "fitbit-export", "--no-browser"], "google-health, fitbit-web"),
    (["enroll", "nobody", "--source", "google-health", "--no-browser"], "No person with id 'nobody'"),
    (["enroll", "g01", "--source", "google-health", "--port", "70000", "--no-browser"], "--port 70000"),
    (["backfill", "p01", "--days", "10"], "nothing to backfill"),
    (["backfill", "c01", "--days", "10"], "nothing to backfill"),
    (["backfill", "g01", "--days", "0"], "--days 0 is out of range"),
    (["backfill", "g01", "--days", "99999"], "--days 99999 is out of range"),
    (["backfill", "no body"], "cannot be a person id"),
    # signals
    (["tag", "p01", "--from", "2020-02-30", "illness"], "is not a date"),
    (["tag", "p01", "--from", "2020-03-05", "--to", "2020-03-01", "travel"], "swap --from and --to"),
    (["tag", "p01", "--from", "2020-03-01", "holiday"], "illness, travel, on-call"),
    (["tag", "p01", "illness"], "--from needs a date"),
    (["tag", "nobody", "--from", "2020-03-01", "illness"], "No person with id 'nobody'"),
    (["tag", "list", "nobody"], "No person with id 'nobody'"),
    (["tag", "list"], "emberwatch tag list PERSON"),
    (["features", "export", "--out", "{tmp}/nights.xlsx"], ".csv or .parquet"),
    (["features", "export", "--out", "{tmp}/no/such/nights.csv"], "does not exist"),
    (["features", "export", "--out", "{tmp}/folder.csv"], "is a folder"),
]


@pytest.fixture(scope="module")
def template_home(tmp_path_factory) -> Path:
    """A home with an export person (p01, imported), a live person without tokens (g01), and c01 as the README
    names its example person."""
    home = tmp_path_factory.mktemp("template") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBERWATCH_HOME", str(home))
        mp.delenv("EMBERWATCH_SMTP_HOST", raising=False)
        mp.delenv("EMBERWATCH_CONFIG", raising=False)
        runner = CliRunner()
        for args in (["person", "add", "p01", "--email", "p01@example.org", "--timezone", "Europe/Oslo"],
                     ["import", "fitbit-export", str(EXCERPT), "--person", "p01"],
                     ["person", "add", "g01", "--email", "g01@example.org", "--timezone", "Europe/London",
                      "--source", "google-health"],
                     ["person", "add", "c01", "--email", "c01@example.org", "--timezone", "Europe/Oslo"],
                     ["tag", "p01", "--from", "2020-03-02", "travel"]):
            done = runner.invoke(app, args)
            assert done.exit_code == 0, done.output
    return home


@pytest.fixture
def scratch(template_home, tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    shutil.copytree(template_home, home)
    monkeypatch.setenv("EMBERWATCH_HOME", str(home))
    for var in ("EMBERWATCH_SMTP_HOST", "EMBERWATCH_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a-file.txt").write_text("kept\n")
    (tmp_path / "folder.csv").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def database_rows(db_path: Path) -> dict[str, list[tuple]]:
    with Store(db_path) as store:
        tables = [r[0] for r in store.query_rows("SELECT table_name FROM duckdb_tables() ORDER BY 1")]
        return {t: store.query_rows(f'SELECT * FROM "{t}" ORDER BY ALL') for t in tables}


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("args, says", WRONG_COMMANDS, ids=[" ".join(a)[:60] for a, _ in WRONG_COMMANDS])
def test_a_wrong_command_gets_one_sentence_and_changes_nothing(scratch, args, says):
    args = [a.replace("{tmp}", str(scratch)).replace("{export}", str(EXCERPT)).replace("{pmsys}", str(PMSYS))
            for a in args]
    db_path = scratch / "home" / "emberwatch.duckdb"
    rows_before, files_before = database_rows(db_path), files_under(scratch)

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    message = result.output.strip()
    assert says in message, message
    assert len(message.splitlines()) <= 2 and len(message) <= 320, message
    assert database_rows(db_path) == rows_before
    assert files_under(scratch) == files_before


def test_there_are_at_least_25_distinct_wrong_commands_over_every_command_group():
    groups = {(a[0], a[1]) if a[0] in ("person", "import", "features") else a[0] for a, _ in WRONG_COMMANDS}
    assert len({tuple(a) for a, _ in WRONG_COMMANDS}) == len(WRONG_COMMANDS) >= 25
    assert groups >= {("person", "add"), ("person", "set"), ("import", "fitbit-export"), "nightly", "weekly",
                      "demo", "forget", "export", "enroll", "backfill", "tag", ("features", "export"),
                      ("import", "check-ins"), "validate"}


def test_a_mistyped_id_on_a_fresh_home_creates_no_database(ew_home):
    for args in (["forget", "nobody", "--yes"], ["tag", "list", "nobody"], ["person", "set", "nobody", "--pause"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1 and "No person with id 'nobody'" in result.output
    assert not ew_home.exists()


def test_changing_an_address_is_person_set_and_it_says_what_changed(scratch):
    result = CliRunner().invoke(app, ["person", "set", "p01", "--email", "new@example.org", "--timezone",
                                      "Europe/Berlin"])
    assert result.exit_code == 0, result.output
    assert "p01's emails now go to new@example.org (until now: p01@example.org)." in result.output
    assert "p01's time zone is now Europe/Berlin (until now: Europe/Oslo)." in result.output
    with Store(scratch / "home" / "emberwatch.duckdb") as store:
        person = store.person("p01")
    assert (person.email, person.tz_name) == ("new@example.org", "Europe/Berlin")


def test_settings_that_cannot_be_used_get_one_sentence_and_a_secret_in_the_toml_file_is_refused(ew_home, tmp_path,
                                                                                               monkeypatch):
    toml = tmp_path / "emberwatch.toml"
    toml.write_text('smtp_host = "smtp.example.org"\nsmtp_password = "hunter2"\n', encoding="utf-8")
    monkeypatch.setenv("EMBERWATCH_CONFIG", str(toml))
    secret = CliRunner().invoke(app, ["status"])
    assert secret.exit_code == 1 and "Traceback" not in secret.output
    assert "sets smtp_password: secrets come only from the environment" in secret.output
    assert "EMBERWATCH_SMTP_PASSWORD" in secret.output and "hunter2" not in secret.output

    toml.write_text('smtp_port = "five-eight-seven"\n', encoding="utf-8")
    wrong = CliRunner().invoke(app, ["status"])
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output
    assert "Some settings cannot be used: EMBERWATCH_SMTP_PORT (input should be a valid integer" in wrong.output
    assert str(toml) in wrong.output
    assert not ew_home.exists()  # nothing was created
