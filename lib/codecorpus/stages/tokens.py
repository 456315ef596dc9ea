"""Stage `tokens`: encode `dataset/{train,valid}` with the trained tokenizer and pack the token
stream into fixed-length training sequences -> `tokens/{train,valid}/part-NNNNN.parquet` and
`tokens/meta.json`. This module is the Spark glue; packing and staging are `codecorpus.tokens`.

Per split:
1. Each file is hashed into one of `ceil(files / tokens.files_per_group)` packing groups, and
   ordered inside its group by a seeded hash of its id. A group is the unit of packing, so the
   output depends on the input rows and the config only, never on how Spark partitions them.
2. `mapInArrow`, one group per task: the encoder (`tokenizer.encoder`: tiktoken where it gives
   exactly the tokenizer's ids, else `tokenizers`; built once per worker from a broadcast of
   tokenizer.json) encodes each Arrow batch; the packer cuts the stream into rows of exactly
   `tokens.seq_length` tokens, staged in one Arrow file per group; the task returns statistics.
3. The driver lays the groups end to end and cuts them into shards of exactly
   `tokens.rows_per_file` rows; one task per shard copies its slices of the staging files into a
   Parquet file. pyarrow writes both, since Spark has no unsigned types: `input_ids` is
   `list<uint16>` when the vocabulary fits, else `list<int32>`.

Accounting (rows are files): rows_in = files read; rows_out = files with at least their first
token in an output sequence; dropped["tail"] = files wholly in a group's dropped remainder (a
file cut by the end of the last full row counts as packed; its lost tokens are in
`tokens_dropped`); dropped["null_content"] = files without content.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from codecorpus.core.config import Config, TokensConfig
from codecorpus.core.errors import UserError
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io import fs
from codecorpus.io.layout import SPLITS, split_location
from codecorpus.io.parquet import read_parquet
from codecorpus.tokenizer.encoder import encoder_for
from codecorpus.tokenizer.load import backend_from_json, tokenizer_json
from codecorpus.tokens import packer
from codecorpus.tokens.staging import GroupStager, shard_name, write_empty_shard, write_shard

log = logging.getLogger("codecorpus")

NAME = "tokens"
STATS_SCHEMA = pa.schema([("grp", pa.int32()), ("stats", pa.string())])
WRITTEN_SCHEMA = pa.schema([("shard", pa.int32()), ("rows", pa.int64())])


def pack_batches(batches: Iterator[pa.RecordBatch], *, tokenizer_json, engine: str, eos_id: int,
                 seq_length: int, pad: bool, dtype: str, staging: str) -> Iterator[pa.RecordBatch]:
    """mapInArrow body. In: (grp, content) sorted by group, then file order. Each group's rows
    go to its Arrow staging file; out: one (grp, stats JSON) row per group."""
    # A broadcast on an executor, the plain text when called directly. One thread: every core
    # already runs a task.
    encoder = encoder_for(getattr(tokenizer_json, "value", tokenizer_json), engine, threads=1)
    stager = GroupStager(staging, seq_length, eos_id, pad, dtype)
    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            ids, chars = packer.encode_contents(encoder, batch.column("content"))
            groups = batch.column("grp").to_numpy(zero_copy_only=False)
            for done in stager.add_batch(groups, ids, chars):
                yield _stats_batch(*done)
        done = stager.finish()
        if done is not None:
            yield _stats_batch(*done)
    finally:
        stager.abort()


def _stats_batch(grp: int, stats: dict) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"grp": [grp], "stats": [json.dumps(stats)]}, schema=STATS_SCHEMA)


def assign_groups(df: DataFrame, groups: int, seed: int) -> DataFrame:
    """Adds `grp` (packing group) and `ord` (position key inside the group), from the id only."""
    return (df.withColumn("grp", F.pmod(F.xxhash64(F.lit(seed), F.col("id")), F.lit(groups)).cast("int"))
              .withColumn("ord", F.xxhash64(F.lit(seed + 1), F.col("id"))))


def pack_groups(df: DataFrame, groups: int, pc: TokensConfig, *, tokenizer_json, engine: str, eos_id: int,
                dtype: str, staging: str) -> DataFrame:
    """Files (id, content) -> one (grp, stats) row per packing group, one task per group; the
    packed rows land in `staging` (one Arrow file per group)."""
    ordered = (assign_groups(df.select("id", "content"), groups, pc.seed)
               .repartitionById(groups, "grp")
               .sortWithinPartitions("grp", "ord", "id")
               .select("grp", "content"))
    opts = {"tokenizer_json": tokenizer_json, "engine": engine, "eos_id": eos_id, "seq_length": pc.seq_length,
            "pad": pc.remainder == "pad", "dtype": dtype, "staging": fs.local_path(staging)}
    return ordered.mapInArrow(lambda it: pack_batches(it, **opts), "grp INT, stats STRING")


def write_shards(batches: Iterator[pa.RecordBatch], *, staging: str, folder: str, schema: pa.Schema
                 ) -> Iterator[pa.RecordBatch]:
    """mapInArrow body. In: (shard, pieces JSON); writes each shard's Parquet file from the
    staged group files; out: (shard, rows) per file written."""
    for batch in batches:
        shards = batch.column("shard").to_pylist()
        rows = [write_shard(f"{folder}/{shard_name(shard)}", json.loads(pieces), staging, schema)
                for shard, pieces in zip(shards, batch.column("pieces").to_pylist())]
        yield pa.RecordBatch.from_pydict({"shard": shards, "rows": rows}, schema=WRITTEN_SCHEMA)


def write_split(spark: SparkSession, sequences_per_group: dict[int, int], staging: str, folder: str,
                pc: TokensConfig, dtype: str) -> int:
    """Staged group files -> Parquet shards of exactly pc.rows_per_file rows, in group order,
    one task per shard; returns the number of shards."""
    fs.makedirs(folder)
    schema = packer.output_schema(dtype, pc.remainder == "pad")
    plan = packer.shard_plan(sequences_per_group, pc.rows_per_file)
    if not plan:  # an empty but readable split
        write_empty_shard(f"{folder}/{shard_name(0)}", schema)
        return 1
    tasks = spark.createDataFrame([(i, json.dumps(p)) for i, p in enumerate(plan)], "shard INT, pieces STRING")
    opts = {"staging": fs.local_path(staging), "folder": fs.local_path(folder), "schema": schema}
    written = (tasks.repartitionById(len(plan), "shard")
               .mapInArrow(lambda it: write_shards(it, **opts), "shard INT, rows BIGINT").collect())
    fs.remove_partial_files(folder)
    expected = sum(sequences_per_group.values())
    got = sum(r["rows"] for r in written)
    if got != expected or sorted(r["shard"] for r in written) != list(range(len(plan))):
        raise RuntimeError(f"wrote {got} sequences in {len(written)} files, expected {expected} in {len(plan)}")
    return len(plan)


def pack_split(spark: SparkSession, df: DataFrame, pc: TokensConfig, *, tokenizer_json, engine: str,
               eos_id: int, dtype: str, folder: str, staging: str) -> dict:
    """Tokenize, pack and write one split; returns its statistics."""
    started = time.perf_counter()
    files = df.count()
    groups = max(1, math.ceil(files / pc.files_per_group))
    fs.makedirs(staging)
    per_group = {r["grp"]: json.loads(r["stats"]) for r in
                 pack_groups(df, groups, pc, tokenizer_json=tokenizer_json, engine=engine, eos_id=eos_id,
                             dtype=dtype, staging=staging).collect()}
    packed_at = time.perf_counter()
    stats = packer.sum_stats([per_group[g] for g in sorted(per_group)])
    if stats["files"] != files:
        raise RuntimeError(f"packed {stats['files']} files, read {files}")
    shards = write_split(spark, {g: s["sequences"] for g, s in per_group.items()}, staging, folder, pc, dtype)
    fs.remove(staging)
    log.info("[tokens] %s: %d groups tokenized and packed in %.1fs, %d shards written in %.1fs", folder, groups,
             packed_at - started, shards, time.perf_counter() - packed_at)
    stats.update(groups=groups, shards=shards, hist_edges=packer.HIST_EDGES,
                 chars_per_token=round(stats["chars"] / stats["text_tokens"], 4) if stats["text_tokens"] else None)
    return stats


def tokens_meta(pc: TokensConfig, tokenizer: dict, dtype: str, splits: dict[str, dict]) -> dict:
    """tokens/meta.json: how the sequences were made, and what each split holds."""
    eos_id = tokenizer["eos_id"]
    return {
        "tokenizer": tokenizer,
        "seq_length": pc.seq_length, "remainder": pc.remainder, "pad_id": eos_id if pc.remainder == "pad" else None,
        "dtype": dtype, "columns": packer.output_schema(dtype, pc.remainder == "pad").names,
        "rows_per_file": pc.rows_per_file, "files_per_group": pc.files_per_group, "seed": pc.seed,
        "sequences": sum(s["sequences"] for s in splits.values()),
        "tokens": sum(s["tokens"] for s in splits.values()),
        "tokens_dropped": sum(s["tokens_dropped"] for s in splits.values()),
        "splits": splits,
    }


def build(spark: SparkSession, cfg: Config, io: StageIO) -> Counts:
    pc = cfg.tokens
    tok_path = io.input("tokenizer.json")
    tok_json = tokenizer_json(tok_path)
    tok = backend_from_json(tok_json)
    eos_id = tok.token_to_id(pc.eos_token)
    if eos_id is None:
        raise UserError(f"tokenizer {tok_path} has no {pc.eos_token!r} token (set tokens.eos_token)")
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    dtype = packer.ids_dtype(vocab_size)
    # Decided once on the driver (a refusal is one line before any task starts); the executors
    # build the same engine.
    engine = encoder_for(tok_json, pc.encoder).engine
    log.info("[tokens] encoder: %s", engine)
    shipped = spark.sparkContext.broadcast(tok_json)  # once per executor, not once per task
    splits = {}
    try:
        for split in SPLITS:
            df = read_parquet(spark, io.input(split_location("dataset", split)))
            folder = io.output(split_location("tokens", split))
            s = splits[split] = pack_split(spark, df, pc, tokenizer_json=shipped, engine=engine, eos_id=eos_id,
                                           dtype=dtype, folder=folder, staging=f"{folder}_staging")
            log.info("[tokens] %s: %s files -> %s sequences of %d (%s tokens, %s dropped)", split,
                     f"{s['files']:,}", f"{s['sequences']:,}", pc.seq_length, f"{s['tokens']:,}",
                     f"{s['tokens_dropped']:,}")
    finally:
        shipped.destroy()
    digest = hashlib.sha256(tok_json.encode("utf-8")).hexdigest()  # names the tokenizer in meta and marker
    meta = tokens_meta(pc, {"file": tok_path, "sha256": digest, "vocab_size": vocab_size,
                            "eos_token": pc.eos_token, "eos_id": eos_id, "encoder": engine}, dtype, splits)
    fs.write_json_atomic(io.output("tokens.meta"), meta)
    total = packer.sum_stats(list(splits.values()))
    dropped = {k: v for k, v in (("tail", total["files_tail"]), ("null_content", total["files_null"])) if v}
    return Counts(stage=NAME, rows_in=total["files"], rows_out=total["files_packed"], dropped=dropped,
                  extra={"seq_length": pc.seq_length, "dtype": dtype, "tokenizer_sha256": digest, "encoder": engine,
                         "sequences": meta["sequences"], "tokens": meta["tokens"],
                         "tokens_dropped": meta["tokens_dropped"], "splits": splits})
