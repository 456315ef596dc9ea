"""Stage `tokens` (codecorpus.stages.tokens), its packer (codecorpus.tokens) and
codecorpus.io.packed.PackedDataset, on a tiny corpus with a tiny byte-level BPE tokenizer trained here."""
from __future__ import annotations

import glob
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from codecorpus.core.config import Config
from codecorpus.core.errors import ConfigError, UserError
from codecorpus.core.registry import run_one
from codecorpus.core.stage import load_counts
from codecorpus.io import fs
from codecorpus.stages import tokens
from codecorpus.tokens import packer

EOS = "<|endoftext|>"
SEQ = 32


def make_files(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "value", "total", "count", "item", "result", "name", "data"]
    files = []
    for i in range(n):
        lines = []
        for _ in range(rng.choice([0, 1, 2, 4, 8, 16])):
            a, b = rng.sample(words, 2)
            lines.append(f"def {a}_{i}({b}):\n    return {b} + {rng.randint(0, 999)}\n")
        files.append("".join(lines))
    return files


def train_tokenizer(path: Path, texts: list[str], special: str = EOS) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=[special], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def write_dataset(spark, root: Path, files: dict[str, list], partitions: int) -> None:
    for split, contents in files.items():
        rows = [(i * 7919 + (0 if split == "train" else 10 ** 6), "acme/app", f"f{i}.py", c)
                for i, c in enumerate(contents)]
        df = spark.createDataFrame(rows, "id BIGINT, repo_name STRING, path STRING, content STRING")
        df.repartition(partitions).write.mode("overwrite").parquet(str(root / "dataset" / split))


FILES = {"train": make_files(60, 1) + [None], "valid": make_files(12, 2)}
SETTINGS = {"tokens.seq_length": SEQ, "tokens.rows_per_file": 7, "tokens.files_per_group": 20}


def run(spark, root: Path, tokenizer: Path, **changes) -> Config:
    (root / "tokenizer").mkdir(parents=True, exist_ok=True)
    shutil.copy(tokenizer, root / "tokenizer" / "tokenizer.json")
    cfg = Config().replace(output=str(root), **{**SETTINGS, **changes})
    run_one(spark, cfg, "tokens", force=True)
    return cfg


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory) -> Path:
    texts = [t for split in FILES.values() for t in split if t]
    return train_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.json", texts)


@pytest.fixture(scope="module")
def tok(tokenizer_path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer_path))


@pytest.fixture(scope="module")
def dropped_run(spark, tmp_path_factory, tokenizer_path) -> Path:
    root = tmp_path_factory.mktemp("drop")
    write_dataset(spark, root, FILES, partitions=1)
    run(spark, root, tokenizer_path)
    return root


@pytest.fixture(scope="module")
def padded_run(spark, tmp_path_factory, tokenizer_path) -> Path:
    root = tmp_path_factory.mktemp("pad")
    write_dataset(spark, root, FILES, partitions=3)
    run(spark, root, tokenizer_path, **{"tokens.remainder": "pad"})
    return root


def read_ids(root: Path, split: str, column: str = "input_ids") -> np.ndarray:
    files = sorted(glob.glob(str(root / "tokens" / split / "*.parquet")))
    return np.concatenate([np.asarray(pq.read_table(f).column(column).to_pylist(), dtype=np.int64).reshape(-1, SEQ)
                           for f in files])


