"""The compiled measuring pass (native/measure.c, in the codecorpus_scan extension).

One C pass per file gives what the numpy measurements of `features.py` and the exact key of
`exact.py` give (the same figures, pinned by tests/test_clean.py on every kind of line break,
whitespace and non-ASCII character): line lengths, counts, `str.isalnum()` characters, the end of
the first lines and the MD5 key, without the dozen whole-batch numpy and Arrow passes (each
allocating arrays the size of the batch) they take. Where the extension was not built, `run`
returns None and the callers use their numpy and hashlib paths, said once in the log.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa

from codecorpus.stages.clean.utf8 import Utf8Batch

# The int64 columns measure.c returns, in its order.
COLUMNS = ("line_max", "line_total", "n_lines", "n_newlines", "n_equals", "alnum", "chars", "head_end",
           "n_config", "n_test", "has_keyword")

_log = logging.getLogger(__name__)
_UNSET = object()
_MEASURE = _UNSET


def _compiled():
    global _MEASURE
    if _MEASURE is _UNSET:
        try:
            from codecorpus_scan import measure as _MEASURE
        except ImportError:
            _MEASURE = None
            _log.warning("codecorpus_scan (the compiled measuring pass) is not built here: clean "
                         "measures files with numpy and hashlib, same figures, slower")
    return _MEASURE


def run(u: Utf8Batch, width: int) -> tuple[dict[str, np.ndarray], pa.Array] | None:
    """(each of COLUMNS per file, the exact keys as a string array without nulls), or None when
    the extension is not built. `head_end` is a byte position in `u.data`."""
    measure = _compiled()
    if measure is None:
        return None
    columns, keys = measure(u.data, u.offsets, int(width))
    values = np.frombuffer(columns, np.int64).reshape(len(COLUMNS), u.n)
    offsets = np.arange(0, 32 * u.n + 1, 32, dtype=np.int32)
    hexes = pa.Array.from_buffers(pa.string(), u.n, [None, pa.py_buffer(offsets), pa.py_buffer(keys)])
    return dict(zip(COLUMNS, values)), hexes


@contextmanager
def disabled() -> Iterator[None]:
    """Inside it, `run` returns None, as where the extension is not built: tests and benchmarks
    compare both paths."""
    global _MEASURE
    saved, _MEASURE = _MEASURE, None
    try:
        yield
    finally:
        _MEASURE = saved
