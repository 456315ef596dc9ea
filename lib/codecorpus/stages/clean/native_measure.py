"""The compiled measuring pass (native/measure.c, in the codecorpus_scan extension).

One C pass per file gives what the numpy measurements of `features.py` and the exact key of
`exact.py` give (the same figures, pinned by tests/test_clean.py on every kind of line break,
whitespace and non-ASCII character): line lengths, counts, `str.isalnum()` characters, the end of
the first lines and the MD5 key, without the dozen whole-batch numpy and Arrow passes (each
allocating arrays the size of the batch) they take. Where the extension was not built (or inside
`core.native.disabled()`), `run` returns None and the callers use their numpy and hashlib paths.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from codecorpus.core import native
from codecorpus.stages.clean.utf8 import Utf8Batch

# The int64 columns measure.c returns, in its order.
COLUMNS = ("line_max", "line_total", "n_lines", "n_newlines", "n_equals", "alnum", "chars", "head_end",
           "n_config", "n_test", "has_keyword")


def run(u: Utf8Batch, width: int) -> tuple[dict[str, np.ndarray], pa.Array] | None:
    """(each of COLUMNS per file, the exact keys as a string array without nulls), or None when
    the extension is not built. `head_end` is a byte position in `u.data`."""
    measure = native.function("measure")
    if measure is None:
        return None
    columns, keys = measure(u.data, u.offsets, int(width))
    values = np.frombuffer(columns, np.int64).reshape(len(COLUMNS), u.n)
    offsets = np.arange(0, 32 * u.n + 1, 32, dtype=np.int32)
    hexes = pa.Array.from_buffers(pa.string(), u.n, [None, pa.py_buffer(offsets), pa.py_buffer(keys)])
    return dict(zip(COLUMNS, values)), hexes
