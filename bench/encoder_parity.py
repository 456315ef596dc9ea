"""Whole-run check of the tokens stage's encoder: re-pack a run's dataset/ with the reference
engine (`tokenizers`) and compare, split by split, with the sequences the run's tokens/ holds
(tiktoken, where the stage chose it). No Spark: the GPU machine's packer (lm/pack.py), which lays
files out in the stage's order.

    .venv/bin/python bench/encoder_parity.py --run out [--engine tokenizers]

Prints one line per split (sequences, SHA-256 of both, equal or not, seconds) and exits 1 when
any split differs. Not a speed benchmark: the reference engine is the slow one.
"""
from __future__ import annotations

import argparse
import sys
import time

import _common  # noqa: F401  (puts lib/ on the path)
from codecorpus.io import fs
from codecorpus.io.layout import SPLITS, RunLayout
from codecorpus.io.packed import read_sequences
from codecorpus.lm.pack import digest, pack_split
from codecorpus.tokenizer.load import tokenizer_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a run root with dataset/, tokenizer/ and tokens/")
    ap.add_argument("--engine", default="tokenizers", choices=("tokenizers", "tiktoken", "auto"))
    args = ap.parse_args()
    layout = RunLayout(args.run)
    meta = fs.read_json(layout.path("tokens.meta"))
    tok_json = tokenizer_json(layout.path("tokenizer"))
    print(f"run {args.run}: tokens/ written by {meta['tokenizer'].get('encoder', 'tokenizers')}, "
          f"re-packed with {args.engine}")
    same = True
    for split in SPLITS:
        t0 = time.perf_counter()
        ours = read_sequences(layout.path(f"tokens.{split}"), meta["seq_length"])
        again = pack_split(layout.path(f"dataset.{split}"), tok_json, meta, engine=args.engine)
        a, b = digest(ours, meta["dtype"]), digest(again, meta["dtype"])
        same &= a == b
        print(f"{split}: {len(ours):,} sequences, tokens/ sha256 {a[:16]}, re-packed {len(again):,} sha256 {b[:16]}: "
              f"{'identical' if a == b else 'DIFFERENT'} ({time.perf_counter() - t0:.1f}s)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
