"""Throughput of the dedup stage (documents/s, MB/s) next to single-process datasketch and rensa
runs on the same data, in the same run.

Ours: the whole stage (signatures in Arrow batches, band buckets, verification, connected
components, survivors, writing all outputs) under Spark, `--master` cores, on the input written
as Spark writes a stage's output (row groups of ~128 MiB, so read in as many partitions). The
alternatives a user would pick: the CodeParrot way, one Python process that builds a datasketch
MinHash of each file's shingles and queries then inserts it into a datasketch MinHashLSH of the
same threshold and permutations; and the same loop with rensa's RMinHash / RMinHashLSH (Rust),
whose band count must divide num_perm (the divisor nearest our shape's is used).

    .venv/bin/python bench/dedup.py --input /tmp/me/out/ingest [--limit 5000] [--master local[2]]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from _common import ROOT, emit, load_table, tree_cpu_seconds  # noqa: E402  (puts lib/ on the path)

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


ROW_GROUP_BYTES = 128 << 20  # Spark's parquet.block.size


def write_stage_input(table: pa.Table, folder: str) -> None:
    """`table` as one Parquet file under `folder` with row groups about as large as the ones
    Spark writes, so that Spark splits it as it splits a stage's output."""
    os.makedirs(folder)
    rows = max(1, ROW_GROUP_BYTES * max(1, table.num_rows) // max(1, table.nbytes))
    pq.write_table(table, f"{folder}/part-0.parquet", row_group_size=rows, compression="zstd")


def run_ours(table: pa.Table, master: str, overrides: list[str]) -> dict:
    """The stage twice in one fresh session: the first run pays the cold JVM (code generation,
    JIT) and the Python workers' start, as `jobs/dedup.py` alone does; the second is the stage
    as it runs inside the pipeline, after ingest and clean warmed both."""
    from codecorpus.core.config import load_config
    from codecorpus.core.registry import run_one
    from codecorpus.core.spark import local_session, spark_defaults

    spark = local_session("bench-dedup", master, spark_defaults())  # as spark-submit.sh runs the stage
    root = tempfile.mkdtemp(prefix="bench-dedup-")
    runs = []
    try:
        write_stage_input(table, f"{root}/ingest")
        cfg = load_config(None, [f"output={root}", "clean.enabled=false", *overrides])
        jvm = spark.sparkContext._gateway.proc.pid  # local mode: executors and Python workers live under it
        for _ in range(2):
            cpu_before, started = tree_cpu_seconds(jvm), time.perf_counter()
            counts = run_one(spark, cfg, "dedup", force=True)
            runs.append((time.perf_counter() - started, tree_cpu_seconds(jvm) - cpu_before))
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    (seconds, cpu), (warm_seconds, warm_cpu) = runs
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 1),
            "warm_seconds": round(warm_seconds, 2), "warm_cpu_seconds": round(warm_cpu, 1),
            "removed": counts.dropped.get("near_duplicate", 0),
            "clusters": counts.extra["clusters"], "bands": counts.extra["bands"], "rows": counts.extra["rows"]}


def run_datasketch(table: pa.Table, overrides: list[str]) -> dict:
    from codecorpus.core.config import load_config
    from codecorpus.stages.dedup.shingles import tokens
    from datasketch import MinHash, MinHashLSH
    from dedup_reference import shingle_strings

    dc = load_config(None, overrides).dedup.resolved()
    ids, contents = table.column("id").to_pylist(), table.column("content").to_pylist()
    started, cpu = time.perf_counter(), time.process_time()
    lsh = MinHashLSH(threshold=dc.threshold, num_perm=dc.num_perm)
    duplicates = 0
    for doc_id, text in zip(ids, contents):
        if len(tokens(text)) < dc.min_tokens:
            continue
        m = MinHash(num_perm=dc.num_perm, seed=dc.seed)
        m.update_batch([s.encode() for s in shingle_strings(text, dc.ngram)])
        if lsh.query(m):
            duplicates += 1  # first seen wins, as in CodeParrot's script
        lsh.insert(doc_id, m)
    return {"seconds": round(time.perf_counter() - started, 2), "cpu_seconds": round(time.process_time() - cpu, 1),
            "removed": duplicates,
            "bands": lsh.b, "rows": lsh.r}


def run_rensa(table: pa.Table, overrides: list[str]) -> dict:
    from codecorpus.core.config import load_config
    from codecorpus.stages.dedup.shingles import tokens
    from codecorpus.stages.dedup.stage import params_for
    from dedup_reference import shingle_strings
    from rensa import RMinHash, RMinHashLSH

    cfg = load_config(None, overrides)
    params, _, dc = params_for(cfg)
    divisors = [b for b in range(1, dc.num_perm + 1) if dc.num_perm % b == 0]
    bands = min(divisors, key=lambda b: (abs(b - params.bands), b))
    contents = table.column("content").to_pylist()
    started, cpu = time.perf_counter(), time.process_time()
    lsh = RMinHashLSH(threshold=dc.threshold, num_perm=dc.num_perm, num_bands=bands)
    duplicates = 0
    for key, text in enumerate(contents):  # rensa's keys are unsigned: the row number, not the id
        if len(tokens(text)) < dc.min_tokens:
            continue
        m = RMinHash(num_perm=dc.num_perm, seed=dc.seed)
        m.update(list(shingle_strings(text, dc.ngram)))
        if lsh.query(m):
            duplicates += 1  # first seen wins, as in CodeParrot's script
        lsh.insert(key, m)
    return {"seconds": round(time.perf_counter() - started, 2), "cpu_seconds": round(time.process_time() - cpu, 1),
            "removed": duplicates, "bands": bands, "rows": dc.num_perm // bands}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", default=str(ROOT / "out" / "ingest"), help="a stage's Parquet output folder")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files by id (0 = all)")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    from codecorpus.core.cli import setup_logging

    setup_logging()  # the stage logs its phases
    table = load_table(args.input, args.limit or None)
    files, mb = table.num_rows, sum(len(c.encode()) for c in table.column("content").to_pylist() if c) / 1e6
    print(f"{files:,} files, {mb:,.1f} MB of content", flush=True)
    load_before = os.getloadavg()
    ours = run_ours(table, args.master, args.overrides)
    print(f"ours: {ours}", flush=True)
    theirs = run_datasketch(table, args.overrides)
    print(f"datasketch: {theirs}", flush=True)
    rust = run_rensa(table, args.overrides)
    print(f"rensa: {rust}", flush=True)
    for r in (ours, theirs, rust):
        r["docs_per_s"] = round(files / r["seconds"], 1)
        r["mb_per_s"] = round(mb / r["seconds"], 2)
    ours["warm_docs_per_s"] = round(files / ours["warm_seconds"], 1)
    result = {"files": files, "mb": round(mb, 1), "master": args.master, "ours": ours, "datasketch": theirs,
              "rensa": rust, "speedup_wall": round(theirs["seconds"] / ours["seconds"], 2),
              "speedup_wall_over_rensa": round(rust["seconds"] / ours["seconds"], 2),
              "cpu_ratio_datasketch_over_ours": round(theirs["cpu_seconds"] / max(ours["cpu_seconds"], 0.1), 2),
              "cpu_count": os.cpu_count(), "load_average_before": load_before,
              "load_average_at_end": os.getloadavg()}
    return emit(result, args.json)


if __name__ == "__main__":
    main()
