"""Crash campaign: kill the nightly flow with SIGKILL at seeded moments, rerun it, and check nothing was lost or
duplicated.

Usage:  .venv/bin/python benchmarks/crash_campaign.py [--trials 30] [--seed 1] [--people 8] [--nights 60]

What it does (all on loopback, in a temp folder; stops what it started):
 1. starts a throwaway Prefect server and a real SMTP server (aiosmtpd) that records every Message-ID it accepts;
 2. builds a base database: a synthetic cohort with its history replayed in-process, up to the night before the
    last night with an alert, with a backlog of queued mail (history alerts and a week's check-ins), so the
    night under test fetches, stores, computes, queues and sends;
 3. reference: runs the real `nightly` flow for that night, in a subprocess, on a copy of the base;
 4. each trial: a fresh copy of the base; the flow in a subprocess killed with SIGKILL — half the trials at a
    named point (storage/crash_points.py: during fetch, after archiving, mid-upsert, between feature tables,
    after queueing, between SMTP's 250 and the ledger's commit, after a send is recorded, before retention),
    half at a seeded random moment of the run; then a clean rerun;
 5. after each trial: every table equals the reference's (wall-clock columns aside), every email the reference
    sent arrived, and none arrived twice — except at the one documented edge (killed after the server accepted
    and before the ledger recorded it), which must show as attempts > 1 in the audit table and a
    "Re-sending" warning in the rerun's log.

Prints one line per trial and `crash campaign: N/N passed`; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from email import message_from_bytes
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_prefect import free_port, prefect_server  # noqa: E402

# Columns that hold the wall-clock time of the run that wrote them: they differ between any two runs.
WALL_CLOCK_COLUMNS = {"fetched_at", "quarantined_at", "failed_at", "applied_at", "tagged_at", "updated_at",
                      "consented_at", "enrolled_at", "deleted_at", "decided_at"}
# Compared separately: a crash between send and commit legitimately adds an attempt.
ATTEMPT_COLUMNS = {"attempts"}
CHILD_TIMEOUT_S = 300
FLOW_STARTING = "crash-campaign child: imports done, flow starting"


# --- the SMTP side ---------------------------------------------------------------------------------------

class CountingHandler:
    """Counts accepted messages by Message-ID, for the current trial."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        message_id = message_from_bytes(envelope.content).get("Message-ID", "")
        with self._lock:
            self.received[message_id] += 1
        return "250 Message accepted for delivery"

    def take(self) -> Counter[str]:
        with self._lock:
            taken, self.received = self.received, Counter()
        return taken


# --- the database side -----------------------------------------------------------------------------------

def table_contents(db_path: Path) -> dict[str, list[tuple]]:
    """Every table's rows (wall-clock and attempt columns left out), sorted; doubles rounded to 1e-9."""
    import duckdb

    out: dict[str, list[tuple]] = {}
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        for table in tables:
            cols = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' "
                "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()
            exprs = [f"round({name}, 9)" if dtype == "DOUBLE" else name
                     for name, dtype in cols if name not in WALL_CLOCK_COLUMNS | ATTEMPT_COLUMNS]
            out[table] = con.execute(f"SELECT {', '.join(exprs)} FROM {table} ORDER BY ALL").fetchall()
    finally:
        con.close()
    return out


