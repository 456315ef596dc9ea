"""Ingest: typed rows, quarantine with reasons, and the row accounting, on real gzip shards."""
from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pytest
from codecorpus.core.config import load_config
from codecorpus.core.errors import UserError
from codecorpus.core.registry import run_one
from codecorpus.core.stage import load_counts
from codecorpus.io.shards import parse_shard, record_ids
from conftest import record, write_shard

OPTS = dict(max_content_bytes=1000, keep_too_large=False, replace_utf8=False)


def parse(lines: list[bytes], **kw) -> pa.Table:
    return parse_shard("s.json.gz", gzip.compress(b"\n".join(lines) + b"\n"), **{**OPTS, **kw})


def reasons(table: pa.Table) -> list:
    return table.column("reason").to_pylist()


def test_fast_path_types_and_provenance():
    t = parse([json.dumps(record(content="a = 1\n", copies="3")).encode(),
               json.dumps(record(path="b.py", content="")).encode()])
    assert reasons(t) == [None, None]
    assert t.column("copies").to_pylist() == [3, 1]
    assert t.column("size").to_pylist() == [6, 0]
    assert t.column("line").to_pylist() == [1, 2]
    assert t.column("shard").to_pylist() == ["s.json.gz"] * 2
    assert t.column("id").to_pylist() == record_ids("s.json.gz", pa.array([1, 2]).to_numpy()).tolist()


def test_each_bad_record_is_quarantined_with_its_reason():
    good = json.dumps(record()).encode()
    no_content = json.dumps({k: v for k, v in record().items() if k != "content"}).encode()
    bad_size = json.dumps({**record(), "size": "abc"}).encode()
    numeric_size = json.dumps({**record(), "size": 6}).encode()
    too_large = json.dumps(record(content="x" * 2000)).encode()
    not_utf8 = b'{"repo_name": "r", "path": "p", "content": "caf\xe9"}'
    t = parse([good, b'{"repo_name": broken', no_content, bad_size, b"", b"[1, 2]", numeric_size,
               too_large, not_utf8])
    assert reasons(t) == [None, "malformed_json", "missing_field:content", "bad_type:size", "blank_line",
                          "not_an_object", None, "too_large", "invalid_utf8"]
    assert t.column("line").to_pylist() == list(range(1, 10))
    # quarantine rows keep the raw bytes: nothing is lost
    assert t.column("raw").to_pylist()[1] == b'{"repo_name": broken'
    assert t.column("raw").to_pylist()[8] == not_utf8
    assert t.column("size").to_pylist()[6] == 6


def test_replace_invalid_utf8_and_keep_too_large():
    not_utf8 = b'{"repo_name": "r", "path": "p", "content": "caf\xe9"}'
    too_large = json.dumps(record(content="x" * 2000)).encode()
    t = parse([not_utf8, too_large], replace_utf8=True, keep_too_large=True)
    assert reasons(t) == [None, None]
    assert t.column("content").to_pylist()[0] == "caf\ufffd"


def test_corrupt_and_empty_shards():
    corrupt = gzip.compress(b'{"a": 1}\n' * 1000)[:-40]
    t = parse_shard("bad.json.gz", corrupt, **OPTS)
    assert t.num_rows == 1 and t.column("reason")[0].as_py().startswith("corrupt_shard")
    assert parse_shard("empty.json.gz", gzip.compress(b""), **OPTS).num_rows == 0


def _cfg(tmp_path, shards, **over):
    sets = [f"input={shards}", f"output={tmp_path / 'out'}"] + [f"{k}={v}" for k, v in over.items()]
    return load_config(overrides=sets)


def test_stage_counts_add_up_and_50mb_record(spark, tmp_path):
    shards = tmp_path / "shards"
    big = "y" * (50 * 1024 * 1024)
    write_shard(shards / "file-000000000000.json.gz",
                [record(path=f"f{i}.py", content=f"v = {i}\n") for i in range(20)] + ["{oops", ""])
    write_shard(shards / "file-000000000001.json.gz", [record(path="big.py", content=big), record(path="z.py")])
    write_shard(shards / "file-000000000002.json.gz", [])
    cfg = _cfg(tmp_path, shards)
    counts = run_one(spark, cfg, "ingest")
    assert counts.rows_in == 24 and counts.rows_out == 21 and counts.quarantined == 3
    assert counts.extra["quarantine_reasons"] == {"malformed_json": 1, "blank_line": 1, "too_large": 1}
    assert spark.read.parquet(f"{cfg.output}/ingest").count() == 21
    q = spark.read.parquet(f"{cfg.output}/quarantine")
    assert sorted(q.columns) == sorted(["shard", "line", "reason", "raw", "repo_name", "path"])
    big_row = q.where("reason = 'too_large'").first()
    assert big_row["shard"] == "file-000000000001.json.gz" and big_row["line"] == 1
    assert len(big_row["raw"]) > 50 * 1024 * 1024  # the raw record survives in quarantine

    kept = run_one(spark, _cfg(tmp_path, shards, **{"ingest.on_too_large": '"keep"'}), "ingest", force=True)
    assert kept.rows_out == 22 and kept.quarantined == 2


def test_corrupt_shard_fails_by_default_and_can_be_skipped(spark, tmp_path):
    shards = tmp_path / "shards"
    write_shard(shards / "good.json.gz", [record()])
    (shards / "broken.json.gz").write_bytes(gzip.compress(b'{"x": 1}\n' * 500)[:-30])
    cfg = _cfg(tmp_path, shards)
    with pytest.raises(UserError, match="broken.json.gz"):
        run_one(spark, cfg, "ingest")
    assert load_counts(cfg.output, "ingest") is None  # nothing published
    counts = run_one(spark, _cfg(tmp_path, shards, **{"ingest.on_corrupt_shard": '"skip"'}), "ingest")
    assert counts.rows_out == 1 and counts.extra["corrupt_shards"][0].startswith("broken.json.gz")


def test_missing_input_is_one_clear_line(spark, tmp_path, capsys):
    from ingest import main

    assert main(["--set", f"input={tmp_path / 'nope'}", "--set", f"output={tmp_path / 'o'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: input not found")
    (tmp_path / "empty").mkdir()
    assert main(["--set", f"input={tmp_path / 'empty'}", "--set", f"output={tmp_path / 'o'}"]) == 2
    assert "no shards" in capsys.readouterr().err


def test_unwritable_output_is_one_clear_line(spark, tmp_path, capsys):
    from ingest import main

    write_shard(tmp_path / "s" / "a.json.gz", [record()])
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--set", f"input={tmp_path / 's'}", "--set", f"output={blocker}/out"]) == 2
    assert "not writable" in capsys.readouterr().err


def test_unknown_config_key_is_rejected(tmp_path, capsys):
    from ingest import main

    assert main(["--set", "split.valid_fractoin=0.1"]) == 2
    assert "unknown config key(s) in split: split.valid_fractoin" in capsys.readouterr().err
