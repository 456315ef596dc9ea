"""Training a tokenizer from an iterator of texts (pure: no Spark, no files except `save`).

Two ways, as in the book:
- from scratch with `tokenizers`: GPT-2's pipeline (ByteLevel pre-tokenizer without a prefix
  space, ByteLevel decoder and post-processor) around a BPE or Unigram model whose initial
  alphabet is the 256 byte symbols, so any byte string encodes with no unknown token;
- from a base tokenizer (`AutoTokenizer.from_pretrained(base).train_new_from_iterator`), which
  keeps the base's pipeline and special tokens and learns a new vocabulary.
"""
from __future__ import annotations

import json
import logging
from typing import Iterable, Iterator

from codecorpus.tokenizer.bytemap import alphabet

log = logging.getLogger("codecorpus")

EOT = "<|endoftext|>"
BATCH_TEXTS = 256


def text_batches(texts: Iterable[str], size: int = BATCH_TEXTS) -> Iterator[list[str]]:
    """Batches of texts: the trainers read an iterator of lists faster than single strings."""
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def byte_level_tokenizer(model: str = "bpe"):
    """An untrained `tokenizers.Tokenizer` with GPT-2's byte-level pipeline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    if model == "bpe":
        tok = Tokenizer(models.BPE())
    elif model == "unigram":
        tok = Tokenizer(models.Unigram())
    else:
        raise ValueError(f"model must be bpe or unigram, not {model!r}")
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def _trainer(model: str, vocab_size: int, min_frequency: int):
    from tokenizers import trainers

    if model == "bpe":
        return trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                   special_tokens=[EOT], initial_alphabet=alphabet(), show_progress=False)
    # Unigram has no min_frequency; the byte alphabet is required so nothing is ever unknown.
    return trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=[EOT], initial_alphabet=alphabet(),
                                   show_progress=False)


def wrap(tok):
    """A transformers fast tokenizer around `tok`, with <|endoftext|> as bos, eos, unk and pad
    (GPT-2's choice for the first three; padding with it is the usual choice for a causal LM,
    the attention mask hides it)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, unk_token=EOT,
                                   pad_token=EOT, model_max_length=1_000_000_000, clean_up_tokenization_spaces=False)


def train_from_texts(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2, model: str = "bpe",
                     length: int | None = None):
    """Train a byte-level tokenizer from scratch; returns a transformers fast tokenizer."""
    tok = byte_level_tokenizer(model)
    tok.train_from_iterator(text_batches(texts), trainer=_trainer(model, vocab_size, min_frequency), length=length)
    if model == "unigram":
        tok = canonical_unigram(tok)
    return wrap(tok)


def canonical_unigram(tok, decimals: int = 6):
    """Unigram training is not bit-for-bit repeatable: scores are summed in parallel (they differ
    in the last bits), and the byte symbols the sample never showed (at least the 13 bytes that
    never occur in UTF-8) are added in hash order with made-up scores `min + k * 1e-4`. To save
    the same tokenizer for the same sample we give those symbols their made-up scores in
    symbol order, round all scores, and order pieces by (score, piece). Single symbols never
    compete with each other in a segmentation, so this changes no split. Special tokens keep
    their leading ids."""
    from tokenizers import Tokenizer

    data = json.loads(tok.to_str())
    special = {t["content"] for t in data.get("added_tokens", [])}
    vocab = data["model"]["vocab"]
    unk = vocab[data["model"]["unk_id"]][0] if data["model"].get("unk_id") is not None else None
    head = [[p, s] for p, s in vocab if p in special]
    rest = [(p, s) for p, s in vocab if p not in special]
    lowest = min(s for _, s in rest)

    def made_up(piece: str, score: float) -> bool:
        k = round((score - lowest) / 1e-4)
        return len(piece) == 1 and 0 <= k <= 256 and abs(score - lowest - k * 1e-4) < 1e-9

    added = sorted(p for p, s in rest if made_up(p, s))
    kept = [[p, round(s, decimals)] for p, s in rest if not made_up(p, s)]
    rest = kept + [[p, round(lowest + 1e-4 * k, decimals)] for k, p in enumerate(added)]
    rest.sort(key=lambda ps: (-ps[1], ps[0]))
    data["model"]["vocab"] = head + rest
    if unk is not None:
        data["model"]["unk_id"] = [p for p, _ in data["model"]["vocab"]].index(unk)
    return Tokenizer.from_str(json.dumps(data))


def train_from_base(base_tokenizer, texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2,
                    length: int | None = None):
    """The book's way: the base tokenizer's pipeline and special tokens, a new vocabulary. A
    byte-level base gets the 256-symbol initial alphabet from transformers itself (the same
    symbols as `bytemap.alphabet()`); other bases keep their own alphabet handling."""
    kwargs = {}
    model_type = json.loads(base_tokenizer.backend_tokenizer.to_str())["model"]["type"]
    if model_type == "BPE":
        kwargs["min_frequency"] = min_frequency
    new = base_tokenizer.train_new_from_iterator(text_batches(texts), vocab_size=vocab_size, length=length, **kwargs)
    if new.pad_token is None and new.eos_token is not None:
        new.pad_token = new.eos_token
    return new


def save(tokenizer, folder: str, info: dict | None = None) -> None:
    """Save in Hugging Face format (tokenizer.json + tokenizer_config.json); `info` (how it was
    trained) goes to training.json beside them."""
    from codecorpus.io import fs

    with fs.staged_folder(folder) as local:
        tokenizer.save_pretrained(local)
    if info is not None:
        fs.write_json_atomic(f"{folder}/training.json", info)
