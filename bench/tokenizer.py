"""Wall time and peak memory of train_tokenizer's way (a seeded sample read by Spark's executors
with pyarrow into Arrow IPC scratch files the driver streams, trained as it arrives; timed after two
untimed trivial warm-up jobs unless --cold) next to what a user would write: read the
Parquet with pyarrow, pick the same files, hold all their text in a Python list, train with
bare `tokenizers`. Same files, same trainer settings, one run; each measurement in a fresh
child process so its peak RSS is its own.

    .venv/bin/python bench/tokenizer.py [--sizes 10,100,400] [--vocab 32768] [--work /tmp/bench_tokenizer]

The input is data/corpus parsed with the ingest parser and written once as Parquet (id,
content) under --work (not timed). A size larger than the corpus takes the whole corpus.
Both ways must produce the same tokenizer.json; the script checks it.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

SEED = 42
MAX_CHARS = 100_000


def prepare(work: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from codecorpus.io.shards import parse_shard

    out = work / "train"
    if (out / "_DONE").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(sorted(glob.glob(str(ROOT / "data" / "corpus" / "*.json.gz")))):
        t = parse_shard(os.path.basename(path), Path(path).read_bytes(), max_content_bytes=8 << 20,
                        keep_too_large=False, replace_utf8=False)
        t = t.filter(pa.compute.equal(t["_status"], "ok")).select(["id", "content"])
        t = t.filter(pa.compute.greater(pa.compute.utf8_length(t["content"]), 0))
        pq.write_table(t, out / f"part-{i:05d}.parquet")
    (out / "_DONE").write_text("")
    return out


def spark_key(file_id: int) -> int:
    """Spark's F.xxhash64(F.lit(SEED), F.col("id")) in Python: the literal int is hashed first
    (its 4 little-endian bytes, seed 42), then the id's 8 bytes seeded with that."""
    import xxhash

    first = xxhash.xxh64_intdigest(struct.pack("<i", SEED), seed=42)
    h = xxhash.xxh64_intdigest(struct.pack("<q", file_id), seed=first)
    return h - (1 << 64) if h >= (1 << 63) else h


def peak_mb() -> float:
    from codecorpus.tokenizer.sample import peak_rss_mb  # VmHWM: this process only

    return peak_rss_mb()


def jvm_peak_mb(spark) -> float | None:
    """VmHWM of the driver JVM that pyspark launched (spark-submit execs java in place)."""
    proc = getattr(spark.sparkContext._gateway, "proc", None)
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
    except (AttributeError, OSError):
        return None
    line = next((ln for ln in status.splitlines() if ln.startswith("VmHWM:")), None)
    return int(line.split()[1]) / 1024 if line else None


def warm_up(spark) -> float:
    """One trivial JVM job and one trivial Arrow job, untimed: a fresh JVM spends ~5 s on its
    first job and ~4 s more on its first Python worker (measured), start-up the pipeline pays
    once in its first stage, long before train_tokenizer runs."""
    start = time.time()
    spark.range(4, numPartitions=2).count()
    spark.range(4, numPartitions=2).mapInArrow(lambda batches: batches, "id long").count()
    return time.time() - start


def child_ours(train: str, n: int, vocab: int, cold: bool = False) -> dict:
    from codecorpus.core.spark import local_session
    from codecorpus.tokenizer.sample import sample_stream
    from codecorpus.tokenizer.train import train_from_texts

    spark = local_session("bench-tokenizer", "local[2]",
                          {"spark.driver.memory": "4g", "spark.sql.shuffle.partitions": "8"})
    warm_s = None if cold else round(warm_up(spark), 2)
    start = time.time()
    stream = sample_stream(spark, train, n, SEED, MAX_CHARS, f"{train}-scratch", label="bench")
    chosen_s = time.time() - start
    tok = train_from_texts(stream, vocab, length=stream.expected)
    wall = time.time() - start
    out = {"wall_s": wall, "warm_up_s": warm_s, "chosen_s": round(chosen_s, 2), "files": stream.files,
           "bytes": stream.bytes, "sample_s": stream.seconds,
           "driver_peak_mb": peak_mb(), "jvm_peak_mb": jvm_peak_mb(spark),
           "tokenizer_sha": hashlib.sha256(tok.backend_tokenizer.to_str().encode()).hexdigest()[:16]}
    spark.stop()
    return out


