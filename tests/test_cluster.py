"""The whole CPU pipeline through spark-submit.sh, on local masters and on a real standalone
cluster (a master and two one-core workers on 127.0.0.1): faults, crashes, re-runs, topology.

Slow (several full pipeline runs): `make test-cluster`, never `make test`. Every run is compared
with one clean local[2] run through a fingerprint of its outputs: per-row hashes of every
Parquet folder (not file bytes), each stage's counts without timings, and the tokenizer.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil

import pytest
from cluster import (
    fingerprint_diff,
    kill_busy_executor,
    pipeline_args,
    run_fingerprint,
    standalone_cluster,
    start_job,
    stray_temp_files,
    wait_until,
)
from codecorpus.core.registry import STAGES
from conftest import write_shard

pytestmark = pytest.mark.cluster

RUN_TIMEOUT = 1500  # seconds for one pipeline run on a busy two-core machine


def run_pipeline(log, corpus, out, *extra, **kw) -> str:
    job = start_job("pipeline.py", pipeline_args(corpus, out, *extra), log, **kw)
    rc = job.wait(RUN_TIMEOUT)
    assert rc == 0, job.output()[-4000:]
    return job.output()


def stage_files(root) -> dict[str, float]:
    """Every file of a run root with its modification time."""
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


def assert_no_partial_stage(root, crashed: str) -> None:
    """The crashed stage left no output and no marker; each stage with a marker is whole."""
    assert not (root / "_stages" / f"{crashed}.json").exists()
    for name in STAGES[crashed].outputs:
        assert not (root / name).exists(), f"{crashed} left {name}/ behind"
    for stage in STAGES:
        if (root / "_stages" / f"{stage}.json").exists():
            for name in STAGES[stage].outputs:
                assert (root / name / "_SUCCESS").exists(), f"{stage} is marked complete without {name}/"


@pytest.fixture(scope="module")
def corpus(small_corpus, tmp_path_factory):
    """small_corpus plus a shard of exact and near copies of its files (so that clean and dedup
    have decisions to get right) and two broken lines (so that quarantine has rows)."""
    out = tmp_path_factory.mktemp("corpus")
    shards = sorted(small_corpus.glob("*.json.gz"))
    for shard in shards:
        shutil.copy(shard, out)
    rows = sorted((json.loads(line) for s in shards for line in gzip.open(s)), key=lambda r: r["repo_name"])
    extra: list = []
    for i, r in enumerate(rows):
        if i % 5 == 0:
            content = r["content"] + "\n# vendored copy\nPATCHED = True\n"
            extra.append({**r, "repo_name": f"vendor/{r['repo_name']}", "content": content,
                          "size": str(len(content.encode()))})
        if i % 7 == 0:
            extra.append({**r, "repo_name": f"mirror/{r['repo_name']}"})
    extra += [b"{not json", {"repo_name": "x/y", "path": "no_content.py"}]
    write_shard(out / "file-000000000004.json.gz", extra)
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with standalone_cluster(tmp_path_factory.mktemp("cluster"), workers=2, cores=1, memory="1g") as c:
        yield c


@pytest.fixture(scope="module")
def reference(spark, corpus, tmp_path_factory):
    """One clean local[2] run: its root and fingerprint."""
    out = tmp_path_factory.mktemp("reference") / "out"
    run_pipeline(out.parent / "run.log", corpus, out, master="local[2]")
    return out, run_fingerprint(spark, out)


def test_reference_run_covers_every_stage(reference):
    out, fp = reference
    assert {k.split(":", 1)[1] for k in fp if k.startswith("counts:")} == set(STAGES)
    # the data the issue names: rows, the split, the dedup decisions, the tokens
    for folder in ("ingest", "clean", "dedup", "dedup_removed", "dataset/train", "dataset/valid"):
        assert f"parquet:{folder}" in fp, sorted(fp)
    assert any(k.startswith("parquet:tokens") for k in fp), sorted(fp)
    assert fp["parquet:dataset/valid"], "the valid split is empty: the comparison would prove little"
    # ... and decisions that could go either way: which copy survives, which near-duplicate goes
    counts = {k.split(":", 1)[1]: v for k, v in fp.items() if k.startswith("counts:")}
    assert counts["ingest"]["quarantined"] == 2
    assert counts["clean"]["dropped"]["exact_duplicate"] > 0
    assert counts["dedup"]["dropped"]["near_duplicate"] > 0


def test_rerun_does_no_work_and_force_redoes_it_identically(spark, corpus, reference, tmp_path):
    out, fp = reference
    before = stage_files(out)
    log = run_pipeline(tmp_path / "rerun.log", corpus, out, master="local[2]")
    assert stage_files(out) == before, "a re-run of a complete pipeline changed files"
    for stage in STAGES:
        assert f"[{stage}] already complete" in log
    assert not re.search(r"^\[\w+\] in=", log, re.M), "a stage ran again"

    log = run_pipeline(tmp_path / "force.log", corpus, out, "--force", master="local[2]")
    for stage in STAGES:
        assert re.search(rf"^\[{stage}\] in=", log, re.M), f"--force did not redo {stage}"
        assert os.path.getmtime(out / "_stages" / f"{stage}.json") > before[f"_stages/{stage}.json"]
    # idempotence: the second full run over the same input holds the same rows, row for row
    assert fingerprint_diff(run_fingerprint(spark, out), fp) == []


def test_driver_killed_mid_write_leaves_no_partial_stage(spark, corpus, reference, tmp_path):
    out = tmp_path / "out"
    args = dict(master="local[2]")

    # 1. crash while ingest's executors write their Parquet files (one per shard)
    job = start_job("pipeline.py", pipeline_args(corpus, out), tmp_path / "crash-ingest.log", **args)
    wait_until(lambda: any((out / "_tmp" / "ingest" / "ingest").glob("*.parquet")), job, RUN_TIMEOUT,
               "ingest writing Parquet")
    job.kill()
    assert_no_partial_stage(out, "ingest")

    # 2. re-run; crash again while clean's Spark write is in flight (its _temporary folder)
    job = start_job("pipeline.py", pipeline_args(corpus, out), tmp_path / "crash-clean.log", **args)
    wait_until(lambda: any((out / "_tmp" / "clean").glob("*/_temporary")), job, RUN_TIMEOUT,
               "clean writing Parquet")
    job.kill()
    assert_no_partial_stage(out, "clean")
    assert (out / "_stages" / "ingest.json").exists() and (out / "_stages" / "stats.json").exists()

    # 3. a re-run skips what is complete and finishes the rest, with the reference's output
    log = run_pipeline(tmp_path / "finish.log", corpus, out, **args)
    assert "[ingest] already complete" in log and "[stats] already complete" in log
    assert re.search(r"^\[clean\] in=", log, re.M)
    assert fingerprint_diff(run_fingerprint(spark, out), reference[1]) == []
    assert stray_temp_files(out) == []


def test_executor_killed_mid_stage_job_succeeds_with_same_output(spark, corpus, reference, cluster,
                                                                tmp_path):
    out = tmp_path / "out"
    job = start_job("pipeline.py", pipeline_args(corpus, out), tmp_path / "fault.log",
                    master=cluster.master, ui=True)
    try:
        # ingest's second Spark stage parses shards and writes their Parquet files from the
        # executors, so a retried task rewrites a shard's file; dedup's second stage reads
        # shuffle output, so the lost executor's map outputs must be recomputed too
        kills = [kill_busy_executor(cluster, job, lambda: (out / "_tmp" / "ingest").exists(), after_stages=1),
                 kill_busy_executor(cluster, job, lambda: (out / "_tmp" / "dedup").exists(), after_stages=1)]
        rc = job.wait(RUN_TIMEOUT)
    finally:
        if job.running():
            job.kill()
    log = job.output()
    assert rc == 0, log[-4000:]
    for k in kills:  # the kill hit running tasks, which Spark ran again elsewhere
        assert re.search(rf"Lost task .*executor {k['executor']}\)", log), (k, log[-4000:])
    assert fingerprint_diff(run_fingerprint(spark, out), reference[1]) == []
    # a writer killed mid-file leaves no half-written file among the published outputs
    assert stray_temp_files(out) == []


def test_local1_gives_the_same_output(spark, corpus, reference, tmp_path):
    out = tmp_path / "out"
    run_pipeline(tmp_path / "local1.log", corpus, out, master="local[1]")
    assert fingerprint_diff(run_fingerprint(spark, out), reference[1]) == []


def test_two_worker_cluster_with_packed_env_gives_the_same_output(spark, corpus, reference, cluster,
                                                                  tmp_path):
    out = tmp_path / "out"
    run_pipeline(tmp_path / "cluster.log", corpus, out, master=cluster.master, pack_env=True)
    # executors ran Python from the shipped archive (spark.pyspark.python=./environment/bin/python),
    # unpacked on both workers
    for work in ("work0", "work1"):
        pythons = list((cluster.workdir / work).glob("app-*/*/environment/bin/python"))
        assert pythons, f"no unpacked environment under {work}"
    assert fingerprint_diff(run_fingerprint(spark, out), reference[1]) == []


def test_a_run_root_on_s3_from_a_two_worker_cluster_equals_the_local_run(spark, local_run, small_corpus, s3_env,
                                                                       tmp_path):
    """Executors in their own JVMs and Python workers write the run's files to the S3 server
    (credentials from the environment the workers were started with, as on a cluster node)."""
    from cluster import spark_submit
    from conftest import BUCKET

    from codecorpus.core.verify import compare_runs

    root = f"s3://{BUCKET}/runs/cluster"
    with standalone_cluster(tmp_path, workers=2, cores=1) as s3_cluster:
        done = spark_submit("pipeline.py", pipeline_args(small_corpus, root), master=s3_cluster.master,
                            timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-4000:]
    differences, compared = compare_runs(spark, str(local_run), root)
    assert differences == [] and compared >= 10
