"""Stage `tokenize`: encode `dataset/{train,valid}` with the trained tokenizer and pack the token
stream into fixed-length training sequences -> `tokens/{train,valid}/part-NNNNN.parquet` and
`tokens/meta.json`.

How it runs, per split:
1. Each file is hashed into one of `ceil(files / pack.files_per_group)` packing groups, and
   ordered inside its group by a seeded hash of its id. A group is the unit of packing, so the
   output depends on the input rows and the config only, never on how Spark partitions them.
2. `mapInArrow`, one group per task: the tokenizer (shipped once as a broadcast of
   tokenizer.json, built once per worker) encodes each Arrow batch with `encode_batch_fast`;
   `<|endoftext|>` follows every file, as in the book's ConstantLengthDataset; the stream is cut
   into rows of exactly `pack.seq_length` tokens. A group's last short run is dropped (counted)
   or, with `tokens.remainder = "pad"`, padded with the end-of-text id into one more row whose
   `attention_mask` marks the padding. Rows stream into one Arrow staging file per group; the
   task returns only the group's statistics.
3. The driver lays the groups end to end and cuts them into shards of exactly
   `pack.rows_per_file` rows; one task per shard copies its slices of the (memory-mapped)
   staging files into a Parquet file. Both writes use pyarrow inside executors because Spark has
   no unsigned types: `input_ids` is `list<uint16>` when the vocabulary fits, else `list<int32>`.

Accounting (rows are files): rows_in = files read; rows_out = files with at least their first
token in an output sequence; dropped["tail"] = files lying wholly in a group's dropped
remainder (a file cut by the end of the last full row counts as packed; its lost tokens are in
`tokens_dropped`); dropped["null_content"] = files without content.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from codecorpus.core.config import Config, TokensConfig
from codecorpus.core.errors import UserError
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io import fs
from codecorpus.io.layout import SPLITS, split_location
from codecorpus.io.parquet import read_parquet
from codecorpus.tokenizer.load import backend_from_json, tokenizer_json

log = logging.getLogger("codecorpus")

NAME = "tokens"
# Histogram of file lengths in tokens: counts[i] = files with EDGES[i] <= tokens < EDGES[i+1];
# the last bin is open-ended.
HIST_EDGES = [0] + [2 ** k for k in range(4, 18)]
ROW_GROUP_ROWS = 128  # sequences per Parquet row group: what PackedDataset decodes for one random read


# --------------------------------------------------------------------------------- tokenizer

def ids_dtype(vocab_size: int) -> str:
    """uint16 holds ids 0..65535; larger vocabularies need int32."""
    return "uint16" if vocab_size <= 2 ** 16 else "int32"


# ------------------------------------------------------------------------------------ packing

def file_length_histogram(lengths: np.ndarray) -> np.ndarray:
    bins = np.searchsorted(np.asarray(HIST_EDGES), lengths, side="right") - 1
    return np.bincount(bins, minlength=len(HIST_EDGES)).astype(np.int64)


class GroupPacker:
    """Packs one group's files, in order, into rows of exactly `seq_length` tokens."""

    def __init__(self, seq_length: int, eos_id: int, pad: bool):
        self.seq_length = seq_length
        self.eos_id = eos_id
        self.pad = pad
        self.pending = np.empty(0, np.int64)  # stream tokens not yet in a row (< seq_length)
        self.pending_starts = np.empty(0, np.int64)  # stream offsets of files starting in pending
        self.stream_tokens = 0
        self.rows = 0
        self.files = 0
        self.null_files = 0
        self.text_tokens = 0
        self.chars = 0
        self.hist = np.zeros(len(HIST_EDGES), np.int64)

    def add(self, ids: list[np.ndarray | None], chars: int) -> np.ndarray:
        """Append files (None: a file without content); returns the rows completed, (k, seq_length)."""
        present = [a for a in ids if a is not None]
        self.files += len(ids)
        self.null_files += len(ids) - len(present)
        self.chars += chars
        if present:
            lengths = np.fromiter(map(len, present), np.int64, len(present))
            ends = np.cumsum(lengths + 1)  # each file, then its end-of-text token
            stream = np.empty(int(ends[-1]), np.int64)
            is_eos = np.zeros(len(stream), bool)
            is_eos[ends - 1] = True
            stream[is_eos] = self.eos_id
            if lengths.sum():
                stream[~is_eos] = np.concatenate(present)
            self.pending_starts = np.concatenate([self.pending_starts, self.stream_tokens + ends - lengths - 1])
            self.pending = np.concatenate([self.pending, stream])
            self.stream_tokens += len(stream)
            self.text_tokens += int(lengths.sum())
            self.hist += file_length_histogram(lengths)
        k = len(self.pending) // self.seq_length
        full = self.pending[:k * self.seq_length].reshape(k, self.seq_length)
        self.pending = self.pending[k * self.seq_length:].copy()
        self.rows += k
        self.pending_starts = self.pending_starts[self.pending_starts >= self.rows * self.seq_length]
        return full

    def finish(self) -> tuple[np.ndarray | None, dict]:
        """The padded last row (pad mode, when there is a remainder) and the group's statistics."""
        last = None
        tail_tokens = len(self.pending)
        if self.pad and tail_tokens:
            last = np.full(self.seq_length, self.eos_id, np.int64)
            last[:tail_tokens] = self.pending
            self.rows += 1
        dropped_tokens = 0 if self.pad else tail_tokens
        tail_files = 0 if self.pad else len(self.pending_starts)
        stats = {
            "files": self.files, "files_null": self.null_files, "files_tail": tail_files,
            "files_packed": self.files - self.null_files - tail_files,
            "sequences": self.rows, "text_tokens": self.text_tokens, "stream_tokens": self.stream_tokens,
            "tokens": self.stream_tokens - dropped_tokens,
            "padding_tokens": (self.seq_length - tail_tokens) if last is not None else 0,
            "tokens_dropped": dropped_tokens, "chars": self.chars, "hist": self.hist.tolist(),
        }
        return (last, tail_tokens) if last is not None else (None, 0), stats


