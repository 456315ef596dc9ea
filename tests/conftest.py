"""Shared fixtures: one local[2] SparkSession for the whole test run, and small corpora."""
from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
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


@pytest.fixture(scope="session")
def local_run(spark, small_corpus, tmp_path_factory):
    """The whole CPU pipeline on `small_corpus`, local disk, this session (local[2])."""
    from cluster import pipeline_args
    from pipeline import main

    out = tmp_path_factory.mktemp("local") / "out"
    assert main(pipeline_args(small_corpus, out)) == 0
    return out

# ------------------------------------------------------------------ a real S3 server (moto's)

BUCKET = "corpus"
REGION = "us-east-1"


def mixed_shards(folder: Path) -> Path:
    """Shards for the remote-input tests: good rows, bad lines, a shard larger than one read
    and one too-large file, a nested folder, a plain .jsonl and a hidden folder to skip."""
    import base64
    import random

    rng = random.Random(7)
    # Incompressible content: this shard is larger than one read (4 MiB), so it is read in
    # several pieces (ranged requests from S3, one streamed answer from the Hub).
    noise = [record(path=f"n{i}.py", content=base64.b64encode(rng.randbytes(45000)).decode()) for i in range(130)]
    write_shard(folder / "file-000.json.gz", [record(path=f"f{i}.py", content=f"v = {i}\n") for i in range(50)]
                + ["{oops", ""] + noise)
    write_shard(folder / "nested" / "file-001.json.gz", [record(path="big.py", content="y" * 9_000_000),
                                                         record(path="z.py")])
    (folder / "file-002.jsonl").write_bytes(b'{"repo_name": "r", "path": "p.py", "content": "x"}\n[1]')
    write_shard(folder / "_hidden" / "skip.json.gz", [record()])
    return folder


def ingested_rows(root: str, kind: str):
    """An ingest output's rows ("ingest" or "quarantine"), in shard and line order."""
    import pyarrow.parquet as pq

    return pq.read_table(f"{root}/{kind}").sort_by([("shard", "ascending"), ("line", "ascending")])


def ingest_error(source: str, output: Path, capsys) -> str:
    """The one line jobs/ingest.py prints when it refuses `source` (exit 2, no traceback)."""
    from ingest import main

    assert main(["--set", f"input={source}", "--set", f"output={output}"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_server(name: str, argv: list[str], health: str):
    """A server process on a free 127.0.0.1 port (`argv` gets the port as `{port}`), up once
    `health` (a path) answers over HTTP; yields its endpoint and stops it afterwards."""
    import requests

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, *[a.format(port=port) for a in argv]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}")
            try:
                requests.get(endpoint + health, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{name} did not start")
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def env_setter(spark, monkeypatch):
    """`use(NAME=value, ...)`: set variables for the driver and the executors' Python workers,
    until the test ends. A local session's workers are started by the JVM, with the
    environment the JVM got when it started; `SparkContext.environment` is what Spark adds to it
    for the workers it starts from now on (on a cluster the executors' own environment would
    carry these)."""
    def use(**env: str) -> None:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
            monkeypatch.setitem(spark.sparkContext.environment, k, v)

    return use


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server with one IAM user allowed s3:*, and signature checks switched on."""
    import boto3
    import requests

    with local_server("moto server", ["-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"], "/moto-api/") as endpoint:
        setup = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": "setup",
                 "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="ingest")
        iam.put_user_policy(UserName="ingest", PolicyName="s3", PolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'))
        key = iam.create_access_key(UserName="ingest")["AccessKey"]
        boto3.client("s3", **setup).create_bucket(Bucket=BUCKET)
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=5)  # from now on, keys are checked
        yield {"endpoint": endpoint, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


@pytest.fixture
def s3_env(s3_server, spark, monkeypatch):
    """Point the driver and the executors at the server through the standard AWS variables."""
    use = env_setter(spark, monkeypatch)
    use(AWS_ENDPOINT_URL=s3_server["endpoint"], AWS_REGION=REGION, AWS_ACCESS_KEY_ID=s3_server["key"],
        AWS_SECRET_ACCESS_KEY=s3_server["secret"])
    return use


# ------------------------------------------------- a Hub stand-in (HTTP, local; tests/hub_standin.py)

HUB_TOKEN = "hf_test_token"


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory):
    """The Hub stand-in serving the repositories under its `root` (owner/name folders);
    requests must carry HUB_TOKEN."""
    root = tmp_path_factory.mktemp("hub")
    with local_server("Hub stand-in", [str(ROOT / "tests" / "hub_standin.py"), str(root), "--port", "{port}",
                                       "--token", HUB_TOKEN], "/api/datasets/a/b") as endpoint:
        yield {"endpoint": endpoint, "root": root}


@pytest.fixture
def hub_env(hub_server, spark, monkeypatch):
    """HF_ENDPOINT and HF_TOKEN for the driver and the Python workers."""
    use = env_setter(spark, monkeypatch)
    use(HF_ENDPOINT=hub_server["endpoint"], HF_TOKEN=HUB_TOKEN)
    return use


# ------------------------------------------------------------- a real GCS emulator (HTTP, local)

@pytest.fixture(scope="session")
def gcs_server():
    """gcp-storage-emulator (PyPI) on 127.0.0.1, holding one bucket, in memory."""
    with local_server("GCS emulator", ["-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port",
                                       "{port}", "--in-memory", "--default-bucket", BUCKET],
                      f"/storage/v1/b/{BUCKET}") as endpoint:
        yield endpoint


@pytest.fixture
def gcs_env(gcs_server, spark, monkeypatch):
    """STORAGE_EMULATOR_HOST for the driver and the Python workers."""
    env_setter(spark, monkeypatch)(STORAGE_EMULATOR_HOST=gcs_server)
