"""Ingest: typed rows, quarantine with reasons, and the row accounting, on real gzip shards."""
from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from codecorpus.core.config import load_config
from codecorpus.core.errors import UserError
from codecorpus.core.registry import run_one
from codecorpus.core.stage import load_counts
from codecorpus.io.shards import ParseOptions, parse_shard, record_ids, shard_tables
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


def stream(data: bytes, **kw) -> pa.Table:
    """A shard's rows as the executors read it: streamed, block by block."""
    opts = ParseOptions(**{**OPTS, **kw})
    return pa.concat_tables(list(shard_tables(pa.BufferReader(data), "s.json.gz", opts)))


def test_rows_and_ids_do_not_depend_on_where_blocks_are_cut():
    lines = [json.dumps(record(path=f"f{i}.py", content="x = 1\n" * (i % 7))).encode() for i in range(300)]
    lines[40:40] = [b"", b'{"repo_name": broken', json.dumps(record(content="x" * 2000)).encode()]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    whole = parse_shard("s.json.gz", data, **OPTS)
    assert reasons(whole)[40:43] == ["blank_line", "malformed_json", "too_large"]
    for block_bytes in (1, 100, 4096, 1 << 20):
        assert stream(data, block_bytes=block_bytes).equals(whole), block_bytes


def test_gzip_members_plain_files_and_a_last_line_without_newline():
    one, two = (json.dumps(record(path=p)).encode() for p in ("a.py", "b.py"))
    members = gzip.compress(one + b"\n") + gzip.compress(two + b"\n")  # `cat a.gz b.gz` is one gzip stream
    assert parse_shard("s.json.gz", members, **OPTS).column("path").to_pylist() == ["a.py", "b.py"]
    plain = parse_shard("s.jsonl", one + b"\n" + two, **OPTS)
    assert plain.column("path").to_pylist() == ["a.py", "b.py"] and reasons(plain) == [None, None]


def test_a_line_longer_than_the_limit_is_never_held_whole():
    huge = json.dumps(record(path="huge.py", content="z" * (5 << 20))).encode()
    data = gzip.compress(b"\n".join([json.dumps(record()).encode(), huge, json.dumps(record(path="c.py")).encode()]))
    for keep in (False, True):
        t = stream(data, max_line_bytes=4 << 20, keep_too_large=keep)
        assert reasons(t) == [None, "too_large", None] and t.column("line").to_pylist() == [1, 2, 3]
        raw = t.column("raw").to_pylist()[1]
        assert len(raw) == 1 << 20 and huge.startswith(raw)  # its first MiB stands for it
        assert t.column("path").to_pylist()[2] == "c.py"


