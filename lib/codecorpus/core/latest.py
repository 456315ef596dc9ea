"""A one-entry cache: the object built for the latest key, kept for the process.

Executors' Python workers run task after task; a tokenizer or encoder built from the same JSON
is reused across their tasks and batches instead of rebuilt per batch, and a different key
replaces it (the old one is freed), so a long-lived worker holds one at a time.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any


class Latest:
    def __init__(self):
        self._key: Hashable | None = None
        self._value: Any = None

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The value for `key`: the kept one, or `build()` kept in its place."""
        if self._value is None or self._key != key:
            self._value = None  # free the old one before building the new one
            self._value, self._key = build(), key
        return self._value
