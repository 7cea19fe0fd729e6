"""Scale-out demonstration: people sharded over two DuckDB files, two Prefect process workers running the
nightly flow for both shards at once against a local Prefect server; results compared with one process.

Usage:  .venv/bin/python benchmarks/scale_out_demo.py [--people 8] [--nights 60] [--shards 2]

What it does (all on loopback, everything in a temp folder, stops what it started):
 1. starts `prefect server start` and creates a process work pool `emberwatch-shards`;
 2. deploys the real nightly flow from this checkout to that pool;
 3. enrols a synthetic cohort twice: once in a single database (the reference) and once spread over the
    shard databases by `pipelines.shards.shard_of`; replays the history in-process for both;
 4. starts one worker per shard and, for each of the last nights, starts one flow run per shard at the same
    moment; the reference runs the same nights in one process;
 5. compares features, signals, alerts and the email ledger: the union of the shards must equal the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_prefect import BIN, prefect_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
POOL = "emberwatch-shards"

COMPARE = {
    "nightly_features": "SELECT * FROM nightly_features ORDER BY person_id, night_date",
    "night_signals": "SELECT * FROM night_signals ORDER BY person_id, night_date",
    "alerts": "SELECT person_id, night_date, domains, explanation_json FROM alerts ORDER BY 1, 2",
    "email_ledger": "SELECT person_id, kind, period_key, message_id FROM email_ledger ORDER BY 1, 2, 3",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=8)
    ap.add_argument("--nights", type=int, default=60)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--live-nights", type=int, default=3, help="last nights run through the work pool")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ew-scale-"))
    procs: list[subprocess.Popen] = []
    started = time.monotonic()
    with prefect_server(work) as server_env:
        env = {**server_env, "EMBERWATCH_HOME": str(work / "sharded"), "EMBERWATCH_SHARD_COUNT": str(args.shards)}
        try:
            run_demonstration(args, work, env, procs, started)
        finally:
            for p in procs[::-1]:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()


def run_demonstration(args: argparse.Namespace, work: Path, env: dict[str, str], procs: list[subprocess.Popen],
                      started: float) -> None:
    subprocess.run([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"], env=env,
                   check=True, capture_output=True)
    deploy = (
        "from pipelines.flows import nightly\n"
        f"nightly.from_source(source={str(REPO)!r}, entrypoint='pipelines/flows.py:nightly').deploy("
        f"name='nightly-shard', work_pool_name={POOL!r}, "
        f"job_variables={{'env': {{'EMBERWATCH_HOME': {env['EMBERWATCH_HOME']!r}, "
        f"'EMBERWATCH_SHARD_COUNT': {str(args.shards)!r}, 'PREFECT_LOGGING_LEVEL': 'WARNING'}}}}, "
        "print_next_steps=False)\n"
    )
    subprocess.run([sys.executable, "-c", deploy], env=env, check=True, capture_output=True, cwd=REPO)

    # populate both layouts and replay the history in-process (fast path, same steps as the flow)
    sys.path.insert(0, str(REPO))
    os.environ.update({k: v for k, v in env.items() if k.startswith("EMBERWATCH_")})
    from connectors.synthetic import SyntheticCohort, SyntheticSource
    from storage.store import Store
    from pipelines.flows import morning_of
    from pipelines.replay import replay_nights
    from pipelines.settings import Settings
    from pipelines.shards import shard_of

    cohort = SyntheticCohort(n_people=args.people, n_nights=args.nights, seed=7)
    source = SyntheticSource(cohort)
    config = {"n_people": args.people, "n_nights": args.nights, "seed": 7}
    reference = Settings(home=work / "reference")
    sharded = [Settings(home=work / "sharded", shard_count=args.shards, shard=k) for k in range(args.shards)]
    history, live = cohort.nights[:-args.live_nights], cohort.nights[-args.live_nights:]
    with Store(reference.db_path) as ref:
        for p in cohort.people:
            ref.add_person(p.person_id, p.email, p.tz_name, "synthetic", config)
        replay_nights(ref, source, reference, history, morning_of(history[-1], reference))
    placement = {k: [] for k in range(args.shards)}
    for p in cohort.people:
        placement[shard_of(p.person_id, args.shards)].append(p.person_id)
    for k, s in enumerate(sharded):
        with Store(s.db_path) as st:
            for p in cohort.people:
                if shard_of(p.person_id, args.shards) == k:
                    st.add_person(p.person_id, p.email, p.tz_name, "synthetic", config)
            replay_nights(st, source, s, history, morning_of(history[-1], s))

    for k in range(args.shards):
        procs.append(subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--limit", "1",
                                       "--name", f"worker-{k}"], env=env, cwd=REPO,
                                      stdout=subprocess.DEVNULL, stderr=open(work / f"worker-{k}.log", "w")))
    run = (
        "import json, sys\n"
        "from prefect.deployments import run_deployment\n"
        "night, now, shards = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
        "runs = [run_deployment('nightly/nightly-shard', timeout=0, parameters={'params': "
        "{'night_date': night, 'now_utc': now, 'shard': k}}) for k in range(shards)]\n"
        "print(json.dumps([str(r.id) for r in runs]))\n"
    )
    wait = (
        "import asyncio, json, sys, time\n"
        "from prefect.client.orchestration import get_client\n"
        "ids = json.loads(sys.argv[1])\n"
        "async def states():\n"
        "    async with get_client() as c:\n"
        "        return [(await c.read_flow_run(i)).state for i in ids]\n"
        "deadline = time.monotonic() + 600\n"
        "while time.monotonic() < deadline:\n"
        "    st = asyncio.run(states())\n"
        "    if all(s.is_final() for s in st):\n"
        "        print(json.dumps([s.type.value for s in st])); break\n"
        "    time.sleep(1)\n"
        "else:\n"
        "    print(json.dumps(['TIMEOUT']))\n"
    )
    live_started = time.monotonic()
    states = []
    for night in live:
        now = morning_of(night, reference)
        out = subprocess.run([sys.executable, "-c", run, night.isoformat(), now.isoformat(), str(args.shards)],
                             env=env, check=True, capture_output=True, text=True)
        ids = out.stdout.strip().splitlines()[-1]
        done = subprocess.run([sys.executable, "-c", wait, ids], env=env, capture_output=True, text=True)
        states.append(json.loads(done.stdout.strip().splitlines()[-1]))
        with Store(reference.db_path) as ref:
            replay_nights(ref, source, reference, [night], now)
    live_s = time.monotonic() - live_started

    import pandas as pd

    equal = {}
    with Store(reference.db_path) as ref:
        expected = {t: ref.query_df(q) for t, q in COMPARE.items()}
    got: dict[str, list] = {t: [] for t in COMPARE}
    for s in sharded:
        with Store(s.db_path) as st:
            for t, q in COMPARE.items():
                got[t].append(st.query_df(q))
    for t in COMPARE:
        union = pd.concat(got[t]).sort_values(list(expected[t].columns[:2])).reset_index(drop=True)
        equal[t] = union.equals(expected[t].reset_index(drop=True))
    lock_errors = sum((work / f"worker-{k}.log").read_text().count("Could not set lock")
                      for k in range(args.shards))
    print(f"people per shard: { {k: len(v) for k, v in placement.items()} }")
    print(f"flow-run states per night (one per shard): {states}")
    print(f"live nights through the work pool: {len(live)} x {args.shards} shards in {live_s:.1f} s")
    print(f"lock errors in worker logs: {lock_errors}")
    for t, ok in equal.items():
        print(f"{t:<18} shards == single process: {ok}")
    ok = all(equal.values()) and lock_errors == 0 and all(s == ["COMPLETED"] * args.shards for s in states)
    print(f"RESULT: {'PASS' if ok else 'FAIL'} in {time.monotonic() - started:.0f} s (work folder {work})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
