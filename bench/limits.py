"""The physical limit for ingest on this machine: how fast the fastest single-process code can
gunzip and parse the corpus's JSON lines, per core. Ingest cannot beat cores x this figure.

    .venv/bin/python bench/limits.py [--corpus data/corpus] [--shards 16] [--repeats 3] [--json out.json]

The shards are read into memory first (not timed), so disk is left out. Each way runs in this
one process, on one core (pyarrow with use_threads=False); figures are MB/s of decompressed
JSON, medians of --repeats runs, the ways interleaved within each repeat. On a shared,
oversubscribed machine wall time says how much of a core the process got, not what the code
costs, so the limit is taken per CPU-second (process_time: this process's CPU, all threads). The last row,
pyarrow.json with its thread pool plus a Parquet write, is what a user who skips Spark would
write for ingest (a peer, not a limit).
"""
from __future__ import annotations

import argparse
import glob
import gzip
import io
import json
import os
import statistics
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def gunzip_stdlib(blobs):
    return [gzip.decompress(b) for b in blobs]


def gunzip_zlib(blobs):
    return [zlib.decompress(b, 31) for b in blobs]  # 31: gzip header, max window


def gunzip_isal(blobs):
    from isal import igzip

    return [igzip.decompress(b) for b in blobs]


def parse_json(raws):
    n = 0
    for raw in raws:
        for line in raw.splitlines():
            if line:
                json.loads(line)
                n += 1
    return n


def parse_orjson(raws):
    import orjson

    n = 0
    for raw in raws:
        for line in raw.splitlines():
            if line:
                orjson.loads(line)
                n += 1
    return n


def parse_pyarrow(raws, threads=False):
    import pyarrow.json as pj

    opts = pj.ReadOptions(use_threads=threads, block_size=32 << 20)
    return sum(pj.read_json(io.BytesIO(raw), read_options=opts).num_rows for raw in raws)


def isal_orjson(blobs):
    from isal import igzip

    return parse_orjson(igzip.decompress(b) for b in blobs)


def isal_pyarrow(blobs):
    from isal import igzip

    return parse_pyarrow(igzip.decompress(b) for b in blobs)


def pyarrow_ingest(blobs, out_dir):
    """pyarrow.json (threads on) + one Parquet file per shard: ingest without Spark."""
    import pyarrow.json as pj
    import pyarrow.parquet as pq
    from isal import igzip

    opts = pj.ReadOptions(use_threads=True, block_size=32 << 20)
    for i, b in enumerate(blobs):
        t = pj.read_json(io.BytesIO(igzip.decompress(b)), read_options=opts)
        pq.write_table(t, os.path.join(out_dir, f"part-{i:05d}.parquet"), compression="zstd")
    return len(blobs)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / "data" / "corpus"))
    ap.add_argument("--shards", type=int, default=16, help="first N shards (0 = all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)

    files = sorted(glob.glob(os.path.join(args.corpus, "*.json.gz")))
    files = files[:args.shards] if args.shards else files
    blobs = [Path(f).read_bytes() for f in files]
    raws = gunzip_isal(blobs)
    gz_mb, raw_mb = sum(map(len, blobs)) / 1e6, sum(map(len, raws)) / 1e6
    out_dir = tempfile.mkdtemp(prefix="bench-limits-")
    ways = {
        "gunzip: gzip (stdlib)": lambda: gunzip_stdlib(blobs),
        "gunzip: zlib (stdlib)": lambda: gunzip_zlib(blobs),
        "gunzip: isal.igzip": lambda: gunzip_isal(blobs),
        "parse: json.loads per line": lambda: parse_json(raws),
        "parse: orjson.loads per line": lambda: parse_orjson(raws),
        "parse: pyarrow.json (1 thread)": lambda: parse_pyarrow(raws),
        "gunzip+parse: isal + orjson": lambda: isal_orjson(blobs),
        "gunzip+parse: isal + pyarrow.json (1 thread)": lambda: isal_pyarrow(blobs),
        "peer ingest: isal + pyarrow.json (threads) + Parquet": lambda: pyarrow_ingest(blobs, out_dir),
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    cpus: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(args.repeats):
        for name, fn in ways.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - t)
            cpus[name].append(time.process_time() - c)
    rows = []
    for name, ts in times.items():
        med, cpu = statistics.median(ts), statistics.median(cpus[name])
        rows.append({"way": name, "seconds": [round(t, 3) for t in ts], "median_s": round(med, 3),
                     "cpu_seconds": [round(t, 3) for t in cpus[name]], "median_cpu_s": round(cpu, 3),
                     "raw_mb_s": round(raw_mb / med, 1), "raw_mb_per_cpu_s": round(raw_mb / max(cpu, 1e-3), 1)})
    limit = max((r for r in rows if r["way"].startswith("gunzip+parse")), key=lambda r: r["raw_mb_per_cpu_s"])
    result = {"bench": "limits", "shards": len(files), "gz_mb": round(gz_mb, 1), "raw_mb": round(raw_mb, 1),
              "repeats": args.repeats, "rows": rows, "cpu_count": os.cpu_count(),
              "limit_per_core_mb_s": limit["raw_mb_per_cpu_s"], "limit_way": limit["way"],
              "limit_machine_mb_s": round(limit["raw_mb_per_cpu_s"] * os.cpu_count(), 1),
              "load_average": [round(x, 1) for x in os.getloadavg()]}
    print(f"{len(files)} shards, {gz_mb:.1f} MB gz, {raw_mb:.1f} MB raw JSON; medians of {args.repeats}, one process")
    for r in rows:
        print(f"  {r['way']:<54} {r['raw_mb_s']:8.1f} MB/s wall {r['raw_mb_per_cpu_s']:8.1f} MB per CPU-s")
    print(f"limit per core: {limit['raw_mb_per_cpu_s']} MB per CPU-second ({limit['way']}); x {os.cpu_count()} cores = "
          f"{result['limit_machine_mb_s']} MB/s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    import shutil

    shutil.rmtree(out_dir, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
