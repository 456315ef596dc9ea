"""Parse CodeParrot-style JSON-lines shards into typed rows and quarantine rows, block by block.

`shard_tables(stream, shard, opts)` reads a shard as blocks of whole lines (`io.line_blocks`:
streamed and gunzipped as it goes, so memory does not grow with the shard) and turns each block
into one Arrow table of typed rows and quarantine rows. The fast path parses a block with
Arrow's C++ JSON reader. Only a block that the fast path rejects (a malformed line, bad UTF-8, a
number where a string belongs, blank lines) is re-read line by line, so one bad record costs one
slow block, not a slow shard. Every line ends up either as a typed row or as a quarantine row
with its reason and its raw bytes. Ids hash (shard name, line number), so they do not depend on
where blocks were cut.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from codecorpus.core import native
from codecorpus.io.line_blocks import MIN_LINE_LIMIT, CorruptStream, OversizedLine, shard_blocks

FIELDS = ("repo_name", "path", "copies", "size", "content", "license")
REQUIRED = ("repo_name", "path", "content")

TYPED_COLUMNS = ["id", "repo_name", "path", "copies", "size", "content", "license", "shard", "line"]
QUARANTINE_COLUMNS = ["shard", "line", "reason", "raw", "repo_name", "path"]

SUMMARY_DDL = "shard STRING, status STRING, reason STRING, n BIGINT, bytes BIGINT"
ROW_GROUP_ROWS = 4096

_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class ParseOptions:
    max_content_bytes: int
    keep_too_large: bool = False
    replace_utf8: bool = False
    block_bytes: int = 8 << 20
    max_line_bytes: int = 0  # 0: line_limit's default

    def line_limit(self) -> int:
        """Longest line held in memory. The default is past the worst case of JSON escaping
        (6 bytes per content byte), so a longer line always has too much content."""
        return max(self.max_line_bytes or 8 * self.max_content_bytes + (1 << 20), MIN_LINE_LIMIT)


def _arrow_schema() -> pa.Schema:
    return pa.schema([
        ("id", pa.int64()), ("repo_name", pa.string()), ("path", pa.string()), ("copies", pa.int64()),
        ("size", pa.int64()), ("content", pa.string()), ("license", pa.string()), ("shard", pa.string()),
        ("line", pa.int32()), ("reason", pa.string()), ("raw", pa.binary()), ("_status", pa.string()),
    ])


def typed_schema() -> pa.Schema:
    full = _arrow_schema()
    return pa.schema([full.field(c) for c in TYPED_COLUMNS])


def quarantine_schema() -> pa.Schema:
    full = _arrow_schema()
    return pa.schema([full.field(c) for c in QUARANTINE_COLUMNS])


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


# ------------------------------------------------------------------------------------- shards

def shard_tables(stream, shard: str, opts: ParseOptions,
                 ahead: Callable[[Iterator], Iterator] | None = None) -> Iterator[pa.Table]:
    """All rows of one shard read from `stream`, a table per block, in line order. A shard that
    breaks mid-stream ends with a `corrupt_shard` quarantine row (line 0) after the rows read
    before the break: a row, not an exception, so the driver decides whether it fails the job
    and can name the shard in one line instead of an executor stack trace. `ahead` wraps the
    stream of blocks (the ingest task reads them in a thread of their own)."""
    line = 0
    blocks = shard_blocks(stream, block_bytes=opts.block_bytes, max_line_bytes=opts.line_limit())
    try:
        for block in ahead(blocks) if ahead else blocks:
            if isinstance(block, OversizedLine):  # never held whole: its first bytes stand for it
                line += 1
                yield _single_row(shard, line, "too_large", block.head)
            else:
                table = parse_block(shard, block, line + 1, opts)
                line += table.num_rows
                yield table
    except CorruptStream as exc:
        yield _single_row(shard, 0, f"corrupt_shard: {exc}, after line {line}", None)


def parse_shard(shard: str, data: bytes, *, max_content_bytes: int, keep_too_large: bool,
                replace_utf8: bool) -> pa.Table:
    """All rows of one shard held in memory (typed rows and quarantine rows) as one table."""
    opts = ParseOptions(max_content_bytes, keep_too_large=keep_too_large, replace_utf8=replace_utf8)
    tables = list(shard_tables(pa.BufferReader(data), shard, opts))
    return pa.concat_tables(tables) if tables else _arrow_schema().empty_table()


def _single_row(shard: str, line: int, reason: str, raw: bytes | None) -> pa.Table:
    schema = _arrow_schema()
    row = {name: [None] for name in schema.names}
    row.update(shard=[shard], line=[line], reason=[reason], raw=[raw], _status=["quarantine"],
               id=[int(record_ids(shard, np.array([line]))[0])])
    return pa.table(row, schema=schema)


# ------------------------------------------------------------------------------------- parsing

def _line_bounds(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of each line (without the newline); a final unterminated line counts."""
    nl = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10)
    starts = np.concatenate([[0], nl + 1])
    ends = np.concatenate([nl, [len(buf)]])
    if len(buf) == 0 or starts[-1] == len(buf):  # nothing after the last newline
        starts, ends = starts[:-1], ends[:-1]
    return starts, ends


def _line_count(buf: bytes) -> int:
    """Lines in a block, a final unterminated line included (as `_line_bounds` counts them)."""
    count = native.function("count_lines")  # memchr's speed; bytes.count is a byte loop
    if count is not None:
        return count(buf)
    n = buf.count(b"\n")  # the offsets themselves are only needed on the careful path
    return n + (1 if buf and not buf.endswith(b"\n") else 0)


