"""A shard as a stream of decompressed blocks of whole JSON lines, in bounded memory.

`shard_blocks(stream, ...)` reads a file-like object (a pyarrow input stream) a few MB at a
time, gunzips it incrementally when it starts with the gzip magic (ISA-L, about twice zlib's
speed here; concatenated gzip members are one stream, as gzip reads them) and hands out blocks
of about `block_bytes` that end exactly after a newline, so line numbers and record bytes are
the same as if the whole shard had been read at once. A line longer than a block makes its
block longer; a line longer than `max_line_bytes` is never held: it is skipped to its newline
and handed out as an `OversizedLine` (its first bytes and its length).

A stream that breaks (truncated, bad deflate data, garbage after the last member) raises
`CorruptStream` after every complete line before the break has been handed out; the partial
line at the break is dropped, since it is known to be cut. Errors of the underlying stream
(network, permissions) are not corruption and propagate as they are, so Spark retries them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

GZIP_MAGIC = b"\x1f\x8b"
READ_BYTES = 4 << 20    # compressed bytes per read: one ranged request each on an object store
CHUNK_BYTES = 1 << 20   # decompressed bytes per decompress call: bounds what one call allocates
HEAD_BYTES = 1 << 20    # bytes kept of a line too long to hold
MIN_LINE_LIMIT = READ_BYTES  # no chunk is longer, which keeps the too-long test exact
TRUNCATED = "EOFError: Compressed file ended before the end-of-stream marker was reached"


class CorruptStream(Exception):
    """The compressed stream cannot be read past this point; the message says why."""


class OversizedLine(NamedTuple):
    head: bytes   # its first HEAD_BYTES bytes
    nbytes: int   # its length, without the newline


def shard_blocks(stream, *, block_bytes: int, max_line_bytes: int) -> Iterator[bytes | OversizedLine]:
    return line_blocks(decompressed(stream.read), block_bytes=block_bytes, max_line_bytes=max_line_bytes)


# ------------------------------------------------------------------------------- decompression

def decompressed(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The stream's bytes, gunzipped if they start with the gzip magic, in chunks."""
    data = _at_least(2, b"", read)
    if data[:2] != GZIP_MAGIC:  # plain JSON lines (also an empty file); reads never exceed READ_BYTES
        while data:
            yield data
            data = read(READ_BYTES)
        return
    yield from _gunzip(data, read)


def _gunzip(data: bytes, read: Callable[[int], bytes]) -> Iterator[bytes]:
    from isal import igzip_lib

    member = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
    while True:
        try:
            out = member.decompress(data, CHUNK_BYTES)
        except (igzip_lib.IsalError, ValueError, OSError, EOFError) as exc:  # bad data, not I/O
            raise CorruptStream(f"{type(exc).__name__}: {exc}") from None
        if out:
            yield out
        if member.eof:
            data = _next_member(member.unused_data, read)
            if data is None:
                return
            member = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
        elif member.needs_input:
            data = read(READ_BYTES)
            if not data:
                raise CorruptStream(TRUNCATED)
        else:  # output was capped at CHUNK_BYTES: more is pending for the same input
            data = b""


def _next_member(rest: bytes, read: Callable[[int], bytes]) -> bytes | None:
    """The start of the next gzip member after one ended, or None at the end of the stream."""
    rest = _at_least(2, rest, read)
    if not rest:
        return None
    if rest[:2] != GZIP_MAGIC:
        raise CorruptStream(f"BadGzipFile: Not a gzipped file ({rest[:2]!r}) after a complete member")
    return rest


def _at_least(n: int, data: bytes, read: Callable[[int], bytes]) -> bytes:
    """`data` plus reads until it holds n bytes or the stream ends (a read may return less)."""
    while len(data) < n:
        more = read(READ_BYTES - len(data))  # never more than READ_BYTES in all
        if not more:
            break
        data += more
    return data


# ------------------------------------------------------------------------------------- blocks

def line_blocks(chunks: Iterator[bytes], *, block_bytes: int, max_line_bytes: int
                ) -> Iterator[bytes | OversizedLine]:
    """Re-cut `chunks` into blocks of whole lines of about `block_bytes` (the last may lack its
    final newline, as a file's last line may). Every line longer than `max_line_bytes` comes
    out as an `OversizedLine`, wherever the chunks were cut: no chunk is longer than
    `max_line_bytes` (MIN_LINE_LIMIT), so such a line always spans chunks and is seen ending
    in, or growing past the limit at, a chunk boundary."""
    assert max_line_bytes >= MIN_LINE_LIMIT
    it = iter(chunks)
    pending: list[bytes] = []   # chunks not handed out yet
    size = 0                    # their total length
    open_len = 0                # bytes after their last newline: the line being read
    try:
        chunk = next(it, None)
        while chunk is not None:
            nl = chunk.find(b"\n")
            if open_len + (len(chunk) if nl < 0 else nl) <= max_line_bytes:
                pending.append(chunk)
                size += len(chunk)
                open_len = open_len + len(chunk) if nl < 0 else len(chunk) - chunk.rfind(b"\n") - 1
                if size - open_len >= block_bytes:
                    block, rest = _split(pending, size - open_len)
                    pending, size = ([rest], len(rest)) if rest else ([], 0)
                    yield block
                chunk = next(it, None)
                continue
            # The line being read is too long to hold: hand out the lines before it, skip it.
            start = size - open_len
            head = ((_split(pending, start, HEAD_BYTES)[1] if open_len else b"") + chunk[:HEAD_BYTES])[:HEAD_BYTES]
            length, chunk = _skip_line(it, chunk, open_len)
            block = _split(pending, start)[0] if start else b""
            pending, size, open_len = [], 0, 0
            if block:
                yield block
            yield OversizedLine(head, length)
    except CorruptStream:
        if size - open_len:
            yield _split(pending, size - open_len)[0]
        raise
    if size:
        yield _split(pending, size)[0]


def _split(pending: list[bytes], cut: int, keep: int = -1) -> tuple[bytes, bytes]:
    """(the first `cut` bytes of `pending`, the rest, or its first `keep` bytes). When the cut
    falls in the last chunk, as it does except on rare paths, the block is copied only once."""
    last = pending[-1]
    before = sum(len(c) for c in pending[:-1])
    if cut >= before:
        at = cut - before
        rest = last[at:] if keep < 0 else last[at:at + keep]
        return b"".join([*pending[:-1], memoryview(last)[:at]]), rest
    whole = b"".join(pending)
    return whole[:cut], whole[cut:] if keep < 0 else whole[cut:cut + keep]


def _skip_line(it: Iterator[bytes], chunk: bytes | None, length: int) -> tuple[int, bytes | None]:
    """Read to the end of a line too long to hold, from `chunk` on: (its length, without the
    newline; the chunk that follows it, or None at the end of the stream)."""
    while chunk is not None:
        nl = chunk.find(b"\n")
        if nl >= 0:
            rest = chunk[nl + 1:]
            return length + nl, rest if rest else next(it, None)
        length += len(chunk)
        chunk = next(it, None)
    return length, None
