"""Stage `ingest`: shards -> typed Parquet (`ingest/`) + quarantine (`quarantine/`).

One pass over the data: shards are parsed in Arrow batches inside executors
(`io.shards`), and the result is written once, partitioned by status, then split into the two
output folders by a rename.
"""
from __future__ import annotations

import glob
import logging
import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .config import Config
from .errors import UserError
from .io import fs
from .io.parquet import read_parquet, write_empty
from .io.shards import OUTPUT_DDL, QUARANTINE_COLUMNS, TYPED_COLUMNS, shard_batches
from .stage import Counts, StageOutputs

log = logging.getLogger("codecorpus")

NAME = "ingest"
OUTPUTS = ["ingest", "quarantine"]
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


def read_shards(spark: SparkSession, files: list[str], cfg: Config) -> DataFrame:
    """All lines of all shards: typed rows (`_status = 'ok'`) and quarantine rows."""
    ic = cfg.ingest
    opts = dict(max_content_bytes=ic.max_content_bytes, keep_too_large=ic.on_too_large == "keep",
                replace_utf8=ic.on_invalid_utf8 == "replace", batch_rows=ic.batch_rows)
    # One shard per task: a shard is decompressed whole, and tasks stay evenly sized.
    raw = (spark.read.format("binaryFile")
           .option("pathGlobFilter", "*")
           .load([f"file://{f}" for f in files])
           .select("path", "content"))
    raw = raw.repartition(min(len(files), max(1, spark.sparkContext.defaultParallelism * 4)), "path")
    return raw.mapInArrow(lambda it: shard_batches(it, **opts), OUTPUT_DDL)


def read_ingest(spark: SparkSession, root: str) -> DataFrame:
    """The typed corpus written by this stage."""
    return read_parquet(spark, f"{root.rstrip('/')}/ingest").select(*TYPED_COLUMNS)


def build(spark: SparkSession, cfg: Config, out: StageOutputs) -> Counts:
    files = list_shards(cfg.input)
    log.info("[ingest] %d shards, %.1f MB compressed", len(files), sum(map(os.path.getsize, files)) / 1e6)
    staging = out.tmp("ingest") + "_all"
    read_shards(spark, files, cfg).write.mode("overwrite").partitionBy("_status").parquet(staging)

    written = spark.read.parquet(staging)
    by_reason = {(r["_status"], r["reason"]): r["n"] for r in
                 written.groupBy("_status", "reason").agg(F.count("*").alias("n")).collect()}
    corrupt = sorted(r["shard"] + " (" + r["reason"] + ")" for r in
                     written.where(F.col("reason").startswith("corrupt_shard")).select("shard", "reason").collect())
    if corrupt and cfg.ingest.on_corrupt_shard == "fail":
        raise UserError(f"corrupt shard(s): {'; '.join(corrupt[:5])}"
                        " (set ingest.on_corrupt_shard=skip to record and go on)")

    ok_dir, bad_dir = f"{staging}/_status=ok", f"{staging}/_status=quarantine"
    # The typed rows are moved, not rewritten: their files keep two all-null columns
    # (`reason`, `raw`) that `read_ingest` leaves out. The few quarantine rows are rewritten
    # with only the columns that describe them.
    if fs.exists(ok_dir):
        fs.rename(ok_dir, out.tmp("ingest"))
    else:
        write_empty(spark, written.select(*TYPED_COLUMNS).schema, out.tmp("ingest"))
    if fs.exists(bad_dir):
        spark.read.parquet(bad_dir).select(*QUARANTINE_COLUMNS).coalesce(1) \
            .write.mode("overwrite").parquet(out.tmp("quarantine"))
    else:
        write_empty(spark, written.select(*QUARANTINE_COLUMNS).schema, out.tmp("quarantine"))
    fs.remove(staging)

    ok = by_reason.get(("ok", None), 0)
    quarantined = sum(n for (status, _), n in by_reason.items() if status == "quarantine")
    reasons = {reason: n for (status, reason), n in by_reason.items() if status == "quarantine"}
    return Counts(stage=NAME, rows_in=ok + quarantined, rows_out=ok, quarantined=quarantined, extra={
        "shards": len(files),
        "compressed_bytes": sum(map(os.path.getsize, files)),
        "lines_read": ok + quarantined - len(corrupt),
        "quarantine_reasons": reasons,
        "corrupt_shards": corrupt,
    })
