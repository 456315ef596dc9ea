"""The compiled JSON-lines parser (native/jsonl.c) gives Arrow's reader's columns, or declines."""
import json
import random

import pyarrow as pa
import pytest

from codecorpus.io import shards

pytest.importorskip("codecorpus_scan")

ALPHABET = ['a', '"', '\\', '\n', '\t', 'é', '\u2028', '\U0001F600', '\x7f', '\x01', '/', '\r', 'ß', ' ',
            'İ'] * 3 + ['\ud800', '\x00']


def _random_block(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(1, 4)):
        obj = {}
        for f in shards.FIELDS:
            r = rng.random()
            if r < 0.1:
                continue
            obj[f] = None if r < 0.15 else rng.randint(0, 9) if r < 0.18 else \
                ''.join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))
        s = json.dumps(obj, ensure_ascii=rng.random() < 0.5)
        if rng.random() < 0.1:
            s = s.replace(', ', ',  \t')
        if rng.random() < 0.05:
            s = s[:rng.randint(0, len(s))]
        if rng.random() < 0.05:
            s = s.replace('"path"', '"pa\\u0074h"')
        if rng.random() < 0.03:
            s = s[:-1] + ', "extra": 1}'
        lines.append('' if rng.random() < 0.03 else s)
    buf = ('\n'.join(lines) + ('\n' if rng.random() < 0.7 else '')).encode('utf-8', 'surrogatepass')
    if buf and rng.random() < 0.05:
        b = bytearray(buf)
        b[rng.randrange(len(b))] = rng.choice([0x80, 0xff, 0xc0, 0xed])
        buf = bytes(b)
    return buf


def test_native_columns_equal_arrow_readers_or_decline():
    rng = random.Random(7)
    accepted = declined = 0
    for _ in range(3000):
        buf = _random_block(rng)
        n = shards._line_count(buf)
        if not n:
            continue
        native = shards._native_parse(buf, n)
        table = shards._fast_parse(buf, n)
        if native is None:
            declined += 1
            continue
        assert table is not None, buf  # it never accepts what the old path rejects
        for f in shards.FIELDS:
            native[f].validate(full=True)
            assert native[f].equals(shards._one_chunk(table.column(f))), (f, buf)
        accepted += 1
    assert accepted > 20 and declined > 100


def test_plain_lines_nulls_and_absent_fields():
    buf = b'{"repo_name": "r", "path": "a\\u00e9\\ud83d\\ude00.py", "content": "x\\n\\"y\\"", "license": null}\n{}'
    cols = shards._native_parse(buf, 2)
    assert cols["path"].to_pylist() == ["a\u00e9\U0001F600.py", None]
    assert cols["content"].to_pylist() == ['x\n"y"', None]
    assert cols["license"].null_count == 2 and cols["copies"].null_count == 2


@pytest.mark.parametrize("line", [b'{"content": 1}', b'{"content": "a", "content": "b"}', b'{"x": "1"}',
                                  b'{"content": "\\udc00"}', b'{"content": "a\x01"}', b'{"content": "\xff"}',
                                  b'{"content": "a"} {"content": "b"}', b''])
def test_declines_what_is_not_plain(line):
    assert shards._native_parse(line + b"\n", 1) is None


def test_long_plain_runs_around_every_kind_of_special_byte():
    """The 16- and 8-byte copies: a special byte at every offset of a long plain run, each string
    decoded as json.loads decodes it."""
    from codecorpus.core import native

    rng = random.Random(11)
    specials = ['"', '\\', '\n', '\t', 'é', '\U0001F600', '\x7f', '/', '\u2028']
    texts = [''.join('a' * rng.randint(0, 40) + rng.choice(specials) for _ in range(rng.randint(1, 6)))
             + 'b' * rng.randint(0, 40) for _ in range(400)]
    lines = [json.dumps({"repo_name": "r", "path": f"p{i}.py", "content": t}, ensure_ascii=i % 2 == 0)
             for i, t in enumerate(texts)]
    block = ("\n".join(lines) + "\n").encode()
    parsed = native.function("parse_lines")(block, len(lines), shards._FIELD_NAMES)
    data, offsets, _, nulls = parsed[shards.FIELDS.index("content")]
    col = pa.Array.from_buffers(pa.string(), len(lines), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    assert nulls == 0 and col.to_pylist() == texts


@pytest.mark.parametrize("block", [b"", b"\n", b"a", b"a\n", b"a\nb", b"\n\n\n", b"x" * 100 + b"\n" + b"y" * 3])
def test_count_lines_counts_an_unterminated_last_line(block):
    from codecorpus.core import native

    expected = block.count(b"\n") + (1 if block and not block.endswith(b"\n") else 0)
    assert native.function("count_lines")(block) == expected
    with native.disabled():
        assert shards._line_count(block) == expected
