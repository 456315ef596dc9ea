"""Ingest from S3: a real S3-compatible server (moto's, in its own process on 127.0.0.1) that
checks signatures, and the same rows as ingesting the same shards from disk."""
from __future__ import annotations

import os
from pathlib import Path

from codecorpus.core.config import load_config
from codecorpus.core.registry import run_one
from conftest import BUCKET, REGION, ingest_error, ingested_rows, mixed_shards


def _upload(folder: Path, prefix: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=REGION)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(folder)}")


def test_ingest_from_s3_gives_the_rows_of_disk(spark, tmp_path, s3_env):
    local = mixed_shards(tmp_path / "shards")
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
            assert ingested_rows(out, kind).equals(ingested_rows(disk[1], kind)), kind
    assert sorted(ingested_rows(s3[1], "quarantine").column("reason").to_pylist()) == [
        "blank_line", "malformed_json", "not_an_object", "too_large"]


def test_missing_bucket_and_bad_credentials_are_one_line(spark, tmp_path, s3_env, s3_server, capsys):
    def error(source: str) -> str:
        return ingest_error(source, tmp_path / "o", capsys)

    assert error("s3://no-such-bucket/dump") == "error: input not found: s3://no-such-bucket/dump"
    assert error(f"s3://{BUCKET}/no/such/prefix").startswith("error: input not found")
    s3_env(AWS_SECRET_ACCESS_KEY="not-the-secret")
    line = error(f"s3://{BUCKET}/dump")
    assert line.startswith(f"error: cannot read s3://{BUCKET}/dump: ") and "ACCESS_DENIED" in line
    assert "not-the-secret" not in line and s3_server["secret"] not in line
