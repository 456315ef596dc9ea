"""Stage `ingest`: shards -> typed Parquet (`ingest/`) + quarantine (`quarantine/`).

One pass over the data: shards are decompressed and parsed in Arrow batches inside executors
(`io.shards`), which write each shard's typed rows and quarantine rows as Parquet directly
(one file per shard, named after it, so a retried task rewrites the same file); Spark carries
only a per-shard summary, from which the row accounting is made. The run root must be on a
filesystem that executors and the driver share (local disk in local mode, NFS or similar on a
cluster).
"""
from __future__ import annotations

import glob
import logging
import os

from pyspark.sql import DataFrame, SparkSession

from codecorpus.core.config import Config
from codecorpus.core.errors import UserError
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io import fs
from codecorpus.io.arrow_files import write_table
from codecorpus.io.shards import (
    ROW_GROUP_ROWS,
    SUMMARY_DDL,
    ingest_shards,
    quarantine_schema,
    typed_schema,
)

log = logging.getLogger("codecorpus")

NAME = "ingest"
SHARD_PATTERNS = ("*.json.gz", "*.jsonl.gz", "*.jsonl", "*.json")


def list_shards(input_spec: str) -> list[str]:
    """Shard files named by a folder or a glob, sorted; a clear error when there are none."""
    spec = fs.local_path(input_spec)
    if any(c in spec for c in "*?["):
        files = sorted(f for f in glob.glob(spec) if os.path.isfile(f))
        where = f"matching {input_spec}"
    elif os.path.isdir(spec):
        files = sorted({f for pat in SHARD_PATTERNS for f in glob.glob(os.path.join(spec, "**", pat),
                                                                       recursive=True)})
        where = f"in {input_spec} (looked for {', '.join(SHARD_PATTERNS)})"
    elif os.path.isfile(spec):
        files = [spec]
        where = input_spec
    else:
        raise UserError(f"input not found: {input_spec}")
    if not files:
        raise UserError(f"no shards {where}")
    # Hadoop-style hidden files (`_manifest.json`, `.crc`) are not shards; Spark would skip
    # them silently, so they are left out here, where the shard count is reported.
    files = [f for f in files if not os.path.basename(f).startswith(("_", "."))]
    if not files:
        raise UserError(f"no shards {where} (names starting with _ or . are ignored)")
    names = [os.path.basename(f) for f in files]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise UserError(f"shard names must be unique (they are part of each record's id): {dupes[:5]}")
    return [os.path.abspath(f) for f in files]


def ingest_to(spark: SparkSession, files: list[str], cfg: Config, ok_dir: str, bad_dir: str) -> DataFrame:
    """Parse all shards in executors, writing typed rows to `ok_dir` and quarantine rows to
    `bad_dir`; returns the per-shard, per-reason summary (a few rows per shard)."""
    ic = cfg.ingest
    opts = dict(ok_dir=ok_dir, bad_dir=bad_dir, max_content_bytes=ic.max_content_bytes,
                keep_too_large=ic.on_too_large == "keep", replace_utf8=ic.on_invalid_utf8 == "replace")
    raw = (spark.read.format("binaryFile")
           .load([f"file://{f}" for f in files])
           .select("path", "content"))
    # Spread shards over tasks (several per core, so one large shard does not hold up the stage).
    raw = raw.repartition(min(len(files), max(1, spark.sparkContext.defaultParallelism * 4)), "path")
    return raw.mapInArrow(lambda it: ingest_shards(it, **opts), SUMMARY_DDL)


def build(spark: SparkSession, cfg: Config, io: StageIO) -> Counts:
    files = list_shards(cfg.input)
    compressed = sum(map(os.path.getsize, files))
    log.info("[ingest] %d shards, %.1f MB compressed", len(files), compressed / 1e6)
    ok_dir, bad_dir = io.output("ingest"), io.output("quarantine")
    fs.makedirs(ok_dir)
    fs.makedirs(bad_dir)
    summary = ingest_to(spark, files, cfg, fs.local_path(ok_dir), fs.local_path(bad_dir)).collect()
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
        "shards": len(files),
        "compressed_bytes": compressed,
        "content_bytes": sum(r["bytes"] for r in summary),
        "lines_read": ok + quarantined - len(corrupt),
        "quarantine_reasons": reasons,
        "corrupt_shards": corrupt,
    })
