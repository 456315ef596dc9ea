"""Two runs, stage by stage: which outputs differ (see `core.digest`).

The digests recorded in each stage's marker are compared first; an output without a recorded
digest (an older run) is digested here. Where rows differ, a few differing ids are named."""
from __future__ import annotations

from codecorpus.core import digest
from codecorpus.core.registry import STAGES
from codecorpus.core.stage import load_counts
from codecorpus.io import fs, layout
from codecorpus.io.layout import RunLayout


def recorded(run: str, stage: str) -> dict[str, str]:
    counts = load_counts(run, stage)
    return counts.digests if counts is not None else {}


def describe(spark, name: str, a: str, b: str, da: str, db: str) -> str:
    """One line for two differing digests of a location."""
    if name in layout.EXACT_FILES or da is None or db is None:
        return f"{name}: {da} != {db}"
    from codecorpus.io.parquet import read_parquet

    fa, fb = read_parquet(spark, a), read_parquet(spark, b)
    ids = digest.differing_ids(fa, fb) if "id" in fa.columns and "id" in fb.columns else []
    return f"{name}: rows {da} != {db}" + (f"; differing ids: {ids}" if ids else "")


def compare_stage(spark, stage: str, run_a: str, run_b: str) -> list[str]:
    ra, rb = recorded(run_a, stage), recorded(run_b, stage)
    la, lb = RunLayout(run_a), RunLayout(run_b)
    out = []
    for name in layout.compared_locations(STAGES[stage].outputs):
        a, b = la.path(name), lb.path(name)
        da = ra.get(name) or digest.location_digest(spark, name, a)
        db = rb.get(name) or digest.location_digest(spark, name, b)
        if da != db:
            out.append(f"stage {stage} differs: {describe(spark, name, a, b, da, db)}")
    return out


def compare_runs(spark, run_a: str, run_b: str) -> tuple[list[str], int]:
    """(differences as 'stage X differs: ...' lines in pipeline order, outputs compared)."""
    for run in (run_a, run_b):
        if not fs.exists(RunLayout(run).marker("ingest")):
            from codecorpus.core.errors import UserError

            raise UserError(f"{run} is not a finished run (no _stages/ingest.json)")
    differences, compared = [], 0
    for stage in STAGES:
        compared += len(layout.compared_locations(STAGES[stage].outputs))
        differences += compare_stage(spark, stage, run_a, run_b)
    return differences, compared
