"""Ingest throughput: our Spark ingest (shards -> typed Parquet + quarantine) next to the path a
user of the book would take, `datasets.load_dataset("json", num_proc=2)` + `to_parquet`, on the
same shards in the same run. Prints MB/s of raw (decompressed) JSON and the ratio.

    .venv/bin/python bench/ingest.py [--corpus data/corpus] [--repeats 3] [--json out.json]
    .venv/bin/python bench/ingest.py --realistic [--raw-mb 1000] [--cache /tmp/cc-bench-shards]
                                     [--repeats 1] [--set ingest.block_bytes=...] [--json out.json]
    .venv/bin/python bench/ingest.py --profile [--raw-mb 1000]   # CPU per piece, one process

Our figure is measured with the JVM already up (the stage alone); the JVM start-up is printed
separately, since it is paid once per job, not per byte.

--realistic builds (once, then reuses from --cache) two shards of --raw-mb MB of raw JSON and
one of 4 x --raw-mb, made of real .py files of this Python's standard library and site-packages
(sampled with repetition), the shape of the real dump's shards. Each side then runs in a child
process whose whole process tree is sampled from /proc, so the peak RSS of the JVM, of each
Spark Python worker and of the peer's processes is reported next to the seconds.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import ROOT, descendants, proc_stats  # noqa: E402  (puts lib/ on the path)


def raw_json_bytes(files: list[str]) -> int:
    total = 0
    for f in files:
        with gzip.open(f, "rb") as g:
            while chunk := g.read(1 << 24):
                total += len(chunk)
    return total


def run_ours(spark, corpus: str, work: str, sets: list[str] = ()) -> tuple[float, float]:
    """(seconds of the whole stage run, seconds of the stage's own body: without the stage
    contract's bookkeeping around it, e.g. the output digests)."""
    from codecorpus.core.config import load_config
    from codecorpus.core.registry import run_one

    out = f"{work}/ours"
    shutil.rmtree(out, ignore_errors=True)
    cfg = load_config(overrides=[f"input={corpus}", f"output={out}", *sets])
    t = time.perf_counter()
    counts = run_one(spark, cfg, "ingest", force=True)
    return time.perf_counter() - t, counts.seconds


def run_datasets(files: list[str], work: str, num_proc: int) -> float:
    from datasets import load_dataset

    cache = f"{work}/hf-cache"
    shutil.rmtree(cache, ignore_errors=True)
    t = time.perf_counter()
    ds = load_dataset("json", data_files=files, split="train", num_proc=num_proc, cache_dir=cache)
    ds.to_parquet(f"{work}/datasets.parquet")
    return time.perf_counter() - t


# ------------------------------------------------------------------------- realistic shards

LICENSES = ["mit", "apache-2.0", "bsd-3-clause", "gpl-3.0", "gpl-2.0", "lgpl-2.1", "bsd-2-clause", "agpl-3.0"]


def _source_files(limit: int = 20000) -> list[bytes]:
    """Real Python files of this interpreter (stdlib, then site-packages), as UTF-8 bytes."""
    import sysconfig

    roots = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]]
    out: list[bytes] = []
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            try:
                data = path.read_bytes()
                data.decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if 0 < len(data) <= 1 << 20:
                out.append(data)
            if len(out) >= limit:
                return out
    return out


def _write_shard(path: Path, sources: list[bytes], raw_bytes: int, seed: int) -> int:
    """One gzipped JSON-lines shard of about raw_bytes of JSON, streamed (never held whole)."""
    import random

    import orjson
    from isal import igzip

    rng = random.Random(seed)
    written = files = 0
    tmp = path.with_name(f".{path.name}.tmp")
    with igzip.open(tmp, "wb", compresslevel=2) as f:
        while written < raw_bytes:
            content = rng.choice(sources).decode()
            rec = {"repo_name": f"user{rng.randrange(50000)}/proj{rng.randrange(1000)}",
                   "path": f"src/pkg{rng.randrange(100)}/mod{files}.py", "copies": str(rng.randrange(1, 20)),
                   "size": str(len(content.encode())), "content": content, "license": rng.choice(LICENSES)}
            line = orjson.dumps(rec) + b"\n"
            f.write(line)
            written += len(line)
            files += 1
    tmp.rename(path)
    return files


