"""Training data for the language model, read without Spark.

Three inputs are accepted, recognised by what the path holds:
- packed tokens: Parquet with an `input_ids` column of `seq_length`-long lists (the tokenize stage);
- dataset Parquet with a `content` column (the split stage's output);
- raw shards `*.json.gz` / `*.jsonl.gz` / `*.jsonl` (make_corpus, the CodeParrot dump).
Text inputs are packed the book's `ConstantLengthDataset` way: every document is tokenized,
followed by `<|endoftext|>`, the stream is concatenated and cut into `seq_length` chunks; only the
stream's final partial chunk is dropped. Everything ends up as one in-memory array of chunks
(uint16 when the vocabulary allows), which makes shuffling and resuming exact and cheap.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from codecorpus.core.errors import UserError

log = logging.getLogger("codecorpus")

SHARD_PATTERNS = ("*.json.gz", "*.jsonl.gz", "*.jsonl")


# ---------------------------------------------------------------- finding and reading inputs

def _parquet_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    files = sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
    return [f for f in files if not os.path.basename(f).startswith(("_", "."))]


def _shard_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    return sorted(f for pattern in SHARD_PATTERNS for f in glob.glob(os.path.join(path, pattern)))


def input_kind(path: str) -> str:
    """'packed', 'texts' (Parquet with content) or 'shards'; UserError when it is none of them."""
    if not os.path.exists(path):
        raise UserError(f"training data not found: {path}")
    parquet = _parquet_files(path) if (os.path.isdir(path) or path.endswith(".parquet")) else []
    if parquet:
        import pyarrow.parquet as pq

        names = pq.read_schema(parquet[0]).names
        if "input_ids" in names:
            return "packed"
        if "content" in names:
            return "texts"
        raise UserError(f"{parquet[0]}: Parquet without an input_ids or content column (has {names})")
    if _shard_files(path):
        return "shards"
    raise UserError(f"{path}: no Parquet files and no *.json.gz / *.jsonl.gz / *.jsonl shards")


def iter_texts(path: str) -> Iterator[tuple[str, str]]:
    """(group key, content) of every document: the key is the repository name where there is one
    (so a held-out split never shares a repository with training), else the path."""
    kind = input_kind(path)
    if kind == "packed":
        raise UserError(f"{path}: holds packed input_ids, not text")
    if kind == "texts":
        import pyarrow.parquet as pq

        for f in _parquet_files(path):
            pf = pq.ParquetFile(f)
            cols = [c for c in ("repo_name", "path", "content") if c in pf.schema_arrow.names]
            for batch in pf.iter_batches(batch_size=2048, columns=cols):
                d = batch.to_pydict()
                keys = d.get("repo_name") or d.get("path") or [None] * batch.num_rows
                for key, content in zip(keys, d["content"]):
                    if content:
                        yield key or content[:200], content
        return
    for f in _shard_files(path):
        opener = gzip.open if f.endswith(".gz") else open
        try:
            with opener(f, "rt", encoding="utf-8", errors="replace") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise UserError(f"{f}:{lineno}: not a JSON record ({exc.msg})") from None
                    content = rec.get("content") if isinstance(rec, dict) else None
                    if not isinstance(content, str):
                        raise UserError(f"{f}:{lineno}: record has no string 'content' field")
                    if content:
                        yield rec.get("repo_name") or rec.get("path") or content[:200], content
        except (OSError, EOFError) as exc:
            raise UserError(f"{f}: cannot read shard ({exc})") from None


def in_valid(key: str, fraction: float) -> bool:
    """Deterministic hold-out by a hash of the group key (independent of order and sharding)."""
    if fraction <= 0:
        return False
    h = int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")
    return h / 2**64 < fraction


# ---------------------------------------------------------------- packing (ConstantLengthDataset)

def token_dtype(vocab_size: int):
    return np.uint16 if vocab_size <= 65535 else np.int32


class Packer:
    """Concatenate tokenized documents, each followed by EOS, and cut into fixed-length chunks.

    Documents are buffered and tokenized in batches (`encode_batch` runs on all cores)."""

    def __init__(self, tokenizer, seq_length: int, max_tokens: int = 0, buffer_chars: int = 4_000_000):
        self.backend = tokenizer.backend_tokenizer
        self.eos = tokenizer.eos_token_id
        if self.eos is None:
            raise UserError("the tokenizer has no eos_token (<|endoftext|>) to separate documents")
        self.seq_length = seq_length
        self.max_tokens = max_tokens
        self.buffer_chars = buffer_chars
        self.dtype = token_dtype(len(tokenizer))
        self._docs: list[str] = []
        self._chars = 0
        self._pending: list[int] = []
        self._chunks: list[np.ndarray] = []
        self.tokens = 0  # tokens kept in chunks
        self.documents = 0
        self.characters = 0

    @property
    def full(self) -> bool:
        return bool(self.max_tokens) and self.tokens >= self.max_tokens

    def add(self, text: str) -> None:
        self._docs.append(text)
        self._chars += len(text)
        self.documents += 1
        self.characters += len(text)
        if self._chars >= self.buffer_chars:
            self._flush()

    def _flush(self) -> None:
        if not self._docs or self.full:
            self._docs, self._chars = [], 0
            return
        encode = getattr(self.backend, "encode_batch_fast", None) or self.backend.encode_batch
        ids = self._pending
        for enc in encode(self._docs, add_special_tokens=False):
            ids.extend(enc.ids)
            ids.append(self.eos)
        self._docs, self._chars = [], 0
        n = len(ids) // self.seq_length
        if self.max_tokens:
            n = min(n, -(-(self.max_tokens - self.tokens) // self.seq_length))
        if n:
            self._chunks.append(np.asarray(ids[: n * self.seq_length], dtype=self.dtype).reshape(n, self.seq_length))
            self.tokens += n * self.seq_length
        self._pending = ids[n * self.seq_length:]

    def finish(self) -> np.ndarray:
        self._flush()
        self._pending = []
        if not self._chunks:
            return np.zeros((0, self.seq_length), dtype=self.dtype)
        return np.concatenate(self._chunks)


def pack_texts(texts, tokenizer, seq_length: int, max_tokens: int = 0) -> np.ndarray:
    packer = Packer(tokenizer, seq_length, max_tokens)
    for text in texts:
        packer.add(text)
        if packer.full:
            break
    return packer.finish()


def read_packed(path: str, seq_length: int, max_tokens: int = 0) -> np.ndarray:
    """Rows of `input_ids` as a [n, seq_length] array. Rows longer than seq_length by a whole
    multiple are split; any other length is an error (it would mean a different packing)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts: list[np.ndarray] = []
    rows = 0
    for f in _parquet_files(path):
        col = pq.read_table(f, columns=["input_ids"]).column("input_ids")
        for chunk in col.chunks:
            if chunk.null_count:
                raise UserError(f"{f}: input_ids has null rows")
            if not (pa.types.is_list(chunk.type) or pa.types.is_large_list(chunk.type)):
                raise UserError(f"{f}: input_ids is {chunk.type}, expected a list of integers")
            lengths = np.diff(chunk.offsets.to_numpy())
            if len(lengths) == 0:
                continue
            width = int(lengths[0])
            if (lengths != width).any() or width % seq_length:
                raise UserError(f"{f}: input_ids rows of lengths {sorted(set(lengths.tolist()))[:5]} "
                                f"cannot be cut into seq_length={seq_length} chunks")
            values = chunk.flatten().to_numpy(zero_copy_only=False)
            parts.append(values.reshape(-1, seq_length))
            rows += parts[-1].shape[0]
            if max_tokens and rows * seq_length >= max_tokens:
                break
        if max_tokens and rows * seq_length >= max_tokens:
            break
    if not parts:
        raise UserError(f"{path}: no input_ids rows")
    arr = np.concatenate(parts)
    if max_tokens:
        arr = arr[: -(-max_tokens // seq_length)]
    top = int(arr.max()) if arr.size else 0
    return arr.astype(token_dtype(top + 1), copy=False)


def write_packed(arr: np.ndarray, out_dir: str, rows_per_file: int = 50_000) -> None:
    """The tokenize stage's layout: part-*.parquet files with one `input_ids` list column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(out_dir, exist_ok=True)
    seq = arr.shape[1]
    for i, start in enumerate(range(0, max(len(arr), 1), rows_per_file)):
        block = np.ascontiguousarray(arr[start:start + rows_per_file], dtype=np.int32)
        offsets = pa.array(np.arange(0, block.size + 1, seq, dtype=np.int32))
        lists = pa.ListArray.from_arrays(offsets, pa.array(block.reshape(-1)))
        pq.write_table(pa.table({"input_ids": lists}), os.path.join(out_dir, f"part-{i:05d}.parquet"))


# ---------------------------------------------------------------- train / valid sets

@dataclass
class DataSets:
    train: np.ndarray
    valid: np.ndarray
    info: dict = field(default_factory=dict)


def load_datasets(train_path: str, valid_path: str | None, tokenizer, seq_length: int,
                  valid_fraction: float = 0.02, max_train_tokens: int = 0,
                  max_valid_tokens: int = 0) -> DataSets:
    kind = input_kind(train_path)
    info: dict = {"train_path": train_path, "valid_path": valid_path, "input_kind": kind}
    if kind == "packed":
        train = read_packed(train_path, seq_length, max_train_tokens)
        if valid_path:
            valid = _load_one(valid_path, tokenizer, seq_length, max_valid_tokens)
        else:  # hold out the last rows: the tokenize stage writes them in a fixed order
            n_valid = max(1, int(len(train) * valid_fraction)) if valid_fraction > 0 else 0
            if max_valid_tokens:
                n_valid = min(n_valid, -(-max_valid_tokens // seq_length))
            train, valid = train[: len(train) - n_valid], train[len(train) - n_valid:]
            info["valid_split"] = f"last {n_valid} packed rows"
    elif valid_path:
        train = pack_texts((t for _, t in iter_texts(train_path)), tokenizer, seq_length, max_train_tokens)
        valid = _load_one(valid_path, tokenizer, seq_length, max_valid_tokens)
    else:
        train_p = Packer(tokenizer, seq_length, max_train_tokens)
        valid_p = Packer(tokenizer, seq_length, max_valid_tokens)
        for key, text in iter_texts(train_path):
            if in_valid(key, valid_fraction):
                if not valid_p.full:
                    valid_p.add(text)
            else:
                train_p.add(text)
                if train_p.full:
                    break
        train, valid = train_p.finish(), valid_p.finish()
        info.update(valid_split=f"repositories with hash < {valid_fraction}",
                    train_documents=train_p.documents, valid_documents=valid_p.documents,
                    train_characters=train_p.characters)
        if len(valid) == 0 and valid_fraction > 0 and len(train) > 1:
            # too few repositories for the hash to pick one: hold out the last training chunks
            n_valid = max(1, int(len(train) * valid_fraction))
            train, valid = train[:-n_valid], train[-n_valid:]
            info["valid_split"] = f"no repository hashed below {valid_fraction}: last {n_valid} packed rows"
    if len(train) == 0:
        raise UserError(f"{train_path}: not enough text for one {seq_length}-token training sequence")
    if len(valid) == 0:
        raise UserError(f"no validation sequence of {seq_length} tokens (give --valid-data or more data)")
    info.update(train_sequences=int(len(train)), valid_sequences=int(len(valid)),
                train_tokens=int(train.size), valid_tokens=int(valid.size), seq_length=seq_length)
    if info.get("train_characters"):
        info["chars_per_token"] = round(info["train_characters"] / max(train.size, 1), 3)
    return DataSets(train, valid, info)


def _load_one(path: str, tokenizer, seq_length: int, max_tokens: int) -> np.ndarray:
    if input_kind(path) == "packed":
        return read_packed(path, seq_length, max_tokens)
    return pack_texts((t for _, t in iter_texts(path)), tokenizer, seq_length, max_tokens)


class BatchSampler:
    """Shuffled batches of rows, epoch after epoch, from a seed; its state is two integers, so a
    resumed run sees exactly the batches the uninterrupted one would have."""

    def __init__(self, n_rows: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n_rows, batch_size, seed
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation()

    def _permutation(self) -> np.ndarray:
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