def output_schema(dtype: str, with_mask: bool) -> pa.Schema:
    fields = [pa.field("input_ids", pa.list_(pa.from_numpy_dtype(np.dtype(dtype))))]
    if with_mask:
        fields.append(pa.field("attention_mask", pa.list_(pa.uint8())))
    return pa.schema(fields)


def sequences_table(rows: np.ndarray, n_real: list[int] | np.ndarray, schema: pa.Schema) -> pa.Table:
    """(n, seq_length) token ids -> the output columns; `n_real` real tokens per row (the rest is padding)."""
    n, width = rows.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * width)
    value_type = schema.field("input_ids").type.value_type
    cols = [pa.ListArray.from_arrays(offsets, pa.array(rows.reshape(-1).astype(value_type.to_pandas_dtype())))]
    if "attention_mask" in schema.names:
        mask = (np.arange(width)[None, :] < np.asarray(n_real)[:, None]).astype(np.uint8)
        cols.append(pa.ListArray.from_arrays(offsets, pa.array(mask.reshape(-1))))
    return pa.Table.from_arrays(cols, schema=schema)


def group_file(staging: str, grp: int) -> str:
    return f"{staging}/group-{grp:06d}.arrow"


def pack_batches(batches: Iterator[pa.RecordBatch], *, tokenizer_json, digest: str, eos_token: str,
                 seq_length: int, pad: bool, dtype: str, staging: str) -> Iterator[pa.RecordBatch]:
    """mapInArrow body. In: (grp, content) sorted by group, then file order. Each group's rows
    go to its Arrow staging file; out: one (grp, stats JSON) row per group."""
    import pyarrow.compute as pc

    from codecorpus.io.arrow_files import ArrowFileWriter

    tok = backend_from_json(tokenizer_json.value if hasattr(tokenizer_json, "value") else tokenizer_json)
    eos_id = tok.token_to_id(eos_token)
    schema = output_schema(dtype, with_mask=pad)
    packer: GroupPacker | None = None
    writer: ArrowFileWriter | None = None
    grp = -1

    def emit(rows: np.ndarray, n_real: list[int]) -> None:
        nonlocal writer
        if writer is None:
            writer = ArrowFileWriter(group_file(staging, grp), schema)
        writer.write(sequences_table(rows, n_real, schema))

    def finish() -> pa.RecordBatch:
        nonlocal writer
        (last, n_real), stats = packer.finish()
        if last is not None:
            emit(last[None, :], [n_real])
        if writer is not None:
            writer.close()
            writer = None
        return pa.RecordBatch.from_pydict({"grp": [grp], "stats": [json.dumps(stats)]},
                                          schema=pa.schema([("grp", pa.int32()), ("stats", pa.string())]))

    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            groups = batch.column("grp").to_numpy(zero_copy_only=False)
            content = batch.column("content")
            texts = content.to_pylist()
            encoded = iter(tok.encode_batch_fast([t for t in texts if t is not None], add_special_tokens=False))
            ids = [np.asarray(next(encoded).ids, np.int64) if t is not None else None for t in texts]
            chars = pc.fill_null(pc.utf8_length(content), 0).to_numpy(zero_copy_only=False)
            cuts = [0, *(np.flatnonzero(np.diff(groups)) + 1).tolist(), len(groups)]
            for a, b in zip(cuts[:-1], cuts[1:]):
                if groups[a] != grp:
                    if packer is not None:
                        yield finish()
                    grp, packer = int(groups[a]), GroupPacker(seq_length, eos_id, pad)
                rows = packer.add(ids[a:b], int(chars[a:b].sum()))
                if len(rows):
                    emit(rows, [seq_length] * len(rows))
        if packer is not None:
            yield finish()
    finally:
        if writer is not None:
            writer.abort()