def realistic_shards(cache: str, raw_mb: int) -> list[str]:
    """Two shards of raw_mb MB raw JSON and one of 4 x raw_mb, built once under cache."""
    folder = Path(cache) / f"raw{raw_mb}mb"
    plan = {"real-000.json.gz": raw_mb, "real-001.json.gz": raw_mb, "real-002-big.json.gz": 4 * raw_mb}
    done = folder / "_built.json"  # a hidden name: ingest does not take it for a shard
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        sources = _source_files()
        built = {}
        for i, (name, mb) in enumerate(plan.items()):
            t = time.perf_counter()
            built[name] = _write_shard(folder / name, sources, mb * 10**6, seed=i)
            print(f"  built {name}: {mb} MB raw, {built[name]:,} files ({time.perf_counter() - t:.0f}s)",
                  flush=True)
        done.write_text(json.dumps(built) + "\n")
    return [str(folder / name) for name in plan]


def warm_up_shard(cache: str, raw_mb: int = 30) -> str:
    """A small shard in a folder of its own, for each side's untimed first run."""
    folder = Path(cache) / "warm-up"
    shard = folder / "warm-000.json.gz"
    if not shard.exists():
        folder.mkdir(parents=True, exist_ok=True)
        _write_shard(shard, _source_files(2000), raw_mb * 10**6, seed=99)
    return str(shard)


# ----------------------------------------------------------------------- process-tree memory

