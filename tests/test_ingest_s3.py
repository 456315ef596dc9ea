"""Ingest from S3: a real S3-compatible server (moto's, in its own process on 127.0.0.1) that
checks signatures, and the same rows as ingesting the same shards from disk."""
from __future__ import annotations

import base64
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from codecorpus.core.config import load_config
from codecorpus.core.registry import run_one
from conftest import record, write_shard

BUCKET = "corpus"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(endpoint: str, proc: subprocess.Popen) -> None:
    import requests

    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}")
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start")


@pytest.fixture(scope="module")
def s3_server():
    """A moto S3 server with one IAM user allowed s3:*, and signature checks switched on."""
    import boto3
    import requests

    endpoint = f"http://127.0.0.1:{_free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", endpoint.rsplit(":", 1)[1]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(endpoint, proc)
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
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_env(s3_server, spark, monkeypatch):
    """Point the driver and the executors at the server through the standard AWS variables.
    A local session's Python workers are started by the JVM, with the environment the JVM got
    when it started; `SparkContext.environment` is what Spark adds to it for the workers it
    starts from now on (on a cluster the executors' own environment would carry these)."""
    def use(**env: str) -> None:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
            monkeypatch.setitem(spark.sparkContext.environment, k, v)

    use(AWS_ENDPOINT_URL=s3_server["endpoint"], AWS_REGION=REGION, AWS_ACCESS_KEY_ID=s3_server["key"],
        AWS_SECRET_ACCESS_KEY=s3_server["secret"])
    return use


def _shards(folder: Path) -> Path:
    rng = random.Random(7)
    # Incompressible content: this shard is larger than one read (4 MiB), so it streams over
    # several ranged requests.
    noise = [record(path=f"n{i}.py", content=base64.b64encode(rng.randbytes(45000)).decode()) for i in range(130)]
    write_shard(folder / "file-000.json.gz", [record(path=f"f{i}.py", content=f"v = {i}\n") for i in range(50)]
                + ["{oops", ""] + noise)
    write_shard(folder / "nested" / "file-001.json.gz", [record(path="big.py", content="y" * 9_000_000),
                                                         record(path="z.py")])
    (folder / "file-002.jsonl").write_bytes(b'{"repo_name": "r", "path": "p.py", "content": "x"}\n[1]')
    write_shard(folder / "_hidden" / "skip.json.gz", [record()])
    return folder


def _upload(folder: Path, prefix: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=REGION)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(folder)}")


def _rows(root: str, kind: str):
    return pq.read_table(f"{root}/{kind}").sort_by([("shard", "ascending"), ("line", "ascending")])


def test_ingest_from_s3_gives_the_rows_of_disk(spark, tmp_path, s3_env):
    local = _shards(tmp_path / "shards")
    _upload(local, "dump/v1")
    runs = {}
    for name, source in [("disk", str(local)), ("s3", f"s3://{BUCKET}/dump/v1"), ("s3a", f"s3a://{BUCKET}/dump/v1/")]:
        out = str(tmp_path / name)
        runs[name] = run_one(spark, load_config(overrides=[f"input={source}", f"output={out}"]), "ingest"), out
    disk, s3 = runs["disk"], runs["s3"]
    assert disk[0].rows_out == 50 + 130 + 1 + 1 and disk[0].extra["shards"] == 3
    for counts, out in (runs["s3"], runs["s3a"]):
        for key in ("rows_in", "rows_out", "quarantined", "extra"):
            assert getattr(counts, key) == getattr(disk[0], key), key
        for kind in ("ingest", "quarantine"):
            assert _rows(out, kind).equals(_rows(disk[1], kind)), kind
    assert sorted(_rows(s3[1], "quarantine").column("reason").to_pylist()) == [
        "blank_line", "malformed_json", "not_an_object", "too_large"]


def test_missing_bucket_and_bad_credentials_are_one_line(spark, tmp_path, s3_env, s3_server, capsys):
    from ingest import main

    def error(source: str) -> str:
        assert main(["--set", f"input={source}", "--set", f"output={tmp_path / 'o'}"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return err.strip().splitlines()[-1]

    assert error("s3://no-such-bucket/dump") == "error: input not found: s3://no-such-bucket/dump"
    assert error(f"s3://{BUCKET}/no/such/prefix").startswith("error: input not found")
    s3_env(AWS_SECRET_ACCESS_KEY="not-the-secret")
    line = error(f"s3://{BUCKET}/dump")
    assert line.startswith(f"error: cannot read s3://{BUCKET}/dump: ") and "ACCESS_DENIED" in line
    assert "not-the-secret" not in line and s3_server["secret"] not in line
