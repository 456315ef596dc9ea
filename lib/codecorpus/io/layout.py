"""Every folder and file name under a run root, in one place.

A location has a name (`"dataset.train"`, `"tokenizer.json"`); `RunLayout(root).path(name)`
gives its path. A name's first part (up to the first dot) is the output folder that holds it,
which is what a stage declares in its INPUTS and OUTPUTS; no other module spells these paths.
"""
from __future__ import annotations

MARKERS = "_stages"  # <root>/_stages/<stage>.json: a stage is complete exactly when its marker exists
TMP = "_tmp"         # <root>/_tmp/<stage>/<folder>: where a running stage writes before it publishes
SPLITS = ("train", "valid")

# name -> path under the run root (or under a running stage's temporary folder).
LOCATIONS: dict[str, str] = {
    "ingest": "ingest",
    "quarantine": "quarantine",
    "stats": "stats",
    "stats.json": "stats/stats.json",
    "clean": "clean",
    "rejects": "rejects",
    "dedup": "dedup",
    "dedup_removed": "dedup_removed",
    "dedup_keys": "dedup_keys",  # (id, LSH band keys) of the kept hashed files: the split's audit reuses them
    "dataset": "dataset",
    "dataset.train": "dataset/train",
    "dataset.valid": "dataset/valid",
    "dataset.card": "dataset/README.md",
    "tokenizer": "tokenizer",
    "tokenizer.json": "tokenizer/tokenizer.json",
    "tokenizer.training": "tokenizer/training.json",
    "tokenizer_eval": "tokenizer_eval",
    "tokenizer_eval.metrics": "tokenizer_eval/metrics.json",
    "tokens": "tokens",
    "tokens.train": "tokens/train",
    "tokens.valid": "tokens/valid",
    "tokens.meta": "tokens/meta.json",
    "report": "report",
    "report.index": "report/index.html",
    "report.summary": "report/summary.json",
    "published": "_published.json",  # jobs/publish.py's receipt of what it pushed where
    "lm": "lm",  # the GPU stage's results, copied back under the run (read by the report)
}
# What two runs of the same input and config must agree on, row for row or byte for byte
# (other files hold timings or absolute paths by nature).
PARQUET_DATA = ("ingest", "quarantine", "clean", "rejects", "dedup", "dedup_removed", "dataset.train",
                "dataset.valid", "tokens.train", "tokens.valid")
EXACT_FILES = ("stats.json", "tokenizer.json")


def compared_locations(folders) -> list[str]:
    """The locations in these output folders that runs are compared on, in layout order."""
    folders = set(folders)
    return [n for n in (*PARQUET_DATA, *EXACT_FILES) if folder_of(n) in folders]


def folder_of(name: str) -> str:
    """The output folder a location lives in ("dataset.train" -> "dataset")."""
    if name not in LOCATIONS:
        raise KeyError(f"unknown run location {name!r}; known: {', '.join(LOCATIONS)}")
    return name.split(".", 1)[0]


def split_location(folder: str, split: str) -> str:
    """"dataset", "train" -> "dataset.train"."""
    name = f"{folder}.{split}"
    folder_of(name)
    return name


class RunLayout:
    """Paths of one run root."""

    def __init__(self, root: str):
        self.root = str(root).rstrip("/") or "/"

    def path(self, name: str) -> str:
        folder_of(name)
        return f"{self.root}/{LOCATIONS[name]}"

    def marker(self, stage: str) -> str:
        return f"{self.root}/{MARKERS}/{stage}.json"

    def stage_tmp(self, stage: str) -> str:
        return f"{self.root}/{TMP}/{stage}"

    def scratch_path(self, stage: str, name: str) -> str:
        """A working folder of a running stage, never published (removed with its temporary folder)."""
        return f"{self.stage_tmp(stage)}/_scratch/{name}"

    def tmp_path(self, stage: str, name: str) -> str:
        """Where a running stage writes location `name` before publishing it."""
        folder_of(name)
        return f"{self.stage_tmp(stage)}/{LOCATIONS[name]}"