def child_memory(train: str, n: int, vocab: int) -> dict:
    import pyarrow.parquet as pq
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )

    start = time.time()
    ids = pq.read_table(train, columns=["id"]).column("id").to_pylist()
    chosen = [i for _, i in sorted((spark_key(i), i) for i in ids)[:n]]
    table = pq.read_table(train, columns=["id", "content"], filters=[("id", "in", chosen)])
    by_id = dict(zip(table.column("id").to_pylist(), table.column("content").to_pylist()))
    texts = [by_id.pop(i)[:MAX_CHARS] for i in chosen]
    del table, by_id
    read_s = time.time() - start
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab, min_frequency=2, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    wall = time.time() - start
    return {"wall_s": wall, "read_s": read_s, "files": len(texts), "bytes": sum(len(t.encode()) for t in texts),
            "driver_peak_mb": peak_mb(),
            "tokenizer_sha": hashlib.sha256(tok.to_str().encode()).hexdigest()[:16]}


def run_child(kind: str, train: Path, n: int, vocab: int, cold: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--train", str(train), "--n", str(n), "--vocab", str(vocab)]
    cmd += ["--cold"] if cold else []
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{kind} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,100,400", help="MB of text to sample, comma-separated")
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--work", default="/tmp/bench_tokenizer")
    ap.add_argument("--child", choices=["ours", "memory"])
    ap.add_argument("--train")
    ap.add_argument("--n", type=int)
    ap.add_argument("--cold", action="store_true",
                    help="time our way from a fresh JVM's first job (default: after an untimed warm-up job)")
    args = ap.parse_args()
    if args.child == "ours":
        print(json.dumps(child_ours(args.train, args.n, args.vocab, args.cold)))
        return 0
    if args.child:
        print(json.dumps(child_memory(args.train, args.n, args.vocab)))
        return 0

    import pyarrow.parquet as pq

    train = prepare(Path(args.work))
    sizes = pq.read_table(train, columns=["content"]).column("content")
    total_files, total_mb = len(sizes), sum(len(s.as_py().encode()) for s in sizes) / 1e6
    mean = total_mb / total_files
    print(f"corpus: {total_files:,} files, {total_mb:,.1f} MB; vocab {args.vocab:,}; 2 cores, local[2]")
    print(f"{'MB asked':>8} {'files':>7} {'MB':>7} | {'ours s':>7} {'drv MiB':>8} {'JVM MiB':>8} | "
          f"{'memory s':>8} {'MiB':>7} | {'time x':>6} {'RSS x':>6} same")
    for size in [float(s) for s in args.sizes.split(",")]:
        n = min(total_files, math.ceil(size / mean))
        ours = run_child("ours", train, n, args.vocab, args.cold)
        mem = run_child("memory", train, n, args.vocab)
        same = ours["tokenizer_sha"] == mem["tokenizer_sha"] and ours["bytes"] == mem["bytes"]
        print(f"{size:8.0f} {ours['files']:7,} {ours['bytes'] / 1e6:7.1f} | {ours['wall_s']:7.1f} "
              f"{ours['driver_peak_mb']:8.0f} {ours['jvm_peak_mb'] or 0:8.0f} | {mem['wall_s']:8.1f} "
              f"{mem['driver_peak_mb']:7.0f} | {ours['wall_s'] / mem['wall_s']:6.2f} "
              f"{ours['driver_peak_mb'] / mem['driver_peak_mb']:6.2f} {'yes' if same else 'NO'}", flush=True)
        if not same:
            print(f"  different tokenizers or text: {ours} vs {mem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
