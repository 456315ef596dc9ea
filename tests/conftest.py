"""Shared fixtures: one local[2] SparkSession for the whole test run, and small corpora."""
from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "jobs"))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    from codecorpus.core.spark import local_session

    session = local_session("codecorpus-tests", "local[2]", {
        "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2",
        "spark.sql.adaptive.enabled": "true", "spark.driver.memory": "3g",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "2048"})
    yield session
    session.stop()


def write_shard(path: Path, lines: list) -> Path:
    """A gzipped JSON-lines shard; dict items are dumped as JSON, bytes/str written as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        for item in lines:
            if isinstance(item, dict):
                f.write(json.dumps(item).encode() + b"\n")
            elif isinstance(item, bytes):
                f.write(item + b"\n")
            else:
                f.write(item.encode() + b"\n")
    return path


def record(repo: str = "acme/app", path: str = "a.py", content: str = "x = 1\n", license: str = "mit",
           copies: str = "1") -> dict:
    return {"repo_name": repo, "path": path, "copies": copies, "size": str(len(content.encode())),
            "content": content, "license": license}


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """A real corpus from a slice of the standard library (the `json`, `email`, `asyncio` and
    `unittest` packages), built with make_corpus, in 4 shards."""
    import sysconfig

    from codecorpus.tools.make_corpus import make_corpus

    std = Path(sysconfig.get_paths()["stdlib"])
    out = tmp_path_factory.mktemp("corpus")
    make_corpus([str(std / p) for p in ("json", "email", "asyncio", "unittest")], str(out), shards=4)
    return out