def assign_groups(df: DataFrame, groups: int, seed: int) -> DataFrame:
    """Adds `grp` (packing group) and `ord` (position key inside the group), from the id only."""
    return (df.withColumn("grp", F.pmod(F.xxhash64(F.lit(seed), F.col("id")), F.lit(groups)).cast("int"))
              .withColumn("ord", F.xxhash64(F.lit(seed + 1), F.col("id"))))


def pack_groups(df: DataFrame, groups: int, pc: TokensConfig, *, tokenizer_json, digest: str, dtype: str,
                staging: str) -> DataFrame:
    """Files (id, content) -> one (grp, stats) row per packing group, one task per group; the
    packed rows land in `staging` (one Arrow file per group)."""
    ordered = (assign_groups(df.select("id", "content"), groups, pc.seed)
               .repartitionById(groups, "grp")
               .sortWithinPartitions("grp", "ord", "id")
               .select("grp", "content"))
    opts = dict(tokenizer_json=tokenizer_json, digest=digest, eos_token=pc.eos_token, seq_length=pc.seq_length,
                pad=pc.remainder == "pad", dtype=dtype, staging=fs.local_path(staging))
    return ordered.mapInArrow(lambda it: pack_batches(it, **opts), "grp INT, stats STRING")


# ------------------------------------------------------------------------------------ writing

def shard_name(shard: int) -> str:
    return f"part-{shard:05d}.parquet"


def shard_plan(sequences_per_group: dict[int, int], rows_per_file: int) -> list[list[tuple[int, int, int]]]:
    """Rows in group order, cut into shards of rows_per_file: per shard, its (group, start, stop) pieces."""
    shards: list[list[tuple[int, int, int]]] = []
    room = 0
    for grp in sorted(sequences_per_group):
        start, n = 0, sequences_per_group[grp]
        while start < n:
            if room == 0:
                shards.append([])
                room = rows_per_file
            take = min(room, n - start)
            shards[-1].append((grp, start, start + take))
            start += take
            room -= take
    return shards


def write_shards(batches: Iterator[pa.RecordBatch], *, staging: str, folder: str, schema: pa.Schema
                 ) -> Iterator[pa.RecordBatch]:
    """mapInArrow body. In: (shard, pieces JSON); writes each shard's Parquet file from the
    staged group files; out: (shard, rows) per file written."""
    from codecorpus.io.arrow_files import ParquetFileWriter, read_arrow_slice

    for batch in batches:
        done_shards, done_rows = [], []
        for shard, pieces in zip(batch.column("shard").to_pylist(), batch.column("pieces").to_pylist()):
            writer = ParquetFileWriter(f"{folder}/{shard_name(shard)}", schema, row_group_rows=ROW_GROUP_ROWS)
            try:
                for grp, start, stop in json.loads(pieces):
                    writer.write(read_arrow_slice(group_file(staging, grp), start, stop))
                done_rows.append(writer.close())
            except BaseException:
                writer.abort()
                raise
            done_shards.append(shard)
        yield pa.RecordBatch.from_pydict({"shard": done_shards, "rows": done_rows},
                                         schema=pa.schema([("shard", pa.int32()), ("rows", pa.int64())]))


def write_split(spark: SparkSession, sequences_per_group: dict[int, int], staging: str, folder: str,
                pc: TokensConfig, dtype: str) -> int:
    """Staged group files -> Parquet shards of exactly pc.rows_per_file rows, in group order,
    one task per shard; returns the number of shards."""
    from codecorpus.io.arrow_files import ParquetFileWriter

    fs.makedirs(folder)
    schema = output_schema(dtype, pc.remainder == "pad")
    plan = shard_plan(sequences_per_group, pc.rows_per_file)
    if not plan:  # an empty but readable split
        ParquetFileWriter(f"{folder}/{shard_name(0)}", schema, row_group_rows=ROW_GROUP_ROWS).close()
        return 1
    tasks = spark.createDataFrame([(i, json.dumps(p)) for i, p in enumerate(plan)], "shard INT, pieces STRING")
    opts = dict(staging=fs.local_path(staging), folder=fs.local_path(folder), schema=schema)
    written = (tasks.repartitionById(len(plan), "shard")
               .mapInArrow(lambda it: write_shards(it, **opts), "shard INT, rows BIGINT").collect())
    fs.remove_partial_files(folder)
    expected = sum(sequences_per_group.values())
    got = sum(r["rows"] for r in written)
    if got != expected or sorted(r["shard"] for r in written) != list(range(len(plan))):
        raise RuntimeError(f"wrote {got} sequences in {len(written)} files, expected {expected} in {len(plan)}")
    return len(plan)


