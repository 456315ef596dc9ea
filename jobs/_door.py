"""Shared by the job scripts: make `lib/` importable (also without installing), then build `main`."""
import sys
from pathlib import Path

_LIB = str(Path(__file__).resolve().parents[1] / "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)
# Run as a script, jobs/tokenize.py would shadow the standard library's `tokenize` for every
# later import: so when a job script is the program, the jobs folder leaves the search path.
_JOBS = str(Path(__file__).resolve().parent)
if sys.argv and sys.argv[0] and str(Path(sys.argv[0]).resolve().parent) == _JOBS:
    sys.path[:] = [p for p in sys.path if not p or str(Path(p).resolve()) != _JOBS]


def door(stages: list[str], description: str, needs_spark: bool = True):
    """`main(argv) -> exit code` running the given stages under the shared CLI."""
    from codecorpus.cli import run_stages

    def main(argv: list[str] | None = None) -> int:
        return run_stages(stages, argv, description, needs_spark=needs_spark)

    return main