def _kind(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "gone"
    if b"java" in cmd.split(b" ")[0]:
        return "jvm"
    if b"pyspark.daemon" in cmd or b"pyspark.worker" in cmd:
        return "spark python worker"
    return "python" if b"python" in cmd.split(b" ")[0] else "other"


class TreeSampler(threading.Thread):
    """Samples the RSS of a process and all its descendants from /proc every `every` seconds:
    the peak of the whole tree and the peak of each process (grouped by kind)."""

    def __init__(self, root_pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.root, self.every = root_pid, every
        self.peak_total = 0
        self.peak_by_pid: dict[int, tuple[str, int]] = {}
        # CPU seconds of the tree, for a machine shared with other work (a process's last
        # `every` seconds before it exits are missed: a slight undercount).
        self.cpu_ticks: dict[int, int] = {}
        self._ticks: dict[int, int] = {}
        self._halt = threading.Event()

    def _tree(self) -> list[int]:
        stats = proc_stats()
        for pid, fields in stats.items():
            self._ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
        return descendants(self.root, stats)

    def sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        total = 0
        tree = self._tree()
        for pid in tree:
            self.cpu_ticks[pid] = self._ticks.get(pid, 0)
        for pid in tree:
            try:
                rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
            except OSError:
                continue
            total += rss
            # The kind is read each time: a launcher script execs java under the same pid.
            best = self.peak_by_pid.get(pid, ("", 0))
            if rss >= best[1]:
                self.peak_by_pid[pid] = (_kind(pid), rss)
        self.peak_total = max(self.peak_total, total)

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.every)

    def stop(self) -> dict:
        self._halt.set()
        self.join()
        peaks: dict[str, int] = {}
        for kind, rss in self.peak_by_pid.values():
            peaks[kind] = max(peaks.get(kind, 0), rss)
        cpu_s = sum(self.cpu_ticks.values()) / os.sysconf("SC_CLK_TCK")
        return {"cpu_s": round(cpu_s, 1), "tree_peak_mib": round(self.peak_total / 2**20), **{
            f"{k}_peak_mib": round(v / 2**20) for k, v in sorted(peaks.items()) if k not in ("gone", "other")}}


def measured(cmd: list[str]) -> tuple[dict, dict]:
    """Run a child bench process; returns (its JSON result line, its process tree's peaks)."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}  # bars would fill the log, not the figures
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    out, _ = proc.communicate()
    mem = sampler.stop()
    if proc.returncode != 0:
        raise SystemExit(f"bench child failed ({proc.returncode}): {' '.join(cmd)}")
    return json.loads(out.strip().splitlines()[-1]), mem


def child(args) -> None:
    """One measured side, in its own process: prints one JSON line."""
    files = args.files
    # With --warm-up, each side first runs once, untimed, on a small shard: what a process pays
    # once (the JIT, the workers' imports, the peer's imports and first process pool) stays out
    # of the per-byte figure, as the JVM's start does.
    if args.child == "ours":
        t = time.perf_counter()
        from codecorpus.core.spark import local_session

        spark = local_session("bench-ingest", "local[2]")
        # Start both Python workers too (they are kept for the job's tasks): like the JVM, they
        # start once per job, not per byte.
        spark.range(0, 2, 1, 2).mapInArrow(lambda it: it, "id LONG").collect()
        jvm_start = time.perf_counter() - t
        first = run_ours(spark, str(Path(args.warm_up_shard).parent), args.work, args.set)[0] \
            if args.warm_up_shard else None
        seconds, body = run_ours(spark, str(Path(files[0]).parent), args.work, args.set)
        spark.stop()
        print(json.dumps({"seconds": seconds, "body_s": body, "jvm_start_s": jvm_start, "warm_up_s": first}))
    else:
        first = run_datasets([args.warm_up_shard], args.work, num_proc=2) if args.warm_up_shard else None
        print(json.dumps({"seconds": run_datasets(files, args.work, num_proc=2), "warm_up_s": first}))


def realistic(args) -> dict:
    files = realistic_shards(args.cache, args.raw_mb)
    raw_mb = raw_json_bytes(files) / 1e6
    gz_mb = sum(os.path.getsize(f) for f in files) / 1e6
    work = tempfile.mkdtemp(prefix="bench-ingest-real-")
    me = [sys.executable, __file__, "--work", work, "--files", *files]
    if args.warm_up:
        me += ["--warm-up-shard", warm_up_shard(args.cache)]
    runs: dict[str, list] = {"ours": [], "peer": []}
    try:
        for _ in range(args.repeats):  # interleaved, so both see the same machine conditions
            sets = [a for s in args.set for a in ("--set", s)]
            runs["ours"].append(measured(me + ["--child", "ours", *sets]))
            runs["peer"].append(measured(me + ["--child", "peer"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ours, peer = _side(runs["ours"], raw_mb), _side(runs["peer"], raw_mb)
    ours["jvm_start_s"] = round(statistics.median(r["jvm_start_s"] for r, _ in runs["ours"]), 1)
    ours["body_s"] = [round(r["body_s"], 2) for r, _ in runs["ours"]]
    for name, side in (("ours", ours), ("peer", peer)):  # each side's untimed first run, on a small shard
        side["warm_up_s"] = [r["warm_up_s"] and round(r["warm_up_s"], 2) for r, _ in runs[name]]
    ratio = statistics.median(p["seconds"] / o["seconds"] for (o, _), (p, _) in zip(runs["ours"], runs["peer"]))
    result = {"stage": "ingest", "mode": "realistic", "data_mb": round(raw_mb, 1), "gz_mb": round(gz_mb, 1),
              "shards": [os.path.basename(f) for f in files], "repeats": args.repeats,
              "ours_run": ours, "peer_run": peer, "ours_mb_s": ours["mb_s"], "peer_mb_s": peer["mb_s"],
              "ratio_median": round(ratio, 2), "peer": "datasets.load_dataset('json', num_proc=2) + to_parquet",
              "sets": args.set}
    _print_realistic(result, len(files))
    return result


def _side(runs: list[tuple[dict, dict]], raw_mb: float) -> dict:
    """Seconds, MB/s, CPU and peak RSS of one side over its runs (peaks: the largest)."""
    secs = [r["seconds"] for r, _ in runs]
    cpu = [m["cpu_s"] for _, m in runs]
    peaks = {k: max(m[k] for _, m in runs if k in m) for _, m in runs for k in m if k.endswith("_peak_mib")}
    return {"seconds": [round(s, 2) for s in secs], "mb_s": round(raw_mb / statistics.median(secs), 1),
            "tree_cpu_s": cpu, "mb_per_cpu_s": round(raw_mb / statistics.median(cpu), 1), **peaks}


def _print_realistic(result: dict, n_files: int) -> None:
    ours, peer = result["ours_run"], result["peer_run"]
    print(f"ingest of {result['data_mb']:,.0f} MB raw JSON ({result['gz_mb']:,.0f} MB gz) in {n_files} shards, "
          f"{result['repeats']} run(s), medians:")
    for name, r in (("codecorpus (Spark local[2], stage only)", ours), ("datasets num_proc=2 + to_parquet", peer)):
        mem = ", ".join(f"{k[:-9]} {v:,} MiB" for k, v in r.items() if k.endswith("_peak_mib"))
        print(f"  {name:40s} {statistics.median(r['seconds']):8.1f} s {r['mb_s']:8.1f} MB/s "
              f"{r['mb_per_cpu_s']:8.1f} MB/CPU-s   peak RSS: {mem}")
        if r is ours:
            print(f"    of which the ingest body (the stage contract's output digests etc. left out): "
                  f"{statistics.median(ours['body_s']):.1f} s")
    print(f"  start-up of the JVM and the Python workers (excluded above, once per job): {ours['jvm_start_s']:.1f} s")
    print(f"  per-byte ratio (peer seconds / our seconds, pairwise median): {result['ratio_median']:.2f}x")
    print("  (MB/CPU-s: CPU time of the whole process tree, ours including the JVM start-up; on a machine "
          "shared with other work it says more than the seconds)")


def profile(args) -> dict:
    """Where ingest's CPU goes, one process, one realistic shard: the stage's own pieces run one
    after the other over the same blocks (MB of raw JSON per CPU-second, so the load of the
    machine does not enter)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from codecorpus.io.line_blocks import shard_blocks
    from codecorpus.io.shards import ROW_GROUP_ROWS, ParseOptions, parse_block, split_rows, typed_schema

    shard = realistic_shards(args.cache, args.raw_mb)[0]
    opts = ParseOptions(8 << 20)

    def blocks():
        with pa.OSFile(shard) as f:
            yield from shard_blocks(f, block_bytes=opts.block_bytes, max_line_bytes=opts.line_limit())

    def cpu(fn) -> float:
        t = time.process_time()
        fn()
        return time.process_time() - t

    rows: dict[str, float] = {}
    # Timed as the stage runs it, each block dropped once used (holding all of them would add
    # the first touch of a GB of fresh memory); then held, untimed, for the pieces after it.
    rows["gunzip + whole-line blocks (isal)"] = cpu(lambda: sum(map(len, blocks())))
    held: list[bytes] = list(blocks())
    raw_mb = sum(map(len, held)) / 1e6
    tables: list = []
    rows["parse + validate + ids (compiled parser, native/jsonl.c)"] = cpu(
        lambda: tables.extend(split_rows(parse_block("x", b, 1, opts))[0] for b in held))
    del held
    work = tempfile.mkdtemp(prefix="bench-ingest-prof-")
    plain = [n for n in typed_schema().names if n != "content"]
    ours = {"use_dictionary": plain, "write_statistics": plain}
    for label, kw in (("write Parquet, zstd, dictionary on every column (pyarrow default)", {}),
                      ("write Parquet, zstd, content without dictionary/statistics (ours)", ours),
                      ("write Parquet, snappy, content without dictionary (for comparison)",
                       {**ours, "compression": "snappy"}),
                      ("write Parquet, uncompressed, content without dictionary (for comparison)",
                       {**ours, "compression": "none"})):
        def write():
            w = pq.ParquetWriter(f"{work}/p.parquet", typed_schema(), **{"compression": "zstd", **kw})
            for t in tables:
                w.write_table(t, row_group_size=ROW_GROUP_ROWS)
            w.close()
        rows[label] = cpu(write)
    shutil.rmtree(work, ignore_errors=True)
    result = {"stage": "ingest", "mode": "profile", "shard": os.path.basename(shard), "raw_mb": round(raw_mb),
              "rows": [{"piece": k, "cpu_s": round(v, 2), "mb_per_cpu_s": round(raw_mb / v)} for k, v in rows.items()]}
    print(f"ingest, one process, {raw_mb:,.0f} MB raw JSON ({result['shard']}):")
    for r in result["rows"]:
        print(f"  {r['piece']:70s} {r['cpu_s']:6.2f} CPU-s {r['mb_per_cpu_s']:6,} MB/CPU-s")
    return result


def corpus_bench(args) -> dict:
    from codecorpus.stages.ingest import list_shards

    files = [s.uri for s in list_shards(args.corpus)]
    raw_mb = raw_json_bytes(files) / 1e6
    work = tempfile.mkdtemp(prefix="bench-ingest-")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    t = time.perf_counter()
    from codecorpus.core.spark import local_session

    spark = local_session("bench-ingest", "local[2]")
    spark.range(0, 2, 1, 2).mapInArrow(lambda it: it, "id LONG").collect()  # the Python workers, as the JVM
    jvm_start = time.perf_counter() - t

    # One untimed run of each side first: the stage's first run in a JVM also pays the JIT and
    # the workers' imports, the peer's its own imports and first process pool, once per job
    # (kept and reported, not in the pairs).
    cold = (run_ours(spark, args.corpus, work, args.set)[0], run_datasets(files, work, num_proc=2)) \
        if args.warm_up else (None, None)
    ours, theirs = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine conditions
        ours.append(run_ours(spark, args.corpus, work, args.set)[0])
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
        "ours_cold_s": cold[0] and round(cold[0], 2), "peer_cold_s": cold[1] and round(cold[1], 2),
        "peer": "datasets.load_dataset('json', num_proc=2) + to_parquet",
    }
    print(f"ingest of {raw_mb:,.0f} MB raw JSON in {len(files)} shards ({args.repeats} runs, medians):")
    print(f"  codecorpus (Spark local[2], warm JVM): {result['ours_mb_s']:8.1f} MB/s   "
          f"(JVM start {jvm_start:.1f} s, once per job)")
    print(f"  datasets json num_proc=2 + to_parquet: {result['peer_mb_s']:8.1f} MB/s")
    print(f"  ratio (pairwise median): {result['ratio_median']:.2f}x")
    return result


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / "data" / "corpus"))
    ap.add_argument("--repeats", type=int, help="runs per side (default 3; --realistic: 1)")
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument("--set", action="append", default=[], help="config override for our side, e.g. "
                    "ingest.block_bytes=4194304")
    ap.add_argument("--realistic", action="store_true", help="real-size shards, peak RSS per process")
    ap.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                    help="no untimed first run of each side (embedded corpus: before the pairs; --realistic: "
                         "on a small shard in each side's process) (the old way)")
    ap.add_argument("--profile", action="store_true", help="CPU per piece of ingest, one process, one 1 GB shard")
    ap.add_argument("--raw-mb", type=int, default=1000, help="--realistic: MB of raw JSON per small shard")
    ap.add_argument("--cache", default="/tmp/cc-bench-shards", help="--realistic: where the shards are kept")
    ap.add_argument("--child", choices=["ours", "peer"], help=argparse.SUPPRESS)
    ap.add_argument("--warm-up-shard", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--files", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return {}
    args.repeats = args.repeats or (1 if args.realistic else 3)
    result = profile(args) if args.profile else realistic(args) if args.realistic else corpus_bench(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
