"""Choosing the LSH index shape (bands x rows) for a Jaccard threshold.

Two files with Jaccard similarity s share at least one of b bands of r rows with probability
1 - (1 - s^r)^b. Pairs below the threshold that become candidates are false positives, pairs
above it that do not are false negatives; the shape minimises the weighted areas under those
two curves (the criterion datasketch uses), integrated here with Simpson's rule on a fixed grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_GRID = 2001  # odd: Simpson's rule needs an even number of intervals


@dataclass(frozen=True)
class LshShape:
    bands: int
    rows: int
    fp_area: float  # probability area of candidates below the threshold
    fn_area: float  # probability area of missed pairs above it


def _simpson(y: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Integral over [lo, hi] of samples on an even grid, along the last axis."""
    h = (hi - lo) / (y.shape[-1] - 1)
    return h / 3 * (y[..., 0] + y[..., -1] + 4 * y[..., 1:-1:2].sum(-1) + 2 * y[..., 2:-1:2].sum(-1))


def error_areas(threshold: float, bands, rows) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive area, false-negative area) for arrays of shapes."""
    b = np.asarray(bands, dtype=float)[..., None]
    r = np.asarray(rows, dtype=float)[..., None]
    below = np.linspace(0.0, threshold, _GRID)
    above = np.linspace(threshold, 1.0, _GRID)
    fp = _simpson(1.0 - (1.0 - below ** r) ** b, 0.0, threshold)
    fn = _simpson((1.0 - above ** r) ** b, threshold, 1.0)
    return fp, fn


def choose_shape(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
                 ) -> LshShape:
    """The (bands, rows) with bands * rows <= num_perm minimising the weighted error; ties go
    to fewer bands, then fewer rows."""
    shapes = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    bands = np.array([s[0] for s in shapes])
    rows = np.array([s[1] for s in shapes])
    fp, fn = error_areas(threshold, bands, rows)
    best = int(np.argmin(fp_weight * fp + fn_weight * fn))
    return LshShape(int(bands[best]), int(rows[best]), float(fp[best]), float(fn[best]))


def shape_for(threshold: float, num_perm: int, bands: int = 0, rows: int = 0, fp_weight: float = 0.5,
              fn_weight: float = 0.5) -> LshShape:
    """The configured shape when given, else the chosen one; both with their error areas."""
    if bands and rows:
        fp, fn = error_areas(threshold, bands, rows)
        return LshShape(bands, rows, float(fp), float(fn))
    return choose_shape(threshold, num_perm, fp_weight, fn_weight)
