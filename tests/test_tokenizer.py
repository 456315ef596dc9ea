"""Tokenizer training and metrics without Spark: byte map, hand-checked metrics, lossless round
trips, determinism, Hugging Face loading, keywords."""
from __future__ import annotations

import json
import random
import sysconfig
from pathlib import Path

import pytest
from codecorpus.core.errors import UserError
from codecorpus.tokenizer import metrics
from codecorpus.tokenizer.bytemap import (
    alphabet,
    bytes_to_unicode,
    format_table,
    symbols_to_bytes,
)
from codecorpus.tokenizer.judge import Judge
from codecorpus.tokenizer.load import load_tokenizer
from codecorpus.tokenizer.train import EOT, save, train_from_base, train_from_texts

STD = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """About 0.6 MB of real Python: the json, email and unittest packages."""
    files = sorted(p for pkg in ("json", "email", "unittest") for p in (STD / pkg).glob("*.py"))
    return [p.read_text(encoding="utf-8") for p in files]


@pytest.fixture(scope="module")
def bpe(texts):
    return train_from_texts(iter(texts), 2000)


# ------------------------------------------------------------------------------ byte map

def test_bytemap_is_gpt2s_table():
    from tokenizers import pre_tokenizers

    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert sorted(alphabet()) == sorted(pre_tokenizers.ByteLevel.alphabet())
    assert (table[ord(" ")], table[ord("\n")], table[ord("\r")], table[ord("\t")]) == ("Ġ", "Ċ", "č", "ĉ")
    assert table[ord("!")] == "!" and table[0xAD] == "Ń"  # the 68th shifted byte: U+0100 + 67 and table[0] == "Ā"
    assert symbols_to_bytes("ĠdefĊ") == b" def\n"
    assert symbols_to_bytes("<|x|>") == b"<|x|>" and symbols_to_bytes("\u2581") is None
    assert "32 20 Ġ" in format_table()


# ------------------------------------------------------------------------------ metrics by hand

def test_words_and_tokens_per_word_by_hand():
    assert metrics.word_spans("self.x += 1") == [(0, 4), (4, 5), (5, 6), (7, 9), (10, 11)]
    # words: héllo(0,5) wörld(6,11) !(11,12); tokens: "hél" "lo" " wör" "ld!" and a lone "\n"
    text = "héllo wörld!\n"
    tokens = [(0, 3), (3, 5), (5, 9), (9, 12), (12, 13)]
    assert metrics.tokens_per_word(metrics.word_spans(text), tokens) == [2, 2, 1]
    # a token spanning two words counts for both; whitespace-only tokens for none
    assert metrics.tokens_per_word([(0, 1), (2, 3)], [(0, 3)]) == [1, 1]
    assert metrics.tokens_per_word([(0, 1), (3, 4)], [(0, 1), (1, 3), (3, 4)]) == [1, 1]


def test_metrics_on_a_hand_checked_text():
    text = "héllo wörld!"  # 12 characters, 14 UTF-8 bytes, 3 words
    tally = metrics.Tally()
    tally.add(text, [10, 11, 12, 10], [(0, 3), (3, 5), (5, 9), (9, 12)], unknown_id=12,
              partial_ids=frozenset({11}))
    m = metrics.summarize(tally, vocab_ids=range(20), special_ids=[0])
    assert m["words"] == 3 and m["tokens"] == 4
    assert m["fertility"] == round(5 / 3, 4)          # 2 + 2 + 1 tokens over 3 words
    assert m["continued_words"] == round(2 / 3, 4)    # héllo and wörld
    assert m["chars_per_token"] == 3.0 and m["bytes_per_token"] == 3.5
    assert m["unknown_share"] == 0.25 and m["partial_char_share"] == 0.25
    assert m["vocab_unused_share"] == round(16 / 19, 4)  # ids 1..19 less 10, 11, 12
    assert m["vocab_rare_share"] == round(3 / 19, 4)


def test_partial_char_tokens():
    assert metrics.is_partial_char("é".encode()[:1], "Ã")
    assert not metrics.is_partial_char("é".encode(), "Ã©")
    assert metrics.is_partial_char(None, "<0xE2>")


# ------------------------------------------------------------------------------ training

ODD = ["emoji 😀🐍👩‍💻 and CJK 漢字", "crlf\r\nline\r\n", "\ttabs\t\tx", "nul\x00byte\x00", "\x7f\x1b[0m\x0c",
       "  leading and trailing  ", "", "<|endoftext|> inside", "combining e\u0301 \ufeffbom", "\U0010ffff"]


def test_round_trips_arbitrary_text_losslessly(bpe):
    rng = random.Random(7)
    cases = ODD + ["".join(chr(rng.choice([rng.randrange(0, 0x80), rng.randrange(0x80, 0xD800),
                                            rng.randrange(0xE000, 0x110000)])) for _ in range(60))
                   for _ in range(50)]
    for text in cases:
        ids = bpe(text, add_special_tokens=False)["input_ids"]
        assert bpe.decode(ids) == text
    assert len(bpe("\x00", add_special_tokens=False)["input_ids"]) == 1


