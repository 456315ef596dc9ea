"""End to end on a real (small) corpus: make_corpus -> every CPU stage -> datasets loads the split;
and the same job on a real standalone master + worker gives the same rows as local mode."""
from __future__ import annotations

import os
import re

import pytest
from cluster import row_digests, spark_submit, standalone_cluster
from codecorpus.core.registry import STAGES
from codecorpus.core.stage import load_counts

SMALL = ["tokenizer.vocab_size=1000", "tokenizer.n_examples=300", "tokenizer.eval_files=50",
         "tokens.seq_length=256", "split.valid_fraction=0.2"]


def pipeline_args(corpus, out) -> list[str]:
    args = ["--set", f"input={corpus}", "--set", f"output={out}"]
    for s in SMALL:
        args += ["--set", s]
    return args


@pytest.fixture(scope="module")
def local_run(spark, small_corpus, tmp_path_factory):
    from pipeline import main

    out = tmp_path_factory.mktemp("local") / "out"
    assert main(pipeline_args(small_corpus, out)) == 0
    return out


def test_every_stage_completes_and_accounts_for_rows(local_run):
    counts = {s: load_counts(str(local_run), s) for s in STAGES}
    assert all(c is not None for c in counts.values()), [s for s, c in counts.items() if c is None]
    for c in counts.values():
        assert c.rows_in == c.rows_out + sum(c.dropped.values()) + c.quarantined
    # the data chain hands its rows on: each stage starts with what the previous kept
    assert counts["clean"].rows_in == counts["ingest"].rows_out
    assert counts["dedup"].rows_in == counts["clean"].rows_out
    assert counts["split"].rows_in == counts["dedup"].rows_out
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


def test_standalone_cluster_output_equals_local_mode(spark, local_run, small_corpus, tmp_path):
    out = tmp_path / "cluster-out"
    with standalone_cluster(tmp_path, workers=1, cores=2) as cluster:
        done = spark_submit("pipeline.py", pipeline_args(small_corpus, out), master=cluster.master)
    assert done.returncode == 0, done.stderr[-3000:]
    for folder in ("ingest", "dataset/train", "dataset/valid"):
        assert row_digests(spark, str(out / folder)) == row_digests(spark, str(local_run / folder)), folder
