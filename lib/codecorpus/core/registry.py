"""The pipeline's stages, in order, with what each reads and writes.

Each entry names a stage, its module (imported here, explicitly), the output folders it reads
(INPUTS) and writes (OUTPUTS), as `io.layout` names them. The data chain ingest -> clean ->
dedup -> split hands rows on: a stage that reads `ROWS` gets the output of the nearest enabled
data stage before it, so turning clean or dedup off rewires the chain here and nowhere else.
A stage module exposes `build(spark, cfg, io) -> Counts`; `spark` is None for stages that
need no Spark. Nothing but the runner (`core.cli`) and this file knows the order.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType

from codecorpus.core.config import Config
from codecorpus.core.errors import StageSkipped, UserError
from codecorpus.core.stage import Counts, StageIO, run_stage
from codecorpus.stages import (
    eval_tokenizer,
    ingest,
    report,
    split,
    stats,
    tokens,
    train_tokenizer,
)
from codecorpus.stages.clean import stage as clean
from codecorpus.stages.dedup import stage as dedup

log = logging.getLogger("codecorpus")

ROWS = "rows"  # an input meaning "the rows the data chain has kept so far"
DATA_CHAIN = ("ingest", "clean", "dedup")


@dataclass(frozen=True)
class Stage:
    name: str
    module: ModuleType
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    needs_spark: bool = True


STAGE_LIST: tuple[Stage, ...] = (
    Stage("ingest", ingest, (), ("ingest", "quarantine")),
    Stage("stats", stats, ("ingest",), ("stats",)),
    Stage("clean", clean, (ROWS,), ("clean", "rejects")),
    Stage("dedup", dedup, (ROWS,), ("dedup", "dedup_removed", "dedup_keys")),
    Stage("split", split, (ROWS, "dedup_keys"), ("dataset",)),
    Stage("train_tokenizer", train_tokenizer, ("dataset",), ("tokenizer",)),
    Stage("eval_tokenizer", eval_tokenizer, ("dataset", "tokenizer"), ("tokenizer_eval",)),
    Stage("tokens", tokens, ("dataset", "tokenizer"), ("tokens",)),
    Stage("report", report, ("stats", "tokenizer", "tokenizer_eval", "lm"), ("report",), needs_spark=False),
)
STAGES: dict[str, Stage] = {s.name: s for s in STAGE_LIST}


def get(stage: str) -> Stage:
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    return STAGES[stage]


def enabled(cfg: Config, stage: str) -> bool:
    section = getattr(cfg, stage, None)
    return bool(getattr(section, "enabled", True))


def rows_source(cfg: Config, stage: str) -> str:
    """The output folder a data stage reads: that of the nearest enabled chain stage before it."""
    order = list(STAGES)
    before = [s for s in DATA_CHAIN if order.index(s) < order.index(stage) and enabled(cfg, s)]
    return before[-1]


def stage_io(cfg: Config, stage: str) -> StageIO:
    """The stage's inputs and outputs, resolved against the run root."""
    spec = get(stage)
    inputs, aliases = [], {}
    for name in spec.inputs:
        if name == ROWS:
            aliases[ROWS] = rows_source(cfg, stage)
            inputs.append(aliases[ROWS])
        else:
            inputs.append(name)
    upstream = list(STAGES)[: list(STAGES).index(stage)]
    return StageIO(cfg.output, stage, inputs, list(spec.outputs), aliases, upstream)


def producer(folder: str) -> str | None:
    """The stage that writes an output folder."""
    return next((s.name for s in STAGE_LIST if folder in s.outputs), None)


def missing_inputs(io: StageIO) -> str | None:
    """Why a stage cannot run: an input folder whose stage was skipped (None: all were made).
    On an object store, an input whose stage has no marker is not read at all: a folder is moved
    into place object by object there, and the marker, written after, is what vouches for it.
    (Where a folder is renamed in one step, a folder without a marker is whole: one made by
    hand, as tests and users who bring their own ingest output do.)"""
    from codecorpus.io import fs

    vouched_only = not fs.renames_atomically(io.layout.root)
    for folder in io.inputs:
        made_by = producer(folder)
        counts = io.counts(made_by) if made_by else None
        if vouched_only and made_by and counts is None:
            raise UserError(f"input {io.layout.path(folder)} is not vouched for by a finished {made_by} "
                            f"(no {io.layout.marker(made_by)}): run {made_by} first")
        if counts is not None and counts.skipped:
            return f"no {folder}/: {made_by} was skipped ({counts.skipped})"
    return None


def run_one(spark, cfg: Config, stage: str, force: bool = False) -> Counts | None:
    if not enabled(cfg, stage):
        log.info("[%s] turned off in the config, skipping", stage)
        return None
    spec = get(stage)

    def body(io: StageIO) -> Counts:
        reason = missing_inputs(io) if spec.name != "report" else None
        if reason:
            raise StageSkipped(reason)
        return spec.module.build(spark, cfg, io)

    def seal(io: StageIO) -> dict:
        from codecorpus.core import digest

        digests = digest.output_digests(spark, io) if spark is not None and cfg.record_digests else {}
        return {"digests": digests, "config_sha256": digest.config_digest(cfg)}

    return run_stage(stage_io(cfg, stage), body, force=force, seal=seal)


def run_many(spark, cfg: Config, stages: list[str], force: bool = False) -> dict[str, Counts]:
    results = {}
    for stage in stages:
        counts = run_one(spark, cfg, stage, force=force)
        if counts is not None:
            results[stage] = counts
    return results