def _fast_parse(buf: bytes, n_lines: int) -> pa.Table | None:
    """Arrow's JSON reader over a block; None when any line needs the careful path."""
    from pyarrow import json as pjson

    schema = pa.schema([(f, pa.string()) for f in FIELDS])
    try:
        table = pjson.read_json(
            pa.BufferReader(buf),  # zero-copy over the block
            # One Arrow block for the whole buffer, on this thread: a single chunk per column
            # (nothing to combine) and no line can straddle two blocks. (Arrow's threads over
            # 1 MiB pieces were measured slower per byte with every core busy.)
            read_options=pjson.ReadOptions(use_threads=False, block_size=min(len(buf) + 1, (1 << 31) - 1)),
            parse_options=pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore",
                                              newlines_in_values=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != n_lines:  # blank lines were skipped: fall back so line numbers stay exact
        return None
    try:  # Arrow's JSON reader does not check that strings are valid UTF-8; this does (SIMD)
        table.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return table.select(list(FIELDS))


_FIELD_NAMES = tuple(f.encode() for f in FIELDS)
def _native_parse(buf: bytes, n_lines: int) -> dict[str, pa.Array] | None:
    """The compiled parser's columns (native/jsonl.c); None when the block is not plain string
    fields (the Arrow reader then decides, as before) or where the extension was not built."""
    parse = native.function("parse_lines")
    if parse is None:
        return None
    parsed = parse(buf, n_lines, _FIELD_NAMES)
    if parsed is None:
        return None
    return {f: pa.Array.from_buffers(pa.string(), n_lines, [None if v is None else pa.py_buffer(v),
                                                             pa.py_buffer(o), pa.py_buffer(d)], null_count=k)
            for f, (d, o, v, k) in zip(FIELDS, parsed)}


def _one_chunk(col: pa.ChunkedArray) -> pa.Array:
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


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


def parse_block(shard: str, buf: bytes, first_line: int, opts: ParseOptions) -> pa.Table:
    """Rows of one block of whole lines (typed rows and quarantine rows, told apart by
    `_status`); its first line is line `first_line` of the shard."""
    import pyarrow.compute as pc

    schema = _arrow_schema()
    n = _line_count(buf)
    if n == 0:
        return schema.empty_table()
    cols = _native_parse(buf, n)
    table = None if cols is not None else _fast_parse(buf, n)
    bounds = None
    if cols is not None:
        parse_reason = pa.nulls(n, pa.string())
    elif table is not None:
        cols = {f: _one_chunk(table.column(f)) for f in FIELDS}
        parse_reason = pa.nulls(n, pa.string())
    else:
        bounds = _line_bounds(buf)
        pycols, reasons = _careful_parse(buf, *bounds, opts.replace_utf8)
        cols = {f: pa.array(pycols[f], pa.string()) for f in FIELDS}
        parse_reason = pa.array(reasons, pa.string())

    copies, bad_copies = _digits_to_int(cols["copies"])
    size, bad_size = _digits_to_int(cols["size"])
    content_bytes = pc.binary_length(cols["content"])
    too_large = pc.fill_null(pc.greater(content_bytes, opts.max_content_bytes), False)

    # First failing check names the reason (checks listed from most to least fundamental).
    reason = parse_reason
    checks = [(pc.is_null(cols[f]), f"missing_field:{f}") for f in REQUIRED]
    checks += [(bad_copies, "bad_type:copies"), (bad_size, "bad_type:size")]
    if not opts.keep_too_large:
        checks.append((too_large, "too_large"))
    for mask, label in reversed(checks):
        reason = pc.if_else(mask, pa.scalar(label), reason)
    reason = pc.coalesce(parse_reason, reason)
    bad = pc.is_valid(reason)

    lines = np.arange(first_line, first_line + n, dtype=np.int64)
    return pa.table({
        "id": pa.array(record_ids(shard, lines)),
        "repo_name": cols["repo_name"],
        "path": cols["path"],
        "copies": pc.coalesce(copies, pa.scalar(1, pa.int64())),
        "size": pc.coalesce(size, pc.cast(content_bytes, pa.int64())),
        "content": cols["content"],
        "license": pc.coalesce(cols["license"], pa.scalar("unknown")),
        "shard": pa.repeat(pa.scalar(shard, pa.string()), n),
        "line": pa.array(lines.astype(np.int32)),
        "reason": reason,
        "raw": _raw_of_bad(buf, bounds, bad.to_numpy(zero_copy_only=False)),
        "_status": pc.if_else(bad, pa.scalar("quarantine"), pa.scalar("ok")),
    }, schema=schema)


def _raw_of_bad(buf: bytes, bounds: tuple[np.ndarray, np.ndarray] | None, bad: np.ndarray) -> pa.Array:
    """Each quarantined line's bytes (null for typed rows): nothing is lost. Python touches only
    the bad lines, which are rare."""
    if not bad.any():
        return pa.nulls(len(bad), pa.binary())
    starts, ends = bounds if bounds is not None else _line_bounds(buf)
    raw: list[bytes | None] = [None] * len(bad)
    for i in np.flatnonzero(bad).tolist():
        raw[i] = buf[starts[i]:ends[i]]
    return pa.array(raw, pa.binary())


def split_rows(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(typed rows, quarantine rows) of a parsed table, each with its own columns."""
    import pyarrow.compute as pc

    is_ok = pc.equal(table.column("_status"), "ok")
    if pc.all(is_ok).as_py() is not False:  # the usual case: no copy of the content
        return table.select(TYPED_COLUMNS), quarantine_schema().empty_table()
    return (table.filter(is_ok).select(TYPED_COLUMNS),
            table.filter(pc.invert(is_ok)).select(QUARANTINE_COLUMNS))
