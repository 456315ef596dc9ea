"""Read the packed token shards (`tokens/<split>/*.parquet`) in a training loop.

    from codecorpus.io.packed import PackedDataset
    ds = PackedDataset("out/tokens/train")            # a torch.utils.data.Dataset
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, num_workers=2)

Files are opened with `pyarrow.memory_map`, so DataLoader workers share the page cache instead
of each holding a copy. A read decodes one Parquet row group (128 sequences as the stage writes
them) and the last few are cached per process, so sequential reads are cheap and a random read
costs one row group. torch is imported only when `PackedDataset` is first used; `PackedShards`
is the same reader returning numpy arrays, for code without torch.

`read_sequences(folder, seq_length)` reads a whole split into one [n, seq_length] array, for a
training loop that holds its data in memory (the GPU stage: shuffling and resuming an
in-memory array is exact and cheap).
"""
from __future__ import annotations

import glob
import os
from collections import OrderedDict
from typing import Any

import numpy as np

CACHED_ROW_GROUPS = 4


def _shard_files(source: str | os.PathLike | list) -> list[str]:
    if isinstance(source, (list, tuple)):
        return [str(p) for p in source]
    source = str(source)
    if os.path.isdir(source):
        files = sorted(glob.glob(os.path.join(source, "*.parquet")))
    else:
        files = sorted(glob.glob(source)) if any(c in source for c in "*?[") else [source]
    if not files:
        raise FileNotFoundError(f"no Parquet shards at {source}")
    return files


class PackedShards:
    """Random access to fixed-length sequences stored as Parquet shards (numpy results)."""

    def __init__(self, source: str | os.PathLike | list, *, with_attention_mask: bool | None = None):
        import pyarrow.parquet as pq

        self.files = _shard_files(source)
        starts, locations, columns = [], [], None
        total = 0
        for i, path in enumerate(self.files):
            meta = pq.read_metadata(path)
            names = meta.schema.to_arrow_schema().names
            if "input_ids" not in names:
                raise ValueError(f"{path} has no input_ids column")
            columns = columns or names
            for rg in range(meta.num_row_groups):
                n = meta.row_group(rg).num_rows
                if n:
                    starts.append(total)
                    locations.append((i, rg))
                    total += n
        self._starts = np.asarray(starts, np.int64)
        self._locations = locations
        self._len = total
        self.has_attention_mask = "attention_mask" in (columns or [])
        # Default: hand out the mask exactly when the shards carry one (remainder = "pad").
        self.with_attention_mask = self.has_attention_mask if with_attention_mask is None else with_attention_mask
        self._open: dict[int, Any] = {}
        self._cache: OrderedDict[tuple[int, int], dict[str, np.ndarray]] = OrderedDict()
        self.seq_length = self._row_group(0)["input_ids"].shape[1] if total else 0

    def __len__(self) -> int:
        return self._len

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)  # open files and caches stay behind: each worker maps its own
        state["_open"], state["_cache"] = {}, OrderedDict()
        return state

    def _row_group(self, index: int) -> dict[str, np.ndarray]:
        key = self._locations[index]
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        import pyarrow as pa
        import pyarrow.parquet as pq

        file_no, rg = key
        if file_no not in self._open:
            self._open[file_no] = pq.ParquetFile(pa.memory_map(self.files[file_no], "r"))
        names = ["input_ids"] + (["attention_mask"] if self.has_attention_mask else [])
        table = self._open[file_no].read_row_group(rg, columns=names)
        arrays = {name: _fixed_width(table.column(name).combine_chunks(), self.files[file_no])
                  for name in names}
        self._cache[key] = arrays
        if len(self._cache) > CACHED_ROW_GROUPS:
            self._cache.popitem(last=False)
        return arrays

    def row(self, index: int) -> dict[str, np.ndarray]:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} sequences")
        where = int(np.searchsorted(self._starts, index, side="right")) - 1
        arrays = self._row_group(where)
        offset = index - int(self._starts[where])
        out = {"input_ids": arrays["input_ids"][offset]}
        if self.with_attention_mask:
            mask = arrays.get("attention_mask")
            out["attention_mask"] = mask[offset] if mask is not None else np.ones(len(out["input_ids"]), np.uint8)
        return out

    def __getitem__(self, index: int):
        row = self.row(index)
        return row if self.with_attention_mask else row["input_ids"]


def _fixed_width(column, path: str) -> np.ndarray:
    """A list column whose rows all have one length -> a 2-D array (a view, no per-row loop)."""
    import pyarrow.compute as pc

    n = len(column)
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if n and (lengths != lengths[0]).any():
        raise ValueError(f"{path}: sequences of different lengths ({lengths.min()}..{lengths.max()})")
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(n, int(lengths[0]) if n else 0)


READ_BATCH_ROWS = 8192


def read_sequences(source: str | os.PathLike | list, seq_length: int, *, max_rows: int = 0) -> np.ndarray:
    """The shards' full sequences in file order as one [n, seq_length] array, in the stored dtype
    (uint16 for vocabularies up to 65,536: half the memory of int32). With `max_rows`, at most
    that many. Padded rows (remainder = "pad": a packing group's last row) are left out: a loss
    on them would teach the model the padding; `PackedShards` hands them out with their mask."""
    import pyarrow.parquet as pq

    parts: list[np.ndarray] = []
    rows = 0
    for path in _shard_files(source):
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        if "input_ids" not in names:
            raise ValueError(f"{path} has no input_ids column")
        columns = ["input_ids"] + (["attention_mask"] if "attention_mask" in names else [])
        for batch in pf.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns):
            ids = _full_rows(batch, path, seq_length)
            parts.append(ids[: max_rows - rows] if max_rows else ids)
            rows += len(parts[-1])
            if max_rows and rows >= max_rows:
                return np.concatenate(parts)
    return np.concatenate(parts) if parts else np.zeros((0, seq_length), np.uint16)


def _full_rows(batch, path: str, seq_length: int) -> np.ndarray:
    ids = _fixed_width(batch.column("input_ids"), path)
    if len(ids) and ids.shape[1] != seq_length:
        raise ValueError(f"{path}: sequences of {ids.shape[1]} tokens, expected {seq_length}")
    if "attention_mask" in batch.schema.names:
        ids = ids[_fixed_width(batch.column("attention_mask"), path).all(axis=1)]
    return ids.reshape(-1, seq_length)


def _make_packed_dataset():
    import torch
    from torch.utils.data import Dataset

    class PackedDataset(PackedShards, Dataset):
        """A torch Dataset of packed sequences: each item is a LongTensor of seq_length token ids,
        or, when the shards carry an attention_mask (or `with_attention_mask=True`), a dict
        {"input_ids", "attention_mask"} of LongTensors."""

        def __getitem__(self, index: int):
            row = self.row(index)
            tensors = {k: torch.from_numpy(v.astype(np.int64)) for k, v in row.items()}
            return tensors if self.with_attention_mask else tensors["input_ids"]

    PackedDataset.__module__ = __name__
    PackedDataset.__qualname__ = "PackedDataset"
    return PackedDataset


def __getattr__(name: str):
    # PEP 562: the class (and torch) is made on first use, then kept, so pickling for
    # DataLoader workers finds the same object by name.
    if name == "PackedDataset":
        cls = _make_packed_dataset()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
