"""End to end on a real (small) corpus: make_corpus -> every CPU stage -> datasets loads the split;
and the same job on a real standalone master + worker gives the same rows as local mode."""
from __future__ import annotations

import os
import re
import shutil

from cluster import pipeline_args, spark_submit, standalone_cluster

from codecorpus.core.registry import STAGES
from codecorpus.core.stage import load_counts
from codecorpus.core.verify import compare_runs


def test_every_stage_completes_and_the_chain_hands_its_rows_on(local_run):
    counts = {s: load_counts(str(local_run), s) for s in STAGES}
    assert all(c is not None for c in counts.values()), [s for s, c in counts.items() if c is None]
    # run_stage checks in = out + dropped + quarantined per stage; what it cannot see is the
    # hand-over: each data stage starts with exactly what the previous one kept
    assert counts["clean"].rows_in == counts["ingest"].rows_out
    assert counts["dedup"].rows_in == counts["clean"].rows_out
    assert counts["split"].rows_in == counts["dedup"].rows_out
    assert counts["tokens"].rows_in == counts["split"].rows_out
    assert counts["stats"].rows_in == counts["ingest"].rows_out
    assert counts["split"].extra["repos_in_both_splits"] == 0
    assert (local_run / "dataset" / "train" / "_SUCCESS").exists()


def test_datasets_memory_maps_and_streams_the_split(local_run, tmp_path):
    from datasets import load_dataset

    ds = load_dataset(str(local_run / "dataset"), cache_dir=str(tmp_path / "hf"))
    split = load_counts(str(local_run), "split").extra["splits"]
    assert ds["train"].num_rows == split["train"]["files"]
    assert ds["valid"].num_rows == split["valid"]["files"] > 0
    assert ds["train"].cache_files, "expected an Arrow cache file that is memory-mapped"
    assert type(ds["train"].data).__name__ == "MemoryMappedTable"
    stream = load_dataset(str(local_run / "dataset"), streaming=True, cache_dir=str(tmp_path / "hf"))
    first = next(iter(stream["train"]))
    assert set(first) >= {"repo_name", "path", "content", "license", "copies", "size"}
    assert isinstance(first["size"], int)


def test_report_has_plots_and_sections(local_run):
    html = (local_run / "report" / "index.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) >= 4
    for img in images:
        assert (local_run / "report" / img).stat().st_size > 1000
    for section in ("Stages", "stats", "split"):
        assert f'id="{section}"' in html
    assert "class='error'" not in html


def test_rerun_skips_complete_stages(spark, local_run, small_corpus, capsys):
    from pipeline import main

    before = {s: os.path.getmtime(local_run / "_stages" / f"{s}.json") for s in STAGES}
    assert main(pipeline_args(small_corpus, local_run)) == 0
    after = {s: os.path.getmtime(local_run / "_stages" / f"{s}.json") for s in STAGES}
    assert before == after


def test_standalone_cluster_and_local_1_equal_local_2(spark, local_run, small_corpus, tmp_path):
    """Same input and config: a real standalone cluster and local[1] give what local[2] gave,
    stage by stage, as jobs/verify.py judges it."""
    out = tmp_path / "cluster-out"
    with standalone_cluster(tmp_path, workers=1, cores=2) as cluster:
        done = spark_submit("pipeline.py", pipeline_args(small_corpus, out), master=cluster.master)
    assert done.returncode == 0, done.stderr[-3000:]
    one = tmp_path / "local1-out"
    done = spark_submit("pipeline.py", pipeline_args(small_corpus, one), master="local[1]")
    assert done.returncode == 0, done.stderr[-3000:]
    for other in (out, one):
        differences, compared = compare_runs(spark, str(local_run), str(other))
        assert differences == [] and compared >= 10
    done = spark_submit("verify.py", [str(local_run), str(one)])
    assert done.returncode == 0 and "the runs agree" in done.stdout, done.stderr[-2000:]


def test_verify_names_the_first_stage_that_differs(spark, local_run, small_corpus, tmp_path):
    """Another clean.seed draws other files for the probabilistic filters: clean differs."""
    import clean

    other = tmp_path / "seed7"
    (other / "_stages").mkdir(parents=True)
    for stage in ("ingest", "stats"):  # the same first stages, so clean is the first to differ
        shutil.copytree(local_run / stage, other / stage)
        shutil.copy(local_run / "_stages" / f"{stage}.json", other / "_stages" / f"{stage}.json")
    assert clean.main([*pipeline_args(small_corpus, other), "--set", "clean.seed=7"]) == 0
    differences, _ = compare_runs(spark, str(local_run), str(other))
    assert differences and differences[0].startswith("stage clean differs: clean: rows")
    assert "differing ids: [" in differences[0]
    assert load_counts(str(other), "clean").digests["clean"] != load_counts(str(local_run), "clean").digests["clean"]
