"""The stage contract.

A stage writes each of its output folders under a temporary folder, then renames them into
place, then writes its marker `<output>/_stages/<name>.json` holding its `Counts`. A stage is
complete exactly when its marker exists: a crash before the marker leaves nothing a re-run
trusts (the re-run clears the leftovers and starts over), and a complete stage is skipped
unless forced.

Every stage accounts for its rows: rows_in = rows_out + sum(dropped) + quarantined. The check
lives here, once, for all stages.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from .io import fs

log = logging.getLogger("codecorpus")

MARKERS = "_stages"
TMP = "_tmp"


class AccountingError(RuntimeError):
    """A stage lost or invented rows; this is a bug, never a user error."""


@dataclass(frozen=True)
class Counts:
    stage: str
    rows_in: int
    rows_out: int
    dropped: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # stage-specific figures for stats/report
    seconds: float = 0.0

    def check(self) -> "Counts":
        accounted = self.rows_out + sum(self.dropped.values()) + self.quarantined
        if accounted != self.rows_in:
            raise AccountingError(
                f"stage {self.stage}: rows_in={self.rows_in} but out={self.rows_out} + "
                f"dropped={sum(self.dropped.values())} {self.dropped} + quarantined={self.quarantined}"
                f" = {accounted}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Counts":
        return cls(**data)

    def summary(self) -> str:
        parts = [f"in={self.rows_in:,}", f"out={self.rows_out:,}"]
        if self.dropped:
            parts.append("dropped=" + ", ".join(f"{k}:{v:,}" for k, v in sorted(self.dropped.items())))
        if self.quarantined:
            parts.append(f"quarantined={self.quarantined:,}")
        return f"[{self.stage}] " + " ".join(parts) + f" ({self.seconds:.1f}s)"


class StageOutputs:
    """Where a running stage writes: `tmp(name)` while working; renamed to `final(name)` on success."""

    def __init__(self, root: str, stage: str, outputs: list[str]):
        self.root = root.rstrip("/")
        self.stage = stage
        self.outputs = list(outputs)

    def tmp(self, name: str) -> str:
        self._known(name)
        return f"{self.root}/{TMP}/{self.stage}/{name}"

    def final(self, name: str) -> str:
        self._known(name)
        return f"{self.root}/{name}"

    def _known(self, name: str) -> None:
        if name not in self.outputs:
            raise ValueError(f"stage {self.stage} did not declare output {name!r}")

    def clear(self) -> None:
        fs.remove(f"{self.root}/{TMP}/{self.stage}")
        for name in self.outputs:
            fs.remove(self.final(name))

    def publish(self) -> None:
        for name in self.outputs:
            if fs.exists(self.tmp(name)):
                fs.touch_success(self.tmp(name))
                fs.remove(self.final(name))
                fs.rename(self.tmp(name), self.final(name))
        fs.remove(f"{self.root}/{TMP}/{self.stage}")


def marker_path(root: str, stage: str) -> str:
    return f"{root.rstrip('/')}/{MARKERS}/{stage}.json"


def is_complete(root: str, stage: str) -> bool:
    return fs.exists(marker_path(root, stage))


def load_counts(root: str, stage: str) -> Counts | None:
    path = marker_path(root, stage)
    return Counts.from_dict(fs.read_json(path)) if fs.exists(path) else None


def invalidate(root: str, stage: str) -> None:
    fs.remove(marker_path(root, stage))


def run_stage(
    root: str,
    stage: str,
    outputs: list[str],
    body: Callable[[StageOutputs], Counts],
    force: bool = False,
) -> Counts:
    """Run `body` under the contract; returns the stage's Counts (from the marker if skipped)."""
    if not force and is_complete(root, stage):
        counts = load_counts(root, stage)
        log.info("[%s] already complete, skipping (use --force to redo)", stage)
        return counts
    fs.check_writable(root)
    invalidate(root, stage)
    out = StageOutputs(root, stage, outputs)
    out.clear()
    for name in outputs:
        fs.makedirs(f"{root}/{TMP}/{stage}")
    started = time.time()
    counts = body(out)
    counts = Counts(**{**counts.to_dict(), "stage": stage, "seconds": round(time.time() - started, 3)})
    counts.check()
    out.publish()
    fs.write_json_atomic(marker_path(root, stage), counts.to_dict())
    log.info("%s", counts.summary())
    print(counts.summary(), flush=True)
    return counts
