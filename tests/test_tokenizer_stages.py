"""The tokenizer stages under Spark: the seeded sample, train_tokenizer and eval_tokenizer through
their jobs, the report section, --bytemap, and user errors."""
from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest
from codecorpus.tokenizer.sample import sample_stream

STD = Path(sysconfig.get_paths()["stdlib"])


def _job(name: str):
    """jobs/<name>.py's main (conftest puts jobs/ on the path)."""
    import importlib

    return importlib.import_module(name).main


def _rows(packages: list[str], start_id: int) -> list[dict]:
    files = sorted(p for pkg in packages for p in (STD / pkg).glob("*.py"))
    return [{"id": start_id + i, "repo_name": f"python/{p.parent.name}", "path": p.name,
             "content": p.read_text(encoding="utf-8")} for i, p in enumerate(files)]


@pytest.fixture(scope="module")
def run_root(spark, tmp_path_factory) -> Path:
    """<root>/dataset/{train,valid} as the split stage writes them (tiny: stdlib packages)."""
    root = tmp_path_factory.mktemp("tokrun")
    train = _rows(["json", "email", "unittest"], 0) + [
        {"id": 900, "repo_name": "r", "path": "empty.py", "content": ""},
        {"id": 901, "repo_name": "r", "path": "null.py", "content": None}]
    valid = _rows(["asyncio"], 1000)
    schema = "id long, repo_name string, path string, content string"
    spark.createDataFrame(train, schema).repartition(3).write.parquet(str(root / "dataset" / "train"))
    spark.createDataFrame(valid, schema).repartition(2).write.parquet(str(root / "dataset" / "valid"))
    return root


def test_sample_is_seeded_and_partition_free(spark, run_root, tmp_path):
    import numpy as np
    from codecorpus.core.xxhash64 import spark_xxhash64

    train = str(run_root / "dataset" / "train")
    df = spark.read.parquet(train)
    total = df.where("content <> ''").count()
    df.repartition(1).write.parquet(str(tmp_path / "one"))
    df.repartition(5).write.parquet(str(tmp_path / "five"))
    a = list(sample_stream(spark, str(tmp_path / "one"), 20, 42, 1000, str(tmp_path / "s")))
    b = list(sample_stream(spark, str(tmp_path / "five"), 20, 42, 1000, str(tmp_path / "s"), tasks=3))
    assert sorted(a) == sorted(b) and len(a) == 20 and max(len(t) for t in a) <= 1000
    # exactly the 20 non-empty files with the smallest (key, id), cut to 1000 characters
    rows = [r for r in df.collect() if r["content"]]
    keys = spark_xxhash64(42, np.array([r["id"] for r in rows], np.int64)).tolist()
    smallest = [r for _, r in sorted(zip(keys, rows), key=lambda kr: (kr[0], kr[1]["id"]))[:20]]
    assert sorted(a) == sorted(r["content"][:1000] for r in smallest)
    everything = sample_stream(spark, train, 10_000, 42, 10**6, str(tmp_path / "s"))
    texts = list(everything)
    assert len(texts) == total and "" not in texts and everything.files == total  # empty and null skipped
    assert everything.bytes == sum(len(t.encode()) for t in texts)
    one_file = next(p for p in (tmp_path / "one").iterdir() if p.suffix == ".parquet")
    assert sorted(sample_stream(spark, str(one_file), 20, 42, 1000, str(tmp_path / "s"))) == sorted(a)  # one file
    assert not (tmp_path / "s").exists()  # the scratch parts are gone once read


def test_sample_moves_the_cut_past_empty_files(spark, tmp_path):
    import numpy as np
    from codecorpus.core.xxhash64 import spark_xxhash64

    rows = [(i, "" if i % 4 else f"text {i}") for i in range(400)]  # three in four files are empty
    spark.createDataFrame(rows, "id long, content string").repartition(3).write.parquet(str(tmp_path / "d"))
    stream = sample_stream(spark, str(tmp_path / "d"), 30, 7, 100, str(tmp_path / "s"))
    got = sorted(stream)
    full = [(k, i, t) for k, (i, t) in zip(spark_xxhash64(7, np.array([i for i, _ in rows])).tolist(), rows) if t]
    assert got == sorted(t for _, _, t in sorted(full)[:30]) and stream.expected == 30
    assert sorted(sample_stream(spark, str(tmp_path / "d"), 500, 7, 100, str(tmp_path / "s"))) == sorted(
        t for _, _, t in full)  # more asked than there are: all of them


