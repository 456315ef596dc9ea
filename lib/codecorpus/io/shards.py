"""Decompress and parse CodeParrot-style JSON-lines shards in Arrow batches, inside executors.

Each shard arrives as one binary row (Spark's `binaryFile` source). The fast path decompresses
it (ISA-L when installed, else zlib) and parses the whole buffer with Arrow's C++ JSON reader.
Only a shard that the fast path rejects (a malformed line, bad UTF-8, a number where a string
belongs, blank lines) is re-read line by line, so one bad record costs one slow shard, not a
slow job. Every line ends up either as a typed row or as a quarantine row with its reason and
its raw bytes.
"""
from __future__ import annotations

import io
import zlib
from typing import Iterator

import numpy as np
import pyarrow as pa

FIELDS = ("repo_name", "path", "copies", "size", "content", "license")
REQUIRED = ("repo_name", "path", "content")

TYPED_COLUMNS = ["id", "repo_name", "path", "copies", "size", "content", "license", "shard", "line"]
QUARANTINE_COLUMNS = ["shard", "line", "reason", "raw", "repo_name", "path"]

_MASK64 = (1 << 64) - 1


def _arrow_schema() -> pa.Schema:
    return pa.schema([
        ("id", pa.int64()), ("repo_name", pa.string()), ("path", pa.string()), ("copies", pa.int64()),
        ("size", pa.int64()), ("content", pa.string()), ("license", pa.string()), ("shard", pa.string()),
        ("line", pa.int32()), ("reason", pa.string()), ("raw", pa.binary()), ("_status", pa.string()),
    ])


# ------------------------------------------------------------------------------------------- ids

