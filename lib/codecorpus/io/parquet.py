"""Parquet reading and writing for stage outputs: the one writer every stage uses."""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from codecorpus.io import fs


def write_parquet(df: DataFrame, path: str, *, files: int | None = None, sort_by: list[str] | None = None
                  ) -> None:
    """Write `df` as Parquet; `files` fixes the number of output files. With `sort_by`, rows go to
    files by a hash of those columns and are sorted inside each file, so reruns (on any
    cluster shape) write the same rows into the same files in the same order."""
    if files is not None:
        df = df.repartition(files, *sort_by) if sort_by else df.repartition(files)
    if sort_by:
        df = df.sortWithinPartitions(*sort_by)
    df.write.mode("overwrite").parquet(path)


def write_empty(spark: SparkSession, schema, path: str) -> None:
    """An empty but readable Parquet folder (so downstream readers see the schema)."""
    spark.createDataFrame([], schema).coalesce(1).write.mode("overwrite").parquet(path)


def missing_output(path: str):
    """The one error for a stage output that is not there (Spark's reader or pyarrow's)."""
    from codecorpus.core.errors import UserError

    return UserError(f"missing stage output {path}: run the stage that makes it first")


def read_parquet(spark: SparkSession, path: str) -> DataFrame:
    if not fs.exists(path):
        raise missing_output(path)
    return spark.read.parquet(path)