def test_every_byte_string_has_a_tokenization(bpe):
    """Invalid UTF-8 too: every byte symbol is in the vocabulary, so the model covers any bytes."""
    vocab = bpe.get_vocab()
    assert all(sym in vocab for sym in alphabet())
    model = bpe.backend_tokenizer.model
    raw = bytes(range(256)) + b"\xff\xfe\xc0\x80 def \xe2\x82"
    symbols = "".join(bytes_to_unicode()[b] for b in raw)
    pieces = [t.value for t in model.tokenize(symbols)]
    assert b"".join(symbols_to_bytes(p) for p in pieces) == raw


def test_training_is_deterministic_and_order_free(texts):
    first = train_from_texts(iter(texts), 800).backend_tokenizer.to_str()
    shuffled = list(texts)
    random.Random(3).shuffle(shuffled)
    assert train_from_texts(iter(texts), 800).backend_tokenizer.to_str() == first
    assert train_from_texts(iter(shuffled), 800).backend_tokenizer.to_str() == first
    u1 = train_from_texts(iter(texts), 800, model="unigram").backend_tokenizer.to_str()
    u2 = train_from_texts(iter(shuffled), 800, model="unigram").backend_tokenizer.to_str()
    assert u1 == u2
    assert json.loads(u1)["model"]["type"] == "Unigram"


def test_unigram_round_trips(texts):
    uni = train_from_texts(iter(texts[:10]), 600, model="unigram")
    for text in ODD:
        assert uni.decode(uni(text, add_special_tokens=False)["input_ids"]) == text


def test_saved_folder_loads_with_autotokenizer(bpe, tmp_path):
    from transformers import AutoTokenizer

    save(bpe, str(tmp_path / "tok"), {"note": "test"})
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert (tok.eos_token, tok.bos_token, tok.pad_token) == (EOT, EOT, EOT)
    assert tok.eos_token_id == tok.pad_token_id == tok.convert_tokens_to_ids(EOT) == 0
    assert len(tok) == 2000
    snippet = metrics.SNIPPETS["say_hello"]
    assert tok(snippet)["input_ids"] == bpe(snippet)["input_ids"]
    assert json.loads((tmp_path / "tok" / "training.json").read_text()) == {"note": "test"}
    # the book's way: retrain the saved tokenizer with train_new_from_iterator
    again = train_from_base(load_tokenizer(str(tmp_path / "tok")), iter(["def f():\n    return 1\n"] * 50), 400)
    assert again.eos_token == EOT and again.decode(again("x\r\n😀")["input_ids"]) == "x\r\n😀"


def test_keywords_become_single_tokens(bpe):
    judge = Judge("ours", bpe)
    missing = set(judge.keywords_missing())
    assert {"def", "return", "import", "class", "for", "if", "in", "not", "None"} <= set(metrics.KEYWORDS) - missing
    assert "nonlocal" in missing  # too rare in 0.6 MB to earn a token at 2,000
    assert not {"def", "return", "import"} & set(judge.keywords_missing(" "))


def test_judge_figures_are_consistent(bpe, texts):
    judge = Judge("ours", bpe)
    judge.add(texts[:5])
    r = judge.result()
    m = r["metrics"]
    assert r["byte_level"] and r["model"] == "BPE" and m["unknown_share"] == 0.0
    assert m["tokens"] == sum(len(bpe(t, add_special_tokens=False)["input_ids"]) for t in texts[:5])
    assert 1.0 <= m["fertility"] < 3.0 and 2.0 < m["chars_per_token"] < 8.0
    assert r["sample_split"][0] == "def" and r["snippet_lengths"]["say_hello"] == len(r["sample_split"])
    assert len(r["longest_tokens"]) == 10
    assert len(r["longest_tokens"][0].encode()) >= len(r["longest_tokens"][-1].encode())


def test_loader_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_tokenizer(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no tokenizer.json"):
        load_tokenizer(str(tmp_path / "empty"))


def test_collect_prose_keeps_prose_once(tmp_path):
    from codecorpus.tools.make_corpus import collect_prose

    story = "The tokenizer reads plain English sentences about software and its documentation. " * 5
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "README.md").write_text(story)
    (tmp_path / "pkg" / "copy.rst").write_text(story)  # the same text again: kept once
    (tmp_path / "pkg" / "table.txt").write_text("0.125 0.250 0.375 1e-3 42 17 99 ;; == ++\n" * 20)
    (tmp_path / "pkg" / "blob.txt").write_text("abc\x00" * 100)
    (tmp_path / "pkg" / "short.md").write_text("Too short.")
    records, _ = collect_prose([str(tmp_path)], system=False)
    assert [r["path"] for r in records] == ["pkg/README.md"]
