"""Judging one tokenizer on a stream of texts (no Spark, no files): the figures of
`metrics.py` plus keyword coverage, snippet lengths, the longest tokens and a sample split."""
from __future__ import annotations

import json
from typing import Iterable

from codecorpus.tokenizer import metrics
from codecorpus.tokenizer.bytemap import symbols_to_bytes
from codecorpus.tokenizer.load import backend, is_byte_level

LONGEST = 10


def _unknown_id(inner) -> int | None:
    model = json.loads(inner.to_str())["model"]
    if model.get("type") == "Unigram":
        return model.get("unk_id")
    token = model.get("unk_token")
    return inner.token_to_id(token) if token else None


def _token_bytes(token: str, byte_level: bool) -> bytes | None:
    if byte_level:
        return symbols_to_bytes(token)
    return token.replace("\u2581", " ").encode("utf-8")  # SentencePiece's word-start mark


class Judge:
    """Feed batches of texts with `add`, then `result()`."""

    def __init__(self, name: str, tokenizer, path: str = ""):
        self.name = name
        self.path = path
        self.tokenizer = tokenizer
        self.inner = backend(tokenizer)
        self.byte_level = is_byte_level(tokenizer)
        self.vocab = self.inner.get_vocab(with_added_tokens=True)  # token -> id
        self.special_ids = sorted(set(tokenizer.all_special_ids))
        self.unknown_id = _unknown_id(self.inner)
        self.partial_ids = frozenset(i for t, i in self.vocab.items()
                                     if metrics.is_partial_char(_token_bytes(t, self.byte_level), t))
        self.tally = metrics.Tally()

    def encode(self, text: str):
        return self.inner.encode(text, add_special_tokens=False)

    def add(self, texts: list[str]) -> None:
        for text, enc in zip(texts, self.inner.encode_batch(texts, add_special_tokens=False)):
            self.tally.add(text, enc.ids, enc.offsets, unknown_id=self.unknown_id, partial_ids=self.partial_ids)

    def keywords_missing(self, prefix: str = "") -> list[str]:
        """Keywords that are not one token (written bare, or after `prefix`, e.g. a space)."""
        return [k for k in metrics.KEYWORDS if len(self.encode(prefix + k).ids) != 1]

    def longest_tokens(self, n: int = LONGEST) -> list[str]:
        sized = []
        for token, i in self.vocab.items():
            if i in self.special_ids:
                continue
            raw = _token_bytes(token, self.byte_level) or token.encode("utf-8")
            sized.append((-len(raw), token, raw))
        sized.sort()
        return [raw.decode("utf-8", errors="replace") for _, _, raw in sized[:n]]

    def result(self) -> dict:
        model = json.loads(self.inner.to_str())["model"].get("type")
        snippet = metrics.SNIPPETS[metrics.SAMPLE_SNIPPET]
        return {
            "name": self.name, "path": self.path, "model": model, "byte_level": self.byte_level,
            "vocab_size": self.inner.get_vocab_size(with_added_tokens=True),
            "metrics": metrics.summarize(self.tally, list(self.vocab.values()), self.special_ids),
            "keywords_total": len(metrics.KEYWORDS),
            "keywords_missing": self.keywords_missing(),
            "keywords_missing_after_space": self.keywords_missing(" "),
            "snippet_lengths": {k: len(self.encode(v).ids) for k, v in metrics.SNIPPETS.items()},
            "sample_split": self.encode(snippet).tokens,
            "longest_tokens": self.longest_tokens(),
        }


def judge_all(judges: Iterable[Judge], batches: Iterable[list[str]]) -> list[dict]:
    judges = list(judges)
    for batch in batches:
        for j in judges:
            j.add(batch)
    return [j.result() for j in judges]
