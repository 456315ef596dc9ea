"""Tokens per second of the `tokens` stage (Spark, local[2]) next to what a user would write
with datasets: `Dataset.map(tokenizer, batched=True, num_proc=2)`, same tokenizer, same text,
one run.

    .venv/bin/python bench/tokenize_pack.py [--shards 24] [--tokenizer PATH] [--work /tmp/bench_tokenize]

The text is the first --shards shards of data/corpus (parsed with the ingest parser). Without
--tokenizer, a byte-level BPE (32,768 tokens, <|endoftext|>) is trained on that text first
(not timed). The Spark figure includes everything the stage does (Spark scheduling, packing,
writing uint16 Parquet shards; its encoder is tiktoken, which gives the tokenizer's own ids); the
datasets figure is tokenization into its Arrow cache only. Each engine is also timed alone, and
their ids compared file by file.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import time
from pathlib import Path

from _common import ROOT, tree_cpu_seconds  # noqa: E402  (puts lib/ on the path)
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

EOS = "<|endoftext|>"


def load_text(shards: int):
    import pyarrow as pa
    from codecorpus.io.shards import parse_shard

    tables = []
    for path in sorted(glob.glob(str(ROOT / "data" / "corpus" / "*.json.gz")))[:shards]:
        t = parse_shard(os.path.basename(path), Path(path).read_bytes(), max_content_bytes=8 << 20,
                        keep_too_large=False, replace_utf8=False)
        tables.append(t.filter(pa.compute.equal(t["_status"], "ok")).select(["id", "repo_name", "path", "content"]))
    return pa.concat_tables(tables).combine_chunks()


def train_tokenizer(texts: list[str], path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=32768, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok.save(str(path))


def spark_session():
    from codecorpus.core.spark import local_session

    return local_session("bench-tokenize", "local[2]", {
        "spark.driver.memory": "4g", "spark.sql.shuffle.partitions": "8",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "2048"})


def prepare_run(args, run) -> Path:
    """A run root holding the bench text as its split output and a tokenizer; returns tokenizer.json."""
    import pyarrow.parquet as pq
    from codecorpus.io.layout import split_location

    table = load_text(args.shards)
    chars = sum(len(t) for t in table.column("content").to_pylist())
    print(f"text: {table.num_rows:,} files, {chars / 1e6:.1f}M characters from {args.shards} shards")
    tok_path = Path(run.path("tokenizer.json"))
    tok_path.parent.mkdir(parents=True)
    if args.tokenizer:
        shutil.copy(args.tokenizer, tok_path)
    else:
        t0 = time.perf_counter()
        train_tokenizer(table.column("content").to_pylist(), tok_path)
        print(f"trained a 32,768-token BPE in {time.perf_counter() - t0:.1f}s (not timed)")
    # All files in train; valid gets one file so the split exists.
    for split, part in (("train", table), ("valid", table.slice(0, 1))):
        folder = Path(run.path(split_location("dataset", split)))
        folder.mkdir(parents=True)
        pq.write_table(part, folder / "part-0.parquet")
    return tok_path


def time_stage(run, files_per_group: int, warm: bool) -> tuple[int, float, float]:
    """The tokens stage under Spark, local[2]: (train stream tokens, seconds, CPU seconds).
    With `warm`, the stage runs once untimed first: a fresh JVM spends ~8 CPU-s compiling the
    read/shuffle/sort/Arrow paths (JIT), a cost an executor pays once, not per shard."""
    from codecorpus.core.config import Config
    from codecorpus.core.registry import run_one
    from codecorpus.io import fs

    spark = spark_session()
    spark.range(1000).selectExpr("sum(id)").collect()  # JVM up before the clock starts
    cfg = Config().replace(output=run.root, **{"tokens.files_per_group": files_per_group})
    if warm:
        run_one(spark, cfg, "tokens", force=True)
    t0, c0 = time.perf_counter(), tree_cpu_seconds()
    run_one(spark, cfg, "tokens", force=True)
    seconds, cpu = time.perf_counter() - t0, tree_cpu_seconds() - c0
    meta = fs.read_json(run.path("tokens.meta"))
    spark.stop()
    return meta["splits"]["train"]["stream_tokens"], seconds, cpu  # valid (1 file) left out


def time_datasets(run, tok_path: Path, cache: Path) -> tuple[int, float, float]:
    """What a user would write: datasets.map over the same file, same tokenizer."""
    import datasets
    from transformers import PreTrainedTokenizerFast

    datasets.disable_progress_bars()
    hf_tok = PreTrainedTokenizerFast(tokenizer_file=str(tok_path), eos_token=EOS)
    ds = datasets.Dataset.from_parquet(f"{run.path('dataset.train')}/part-0.parquet", cache_dir=str(cache))
    t0, c0 = time.perf_counter(), tree_cpu_seconds()
    out = ds.map(lambda batch: hf_tok(batch["content"]), batched=True, num_proc=2,
                 remove_columns=ds.column_names, load_from_cache_file=False)
    seconds, cpu = time.perf_counter() - t0, tree_cpu_seconds() - c0
    return sum(len(ids) for ids in out["input_ids"]) + ds.num_rows, seconds, cpu  # + <|endoftext|> per file


def time_encoder(run, tok_path: Path) -> dict:
    """The floor under each side: each engine alone over the same texts with its own threads
    (batches of 256), nothing read or written while timed; `tokenizers` (what datasets.map runs)
    and tiktoken (what our stage runs), and whether their ids agree file by file. In a fresh
    process with its threads on: datasets.map(num_proc) sets TOKENIZERS_PARALLELISM=false in
    this process's environment, which would make the floor single-threaded."""
    import json
    import subprocess

    done = subprocess.run([sys.executable, __file__, "--encoder-only", str(tok_path),
                           f"{run.path('dataset.train')}/part-0.parquet"], capture_output=True, text=True, check=True,
                          env=dict(os.environ, TOKENIZERS_PARALLELISM="true"))
    return json.loads(done.stdout.strip().splitlines()[-1])


