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

from codecorpus.core.errors import StageSkipped
from codecorpus.io import fs, layout
from codecorpus.io.layout import RunLayout

log = logging.getLogger("codecorpus")



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
    # Order-independent digests of the published outputs (core.digest) and of the config:
    # what `jobs/verify.py` compares between runs.
    digests: dict[str, str] = field(default_factory=dict)
    config_sha256: str = ""

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

    @property
    def skipped(self) -> str | None:
        """Why the stage did not run on this input (None when it ran)."""
        return self.extra.get("skipped")

    def summary(self) -> str:
        if self.skipped:
            return f"[{self.stage}] skipped: {self.skipped}"
        parts = [f"in={self.rows_in:,}", f"out={self.rows_out:,}"]
        if self.dropped:
            parts.append("dropped=" + ", ".join(f"{k}:{v:,}" for k, v in sorted(self.dropped.items())))
        if self.quarantined:
            parts.append(f"quarantined={self.quarantined:,}")
        return f"[{self.stage}] " + " ".join(parts) + f" ({self.seconds:.1f}s)"


class StageIO:
    """What a running stage may touch: `input(name)` is the published path of a location in a
    folder the stage declared as an input; `output(name)` is the temporary path of a location in
    a folder it declared as an output (renamed into place when the stage succeeds). Names are
    those of `io.layout`; `aliases` maps a stage's own input names (the data chain's "rows")
    onto layout names; `upstream` lists the stages before this one, in pipeline order (whose
    markers `counts` reads)."""

    def __init__(self, root: str, stage: str, inputs: list[str], outputs: list[str],
                 aliases: dict[str, str] | None = None, upstream: list[str] | None = None):
        self.layout = RunLayout(root)
        self.stage = stage
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.aliases = dict(aliases or {})
        self.upstream = list(upstream or [])

    def input(self, name: str) -> str:
        name = self.aliases.get(name, name)
        if layout.folder_of(name) not in self.inputs:
            raise ValueError(f"stage {self.stage} did not declare input {name!r} (inputs: {self.inputs})")
        return self.layout.path(name)

    def output(self, name: str) -> str:
        self._declared(name)
        return self.layout.tmp_path(self.stage, name)

    def scratch(self, name: str) -> str:
        """A working folder for this run of the stage (shared by driver and executors like the
        run root); removed when the stage publishes or is cleared."""
        return self.layout.scratch_path(self.stage, name)

    def final(self, name: str) -> str:
        """Where an output will be once the stage has published it."""
        self._declared(name)
        return self.layout.path(name)

    def counts(self, stage: str) -> "Counts | None":
        """The marker of an earlier stage (its row accounting and figures)."""
        return load_counts(self.layout.root, stage)

    def _declared(self, name: str) -> None:
        if layout.folder_of(name) not in self.outputs:
            raise ValueError(f"stage {self.stage} did not declare output {name!r} (outputs: {self.outputs})")

    def clear(self) -> None:
        fs.remove(self.layout.stage_tmp(self.stage))
        for name in self.outputs:
            fs.remove(self.layout.path(name))

    def publish(self) -> None:
        for name in self.outputs:
            tmp = self.layout.tmp_path(self.stage, name)
            if fs.exists(tmp):
                fs.touch_success(tmp)
                fs.remove(self.layout.path(name))
                fs.rename(tmp, self.layout.path(name))
        fs.remove(self.layout.stage_tmp(self.stage))


def marker_path(root: str, stage: str) -> str:
    return RunLayout(root).marker(stage)


def is_complete(root: str, stage: str) -> bool:
    return fs.exists(marker_path(root, stage))


def load_counts(root: str, stage: str) -> Counts | None:
    path = marker_path(root, stage)
    return Counts.from_dict(fs.read_json(path)) if fs.exists(path) else None


def invalidate(root: str, stage: str) -> None:
    fs.remove(marker_path(root, stage))


def run_stage(io: StageIO, body: Callable[[StageIO], Counts], force: bool = False,
              seal: Callable[[StageIO], dict[str, Any]] | None = None) -> Counts:
    """Run `body` under the contract; returns the stage's Counts (from the marker if skipped)."""
    root, stage = io.layout.root, io.stage
    if not force and is_complete(root, stage):
        counts = load_counts(root, stage)
        log.info("[%s] already complete, skipping (use --force to redo)", stage)
        return counts
    fs.check_writable(root)
    invalidate(root, stage)
    io.clear()
    fs.makedirs(io.layout.stage_tmp(stage))
    started = time.time()
    try:
        counts = body(io)
    except StageSkipped as skip:
        # Recorded as complete-but-skipped, with nothing published: later stages that need its
        # outputs are skipped in turn, and the report says why.
        io.clear()
        counts = Counts(stage, rows_in=0, rows_out=0, extra={"skipped": str(skip)})
    counts = Counts(**{**counts.to_dict(), "stage": stage, "seconds": round(time.time() - started, 3)})
    counts.check()
    io.publish()
    if seal is not None:  # digests of what was just published, recorded in the marker
        counts = Counts(**{**counts.to_dict(), **seal(io)})
    fs.write_json_atomic(marker_path(root, stage), counts.to_dict())
    log.info("%s", counts.summary())
    print(counts.summary(), flush=True)
    return counts