def test_a_shard_that_breaks_keeps_the_rows_before_the_break():
    body = b"".join(json.dumps(record(path=f"f{i}.py", content=f"v = {i}\n" * 50)).encode() + b"\n"
                    for i in range(3000))
    data = gzip.compress(body)
    cut = data[:len(data) // 2]
    t = stream(cut, block_bytes=4096)
    *rows, last = t.to_pylist()
    assert last["line"] == 0 and last["reason"].startswith("corrupt_shard: EOFError")
    assert last["reason"].endswith(f"after line {len(rows)}") and 0 < len(rows) < 3000
    assert [r["path"] for r in rows] == [f"f{i}.py" for i in range(len(rows))]
    assert {r["reason"] for r in rows} == {None}
    flipped = bytearray(data)
    flipped[len(data) // 2:len(data) // 2 + 64] = bytes(64)  # bad deflate data, not a short file
    assert stream(bytes(flipped)).column("reason").to_pylist()[-1].startswith("corrupt_shard")


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


def test_truncated_shard_in_the_stage(spark, tmp_path):
    shards = tmp_path / "shards"
    write_shard(shards / "good.json.gz", [record()])
    body = b"".join(json.dumps(record(path=f"f{i}.py", content=f"v = {i}\n" * 50)).encode() + b"\n"
                    for i in range(3000))
    data = gzip.compress(body)
    (shards / "cut.json.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(UserError, match=r"corrupt shard\(s\): cut.json.gz \(corrupt_shard: EOFError"):
        run_one(spark, _cfg(tmp_path, shards), "ingest")
    counts = run_one(spark, _cfg(tmp_path, shards, **{"ingest.on_corrupt_shard": '"skip"',
                                                      "ingest.block_bytes": 65536}), "ingest")
    kept = counts.rows_out - 1
    assert 0 < kept < 3000 and counts.quarantined == 1
    assert counts.extra["lines_read"] == counts.rows_out and counts.extra["corrupt_shards"][0].endswith(
        f"after line {kept})")


def test_small_blocks_write_the_same_files(spark, tmp_path):
    shards = tmp_path / "shards"
    write_shard(shards / "a.json.gz", [record(path=f"f{i}.py", content="x = 1\n" * i) for i in range(5000)]
                + ["{oops"] + [record(path="y.py")])
    out = {}
    for block in (8 << 20, 2048):
        cfg = _cfg(tmp_path / str(block), shards, **{"ingest.block_bytes": block})
        run_one(spark, cfg, "ingest")
        out[block] = [pq.ParquetFile(f"{cfg.output}/{k}/a_json_gz.parquet") for k in ("ingest", "quarantine")]
    for big, small in zip(out[8 << 20], out[2048]):
        assert big.read().equals(small.read())
        assert big.metadata.num_row_groups == small.metadata.num_row_groups == -(-big.metadata.num_rows // 4096)


def test_input_forms(tmp_path):
    from codecorpus.stages.ingest import list_shards

    for rel in ("a.json.gz", "sub/b.jsonl", "sub/deeper/c.json", "_tmp/d.json.gz", ".git/e.json.gz",
                "sub/_f.json.gz", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    def names(spec: str) -> list[str]:
        return [s.name for s in list_shards(spec)]

    assert names(str(tmp_path)) == ["a.json.gz", "b.jsonl", "c.json"]  # hidden names and folders skipped
    assert names(f"file://{tmp_path}") == names(str(tmp_path))
    assert names(f"{tmp_path}/sub/*.json*") == ["b.jsonl"]
    assert names(f"{tmp_path}/*/*/*.json") == ["c.json"]
    assert [s.uri for s in list_shards(f"file://{tmp_path}/a.json.gz")] == [str(tmp_path / "a.json.gz")]
    (tmp_path / "sub" / "a.json.gz").write_bytes(b"")
    with pytest.raises(UserError, match="shard names must be unique"):
        list_shards(str(tmp_path))
    with pytest.raises(UserError, match="no shards matching"):
        list_shards(f"{tmp_path}/*.parquet")
    with pytest.raises(UserError, match="names starting with _ or . are ignored"):
        list_shards(f"{tmp_path}/sub/_f.json.gz")
    with pytest.raises(UserError, match="unsupported URI scheme ftp://"):
        list_shards("ftp://host/x")
    with pytest.raises(UserError, match="credentials in a s3a:// URI are not accepted") as err:
        list_shards("s3a://AKIAX:hush@bucket/x")
    assert "hush" not in str(err.value)


def test_large_shards_get_a_task_of_their_own():
    from codecorpus.stages.ingest import Shard, plan_tasks

    shards = [Shard(f"/d/{n}", n, size) for n, size in [("a", 5), ("big", 100), ("b", 3), ("mid", 60), ("c", 4)]]
    assert [[s.name for s in t] for t in plan_tasks(shards, 2)] == [["big"], ["mid", "a", "c", "b"]]
    assert len(plan_tasks(shards, 8)) == 5


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


def test_an_unknown_run_root_scheme_is_one_clear_line_not_a_folder_named_after_it(tmp_path, capsys, monkeypatch):
    from ingest import main

    monkeypatch.chdir(tmp_path)
    assert main(["--set", "output=ftp://host/run"]) == 2
    err = capsys.readouterr().err
    assert "unsupported scheme ftp:// for the run root" in err and "Traceback" not in err
    assert not (tmp_path / "ftp:").exists()


def test_read_ahead_keeps_order_raises_producer_errors_and_stops_early():
    import threading

    from codecorpus.io.shard_ingest import read_ahead

    assert list(read_ahead(iter(range(100)), depth=2)) == list(range(100))

    def broken():
        yield 1
        raise ValueError("bad block")

    got = []
    with pytest.raises(ValueError, match="bad block"):
        for x in read_ahead(broken(), depth=2):
            got.append(x)
    assert got == [1]

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    before = threading.active_count()
    it = read_ahead(endless(), depth=2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()  # the consumer stops: the producer thread must end, not run on
    assert threading.active_count() == before
    assert len(produced) <= 3 + 2 + 2