def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(_MASK64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def shard_key(shard: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.blake2b(shard.encode(), digest_size=8).digest(), "big")


def record_ids(shard: str, lines: np.ndarray) -> np.ndarray:
    """Stable 64-bit id of (shard name, line number): independent of partitioning and run."""
    with np.errstate(over="ignore"):
        mixed = _splitmix64(np.uint64(shard_key(shard)) ^ lines.astype(np.uint64))
    return mixed.view(np.int64)


# ------------------------------------------------------------------------------------ decompress

def decompress(data: bytes) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data  # plain .jsonl
    try:
        from isal import igzip

        return igzip.decompress(data)
    except ImportError:
        return zlib.decompress(data, wbits=47)  # gzip, multi-member aware via 32+15


# ------------------------------------------------------------------------------------- parsing

def _line_bounds(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of each line (without the newline); a final unterminated line counts."""
    nl = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10)
    starts = np.concatenate([[0], nl + 1])
    ends = np.concatenate([nl, [len(buf)]])
    if len(buf) == 0 or starts[-1] == len(buf):  # nothing after the last newline
        starts, ends = starts[:-1], ends[:-1]
    return starts, ends


def _fast_parse(buf: bytes, n_lines: int, longest: int) -> pa.Table | None:
    """Arrow's JSON reader over the whole shard; None when any line needs the careful path."""
    from pyarrow import json as pjson

    if n_lines == 0:
        return None
    schema = pa.schema([(f, pa.string()) for f in FIELDS])
    try:
        table = pjson.read_json(
            io.BytesIO(buf),
            read_options=pjson.ReadOptions(use_threads=False, block_size=max(1 << 20, longest + 2)),
            parse_options=pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore",
                                              newlines_in_values=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != n_lines:  # blank lines were skipped: fall back so line numbers stay exact
        return None
    table = table.select(list(FIELDS)).combine_chunks()
    try:  # Arrow's JSON reader does not check that strings are valid UTF-8; this does (SIMD)
        table.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return table


def _careful_parse(buf: bytes, starts: np.ndarray, ends: np.ndarray, replace_utf8: bool
                   ) -> tuple[dict[str, list], list[str | None]]:
    """Line by line with orjson; returns string columns and a per-line parse failure reason."""
    import json

    import orjson

    cols: dict[str, list] = {f: [] for f in FIELDS}
    reasons: list[str | None] = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        line = buf[s:e]
        reason = None
        obj = None
        if not line.strip():
            reason = "blank_line"
        else:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                try:
                    line.decode("utf-8")
                    reason = "malformed_json"
                except UnicodeDecodeError:
                    if replace_utf8:
                        try:
                            obj = json.loads(line.decode("utf-8", errors="replace"))
                        except ValueError:
                            reason = "malformed_json"
                    else:
                        reason = "invalid_utf8"
            if obj is not None and not isinstance(obj, dict):
                obj, reason = None, "not_an_object"
        for f in FIELDS:
            v = obj.get(f) if obj is not None else None
            if v is not None and not isinstance(v, str):
                if f in ("copies", "size") and isinstance(v, int) and not isinstance(v, bool):
                    v = str(v)
                elif reason is None:
                    reason = f"bad_type:{f}"
                    v = None
                else:
                    v = None
            cols[f].append(v)
        reasons.append(reason)
    return cols, reasons


def _digits_to_int(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(int64 values with nulls where invalid, mask of present-but-invalid)."""
    import pyarrow.compute as pc


    present = pc.is_valid(arr)
    ok = pc.and_(present, pc.match_substring_regex(arr, r"^[0-9]{1,18}$"))
    ok = pc.fill_null(ok, False)
    cleaned = pc.if_else(ok, arr, pa.scalar(None, pa.string()))
    return pc.cast(cleaned, pa.int64()), pc.and_(present, pc.invert(ok))


def parse_shard(shard: str, data: bytes, *, max_content_bytes: int, keep_too_large: bool,
                replace_utf8: bool) -> pa.Table:
    """All rows of one shard (typed rows and quarantine rows) as one Arrow table."""
    import pyarrow.compute as pc


    schema = _arrow_schema()
    try:
        buf = decompress(data)
    except Exception as exc:  # zlib.error, EOFError, OSError, isal errors: all mean a broken shard
        # A quarantine row, not an exception: the driver decides whether it fails the job, and
        # can then name the shard in one line instead of an executor stack trace.
        row = {name: [None] for name in schema.names}
        row.update(shard=[shard], line=[0], reason=[f"corrupt_shard: {type(exc).__name__}: {exc}"],
                   raw=[None], _status=["quarantine"], id=[int(record_ids(shard, np.array([0]))[0])])
        return pa.table(row, schema=schema)

    starts, ends = _line_bounds(buf)
    n = len(starts)
    if n == 0:
        return schema.empty_table()
    longest = int((ends - starts).max())
    table = _fast_parse(buf, n, longest)
    if table is not None:
        cols = {f: table.column(f).combine_chunks() if table.num_rows else pa.array([], pa.string())
                for f in FIELDS}
        parse_reason = pa.nulls(n, pa.string())
    else:
        pycols, reasons = _careful_parse(buf, starts, ends, replace_utf8)
        cols = {f: pa.array(pycols[f], pa.string()) for f in FIELDS}
        parse_reason = pa.array(reasons, pa.string())

    copies, bad_copies = _digits_to_int(cols["copies"])
    size, bad_size = _digits_to_int(cols["size"])
    content_bytes = pc.binary_length(cols["content"])
    too_large = pc.fill_null(pc.greater(content_bytes, max_content_bytes), False)

    # First failing check names the reason (checks listed from most to least fundamental).
    reason = parse_reason
    checks = [(pc.is_null(cols[f]), f"missing_field:{f}") for f in REQUIRED]
    checks += [(bad_copies, "bad_type:copies"), (bad_size, "bad_type:size")]
    if not keep_too_large:
        checks.append((too_large, "too_large"))
    for mask, label in reversed(checks):
        reason = pc.if_else(mask, pa.scalar(label), reason)
    reason = pc.coalesce(parse_reason, reason)
    bad = pc.is_valid(reason)

    lines = np.arange(1, n + 1, dtype=np.int64)
    bad_np = bad.to_numpy(zero_copy_only=False)
    raw = [buf[s:e] if b else None for s, e, b in zip(starts.tolist(), ends.tolist(), bad_np.tolist())] \
        if bad_np.any() else pa.nulls(n, pa.binary())
    return pa.table({
        "id": pa.array(record_ids(shard, lines)),
        "repo_name": cols["repo_name"],
        "path": cols["path"],
        "copies": pc.coalesce(copies, pa.scalar(1, pa.int64())),
        "size": pc.coalesce(size, pc.cast(content_bytes, pa.int64())),
        "content": cols["content"],
        "license": pc.coalesce(cols["license"], pa.scalar("unknown")),
        "shard": pa.array([shard] * n, pa.string()),
        "line": pa.array(lines.astype(np.int32)),
        "reason": reason,
        "raw": pa.array(raw, pa.binary()) if not isinstance(raw, pa.Array) else raw,
        "_status": pc.if_else(bad, pa.scalar("quarantine"), pa.scalar("ok")),
    }, schema=schema)


SUMMARY_DDL = "shard STRING, status STRING, reason STRING, n BIGINT, bytes BIGINT"
ROW_GROUP_ROWS = 4096


def typed_schema() -> pa.Schema:
    full = _arrow_schema()
    return pa.schema([full.field(c) for c in TYPED_COLUMNS])


def quarantine_schema() -> pa.Schema:
    full = _arrow_schema()
    return pa.schema([full.field(c) for c in QUARANTINE_COLUMNS])


def ingest_shards(batches: Iterator[pa.RecordBatch], *, ok_dir: str, bad_dir: str, max_content_bytes: int,
                  keep_too_large: bool, replace_utf8: bool) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: rows (path, content) of binaryFile in; each shard's typed rows and
    quarantine rows are written as Parquet straight from the executor (one file per shard and
    kind, named after the shard), and only a small summary goes back to Spark.

    Writing here skips the Arrow -> JVM -> Parquet round trip of every file's content, which
    is most of the cost of an ingest; the summary keeps the row accounting in Spark."""
    import os

    import pyarrow.compute as pc

    from codecorpus.io.arrow_files import write_table

    for batch in batches:
        paths = batch.column("path").to_pylist()
        datas = batch.column("content")
        for i, path in enumerate(paths):
            shard = os.path.basename(path)
            stem = shard.replace(".", "_")  # unique: shard names are unique
            table = parse_shard(shard, datas[i].as_py(), max_content_bytes=max_content_bytes,
                                keep_too_large=keep_too_large, replace_utf8=replace_utf8)
            is_ok = pc.equal(table.column("_status"), "ok")
            ok = table.filter(is_ok).select(TYPED_COLUMNS)
            bad = table.filter(pc.invert(is_ok)).select(QUARANTINE_COLUMNS)
            if ok.num_rows:
                write_table(ok, f"{ok_dir}/{stem}.parquet", row_group_rows=ROW_GROUP_ROWS)
            if bad.num_rows:
                write_table(bad, f"{bad_dir}/{stem}.parquet", row_group_rows=ROW_GROUP_ROWS)
            rows = [(shard, "ok", None, ok.num_rows, pc.sum(pc.binary_length(ok.column("content"))).as_py() or 0)]
            if bad.num_rows:
                for r in bad.group_by("reason").aggregate([("reason", "count")]).to_pylist():
                    rows.append((shard, "quarantine", r["reason"], r["reason_count"], 0))
            yield pa.RecordBatch.from_pylist(
                [dict(zip(("shard", "status", "reason", "n", "bytes"), r)) for r in rows],
                schema=pa.schema([("shard", pa.string()), ("status", pa.string()), ("reason", pa.string()),
                                  ("n", pa.int64()), ("bytes", pa.int64())]))
