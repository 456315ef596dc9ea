"""codecorpus.tokenizer.encoder: tiktoken gives exactly the ids of the `tokenizers` reference for
the tokenizers train_tokenizer writes, on real files and on texts chosen to catch a difference;
it is refused, or left for the reference, where it could not be exact."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from codecorpus.core.errors import UserError
from codecorpus.tokenizer import train
from codecorpus.tokenizer.encoder import NotExact, encoder_for, tiktoken_tables

STDLIB = Path(os.__file__).parent

# Whitespace runs, CRLF, tabs, contractions in both cases, digits, non-Latin scripts, combining
# marks, emoji, a zero-width joiner, control bytes, the special token written in the text.
TRICKY = [
    "", " ", "\n", "   \n\n\t  x", "a\r\nb\r\n\r\n", "it's I'LL we've they'd 'm 'S",
    "x=1234567890 3.14e-10 0xFF", "naïve café Ωmega Привет мир 日本語のテキスト", "e\u0301 a\u0308",
    "emoji 🐍🐍 👩\u200d💻", "\x00\x01\x7f bell\x07", "a <|endoftext|> b<|endoftext|><|endoftext|>c",
    "    def f(self):\n        return {'k': [1, 2]}\n" * 3, "\u00a0nbsp\u2003em space\u3000ideographic",
]


def real_files(n: int) -> list[str]:
    files = sorted(STDLIB.glob("*.py"))[:n]
    return [p.read_text(encoding="utf-8", errors="replace") for p in files]


@pytest.fixture(scope="module")
def trained_json() -> str:
    """A byte-level BPE trained the way train_tokenizer trains it, on real Python files."""
    tok = train.train_from_texts(real_files(120), vocab_size=3000)
    return tok.backend_tokenizer.to_str()


def ids_of(encoder, texts):
    return [a.tolist() for a in encoder.encode(texts)]


def test_tiktoken_gives_the_reference_ids_on_real_and_tricky_texts(trained_json):
    fast = encoder_for(trained_json, "tiktoken", threads=2)
    ref = encoder_for(trained_json, "tokenizers")
    assert (fast.engine, ref.engine) == ("tiktoken", "tokenizers")
    texts = real_files(400) + TRICKY
    got, want = ids_of(fast, texts), ids_of(ref, texts)
    assert [i for i, (a, b) in enumerate(zip(got, want)) if a != b] == []
    assert sum(map(len, got)) > 100_000  # real work was compared
    eos = json.loads(trained_json)["added_tokens"][0]["id"]
    assert got[-3].count(eos) == 3  # the special token in the text is the special id, as in tokenizers


def test_auto_takes_tiktoken_for_a_trained_bpe(trained_json):
    assert encoder_for(trained_json, "auto").engine == "tiktoken"


def test_encoders_return_int64_arrays(trained_json):
    out = encoder_for(trained_json, "auto").encode(["x = 1\n", ""])
    assert [a.dtype for a in out] == [np.int64, np.int64] and len(out[1]) == 0


def test_unigram_is_left_to_the_reference_and_refused_by_tiktoken():
    uni = train.train_from_texts(real_files(20), vocab_size=400, model="unigram").backend_tokenizer.to_str()
    assert encoder_for(uni, "auto").engine == "tokenizers"
    with pytest.raises(UserError, match="tiktoken.*Unigram, not BPE"):
        encoder_for(uni, "tiktoken")


def edited(text: str, change) -> dict:
    data = json.loads(text)
    change(data)
    return data


@pytest.mark.parametrize("change, reason", [
    (lambda d: d["pre_tokenizer"].update(add_prefix_space=True), "prefix space"),
    (lambda d: d.update(normalizer={"type": "NFC"}), "normalizer"),
    (lambda d: d["model"].update(dropout=0.1), "dropout"),
    (lambda d: d["added_tokens"][0].update(lstrip=True), "strips"),
    (lambda d: d["model"]["merges"].reverse(), "merge order"),
    (lambda d: d["model"]["merges"].pop(), "multi-byte tokens but"),
])
def test_what_tiktoken_could_not_run_exactly_is_refused_with_its_reason(trained_json, change, reason):
    with pytest.raises(NotExact, match=reason):
        tiktoken_tables(edited(trained_json, change))


def test_unknown_engine_is_a_user_error(trained_json):
    with pytest.raises(UserError, match="unknown encoder"):
        encoder_for(trained_json, "fastest")


def test_one_encoder_kept_per_process():
    from codecorpus.core.latest import Latest

    built = []
    cache = Latest()
    first = cache.get("a", lambda: built.append("a") or object())
    assert cache.get("a", lambda: built.append("again") or object()) is first
    assert cache.get("b", lambda: built.append("b") or object()) is not first
    assert built == ["a", "b"]