def expected_groups(spark, root: Path, split: str, tok, files_per_group: int = 20) -> list[list[str]]:
    """The files of each packing group in packing order, by the stage's own group assignment."""
    df = spark.read.parquet(str(root / "dataset" / split))
    groups = max(1, -(-df.count() // files_per_group))
    rows = tokens.assign_groups(df, groups, 42).orderBy("grp", "ord", "id").select("grp", "content").collect()
    out: dict[int, list[str]] = {}
    for r in rows:
        if r["content"] is not None:
            out.setdefault(r["grp"], []).append(r["content"])
    return [out[g] for g in sorted(out)]


def stream(tok, files: list[str]) -> list[int]:
    eos = tok.token_to_id(EOS)
    ids: list[int] = []
    for f in files:
        ids += tok.encode(f, add_special_tokens=False).ids + [eos]
    return ids


# --------------------------------------------------------------------------------- drop mode

def test_every_sequence_has_seq_length_and_shards_have_target_rows(dropped_run):
    for split in ("train", "valid"):
        files = sorted(glob.glob(str(dropped_run / "tokens" / split / "*.parquet")))
        sizes = []
        for f in files:
            table = pq.read_table(f)
            assert str(table.schema.field("input_ids").type) == "list<element: uint16>"
            assert table.schema.names == ["input_ids"]
            assert set(len(r) for r in table.column("input_ids").to_pylist()) <= {SEQ}
            sizes.append(table.num_rows)
        assert sizes and all(s == 7 for s in sizes[:-1]) and 1 <= sizes[-1] <= 7
        assert [Path(f).name for f in files] == [f"part-{i:05d}.parquet" for i in range(len(files))]


def test_sequences_are_the_files_joined_by_eos_minus_each_group_tail(spark, dropped_run, tok):
    out = read_ids(dropped_run, "train")
    expected, tail_files = [], 0
    for files in expected_groups(spark, dropped_run, "train", tok):
        ids = stream(tok, files)
        kept = len(ids) // SEQ * SEQ
        expected += ids[:kept]
        # decoding the kept tokens gives the files separated by <|endoftext|>, cut where the tail begins
        text = "".join(f + EOS for f in files)
        decoded = tok.decode(ids[:kept], skip_special_tokens=False)
        assert text.startswith(decoded) and text[len(decoded):] == tok.decode(ids[kept:], skip_special_tokens=False)
        starts = np.cumsum([0] + [len(tok.encode(f, add_special_tokens=False).ids) + 1 for f in files])[:-1]
        tail_files += int((starts >= kept).sum())
    assert len(expected_groups(spark, dropped_run, "train", tok)) == 4  # 61 files / 20 per group
    assert out.reshape(-1).tolist() == expected
    meta = fs.read_json(str(dropped_run / "tokens" / "meta.json"))
    assert meta["splits"]["train"]["files_tail"] == tail_files


def test_token_counts_match_a_direct_encode(dropped_run, tok):
    meta = fs.read_json(str(dropped_run / "tokens" / "meta.json"))
    for split, contents in FILES.items():
        present = [c for c in contents if c is not None]
        s = meta["splits"][split]
        direct = sum(len(tok.encode(c, add_special_tokens=False).ids) for c in present)
        assert s["text_tokens"] == direct
        assert s["tokens"] + s["tokens_dropped"] == direct + len(present)  # + one <|endoftext|> per file
        assert s["tokens"] == s["sequences"] * SEQ == read_ids(dropped_run, split).size
        assert s["chars"] == sum(len(c) for c in present)
        assert sum(s["hist"]) == len(present)
        assert s["hist"][0] == sum(1 for c in present if len(tok.encode(c).ids) < 16)
    assert meta["seq_length"] == SEQ and meta["dtype"] == "uint16"
    assert len(meta["tokenizer"]["sha256"]) == 64
    assert meta["tokens_dropped"] == sum(s["tokens_dropped"] for s in meta["splits"].values())


def test_counts_account_for_every_file(dropped_run):
    counts = load_counts(str(dropped_run), "tokens")
    meta = fs.read_json(str(dropped_run / "tokens" / "meta.json"))
    assert counts.rows_in == sum(len(v) for v in FILES.values())
    assert counts.dropped["null_content"] == 1
    assert counts.dropped.get("tail", 0) == sum(s["files_tail"] for s in meta["splits"].values())
    assert counts.rows_out == counts.rows_in - sum(counts.dropped.values())
    assert counts.extra["splits"]["train"]["hist_edges"] == packer.HIST_EDGES


def test_output_does_not_depend_on_input_partitioning(spark, dropped_run, tmp_path, tokenizer_path):
    write_dataset(spark, tmp_path, FILES, partitions=5)
    run(spark, tmp_path, tokenizer_path)
    for split in ("train", "valid"):
        mine = sorted(Path(p).name for p in glob.glob(str(tmp_path / "tokens" / split / "*.parquet")))
        theirs = sorted(Path(p).name for p in glob.glob(str(dropped_run / "tokens" / split / "*.parquet")))
        assert mine == theirs
        for name in mine:
            assert pq.read_table(tmp_path / "tokens" / split / name).equals(
                pq.read_table(dropped_run / "tokens" / split / name))
    a = fs.read_json(str(tmp_path / "tokens" / "meta.json"))
    b = fs.read_json(str(dropped_run / "tokens" / "meta.json"))
    assert a["splits"] == b["splits"]


def test_both_encoders_write_the_same_sequences(spark, dropped_run, tmp_path, tokenizer_path):
    """The default run took tiktoken (checked in its meta); the reference engine writes the same files."""
    write_dataset(spark, tmp_path, FILES, partitions=2)
    run(spark, tmp_path, tokenizer_path, **{"tokens.encoder": "tokenizers"})
    engines = [fs.read_json(str(r / "tokens" / "meta.json"))["tokenizer"]["encoder"] for r in (dropped_run, tmp_path)]
    assert engines == ["tiktoken", "tokenizers"]
    assert [load_counts(str(r), "tokens").extra["encoder"] for r in (dropped_run, tmp_path)] == engines  # the report's
    for split in ("train", "valid"):
        assert np.array_equal(read_ids(tmp_path, split), read_ids(dropped_run, split))


def test_packed_dataset_gives_long_tensors_of_seq_length(dropped_run):
    import pickle

    import torch
    from codecorpus.io.packed import PackedDataset

    ds = PackedDataset(dropped_run / "tokens" / "train")
    out = read_ids(dropped_run, "train")
    assert isinstance(ds, torch.utils.data.Dataset) and len(ds) == len(out) and ds.seq_length == SEQ
    for i in (0, 6, 7, len(ds) - 1, -1):
        item = ds[i]
        assert item.dtype == torch.int64 and item.shape == (SEQ,)
        assert item.tolist() == out[i].tolist()
    with pytest.raises(IndexError):
        ds[len(ds)]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone[3].tolist() == out[3].tolist()
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch.shape == (4, SEQ)


def test_datasets_load_dataset_reads_the_shards(dropped_run, tmp_path):
    import datasets

    data_files = {s: str(dropped_run / "tokens" / s / "*.parquet") for s in ("train", "valid")}
    dd = datasets.load_dataset("parquet", data_files=data_files, cache_dir=str(tmp_path / "cache"))
    assert dd["train"].num_rows == len(read_ids(dropped_run, "train"))
    assert dd["train"].features["input_ids"].feature.dtype == "uint16"
    assert dd["valid"][0]["input_ids"] == read_ids(dropped_run, "valid")[0].tolist()


# ---------------------------------------------------------------------------------- pad mode

def test_pad_mode_keeps_every_token_behind_an_attention_mask(spark, padded_run, tok):
    ids = read_ids(padded_run, "train")
    mask = read_ids(padded_run, "train", "attention_mask")
    expected = [t for files in expected_groups(spark, padded_run, "train", tok) for t in stream(tok, files)]
    assert ids[mask == 1].tolist() == expected
    assert (ids[mask == 0] == tok.token_to_id(EOS)).all()
    # a mask is ones then zeros, and only a group's last row has zeros
    assert all((np.diff(m) <= 0).all() for m in mask)
    meta = fs.read_json(str(padded_run / "tokens" / "meta.json"))
    s = meta["splits"]["train"]
    assert s["tokens_dropped"] == 0 and s["files_tail"] == 0 and s["padding_tokens"] == int((mask == 0).sum())
    assert (mask == 0).any(axis=1).sum() <= s["groups"]
    counts = load_counts(str(padded_run), "tokens")
    assert counts.dropped == {"null_content": 1}


def test_packed_dataset_returns_the_mask_when_padded(padded_run):
    import torch
    from codecorpus.io.packed import PackedDataset

    ds = PackedDataset(str(padded_run / "tokens" / "train" / "*.parquet"))
    item = ds[len(ds) - 1]
    assert set(item) == {"input_ids", "attention_mask"}
    assert item["attention_mask"].dtype == torch.int64 and item["attention_mask"].shape == (SEQ,)


# ---------------------------------------------------------------------------- pure helpers

def test_ids_dtype_and_int32_tables():
    assert packer.ids_dtype(65536) == "uint16" and packer.ids_dtype(65537) == "int32"
    rows = np.array([[70000, 1, 2], [3, 99999, 5]], dtype=np.int64)
    table = packer.sequences_table(rows, [3, 2], packer.output_schema("int32", with_mask=True))
    assert str(table.schema.field("input_ids").type) == "list<item: int32>"
    assert table.column("input_ids").to_pylist() == rows.tolist()
    assert table.column("attention_mask").to_pylist() == [[1, 1, 1], [1, 1, 0]]


def test_shard_plan_cuts_groups_into_equal_shards():
    plan = packer.shard_plan({2: 5, 0: 3, 7: 0, 9: 4}, rows_per_file=4)
    assert plan == [[(0, 0, 3), (2, 0, 1)], [(2, 1, 5)], [(9, 0, 4)]]
    assert packer.shard_plan({}, 4) == []


def test_group_packer_counts_tail_files():
    p = packer.GroupPacker(seq_length=4, eos_id=0, pad=False)
    rows = p.add([np.array([5, 5, 5]), np.array([6]), None, np.array([], dtype=np.int64)], chars=9)
    assert rows.tolist() == [[5, 5, 5, 0]]  # then [6, 0, 0]: the 2nd and 4th file are the tail
    (last, _), stats = p.finish()
    assert last is None
    assert stats["files_tail"] == 2 and stats["files_null"] == 1 and stats["files_packed"] == 1
    assert stats["tokens_dropped"] == 3 and stats["tokens"] == 4


def test_packer_and_staging_run_without_spark():
    """The GPU stage packs with these modules where there is no pyspark."""
    import subprocess
    import sys

    code = ("import sys; import codecorpus.tokens.packer, codecorpus.tokens.staging; "
            "sys.exit(any(m.split('.')[0] == 'pyspark' for m in sys.modules))")
    lib = str(Path(__file__).resolve().parents[1] / "lib")
    assert subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": lib}).returncode == 0


def test_group_stager_stages_each_group_and_shards_cut_across_them(tmp_path):
    from codecorpus.tokens.staging import GroupStager, group_file, write_shard

    stager = GroupStager(str(tmp_path), seq_length=4, eos_id=0, pad=True, dtype="uint16")
    groups = np.array([3, 3, 5, 8])
    ids = [np.array([1, 2, 3, 4, 5]), np.array([6]), None, np.array([7, 7])]
    finished = list(stager.add_batch(groups, ids, np.array([5, 1, 0, 2])))
    finished.append(stager.finish())
    assert [g for g, _ in finished] == [3, 5, 8]
    stats = {g: s for g, s in finished}
    assert stats[3]["sequences"] == 2 and stats[3]["padding_tokens"] == 0  # 1 2 3 4 | 5 0 6 0
    assert stats[5]["sequences"] == 0 and not Path(group_file(str(tmp_path), 5)).exists()  # no rows, no file
    assert stats[8]["sequences"] == 1 and stats[8]["padding_tokens"] == 1  # 7 7 0 + one pad
    schema = packer.output_schema("uint16", with_mask=True)
    assert write_shard(str(tmp_path / "part-00000.parquet"), [(3, 1, 2), (8, 0, 1)], str(tmp_path), schema) == 2
    table = pq.read_table(tmp_path / "part-00000.parquet")
    assert table.column("input_ids").to_pylist() == [[5, 0, 6, 0], [7, 7, 0, 0]]
    assert table.column("attention_mask").to_pylist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_missing_tokenizer_or_eos_is_a_user_error(spark, tmp_path, tokenizer_path):
    write_dataset(spark, tmp_path, {"train": ["x = 1\n"], "valid": ["y = 2\n"]}, partitions=1)
    cfg = Config().replace(output=str(tmp_path))
    with pytest.raises(UserError, match="no tokenizer.json"):
        run_one(spark, cfg, "tokens")
    train_tokenizer(tmp_path / "tokenizer" / "tokenizer.json", ["x = 1\n"], special="<eos>")
    with pytest.raises(UserError, match="endoftext"):
        run_one(spark, cfg, "tokens")


def test_pack_config_is_validated():
    with pytest.raises(ConfigError, match="tokens.remainder"):
        Config().replace(**{"tokens.remainder": "keep"})
    with pytest.raises(ConfigError, match="files_per_group"):
        Config().replace(**{"tokens.files_per_group": 0})
    with pytest.raises(ConfigError, match="tokens.encoder"):
        Config().replace(**{"tokens.encoder": "fastest"})


def test_row_groups_have_the_target_size_and_are_read_across(tmp_path):
    from codecorpus.io.arrow_files import ParquetFileWriter
    from codecorpus.io.packed import PackedShards

    schema = packer.output_schema("uint16", with_mask=False)
    rows = np.arange(300 * 4).reshape(300, 4)
    writer = ParquetFileWriter(str(tmp_path / "part-00000.parquet"), schema, row_group_rows=128)
    for i in range(0, 300, 50):
        writer.write(packer.sequences_table(rows[i:i + 50], [4] * 50, schema))
    assert writer.close() == 300
    meta = pq.read_metadata(tmp_path / "part-00000.parquet")
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [128, 128, 44]
    assert list(tmp_path.iterdir()) == [tmp_path / "part-00000.parquet"]  # no temporary left behind
    shards = PackedShards(tmp_path)
    assert len(shards) == 300 and shards.seq_length == 4
    assert [shards[i].tolist() for i in (0, 127, 128, 299)] == [rows[i].tolist() for i in (0, 127, 128, 299)]
