"""Shared by the job scripts: make `lib/` importable without installing (spark-submit ships it
as a zip too), then hand out the one CLI of `codecorpus.core.cli`."""
import sys
from pathlib import Path

_LIB = str(Path(__file__).resolve().parents[1] / "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

from codecorpus.core.cli import job, stage_job  # noqa: E402,F401
