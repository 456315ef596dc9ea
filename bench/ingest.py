"""Ingest throughput: our Spark ingest (shards -> typed Parquet + quarantine) next to the path a
user of the book would take, `datasets.load_dataset("json", num_proc=2)` + `to_parquet`, on the
same shards in the same run. Prints MB/s of raw (decompressed) JSON and the ratio.

    .venv/bin/python bench/ingest.py [--corpus data/corpus] [--repeats 3] [--json out.json]

Our figure is measured with the JVM already up (the stage alone); the JVM start-up is printed
separately, since it is paid once per job, not per byte.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))


def raw_json_bytes(files: list[str]) -> int:
    total = 0
    for f in files:
        with gzip.open(f, "rb") as g:
            while chunk := g.read(1 << 24):
                total += len(chunk)
    return total


def run_ours(spark, corpus: str, work: str) -> float:
    from codecorpus.core.config import load_config
    from codecorpus.core.registry import run_one

    out = f"{work}/ours"
    shutil.rmtree(out, ignore_errors=True)
    cfg = load_config(overrides=[f"input={corpus}", f"output={out}"])
    t = time.perf_counter()
    run_one(spark, cfg, "ingest", force=True)
    return time.perf_counter() - t


def run_datasets(files: list[str], work: str, num_proc: int) -> float:
    from datasets import load_dataset

    cache = f"{work}/hf-cache"
    shutil.rmtree(cache, ignore_errors=True)
    t = time.perf_counter()
    ds = load_dataset("json", data_files=files, split="train", num_proc=num_proc, cache_dir=cache)
    ds.to_parquet(f"{work}/datasets.parquet")
    return time.perf_counter() - t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / "data" / "corpus"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)

    from codecorpus.stages.ingest import list_shards

    files = list_shards(args.corpus)
    raw_mb = raw_json_bytes(files) / 1e6
    work = tempfile.mkdtemp(prefix="bench-ingest-")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    t = time.perf_counter()
    from codecorpus.core.spark import local_session

    spark = local_session("bench-ingest", "local[2]")
    jvm_start = time.perf_counter() - t

    ours, theirs = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine conditions
        ours.append(run_ours(spark, args.corpus, work))
        theirs.append(run_datasets(files, work, num_proc=2))
    spark.stop()
    shutil.rmtree(work, ignore_errors=True)

    o, d = statistics.median(ours), statistics.median(theirs)
    ratios = [b / a for a, b in zip(ours, theirs)]
    result = {
        "stage": "ingest", "data_mb": round(raw_mb, 1), "shards": len(files), "repeats": args.repeats,
        "ours_s": [round(x, 2) for x in ours], "peer_s": [round(x, 2) for x in theirs],
        "ours_mb_s": round(raw_mb / o, 1), "peer_mb_s": round(raw_mb / d, 1),
        "ratio_median": round(statistics.median(ratios), 2), "jvm_start_s": round(jvm_start, 1),
        "peer": "datasets.load_dataset('json', num_proc=2) + to_parquet",
    }
    print(f"ingest of {raw_mb:,.0f} MB raw JSON in {len(files)} shards ({args.repeats} runs, medians):")
    print(f"  codecorpus (Spark local[2], warm JVM): {result['ours_mb_s']:8.1f} MB/s   "
          f"(JVM start {jvm_start:.1f} s, once per job)")
    print(f"  datasets json num_proc=2 + to_parquet: {result['peer_mb_s']:8.1f} MB/s")
    print(f"  ratio (pairwise median): {result['ratio_median']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
