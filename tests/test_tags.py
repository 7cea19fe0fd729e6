"""`emberwatch tag`: context tags are stored, listed, validated, and change the signals at once."""

from __future__ import annotations

from typer.testing import CliRunner

from pipelines.cli import app


def test_tag_and_tag_list_from_the_command_line(ew_home):
    runner = CliRunner()
    assert runner.invoke(app, ["person", "add", "t1", "--email", "t1@example.org", "--timezone",
                               "Europe/Oslo"]).exit_code == 0
    ok = runner.invoke(app, ["tag", "t1", "--from", "2026-03-02", "--to", "2026-03-04", "on-call"])
    assert ok.exit_code == 0, ok.output
    runner.invoke(app, ["tag", "t1", "--from", "2026-02-10", "illness"])
    listed = runner.invoke(app, ["tag", "list", "t1"])
    assert listed.exit_code == 0
    assert listed.output.splitlines() == ["illness      2026-02-10 .. 2026-02-10",
                                          "on-call      2026-03-02 .. 2026-03-04"]


def test_tag_errors_read_as_sentences(ew_home):
    runner = CliRunner()
    runner.invoke(app, ["person", "add", "t1", "--email", "t1@example.org", "--timezone", "Europe/Oslo"])
    bad_kind = runner.invoke(app, ["tag", "t1", "--from", "2026-03-02", "holiday"])
    assert bad_kind.exit_code == 1 and "not a tag emberwatch knows" in bad_kind.output
    backwards = runner.invoke(app, ["tag", "t1", "--from", "2026-03-05", "--to", "2026-03-01", "travel"])
    assert backwards.exit_code == 1 and "swap --from and --to" in backwards.output
    nobody = runner.invoke(app, ["tag", "zz", "--from", "2026-03-05", "travel"])
    assert nobody.exit_code == 1 and "No person" in nobody.output