def encoder_only(tok_path: str, parquet: str) -> None:
    import json

    import numpy as np
    import pyarrow.parquet as pq
    from codecorpus.tokenizer.encoder import encoder_for

    texts = pq.read_table(parquet, columns=["content"]).column("content").to_pylist()
    tok_json = Path(tok_path).read_text(encoding="utf-8")
    out: dict = {}
    ids = {}
    for engine in ("tokenizers", "tiktoken"):
        enc = encoder_for(tok_json, engine, threads=os.cpu_count() or 1)
        t0, c0, got = time.perf_counter(), tree_cpu_seconds(), []
        for i in range(0, len(texts), 256):
            got += enc.encode(texts[i:i + 256])
        out[engine] = {"tokens": sum(map(len, got)) + len(texts),  # + <|endoftext|> per file, as the others count
                       "seconds": time.perf_counter() - t0, "cpu_seconds": tree_cpu_seconds() - c0}
        ids[engine] = got
    out["files_differing"] = sum(1 for a, b in zip(ids["tokenizers"], ids["tiktoken"]) if not np.array_equal(a, b))
    out["files"] = len(texts)
    print(json.dumps(out))


def report(ours: tuple[int, float, float], theirs: tuple[int, float, float], encoder: dict | None = None) -> None:
    """The lines bench/run_all.py parses: keep their wording."""
    (spark_tokens, spark_s, spark_cpu), (hf_tokens, hf_s, hf_cpu) = ours, theirs
    spark_rate, hf_rate = spark_tokens / spark_s, hf_tokens / hf_s
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"spark tokenize stage (local[2], tokenize+pack+write, JVM warm): {spark_tokens:,} tokens in {spark_s:.1f}s "
          f"= {spark_rate / 1e6:.3f}M tokens/s; {spark_cpu:.1f} CPU-s = {spark_tokens / spark_cpu / 1e6:.3f}M "
          "tokens per CPU-second")
    print(f"datasets.map(batched=True, num_proc=2) (tokenize only): {hf_tokens:,} tokens in {hf_s:.1f}s "
          f"= {hf_rate / 1e6:.3f}M tokens/s; {hf_cpu:.1f} CPU-s = {hf_tokens / hf_cpu / 1e6:.3f}M "
          "tokens per CPU-second")
    print(f"ratio spark/datasets: {spark_rate / hf_rate:.2f}x tokens/s (wall), "
          f"{(spark_tokens / spark_cpu) / (hf_tokens / hf_cpu):.2f}x tokens per CPU-second")
    if encoder:
        for engine, label in (("tokenizers", "encoder alone (tokenizers encode_batch_fast, no I/O)"),
                              ("tiktoken", "tiktoken encoder alone (ours, no I/O)")):
            e = encoder[engine]
            print(f"{label}: {e['tokens']:,} tokens in {e['seconds']:.1f}s; {e['cpu_seconds']:.1f} CPU-s")
        print(f"encoders agree: {encoder['files_differing'] == 0} ({encoder['files_differing']} of "
              f"{encoder['files']:,} files differ)")
    if spark_tokens != hf_tokens:
        print(f"note: token counts differ by {spark_tokens - hf_tokens:,}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=24)
    ap.add_argument("--tokenizer", help="tokenizer.json to use (default: train one on the bench text)")
    ap.add_argument("--work", default="/tmp/bench_tokenize")
    ap.add_argument("--files-per-group", type=int, default=512,
                    help="tokens.files_per_group: enough groups to keep both cores busy")
    ap.add_argument("--cold", action="store_true", help="time the stage's first run in a fresh JVM (JIT included)")
    ap.add_argument("--encoder-only", nargs=2, metavar=("TOKENIZER", "PARQUET"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.encoder_only:
        encoder_only(*args.encoder_only)
        return

    import logging

    from codecorpus.io.layout import RunLayout

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("codecorpus").setLevel(logging.INFO)  # the stage's own phase timings
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    run = RunLayout(str(work / "run"))  # bench/run_all.py reuses <work>/run/tokenizer/tokenizer.json
    tok_path = prepare_run(args, run)
    report(time_stage(run, args.files_per_group, not args.cold), time_datasets(run, tok_path, work / "hf_cache"),
           time_encoder(run, tok_path))


if __name__ == "__main__":
    main()
