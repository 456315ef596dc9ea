"""Stage `stats`: corpus statistics of the ingested rows -> `stats/stats.json`.

All figures are Spark aggregations; only small results (histogram bins, top-N lists) reach the
driver. "Exact duplicate" here uses the same key as the clean stage: MD5 of the content with all
whitespace removed. Duplicate bytes count every copy beyond one per group (at the group's mean
size).
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from codecorpus.core.config import Config
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io import fs
from codecorpus.io.parquet import read_parquet
from codecorpus.io.shards import TYPED_COLUMNS
from codecorpus.stages.clean import exact

NAME = "stats"
BINS_PER_DECADE = 4


def with_bytes(df: DataFrame) -> DataFrame:
    return df.withColumn("bytes", F.octet_length("content"))


def size_histogram(df: DataFrame) -> list[dict]:
    """Counts of files per log10 size bin (BINS_PER_DECADE bins a decade); empty files in bin '0'."""
    binned = df.select(F.when(F.col("bytes") > 0, F.floor(F.log10("bytes") * BINS_PER_DECADE))
                       .otherwise(F.lit(-1)).alias("bin"))
    rows = binned.groupBy("bin").count().orderBy("bin").collect()
    out = []
    for r in rows:
        lo = 0 if r["bin"] < 0 else 10 ** (r["bin"] / BINS_PER_DECADE)
        hi = 1 if r["bin"] < 0 else 10 ** ((r["bin"] + 1) / BINS_PER_DECADE)
        out.append({"lo": round(lo, 1), "hi": round(hi, 1), "files": r["count"]})
    return out


def corpus_stats(df: DataFrame, top_n: int) -> dict:
    df = with_bytes(df).cache()
    totals = df.agg(F.count("*").alias("files"), F.sum("bytes").alias("bytes"),
                    F.countDistinct("repo_name").alias("repos"),
                    F.percentile_approx("bytes", [0.5, 0.9, 0.99], 10000).alias("pct"),
                    F.max("bytes").alias("max_bytes"),
                    F.sum(F.when(F.col("bytes") == 0, 1).otherwise(0)).alias("empty_files")).first()
    files, total_bytes = totals["files"], totals["bytes"] or 0
    groups = df.groupBy(exact.content_hash(F.col("content")).alias("h")).agg(F.count("*").alias("n"), F.sum("bytes").alias("b"))
    dup = groups.agg(F.count("*").alias("groups"),
                     F.sum(F.col("n") - 1).alias("dup_files"),
                     F.sum(F.col("b") * (F.col("n") - 1) / F.col("n")).alias("dup_bytes"),
                     F.max("n").alias("largest")).first()
    licenses = [{"license": r["license"], "files": r["files"], "bytes": r["bytes"]} for r in
                df.groupBy("license").agg(F.count("*").alias("files"), F.sum("bytes").alias("bytes"))
                .orderBy(F.desc("files"), "license").collect()]
    repos = [{"repo_name": r["repo_name"], "files": r["files"], "bytes": r["bytes"]} for r in
             df.groupBy("repo_name").agg(F.count("*").alias("files"), F.sum("bytes").alias("bytes"))
             .orderBy(F.desc("files"), "repo_name").limit(top_n).collect()]
    hist = size_histogram(df)
    df.unpersist()
    pct = totals["pct"] or [0, 0, 0]
    return {
        "files": files,
        "bytes": total_bytes,
        "repos": totals["repos"],
        "empty_files": totals["empty_files"],
        "size_bytes": {"mean": round(total_bytes / files, 1) if files else 0, "p50": pct[0], "p90": pct[1],
                       "p99": pct[2], "max": totals["max_bytes"] or 0},
        "exact_duplicates": {
            "distinct_contents": dup["groups"] or 0,
            "duplicate_files": dup["dup_files"] or 0,
            "duplicate_share_files": (dup["dup_files"] or 0) / files if files else 0.0,
            "duplicate_bytes": round(dup["dup_bytes"] or 0),
            "duplicate_share_bytes": (dup["dup_bytes"] or 0) / total_bytes if total_bytes else 0.0,
            "largest_group": dup["largest"] or 0,
        },
        "licenses": licenses,
        "top_repos": repos,
        "size_histogram": hist,
    }


def build(spark: SparkSession, cfg: Config, io: StageIO) -> Counts:
    df = read_parquet(spark, io.input("ingest")).select(*TYPED_COLUMNS)
    stats = corpus_stats(df, cfg.stats.top_n)
    ingest = io.counts("ingest")
    if ingest is not None:
        stats["ingest"] = {"lines_read": ingest.extra.get("lines_read"), "rows_ingested": ingest.rows_out,
                           "rows_quarantined": ingest.quarantined,
                           "quarantine_reasons": ingest.extra.get("quarantine_reasons", {}),
                           "corrupt_shards": ingest.extra.get("corrupt_shards", []),
                           "shards": ingest.extra.get("shards")}
    fs.write_json_atomic(io.output("stats.json"), stats)
    return Counts(stage=NAME, rows_in=stats["files"], rows_out=stats["files"], extra={
        "files": stats["files"], "bytes": stats["bytes"],
        "duplicate_share_files": stats["exact_duplicates"]["duplicate_share_files"]})
