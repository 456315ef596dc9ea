"""The optional compiled extension (native/, the module `codecorpus_scan` that `pip install` builds
where it finds a C compiler): clean's measuring pass, decontamination's tokenizer and n-gram
hashes, ingest's JSON-lines parser.

`function(name)` gives one of its functions, or None where the extension was not built (said once
per process); every caller then takes its Python/numpy path, which gives the same results, slower.
Inside `disabled()` every caller takes that path, so tests and benchmarks can compare both.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_log = logging.getLogger("codecorpus")
_UNSET = object()
_module = _UNSET
_disabled = False


def _loaded():
    global _module
    if _module is _UNSET:
        try:
            import codecorpus_scan as _module
        except ImportError:
            _module = None
            _log.warning("codecorpus_scan (native/, the compiled passes) is not built here: clean, "
                         "decontamination and ingest run their numpy/Python paths, same results, slower")
    return _module


def function(name: str) -> Callable | None:
    """The extension's function `name`, or None (not built, or inside `disabled()`)."""
    module = None if _disabled else _loaded()
    return getattr(module, name) if module is not None else None


@contextmanager
def disabled() -> Iterator[None]:
    """Inside it, `function` returns None, as where the extension is not built."""
    global _disabled
    saved, _disabled = _disabled, True
    try:
        yield
    finally:
        _disabled = saved
