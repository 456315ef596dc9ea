"""A run root on GCS: the whole CPU pipeline on gs:// against a GCS emulator over HTTP on
127.0.0.1 (gcp-storage-emulator; pyarrow's GcsFileSystem through STORAGE_EMULATOR_HOST), equal
to the same run on local disk. Spark has no GCS connector here, so the Parquet outputs go
through the executors' pyarrow, as on S3 (tests/test_run_root_s3.py)."""
from __future__ import annotations

from cluster import pipeline_args
from conftest import BUCKET

from codecorpus.core.registry import STAGES
from codecorpus.core.verify import compare_runs
from codecorpus.io import uri


def test_the_pipeline_on_a_gs_root_equals_the_local_run(spark, local_run, small_corpus, gcs_env):
    from pipeline import main

    root = f"gs://{BUCKET}/runs/small"
    assert main(pipeline_args(small_corpus, root)) == 0
    differences, compared = compare_runs(spark, str(local_run), root)
    assert differences == [] and compared >= 10
    names = {e.relative for e in uri.walk(root)}
    assert not [n for n in names if n.startswith("_tmp/")]
    assert {f"_stages/{s}.json" for s in STAGES} | {"report/index.html", "tokenizer/tokenizer.json"} <= names
