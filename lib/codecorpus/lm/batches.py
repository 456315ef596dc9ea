"""The order in which training rows are drawn: shuffled, epoch after epoch, from a seed."""
from __future__ import annotations

import numpy as np

from codecorpus.core.errors import UserError


class BatchSampler:
    """Batches of row indices. Its state is two integers, so a resumed run sees exactly the
    batches the uninterrupted one would have."""

    def __init__(self, n_rows: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n_rows, batch_size, seed
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation()

    def _permutation(self) -> np.ndarray:
        # seeded by (seed, epoch): any epoch's order can be rebuilt without replaying earlier ones
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.n)

    def next(self) -> np.ndarray:
        out: list[np.ndarray] = []
        need = self.batch_size
        while need:
            take = self._perm[self.pos:self.pos + need]
            out.append(take)
            need -= len(take)
            self.pos += len(take)
            if self.pos >= self.n:
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm = self._permutation()
        return np.concatenate(out)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos, "n": self.n, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state["n"] != self.n or state["seed"] != self.seed:
            raise UserError(f"checkpoint was made on {state['n']} training rows with seed {state['seed']}, "
                            f"this run has {self.n} rows and seed {self.seed}: not the same data")
        self.epoch, self.pos = state["epoch"], state["pos"]
        self._perm = self._permutation()

    @property
    def epochs(self) -> float:
        return self.epoch + self.pos / max(self.n, 1)
