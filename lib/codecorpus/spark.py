"""The one place a SparkSession is made. The master is never set here: spark-submit (or a test
fixture) decides it, so local mode and clusters run the same code."""
from __future__ import annotations

# Settings every stage relies on; spark-defaults.conf may set more, but these must hold.
REQUIRED_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.compression.codec": "zstd",
}


def get_spark(app_name: str = "codecorpus"):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    for key, value in REQUIRED_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in REQUIRED_CONF.items():
        spark.conf.set(key, value)
    return spark