# -------------------------------------------------------------------------------------- stage

STAT_KEYS = ("files", "files_null", "files_tail", "files_packed", "sequences", "text_tokens", "stream_tokens",
             "tokens", "padding_tokens", "tokens_dropped", "chars")


def sum_stats(stats: list[dict]) -> dict:
    """Adds up GroupPacker.finish statistics (counts and histogram)."""
    total: dict[str, Any] = {k: sum(s[k] for s in stats) for k in STAT_KEYS}
    total["hist"] = [sum(col) for col in zip(*(s["hist"] for s in stats))] if stats else [0] * len(HIST_EDGES)
    return total


def pack_split(spark: SparkSession, df: DataFrame, pc: TokensConfig, *, tokenizer_json, digest: str,
               dtype: str, folder: str, staging: str) -> dict:
    """Tokenize, pack and write one split; returns its statistics."""
    started = time.perf_counter()
    files = df.count()
    groups = max(1, math.ceil(files / pc.files_per_group))
    fs.makedirs(staging)
    per_group = {r["grp"]: json.loads(r["stats"]) for r in
                 pack_groups(df, groups, pc, tokenizer_json=tokenizer_json, digest=digest, dtype=dtype,
                             staging=staging).collect()}
    packed_at = time.perf_counter()
    stats = sum_stats([per_group[g] for g in sorted(per_group)])
    if stats["files"] != files:
        raise RuntimeError(f"packed {stats['files']} files, read {files}")
    shards = write_split(spark, {g: s["sequences"] for g, s in per_group.items()}, staging, folder, pc, dtype)
    fs.remove(staging)
    log.info("[tokens] %s: %d groups tokenized and packed in %.1fs, %d shards written in %.1fs", folder, groups,
             packed_at - started, shards, time.perf_counter() - packed_at)
    stats.update(groups=groups, shards=shards, hist_edges=HIST_EDGES,
                 chars_per_token=round(stats["chars"] / stats["text_tokens"], 4) if stats["text_tokens"] else None)
    return stats


def build(spark: SparkSession, cfg: Config, io: StageIO) -> Counts:
    pc = cfg.tokens
    tok_path = io.input("tokenizer.json")
    tok_json = tokenizer_json(tok_path)
    digest = hashlib.sha256(tok_json.encode("utf-8")).hexdigest()
    tok = backend_from_json(tok_json)
    eos_id = tok.token_to_id(pc.eos_token)
    if eos_id is None:
        raise UserError(f"tokenizer {tok_path} has no {pc.eos_token!r} token (set tokens.eos_token)")
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    dtype = ids_dtype(vocab_size)
    shipped = spark.sparkContext.broadcast(tok_json)  # once per executor, not once per task
    splits = {}
    try:
        for split in SPLITS:
            df = read_parquet(spark, io.input(split_location("dataset", split)))
            folder = io.output(split_location("tokens", split))
            splits[split] = pack_split(spark, df, pc, tokenizer_json=shipped, digest=digest, dtype=dtype,
                                       folder=folder, staging=f"{folder}_staging")
            s = splits[split]
            log.info("[tokens] %s: %s files -> %s sequences of %d (%s tokens, %s dropped)", split,
                     f"{s['files']:,}", f"{s['sequences']:,}", pc.seq_length, f"{s['tokens']:,}",
                     f"{s['tokens_dropped']:,}")
    finally:
        shipped.destroy()
    meta = {
        "tokenizer": {"file": tok_path, "sha256": digest, "vocab_size": vocab_size,
                      "eos_token": pc.eos_token, "eos_id": eos_id},
        "seq_length": pc.seq_length, "remainder": pc.remainder, "pad_id": eos_id if pc.remainder == "pad" else None,
        "dtype": dtype, "columns": output_schema(dtype, pc.remainder == "pad").names,
        "rows_per_file": pc.rows_per_file, "files_per_group": pc.files_per_group, "seed": pc.seed,
        "sequences": sum(s["sequences"] for s in splits.values()),
        "tokens": sum(s["tokens"] for s in splits.values()),
        "tokens_dropped": sum(s["tokens_dropped"] for s in splits.values()),
        "splits": splits,
    }
    fs.write_json_atomic(io.output("tokens.meta"), meta)
    total = sum_stats(list(splits.values()))
    return Counts(stage=NAME, rows_in=total["files"], rows_out=total["files_packed"],
                  dropped={k: v for k, v in (("tail", total["files_tail"]), ("null_content", total["files_null"]))
                           if v},
                  extra={"seq_length": pc.seq_length, "dtype": dtype, "tokenizer_sha256": digest,
                         "sequences": meta["sequences"], "tokens": meta["tokens"],
                         "tokens_dropped": meta["tokens_dropped"], "splits": splits})
