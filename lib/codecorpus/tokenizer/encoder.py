"""The one way texts become token ids in bulk (the tokens stage, the GPU machine's packer, the
chars-per-token filter).

Two engines give the same ids for a byte-level BPE tokenizer:
- `tokenizers` (the reference: what `load_tokenizer` and the model use);
- `tiktoken`, about five times faster per core on code. tiktoken merges the adjacent pair whose
  *joined token* has the lowest rank, `tokenizers` the pair whose *merge* comes first; with ranks
  taken from the token ids of a trained BPE (ids follow the merge order, checked here) the two
  agree whenever the pair tiktoken joins is its token's own merge. Not a theorem for every text
  (docs/tokenizer.md), so the tests, the benchmark and the GPU machine's digest check compare
  the ids file by file on real corpora.

`encoder_for(tokenizer_json, engine)` picks: "auto" takes tiktoken when the tokenizer is a
plain byte-level BPE it can run exactly (what train_tokenizer writes) and `tokenizers`
otherwise (a Unigram model, a normalizer, a prefix space...), saying why; "tiktoken" refuses in
one line what it cannot run exactly; "tokenizers" always takes the reference. Special tokens
written in a text are matched as special tokens by both, as `tokenizers` does.
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import numpy as np

from codecorpus.core.errors import UserError
from codecorpus.core.latest import Latest
from codecorpus.tokenizer.bytemap import unicode_to_bytes

log = logging.getLogger("codecorpus")

ENGINES = ("auto", "tiktoken", "tokenizers")

# GPT-2's pre-tokenizer regex, which the ByteLevel pre-tokenizer applies with use_regex=True.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


class NotExact(Exception):
    """tiktoken cannot give exactly the reference's ids for this tokenizer (the message says why)."""


class ReferenceEncoder:
    """`tokenizers`, with its own threads."""

    engine = "tokenizers"

    def __init__(self, tokenizer_json: str):
        from codecorpus.tokenizer.load import backend_from_json

        self.tok = backend_from_json(tokenizer_json)

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, np.int64) for e in self.tok.encode_batch_fast(texts, add_special_tokens=False)]


class TiktokenEncoder:
    """tiktoken over ranks converted from the tokenizer's vocabulary; `threads` per call."""

    engine = "tiktoken"

    def __init__(self, tokenizer_json: str, threads: int):
        import tiktoken

        ranks, specials = tiktoken_tables(json.loads(tokenizer_json))
        self.enc = tiktoken.Encoding("codecorpus", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                     special_tokens=specials)
        self.threads = threads

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        encoded = self.enc.encode_batch(texts, num_threads=self.threads, allowed_special="all")
        return [np.asarray(ids, np.int64) for ids in encoded]


def tiktoken_tables(data: dict) -> tuple[dict[bytes, int], dict[str, int]]:
    """(token bytes -> id, special token -> id) for a tokenizer tiktoken runs exactly; NotExact
    says which part of tokenizer.json it cannot."""
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise NotExact(f"the model is {model.get('type')}, not BPE")
    for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback", "ignore_merges"):
        if model.get(key):
            raise NotExact(f"the BPE model sets {key}")
    if data.get("normalizer") is not None:
        raise NotExact("the tokenizer has a normalizer")
    _check_pre_tokenizer(data.get("pre_tokenizer"))
    specials = _specials(data.get("added_tokens") or [])
    vocab = {tok: i for tok, i in model["vocab"].items() if tok not in specials}
    _check_merge_order(model.get("merges") or [], vocab)
    table = unicode_to_bytes()
    if any(sym not in vocab for sym in table):
        raise NotExact("the vocabulary lacks some of the 256 byte symbols")
    try:
        ranks = {bytes(table[c] for c in tok): i for tok, i in vocab.items()}
    except KeyError:
        raise NotExact("a vocabulary entry is not made of byte symbols") from None
    return ranks, specials


def _check_pre_tokenizer(node: Any) -> None:
    if isinstance(node, dict) and node.get("type") == "Sequence" and len(node.get("pretokenizers", [])) == 1:
        node = node["pretokenizers"][0]
    if not (isinstance(node, dict) and node.get("type") == "ByteLevel"):
        raise NotExact("the pre-tokenizer is not ByteLevel")
    if node.get("add_prefix_space") or not node.get("use_regex", True):
        raise NotExact("the ByteLevel pre-tokenizer adds a prefix space or has no regex")


def _specials(added: list[dict]) -> dict[str, int]:
    """Added tokens, all matched literally in the text (no stripping, no normalization)."""
    for t in added:
        if t.get("lstrip") or t.get("rstrip") or t.get("single_word") or t.get("normalized"):
            raise NotExact(f"added token {t.get('content')!r} strips, is normalized or matches single words")
    return {t["content"]: t["id"] for t in added}


def _check_merge_order(merges: list, vocab: dict[str, int]) -> None:
    """tiktoken's ranks are the ids: every longer token must be made by exactly one merge, and
    ids must rise with the merge order."""
    made: list[int] = []
    for m in merges:
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        if a + b not in vocab:
            raise NotExact(f"merge {a!r} + {b!r} makes a token outside the vocabulary")
        made.append(vocab[a + b])
    if any(y <= x for x, y in zip(made, made[1:])):
        raise NotExact("token ids do not follow the merge order")
    longer = sum(1 for tok in vocab if len(tok) > 1)
    if longer != len(made):
        raise NotExact(f"{longer} multi-byte tokens but {len(made)} merges")


_ENCODER = Latest()


def encoder_for(tokenizer_json: str, engine: str = "auto", threads: int = 1):
    """The encoder for this tokenizer, built once per process (only the latest one is kept)."""
    if engine not in ENGINES:
        raise UserError(f"unknown encoder {engine!r}: choose one of {', '.join(ENGINES)}")
    key = (hashlib.sha256(tokenizer_json.encode("utf-8")).hexdigest(), engine, threads)
    return _ENCODER.get(key, lambda: _build(tokenizer_json, engine, threads))


def _build(tokenizer_json: str, engine: str, threads: int):
    if engine == "tokenizers":
        return ReferenceEncoder(tokenizer_json)
    try:
        return TiktokenEncoder(tokenizer_json, threads)
    except ImportError:
        why = "tiktoken is not installed"
    except NotExact as exc:
        why = str(exc)
    if engine == "tiktoken":
        raise UserError(f"encoder 'tiktoken' cannot run this tokenizer exactly: {why} (use 'auto' or 'tokenizers')")
    log.info("encoder: tokenizers (%s)", why)
    return ReferenceEncoder(tokenizer_json)
