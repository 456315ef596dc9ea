"""The one place a SparkSession is made.

Jobs call `get_spark(app)` and never set the master: spark-submit decides it, so local mode and
clusters run the same code. Tests and benchmarks call `local_session(app, master, conf)`, the
same factory with a local master and their own settings on top.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Settings every stage relies on; spark-defaults.conf may set more, but these must hold.
REQUIRED_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.compression.codec": "zstd",
}
# A session started from Python (tests, benchmarks): no UI, no progress bars.
LOCAL_CONF = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
DEFAULTS_FILE = Path(__file__).resolve().parents[3] / "conf" / "spark-defaults.conf"


def get_spark(app_name: str = "codecorpus", *, master: str | None = None, conf: dict[str, str] | None = None):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in {**(conf or {}), **REQUIRED_CONF}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in REQUIRED_CONF.items():
        spark.conf.set(key, value)
    return spark


def spark_defaults(path: Path = DEFAULTS_FILE) -> dict[str, str]:
    """conf/spark-defaults.conf as spark-submit.sh passes it (for sessions started from Python)."""
    out = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        parts = line.split(None, 1)
        if len(parts) == 2 and not parts[0].startswith("#"):
            out[parts[0]] = parts[1].split(" #")[0].strip()
    return out


def local_session(app_name: str, master: str = "local[2]", conf: dict[str, str] | None = None):
    """A local session for tests and benchmarks; executors run this Python."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    spark = get_spark(app_name, master=master, conf={**(conf or {}), **LOCAL_CONF})
    spark.sparkContext.setLogLevel("ERROR")
    return spark