def attempts_by_message(db_path: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return dict(con.execute("SELECT message_id, attempts FROM email_audit").fetchall())
    finally:
        con.close()


def differences(expected: dict[str, list[tuple]], got: dict[str, list[tuple]]) -> list[str]:
    problems = []
    for table in sorted(expected.keys() | got.keys()):
        want, have = expected.get(table, []), got.get(table, [])
        if want != have:
            missing, extra = len(set(want) - set(have)), len(set(have) - set(want))
            problems.append(f"{table}: {len(have)} rows vs {len(want)} ({missing} missing, {extra} unexpected)")
    return problems


# --- the runs --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NightUnderTest:
    night: date
    now_utc: datetime


def child_main(night: str, now_utc: str) -> None:
    """The subprocess: the real nightly flow, as a scheduled run would start it."""
    from pipelines.flows import NightlyParams, nightly

    print(FLOW_STARTING, flush=True)  # lets the campaign aim random kills at the run, not at Python's start-up
    nightly(NightlyParams(night_date=date.fromisoformat(night), now_utc=datetime.fromisoformat(now_utc)))


@dataclass
class ChildRun:
    returncode: int
    seconds: float
    flow_started_s: float | None  # when the child said it was starting the flow
    stderr: str


def _wait_watching(proc: subprocess.Popen, log_path: Path, timeout_s: float) -> float | None:
    """Wait for the child (raising TimeoutExpired after `timeout_s`), noting when it announces the flow."""
    started = time.monotonic()
    flow_started_s = None
    while True:
        if flow_started_s is None and FLOW_STARTING in log_path.read_text():
            flow_started_s = time.monotonic() - started
        try:
            proc.wait(timeout=0.05)
            return flow_started_s
        except subprocess.TimeoutExpired:
            if time.monotonic() - started >= timeout_s:
                raise


def run_child(home: Path, env: dict[str, str], target: NightUnderTest, crash_at: str | None = None,
              kill_after_s: float | None = None) -> ChildRun:
    """Run the flow in its own process group; kill the group at `kill_after_s` if given (SIGKILL)."""
    child_env = {**env, "EMBERWATCH_HOME": str(home)}
    child_env.pop("EMBERWATCH_CRASH_AT", None)
    if crash_at:
        child_env["EMBERWATCH_CRASH_AT"] = crash_at
    log_path = home / "child.log"
    log_path.write_text("")  # each run's own log: the rerun's warnings are checked on their own
    started = time.monotonic()
    flow_started_s = None
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, __file__, "--child", target.night.isoformat(),
                                 target.now_utc.isoformat()], env=child_env, cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            flow_started_s = _wait_watching(proc, log_path, kill_after_s if kill_after_s is not None
                                            else CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # anything the run started dies with it
            except ProcessLookupError:
                pass
    return ChildRun(proc.returncode, time.monotonic() - started, flow_started_s, log_path.read_text())


def build_base(work: Path, people: int, nights: int) -> tuple[Path, NightUnderTest]:
    """History replayed in-process up to the night before the last alert night, with mail left queued."""
    from alerts.digest import week_of
    from alerts.ledger import deliver_after
    from connectors.synthetic import SyntheticSource
    from storage.store import Store
    from pipelines.demo import DemoCohort, enrol_cohort
    from pipelines.flows import morning_of
    from pipelines.replay import replay_nights
    from pipelines.settings import Settings
    from pipelines.steps import queue_digests

    scout = Settings(home=work / "scout")
    with Store(scout.db_path) as store:
        cohort = enrol_cohort(store, DemoCohort(people, nights, seed=7))
        replay_nights(store, SyntheticSource(cohort), scout, cohort.nights, morning_of(cohort.nights[0], scout))
        alert_nights = [r[0] for r in store.query_rows("SELECT DISTINCT night_date FROM alerts ORDER BY 1")]
        if not alert_nights:
            raise SystemExit("The synthetic cohort produced no alert to test with; try more --nights.")
        night = alert_nights[-1]
        # the run under test comes when that night's alert may go out (its person's window, which may be days
        # later: mail never leaves outside it), so that the run sends and the send points are reached
        [(alerted,)] = store.query_rows("SELECT min(person_id) FROM alerts WHERE night_date = ?", [night])
        run_at = deliver_after(store, store.person(alerted), morning_of(night, scout))
    base = Settings(home=work / "base")
    with Store(base.db_path) as store:
        enrol_cohort(store, DemoCohort(people, nights, seed=7))
        history = [n for n in cohort.nights if n < night]
        replay_nights(store, SyntheticSource(cohort), base, history, morning_of(history[0], base))
        week_start, _ = week_of(night)
        queue_digests(store, store.people(), week_start, base, morning_of(history[0], base))
    shutil.rmtree(scout.home)
    return base.home, NightUnderTest(night, run_at)


def fresh_copy(base_home: Path, home: Path) -> Path:
    if home.exists():
        shutil.rmtree(home)
    shutil.copytree(base_home, home, ignore=shutil.ignore_patterns("*.lock", "child.log"))
    return home


@dataclass
class Trial:
    number: int
    how: str
    killed: bool = False
    rerun_ok: bool = False
    problems: list[str] = field(default_factory=list)
    edge_duplicates: int = 0

    @property
    def passed(self) -> bool:
        return self.rerun_ok and not self.problems


def plan_trials(count: int, seed: int, flow_from_s: float, flow_to_s: float,
                sends: int) -> list[tuple[str | None, float | None]]:
    """Alternate named points (cycling through all of them, with a seeded hit number where a point repeats)
    and seeded random moments while the reference run's flow was running (not during Python's start-up)."""
    from storage.crash_points import POINTS

    rng = random.Random(seed)
    repeats = {"fetch": 3, "queue": 2, "send": max(sends, 1), "sent": max(sends, 1)}
    plans: list[tuple[str | None, float | None]] = []
    for i in range(count):
        if i % 2 == 0:
            point = POINTS[(i // 2) % len(POINTS)]
            plans.append((f"{point}:{rng.randint(1, repeats.get(point, 1))}", None))
        else:
            plans.append((None, round(rng.uniform(flow_from_s, flow_to_s), 2)))
    return plans


def run_trial(number: int, plan: tuple[str | None, float | None], base_home: Path, work: Path,
              env: dict[str, str], target: NightUnderTest, smtp: CountingHandler,
              expected_tables: dict[str, list[tuple]], expected_mail: Counter[str]) -> Trial:
    crash_at, kill_after_s = plan
    trial = Trial(number, f"point {crash_at}" if crash_at else f"random kill at {kill_after_s:.2f} s")
    home = fresh_copy(base_home, work / f"trial-{number:02d}")
    smtp.take()
    crashed = run_child(home, env, target, crash_at, kill_after_s)
    trial.killed = crashed.returncode == -signal.SIGKILL
    if not trial.killed:
        trial.how += " (finished before the kill)" if crashed.returncode == 0 else f" (exit {crashed.returncode})"
    rerun = run_child(home, env, target)
    trial.rerun_ok = rerun.returncode == 0
    if not trial.rerun_ok:
        trial.problems.append(f"rerun exited {rerun.returncode}: {rerun.stderr.strip().splitlines()[-1:]}")
        return trial
    db_path = home / "emberwatch.duckdb"
    trial.problems += differences(expected_tables, table_contents(db_path))
    received = smtp.take()
    lost = sorted(set(expected_mail) - set(received))
    unexpected = sorted(set(received) - set(expected_mail))
    if lost:
        trial.problems.append(f"{len(lost)} email(s) never arrived")
    if unexpected:
        trial.problems.append(f"{len(unexpected)} email(s) the clean run did not send")
    attempts = attempts_by_message(db_path)
    for message_id, count in received.items():
        if count == 1:
            continue
        # The documented edge: sent, then killed before the ledger's commit. It must be visible.
        if count == 2 and attempts.get(message_id, 0) >= 2 and "Re-sending" in rerun.stderr:
            trial.edge_duplicates += 1
        else:
            trial.problems.append(f"an email arrived {count} times without the send/commit edge showing")
    if trial.edge_duplicates > 1:
        trial.problems.append(f"{trial.edge_duplicates} duplicates from one crash (the edge allows one)")
    return trial


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--people", type=int, default=8)
    ap.add_argument("--nights", type=int, default=60)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    result = campaign(args.trials, args.seed, args.people, args.nights, keep=args.keep)
    sys.exit(0 if result.passed == result.trials else 1)


@dataclass
class CampaignResult:
    trials: int
    passed: int
    edge_duplicates: int


def campaign(trials: int, seed: int, people: int = 8, nights: int = 60, keep: bool = False,
             plans: list[tuple[str | None, float | None]] | None = None, echo=None) -> CampaignResult:
    from aiosmtpd.controller import Controller

    echo = echo or (lambda line: print(line, flush=True))  # one line per trial as it finishes
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ew-crash-"))
    smtp = CountingHandler()
    smtp_port = free_port()
    controller = Controller(smtp, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        base_home, target = build_base(work, people, nights)
        with prefect_server(work) as server_env:
            env = {**server_env, "EMBERWATCH_SMTP_HOST": "127.0.0.1", "EMBERWATCH_SMTP_PORT": str(smtp_port),
                   "EMBERWATCH_SMTP_SECURITY": "none", "EMBERWATCH_SMTP_TIMEOUT_S": "10",
                   # One link key for every trial: the emails' signed links must equal the reference's.
                   "EMBERWATCH_LINK_KEY": "crash-campaign-link-key-0123456789"}
            reference_home = fresh_copy(base_home, work / "reference")
            reference = run_child(reference_home, env, target)
            if reference.returncode != 0:
                raise SystemExit(f"The clean reference run failed:\n{reference.stderr[-2000:]}")
            expected_mail = smtp.take()
            if any(n != 1 for n in expected_mail.values()):
                raise SystemExit("The clean reference run sent an email twice.")
            expected_tables = table_contents(reference_home / "emberwatch.duckdb")
            echo(f"night under test {target.night}: clean run {reference.seconds:.1f} s (flow from "
                 f"{reference.flow_started_s or 0:.1f} s), "
                 f"{len(expected_mail)} emails, {sum(len(r) for r in expected_tables.values())} rows")
            # Random moments stop short of the reference's end: a trial run may be a little faster than it.
            flow_from_s = reference.flow_started_s or 0.0
            flow_to_s = flow_from_s + 0.85 * (reference.seconds - flow_from_s)
            plans = plans or plan_trials(trials, seed, flow_from_s, flow_to_s, len(expected_mail))
            results = []
            for number, plan in enumerate(plans, start=1):
                trial = run_trial(number, plan, base_home, work, env, target, smtp, expected_tables, expected_mail)
                results.append(trial)
                edge = f", {trial.edge_duplicates} duplicate at the send/commit edge (logged)" \
                    if trial.edge_duplicates else ""
                echo(f"trial {number:2d}: {trial.how:<48} {'PASS' if trial.passed else 'FAIL'}{edge}"
                     + ("" if trial.passed else " — " + "; ".join(trial.problems)))
        passed = sum(t.passed for t in results)
        killed = sum(t.killed for t in results)
        edges = sum(t.edge_duplicates for t in results)
        echo(f"crash campaign: {passed}/{len(results)} passed ({killed} runs killed, {edges} documented "
             f"send/commit duplicates) in {time.monotonic() - started:.0f} s")
        return CampaignResult(len(results), passed, edges)
    finally:
        controller.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            echo(f"work folder kept: {work}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3])
    else:
        main()
