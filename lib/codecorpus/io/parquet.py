"""Parquet reading and writing of stage outputs as DataFrames: the one reader and writer every
stage uses, on any run root.

Where the running Spark serves the path's scheme itself (a local path, file://, hdfs://, and
s3a:// or gs:// where their Hadoop connectors are installed), Spark's own Parquet reader and writer
do the work. Otherwise (s3:// with no connector, as here) the executors read and write the files
with pyarrow through `io.arrow_source`. The Spark setting `spark.codecorpus.parquet` = `arrow`
takes that path everywhere (tests compare the two on local disk); `auto` is the default.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from codecorpus.io import fs, uri

ENGINE_CONF = "spark.codecorpus.parquet"


def missing_output(path: str):
    """The one error for a stage output that is not there (Spark's reader or pyarrow's)."""
    from codecorpus.core.errors import UserError

    return UserError(f"missing stage output {path}: run the stage that makes it first")


def spark_serves(spark: SparkSession, path: str) -> bool:
    """Whether Spark's own Parquet reader and writer can reach `path` (and are to be used)."""
    if spark.conf.get(ENGINE_CONF, "auto") == "arrow":
        return False
    scheme = uri.scheme_of(path)
    return scheme in ("", "file") or _hadoop_has(spark, scheme)


_HADOOP_SCHEMES: dict[str, bool] = {}  # scheme -> whether this process's Hadoop has a FileSystem for it


def _hadoop_has(spark: SparkSession, scheme: str) -> bool:
    """Ask Hadoop (in the driver's JVM) for a FileSystem class for `scheme`, once per scheme."""
    if scheme not in _HADOOP_SCHEMES:
        try:
            spark.sparkContext._jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(
                scheme, spark.sparkContext._jsc.hadoopConfiguration())
            _HADOOP_SCHEMES[scheme] = True
        except Exception:  # noqa: BLE001 - py4j's own error type for "No FileSystem for scheme"
            _HADOOP_SCHEMES[scheme] = False
    return _HADOOP_SCHEMES[scheme]


def _arrow_format(spark: SparkSession) -> str:
    from codecorpus.io import arrow_source

    arrow_source.register(spark)
    return arrow_source.NAME


def read_parquet(spark: SparkSession, path: str) -> DataFrame:
    if not fs.exists(path):
        raise missing_output(path)
    if spark_serves(spark, path):
        return spark.read.parquet(path)
    return spark.read.format(_arrow_format(spark)).load(path)


def write_parquet(df: DataFrame, path: str, *, files: int | None = None, sort_by: list[str] | None = None,
                  split_by: str | None = None, zstd_level: int | None = None) -> None:
    """Write `df` as Parquet; `files` fixes the number of output files. With `sort_by`, rows go to
    files by a hash of those columns and are sorted inside each file, so reruns (on any
    cluster shape) write the same rows into the same files in the same order. `split_by` writes
    each value of that column into its own `<column>=<value>/` folder (Spark's partitionBy)."""
    if files is not None:
        df = df.repartition(files, *sort_by) if sort_by else df.repartition(files)
    if sort_by:
        df = df.sortWithinPartitions(*sort_by)
    spark = df.sparkSession
    writer = df.write.mode("overwrite")
    if spark_serves(spark, path):
        if zstd_level is not None:
            writer = writer.option("parquet.compression.codec.zstd.level", str(zstd_level))
        (writer.partitionBy(split_by) if split_by else writer).parquet(path)
        return
    writer = writer.format(_arrow_format(spark))
    if zstd_level is not None:
        writer = writer.option("zstd_level", str(zstd_level))
    if split_by:
        writer = writer.option("split_by", split_by)
    writer.save(path)


def write_empty(spark: SparkSession, schema, path: str) -> None:
    """An empty but readable Parquet folder (so downstream readers see the schema)."""
    write_parquet(spark.createDataFrame([], schema).coalesce(1), path)
