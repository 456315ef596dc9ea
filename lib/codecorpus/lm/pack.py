"""The tokens stage's sequences, rebuilt without Spark from a run's dataset/ and tokenizer/.

Why: the device call carries at most 64 MiB. A run's dataset/ (zstd Parquet text) holds ~0.93
bytes per token against ~1.37 for tokens/ (uint16 ids, zstd): about 1.5 times the training
tokens per MiB (docs/gpu-run.md). So `jobs/export_run.py --form dataset` carries dataset/ +
tokenizer/ + tokens/meta.json, and the GPU machine packs them here with the same packer
(`tokens.packer.GroupPacker`) in the same order as the stage:

- each file's packing group is pmod(xxhash64(seed, id), groups), groups = ceil(files /
  files_per_group), and inside its group files are sorted by (xxhash64(seed + 1, id), id): Spark's
  `F.xxhash64(F.lit(seed), F.col("id"))`, which folds the int literal and then the long id
  through XXH64 starting from Spark's seed 42 (`core.xxhash64`, vectorised);
- groups are laid end to end in group order, each group's short tail dropped.

The result is checked against the export's SHA-256 of the run's own tokens/ split (export.json),
so a model trains on exactly the sequences tokens/ holds, or the load fails saying so.
"""
from __future__ import annotations

import hashlib
import math
import os

import numpy as np

from codecorpus.core.errors import UserError
from codecorpus.core.xxhash64 import spark_xxhash64

ENCODE_BATCH = 2048  # files per encode call: enough to keep every core busy


def file_order(ids: np.ndarray, files_total: int, files_per_group: int, seed: int) -> tuple[np.ndarray, int]:
    """Indices of `ids` in the tokens stage's order (by group, then file order), and the group count."""
    groups = max(1, math.ceil(files_total / files_per_group))
    grp = spark_xxhash64(seed, ids) % groups  # numpy's % takes the divisor's sign: Spark's pmod
    ord_ = spark_xxhash64(seed + 1, ids)
    return np.lexsort((ids, ord_, grp)), groups


def pack_split(folder: str, tokenizer_json: str, meta: dict, engine: str = "auto") -> np.ndarray:
    """(n, seq_length) rows of dataset/<split> as the tokens stage packs them (remainder "drop");
    `engine` as tokens.encoder (the same ids either way)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from codecorpus.tokenizer.encoder import encoder_for
    from codecorpus.tokenizer.load import backend_from_json
    from codecorpus.tokens.packer import GroupPacker, encode_contents

    if meta.get("remainder") != "drop":
        raise UserError(f"packing on the GPU machine supports tokens.remainder = 'drop', not {meta.get('remainder')!r}")
    table = pq.read_table(folder, columns=["id", "content"])
    ids = table.column("id").to_numpy()
    order, groups = file_order(ids, len(ids), meta["files_per_group"], meta["seed"])
    grp = spark_xxhash64(meta["seed"], ids[order]) % groups
    content = table.column("content").take(pa.array(order))
    eos = backend_from_json(tokenizer_json).token_to_id(meta["tokenizer"]["eos_token"])
    # "auto": tiktoken where installed and exact, else tokenizers: the same ids (the digest check says so).
    encoder = encoder_for(tokenizer_json, engine, threads=os.cpu_count() or 1)
    out: list[np.ndarray] = []
    for g in range(groups):
        sel = np.flatnonzero(grp == g)
        packer = GroupPacker(meta["seq_length"], eos, pad=False)
        for start in range(0, len(sel), ENCODE_BATCH):
            chunk = content.take(pa.array(sel[start:start + ENCODE_BATCH])).combine_chunks()
            encoded, chars = encode_contents(encoder, chunk)
            out.append(packer.add(encoded, int(chars.sum())))
        packer.finish()  # the group's short tail is dropped, as the stage does
    return np.concatenate(out) if out else np.empty((0, meta["seq_length"]), np.int64)


def digest(rows: np.ndarray, dtype: str) -> str:
    """SHA-256 of the rows as the tokens stage stores them (little-endian `dtype`)."""
    return hashlib.sha256(np.ascontiguousarray(rows, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).hexdigest()