def test_sample_counts_characters_not_bytes(spark, tmp_path):
    texts = ["é" * 10 + "x", "日本語" * 5, "ab😀cd" * 3]
    spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "id long, content string").write.parquet(
        str(tmp_path / "d"))
    got = sorted(sample_stream(spark, str(tmp_path / "d"), 10, 1, 4, str(tmp_path / "s")))
    assert got == sorted(t[:4] for t in texts)  # as Spark's substring(content, 1, 4) cuts them


def test_sample_input_errors_are_clear(spark, tmp_path):
    from codecorpus.core.errors import EmptyInput, UserError

    spark.createDataFrame([(1, "x")], "id long, text string").write.parquet(str(tmp_path / "bad"))
    with pytest.raises(UserError, match="lacks column.*content"):
        sample_stream(spark, str(tmp_path / "bad"), 5, 1, 10, str(tmp_path / "s"))
    spark.createDataFrame([(1, "")], "id long, content string").write.parquet(str(tmp_path / "empty"))
    with pytest.raises(EmptyInput):
        sample_stream(spark, str(tmp_path / "empty"), 5, 1, 10, str(tmp_path / "s"))
    with pytest.raises(UserError, match="missing stage output"):
        sample_stream(spark, str(tmp_path / "nothing"), 5, 1, 10, str(tmp_path / "s"))


def test_train_and_eval_stages(spark, run_root, tmp_path, capsys):
    from codecorpus.core.config import load_config
    from codecorpus.core.stage import load_counts
    from codecorpus.report.render import ReportContext
    from codecorpus.report.tokenizer import section
    from transformers import AutoTokenizer
    eval_main, train_main = _job("eval_tokenizer"), _job("train_tokenizer")

    root = str(run_root)
    common = ["--set", f"output={root}", "--set", "tokenizer.vocab_size=600", "--set", "tokenizer.n_examples=30"]
    assert train_main(common) == 0
    tok = AutoTokenizer.from_pretrained(f"{root}/tokenizer")
    assert len(tok) == 600 and tok.eos_token == tok.pad_token == "<|endoftext|>"
    info = json.loads(Path(root, "tokenizer", "training.json").read_text())
    assert info["sample"]["files"] == 30 and info["driver_peak_rss_mb"] > 0
    assert load_counts(root, "train_tokenizer").rows_out == 30

    # a baseline trained by the same stage on other text (as the prose baseline is made)
    prose = tmp_path / "prose"
    spark.createDataFrame([{"id": i, "content": f"The {w} of a story is told in plain words, number {i}.\n" * 20}
                           for i, w in enumerate(["start", "middle", "end", "moral"] * 10)],
                          "id long, content string").write.parquet(str(prose / "docs"))
    assert train_main(["--set", f"output={prose}", "--set", f"tokenizer.train_input={prose}/docs",
                       "--set", "tokenizer.vocab_size=400", "--set", "tokenizer.model=unigram"]) == 0

    assert eval_main(common + ["--set", "tokenizer.eval_files=15", "--set",
                               f"tokenizer.baselines=prose={prose}/tokenizer,{root}/tokenizer"]) == 0
    data = json.loads(Path(root, "tokenizer_eval", "metrics.json").read_text())
    names = [t["name"] for t in data["tokenizers"]]
    assert names == ["ours", "prose", Path(root).name] and data["valid_files"] == 15
    ours, prose_m, same = (t["metrics"] for t in data["tokenizers"])
    assert ours == same  # the same tokenizer given as a baseline judges the same
    assert ours["chars_per_token"] > prose_m["chars_per_token"]  # code-trained wins on code
    assert data["tokenizers"][1]["model"] == "Unigram"

    html = section(ReportContext(cfg=load_config(None, [f"output={root}"]), root=root, folder=str(tmp_path)))
    assert "fertility" in html and "<code>def</code>" in html and "prose" in html

    capsys.readouterr()
    assert eval_main(["--bytemap"]) == 0
    assert "10 0a Ċ" in capsys.readouterr().out


def test_user_errors_are_one_line(spark, tmp_path, capsys):
    eval_main, train_main = _job("eval_tokenizer"), _job("train_tokenizer")

    assert train_main(["--set", f"output={tmp_path}"]) == 2
    assert "dataset/train" in capsys.readouterr().err
    assert eval_main(["--set", f"output={tmp_path}"]) == 2
    assert "run train_tokenizer first" in capsys.readouterr().err
    assert train_main(["--set", f"output={tmp_path}", "--set", "tokenizer.n_examples=0"]) == 2
    assert "tokenizer.n_examples" in capsys.readouterr().err
