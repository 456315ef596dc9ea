"""Where the dedup stage's time goes: its Spark jobs, one line each (wall time, tasks, the call
site that started it), read from Spark's own event log of one stage run.

Runs the stage exactly as bench/dedup.py does (same session settings, same input layout, clean
off), with `spark.eventLog.enabled`; then sums the job spans and the
time outside any job (driver work: planning, Python on the driver, file moves).

    .venv/bin/python bench/dedup_profile.py --input /tmp/dd-run/clean [--master local[2]]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import tempfile
import time

from _common import emit, load_table  # noqa: E402  (puts lib/ on the path)
from dedup import write_stage_input  # noqa: E402


def _event_lines(event_log: str):
    """The JSON lines of an event log: one file, or (Spark 4's rolling format) a folder of
    `events_<n>_...` files read in their numeric order."""
    if not os.path.isdir(event_log):
        parts = [event_log]
    else:
        parts = sorted(glob.glob(f"{event_log}/events_*"), key=lambda p: int(os.path.basename(p).split("_")[1]))
    for part in parts:
        with open(part) as fh:
            yield from fh


def job_spans(event_log: str) -> list[dict]:
    """Every job in a Spark event log, in start order: id, wall seconds, call site, and per stage
    that ran (skipped ones reuse earlier shuffle files) its tasks, summed task run and CPU
    seconds, input and shuffle bytes."""
    starts, stages, jobs = {}, {}, []
    for line in _event_lines(event_log):
        ev = json.loads(line)
        kind = ev["Event"]
        if kind == "SparkListenerJobStart":
            # PySpark names the Python line of an action; otherwise the job's last stage says what it is.
            names = [st.get("Stage Name", "") for st in ev.get("Stage Infos", [])]
            site = ev.get("Properties", {}).get("callSite.short") or (max(names, key=len) if names else "")
            starts[ev["Job ID"]] = (ev["Submission Time"], ev.get("Stage IDs", []), site)
        elif kind == "SparkListenerTaskEnd":
            m = ev.get("Task Metrics") or {}
            st = stages.setdefault(ev["Stage ID"], {"tasks": 0, "run_s": 0.0, "cpu_s": 0.0, "input_mb": 0.0,
                                                    "shuffle_read_mb": 0.0, "shuffle_write_mb": 0.0})
            st["tasks"] += 1
            st["run_s"] += m.get("Executor Run Time", 0) / 1e3
            st["cpu_s"] += m.get("Executor CPU Time", 0) / 1e9
            st["input_mb"] += (m.get("Input Metrics") or {}).get("Bytes Read", 0) / 1e6
            sr = m.get("Shuffle Read Metrics") or {}
            st["shuffle_read_mb"] += (sr.get("Remote Bytes Read", 0) + sr.get("Local Bytes Read", 0)) / 1e6
            st["shuffle_write_mb"] += (m.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0) / 1e6
        elif kind == "SparkListenerJobEnd" and ev["Job ID"] in starts:
            t0, stage_ids, site = starts[ev["Job ID"]]
            ran = {sid: {k: round(v, 2) for k, v in stages[sid].items()} for sid in stage_ids if sid in stages}
            jobs.append({"job": ev["Job ID"], "start_ms": t0, "seconds": (ev["Completion Time"] - t0) / 1e3,
                         "site": site, "stages": ran})
    return sorted(jobs, key=lambda j: j["start_ms"])


def run(table, master: str, overrides: list[str], keep_events: str | None = None, repeat: int = 1
        ) -> tuple[float, float, list[dict]]:
    """Runs the stage `repeat` times in one session; the last run is the one reported (a repeat
    shows the stage with a warm JVM and warm Python workers)."""
    from codecorpus.core.config import load_config
    from codecorpus.core.registry import run_one
    from codecorpus.core.spark import local_session, spark_defaults

    root = tempfile.mkdtemp(prefix="bench-dedup-profile-")
    events = f"{root}/events"
    os.makedirs(events)
    spark = local_session("bench-dedup-profile", master,
                          {**spark_defaults(), "spark.eventLog.enabled": "true", "spark.eventLog.dir": events,
                           "spark.eventLog.compress": "false"})
    try:
        write_stage_input(table, f"{root}/ingest")
        cfg = load_config(None, [f"output={root}", "clean.enabled=false", *overrides])
        for _ in range(repeat):
            started, wall_ms = time.perf_counter(), time.time() * 1e3
            run_one(spark, cfg, "dedup", force=True)
            seconds = time.perf_counter() - started
        spark.stop()
        (log,) = glob.glob(f"{events}/*")  # one application: a file, or a folder of rolled files
        jobs = [j for j in job_spans(log) if j["start_ms"] >= wall_ms]  # the stage's own, not the input's
        if keep_events:
            shutil.copytree(events, keep_events, dirs_exist_ok=True)
        return seconds, wall_ms, jobs
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", required=True, help="a stage's Parquet output folder")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json")
    ap.add_argument("--keep-events", help="copy Spark's event log (plans, task metrics) to this folder")
    ap.add_argument("--repeat", type=int, default=1, help="run the stage this many times, report the last")
    args = ap.parse_args(argv)
    from codecorpus.core.cli import setup_logging

    setup_logging()
    table = load_table(args.input, args.limit or None)
    load_before = os.getloadavg()
    seconds, wall_ms, jobs = run(table, args.master, args.overrides, args.keep_events, args.repeat)
    # Outside any job: the driver's own work (planning, Python, file moves) and idle gaps.
    in_jobs = sum(j["seconds"] for j in jobs)
    for j in jobs:
        print(f"job {j['job']:>3} at {(j['start_ms'] - wall_ms) / 1e3:6.2f}s {j['seconds']:6.2f}s  {j['site'][:70]}")
        for sid, st in j["stages"].items():
            print(f"      stage {sid:>3}: {st['tasks']:>3} tasks run {st['run_s']:6.2f}s cpu {st['cpu_s']:6.2f}s "
                  f"in {st['input_mb']:7.1f} MB shuffle r/w {st['shuffle_read_mb']:6.1f}/{st['shuffle_write_mb']:6.1f} MB")
    tasks_cpu = sum(st["cpu_s"] for j in jobs for st in j["stages"].values())
    return emit({"files": table.num_rows, "master": args.master, "run": args.repeat, "stage_seconds": round(seconds, 2),
                 "task_cpu_seconds_jvm": round(tasks_cpu, 2),
                 "docs_per_s": round(table.num_rows / seconds, 1), "jobs": len(jobs),
                 "seconds_in_jobs": round(in_jobs, 2), "seconds_outside_jobs": round(seconds - in_jobs, 2),
                 "load_average_before": load_before, "load_average_at_end": os.getloadavg(),
                 "per_job": [{k: (round(v, 2) if k == "seconds" else v) for k, v in j.items() if k != "start_ms"}
                             for j in jobs]}, args.json)


if __name__ == "__main__":
    main()
