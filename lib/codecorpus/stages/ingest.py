"""Stage `ingest`: shards -> typed Parquet (`ingest/`) + quarantine (`quarantine/`).

One pass over the data. The driver lists the shards (a folder, a glob or one file, at any URI
`io.uri` knows: a path, file://, s3://, gs://, hdfs://, hf://) and deals them out to tasks as
lists of URIs (a large shard alone, small ones together); no shard byte goes through Spark. A
task streams each of its shards from its URI (`io.shard_ingest`), parses it block by block and
writes typed rows and quarantine rows as Parquet directly into the run root, at any URI
`io.fs` serves (one file of each per task, named after its first shard and written atomically,
so a retried task rewrites the same file); Spark carries only a per-shard summary, from which
the row accounting is made.
"""
from __future__ import annotations

import fnmatch
import logging
from collections import Counter
from typing import NamedTuple

from pyspark.sql import DataFrame, SparkSession

from codecorpus.core.config import Config
from codecorpus.core.errors import UserError
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io import fs, uri
from codecorpus.io.arrow_files import write_table
from codecorpus.io.shards import ROW_GROUP_ROWS, SUMMARY_DDL, ParseOptions, quarantine_schema, typed_schema

log = logging.getLogger("codecorpus")

NAME = "ingest"
SHARD_PATTERNS = ("*.json.gz", "*.jsonl.gz", "*.jsonl", "*.json")


class Shard(NamedTuple):
    uri: str    # what executors open: a plain absolute path for local files
    name: str   # the file name: part of every record's id, so unique within an input
    size: int   # bytes as stored (compressed)


def list_shards(input_spec: str) -> list[Shard]:
    """Shard files named by a folder (searched recursively), a glob or one file, sorted; a
    clear one-line error when there are none or the input cannot be read."""
    if uri.has_wildcard(input_spec):
        entries, where = uri.glob(input_spec), f"matching {input_spec}"
    else:
        kind = uri.kind(input_spec)
        if kind == "missing":
            raise UserError(f"input not found: {input_spec}")
        if kind == "dir":
            entries = [e for e in uri.walk(input_spec)
                       if any(fnmatch.fnmatchcase(e.relative.rsplit("/", 1)[-1], p) for p in SHARD_PATTERNS)]
            where = f"in {input_spec} (looked for {', '.join(SHARD_PATTERNS)})"
        else:
            entries = [uri.file_entry(input_spec)]
            where = input_spec
    if not entries:
        raise UserError(f"no shards {where}")
    # Hadoop-style hidden files and folders (`_manifest.json`, `.crc`, `_temporary/`) are not
    # shards; Spark would skip them silently, so they are left out here, where the count is told.
    entries = [e for e in entries if not uri.is_hidden(e.relative)]
    if not entries:
        raise UserError(f"no shards {where} (names starting with _ or . are ignored)")
    shards = [Shard(e.uri, e.uri.rstrip("/").rsplit("/", 1)[-1], e.size) for e in entries]
    names = Counter(s.name for s in shards)
    if len(names) != len(shards):
        dupes = sorted(n for n, k in names.items() if k > 1)
        raise UserError(f"shard names must be unique (they are part of each record's id): {dupes[:5]}")
    return shards


def parse_options(cfg: Config) -> ParseOptions:
    ic = cfg.ingest
    return ParseOptions(max_content_bytes=ic.max_content_bytes, keep_too_large=ic.on_too_large == "keep",
                        replace_utf8=ic.on_invalid_utf8 == "replace", block_bytes=ic.block_bytes,
                        max_line_bytes=ic.max_line_bytes)


