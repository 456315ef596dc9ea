"""What of a pipeline run travels to the GPU machine (jobs/export_run.py), and how it is read there.

Two forms, both made only of what the run wrote:
- "dataset": tokenizer/, dataset/{train,valid} and tokens/meta.json; the GPU machine rebuilds
  tokens/'s sequences with `lm.pack` (the same packer, the same order) and checks them against
  the SHA-256 of the run's tokens/ split recorded here;
- "tokens": tokenizer/, tokens/meta.json and tokens/{train,valid}, train cut to its first
  `max_train_tokens` (whole sequences), rewritten with zstd level 19.
`export.json` in each exported run says which form, from where, and each split's rows and digest;
`measure` gives each form's bytes per token, the figure that decides which form to carry.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np

from codecorpus.core.errors import UserError
from codecorpus.io.layout import RunLayout
from codecorpus.io.packed import read_sequences

MANIFEST = "export.json"
SPLITS = ("train", "valid")


def tree_bytes(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _meta(layout: RunLayout) -> dict:
    path = layout.path("tokens.meta")
    if not os.path.isfile(path):
        raise UserError(f"{path} not found: run the pipeline (its tokens stage) on {layout.root} first")
    with open(path) as f:
        return json.load(f)


def measure(root: str) -> dict:
    """Bytes per training token of each form for the run at `root`."""
    layout = RunLayout(root)
    tokens = _meta(layout)["splits"]["train"]["tokens"]
    forms = {"dataset": tree_bytes(layout.path("dataset.train")), "tokens": tree_bytes(layout.path("tokens.train"))}
    return {form: {"train_bytes": b, "bytes_per_token": round(b / tokens, 3) if tokens else None}
            for form, b in forms.items()} | {"train_tokens": tokens}


def export_run(root: str, dest: str, form: str = "dataset", max_train_tokens: int = 0) -> dict:
    """Write the run's carried part to `dest` (replaced); returns its manifest."""
    from codecorpus.lm.pack import digest

    layout = RunLayout(root)
    meta = _meta(layout)
    if form not in ("dataset", "tokens"):
        raise UserError(f"--form {form!r}: dataset or tokens")
    if os.path.exists(dest):
        shutil.rmtree(dest)
    out = RunLayout(dest)
    shutil.copytree(layout.path("tokenizer"), out.path("tokenizer"))
    os.makedirs(out.path("tokens"))
    shutil.copy2(layout.path("tokens.meta"), out.path("tokens.meta"))
    splits = {}
    for split in SPLITS:
        rows = read_sequences(layout.path(f"tokens.{split}"), meta["seq_length"])
        if form == "tokens" and split == "train" and max_train_tokens:
            rows = rows[: max_train_tokens // meta["seq_length"]]
        splits[split] = {"sequences": len(rows), "sha256": digest(rows, meta["dtype"]),
                         "of_sequences": meta["splits"][split]["sequences"]}
        if form == "dataset":
            _copy_parquet(layout.path(f"dataset.{split}"), out.path(f"dataset.{split}"))
        else:
            _write_rows(rows, out.path(f"tokens.{split}"), meta["dtype"])
    manifest = {"form": form, "source": os.path.abspath(root), "seq_length": meta["seq_length"],
                "splits": splits, "measure": measure(root), "bytes": tree_bytes(dest)}
    with open(os.path.join(dest, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def _copy_parquet(src: str, dst: str) -> None:
    os.makedirs(dst)
    for name in sorted(os.listdir(src)):
        if name.endswith(".parquet"):
            shutil.copy2(os.path.join(src, name), os.path.join(dst, name))


def _write_rows(rows: np.ndarray, folder: str, dtype: str) -> None:
    import pyarrow.parquet as pq

    from codecorpus.tokens.packer import output_schema, sequences_table

    os.makedirs(folder)
    schema = output_schema(dtype, False)
    table = sequences_table(rows, [rows.shape[1]] * len(rows), schema)
    pq.write_table(table, os.path.join(folder, "part-00000.parquet"), compression="zstd", compression_level=19,
                   row_group_size=128)


# ---------------------------------------------------------------- on the GPU machine

def manifest(root: str) -> dict | None:
    path = os.path.join(root, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def packed_split(root: str, split: str, meta: dict, man: dict) -> np.ndarray:
    """An exported run's split: read from tokens/ (form "tokens") or packed from dataset/ (form
    "dataset"); either way checked against the digest taken from the run's tokens/ at export."""
    from codecorpus.lm.pack import digest, pack_split
    from codecorpus.tokenizer.load import tokenizer_json

    layout = RunLayout(root)
    if man["form"] == "dataset":
        rows = pack_split(layout.path(f"dataset.{split}"), tokenizer_json(layout.path("tokenizer")), meta)
        rows = rows.astype(meta["dtype"])  # as tokens/ stores them: uint16 is a quarter of int64
    else:
        rows = read_sequences(layout.path(f"tokens.{split}"), meta["seq_length"])
    want = man["splits"][split]
    if len(rows) != want["sequences"] or digest(rows, meta["dtype"]) != want["sha256"]:
        raise UserError(f"{root}: {split} rebuilt as {len(rows):,} sequences that differ from the run's tokens/ "
                        f"({want['sequences']:,}, sha256 {want['sha256'][:12]}...): export it again")
    return rows
