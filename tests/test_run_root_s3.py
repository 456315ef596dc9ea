"""A run root on S3: a real S3-compatible server (moto's, on 127.0.0.1, checking signatures).
This Spark has no S3 connector, so every Parquet output is written and read by the executors with
pyarrow (io.arrow_source), and every marker, JSON file, tokenizer and plot goes through io.fs.
The whole CPU pipeline on the bucket gives what it gives on local disk, stage by stage, as
jobs/verify.py judges it."""
from __future__ import annotations

from cluster import pipeline_args
from conftest import BUCKET

from codecorpus.core.registry import STAGES
from codecorpus.core.stage import load_counts
from codecorpus.core.verify import compare_runs
from codecorpus.io import fs, uri


def test_the_pipeline_on_an_s3_root_equals_the_local_run(spark, local_run, small_corpus, s3_env, s3_server):
    from pipeline import main

    root = f"s3://{BUCKET}/runs/small"
    assert main(pipeline_args(small_corpus, root)) == 0
    differences, compared = compare_runs(spark, str(local_run), root)
    assert differences == [] and compared >= 10
    for stage in STAGES:
        remote, local = load_counts(root, stage), load_counts(str(local_run), stage)
        assert (remote.rows_in, remote.rows_out, remote.dropped) == (local.rows_in, local.rows_out, local.dropped)
    names = {e.relative for e in uri.walk(root)}
    assert not [n for n in names if n.startswith("_tmp/")], "a stage left its temporary prefix"
    assert {"report/index.html", "report/summary.json", "tokenizer/tokenizer.json", "dataset/README.md",
            "dataset/train/_SUCCESS"} <= names
    assert len([n for n in names if n.startswith("report/") and n.endswith(".png")]) >= 4
    for name in names:  # nothing written holds the credentials
        if name.endswith((".json", ".html", ".md")):
            assert s3_server["secret"] not in fs.read_bytes(f"{root}/{name}").decode()


def test_a_rerun_on_s3_skips_the_complete_stages(spark, small_corpus, s3_env):
    from pipeline import main

    root = f"s3://{BUCKET}/runs/small"
    before = {s: fs.read_bytes(f"{root}/_stages/{s}.json") for s in STAGES}
    assert main(pipeline_args(small_corpus, root)) == 0
    assert {s: fs.read_bytes(f"{root}/_stages/{s}.json") for s in STAGES} == before


def test_an_output_its_marker_does_not_vouch_for_is_not_read(spark, small_corpus, s3_env, capsys):
    """As if the run died while dedup's objects were being copied into place: no marker, so
    split refuses to read what is there (and a rerun of dedup starts it over)."""
    import split

    root = f"s3://{BUCKET}/runs/small"
    fs.remove(f"{root}/_stages/dedup.json")
    assert split.main([*pipeline_args(small_corpus, root), "--force"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: input {root}/dedup is not vouched for by a finished dedup (no {root}/_stages/dedup.json): "
        "run dedup first")


def test_a_missing_bucket_or_bad_credentials_for_the_run_root_is_one_line(small_corpus, s3_env, s3_server, capsys):
    from ingest import main

    def error(root: str) -> str:
        assert main(["--set", f"input={small_corpus}", "--set", f"output={root}"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return err.strip().splitlines()[-1]

    assert error("s3://no-such-bucket/run") == (
        "error: cannot create s3://no-such-bucket/run: Bucket 'no-such-bucket' not found.")
    s3_env(AWS_SECRET_ACCESS_KEY="not-the-secret")
    line = error(f"s3://{BUCKET}/runs/denied")
    assert line.startswith(f"error: cannot read s3://{BUCKET}/runs/denied/") and "ACCESS_DENIED" in line
    assert "not-the-secret" not in line and s3_server["secret"] not in line


def test_publish_asks_for_a_local_copy_of_a_run_on_a_store():
    import pytest

    from codecorpus.core.config import load_config
    from codecorpus.core.errors import UserError
    from codecorpus.publish.plan import plan_publish

    cfg = load_config(overrides=[f"output=s3://{BUCKET}/runs/small", "publish.dataset_repo=me/code"])
    with pytest.raises(UserError, match="publish reads the run from local disk"):
        plan_publish(cfg)