def ingest_to(spark: SparkSession, shards: list[Shard], cfg: Config, ok_dir: str, bad_dir: str) -> DataFrame:
    """Parse all shards in executors, writing typed rows to `ok_dir` and quarantine rows to
    `bad_dir`; returns the per-shard, per-reason summary (a few rows per shard)."""
    from codecorpus.io.shard_ingest import ingest_tasks

    tasks = plan_tasks(shards, max(1, spark.sparkContext.defaultParallelism * 4))
    opts = {"tasks": [[(s.uri, s.name) for s in task] for task in tasks], "ok_dir": ok_dir, "bad_dir": bad_dir,
            "opts": parse_options(cfg)}
    return (spark.range(0, len(tasks), 1, numPartitions=len(tasks))
            .mapInArrow(lambda it: ingest_tasks(it, **opts), SUMMARY_DDL))


def plan_tasks(shards: list[Shard], most: int) -> list[list[Shard]]:
    """Shards dealt into at most `most` tasks (several per core, so no task is much longer than
    the rest), largest shard first onto the least loaded task: a large shard gets a task of its
    own, small ones share one (a task costs a fixed overhead). Tasks come out heaviest first,
    since Spark starts them in order and a long one started last would leave cores idle."""
    import heapq

    tasks: list[list[Shard]] = [[] for _ in range(min(most, len(shards)))]
    loads = [(0, i) for i in range(len(tasks))]
    for shard in sorted(shards, key=lambda s: (-s.size, s.name)):
        load, i = heapq.heappop(loads)
        tasks[i].append(shard)
        heapq.heappush(loads, (load + shard.size, i))
    return sorted(tasks, key=lambda t: -sum(s.size for s in t))


def build(spark: SparkSession, cfg: Config, io: StageIO) -> Counts:
    shards = list_shards(cfg.input)
    compressed = sum(s.size for s in shards)
    log.info("[ingest] %d shards, %.1f MB compressed, from %s", len(shards), compressed / 1e6, cfg.input)
    ok_dir, bad_dir = io.output("ingest"), io.output("quarantine")
    fs.makedirs(ok_dir)
    fs.makedirs(bad_dir)
    summary = ingest_to(spark, shards, cfg, fs.local_path(ok_dir), fs.local_path(bad_dir)).collect()
    # An executor killed mid-write leaves its hidden temp file behind (the retried task wrote
    # the real one); clear them so the published folders hold only complete files.
    for folder in (ok_dir, bad_dir):
        fs.remove_partial_files(folder)

    corrupt = sorted(f"{r['shard']} ({r['reason']})" for r in summary
                     if r["reason"] and r["reason"].startswith("corrupt_shard"))
    if corrupt and cfg.ingest.on_corrupt_shard == "fail":
        raise UserError(f"corrupt shard(s): {'; '.join(corrupt[:5])}"
                        " (set ingest.on_corrupt_shard=skip to record and go on)")
    # Readers need a schema even when a kind has no rows at all.
    if not any(r["n"] for r in summary if r["status"] == "ok"):
        write_table(typed_schema().empty_table(), f"{ok_dir}/empty.parquet", row_group_rows=ROW_GROUP_ROWS)
    if not any(r["status"] == "quarantine" for r in summary):
        write_table(quarantine_schema().empty_table(), f"{bad_dir}/empty.parquet", row_group_rows=ROW_GROUP_ROWS)

    ok = sum(r["n"] for r in summary if r["status"] == "ok")
    reasons: dict[str, int] = {}
    for r in summary:
        if r["status"] == "quarantine":
            key = "corrupt_shard" if r["reason"].startswith("corrupt_shard") else r["reason"]
            reasons[key] = reasons.get(key, 0) + r["n"]
    quarantined = sum(reasons.values())
    return Counts(stage=NAME, rows_in=ok + quarantined, rows_out=ok, quarantined=quarantined, extra={
        "shards": len(shards),
        "compressed_bytes": compressed,
        "content_bytes": sum(r["bytes"] for r in summary),
        "lines_read": ok + quarantined - len(corrupt),
        "quarantine_reasons": reasons,
        "corrupt_shards": corrupt,
    })
