"""A GPT-2-style byte-level BPE tokenizer trained from scratch with `tokenizers`.

A small stand-in for the tokenizer stage where it is not at hand (the GPU machine has
`tokenizers` but no Spark): the same recipe as the book (byte-level alphabet of 256 symbols,
GPT-2's pre-tokenizer, one special token `<|endoftext|>`), saved as a Hugging Face tokenizer
directory that `AutoTokenizer.from_pretrained(dir)` loads.

    python -m codecorpus.lm.bpe --data SHARDS_OR_PARQUET --out DIR [--vocab-size 32768]
"""
from __future__ import annotations

import argparse
import sys
from typing import Iterable, Iterator

EOS = "<|endoftext|>"


def train_bytelevel_bpe(texts: Iterable[str], out_dir: str, vocab_size: int = 32768,
                        min_frequency: int = 2):
    """Train on `texts`, save to `out_dir`, return the transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS,
                                   pad_token=EOS, model_max_length=1024)
    fast.save_pretrained(out_dir)
    return fast


def sample_texts(texts: Iterable[str], max_docs: int, max_chars_per_doc: int,
                 max_total_chars: int) -> Iterator[str]:
    """The book's bounded sample: at most `max_docs` documents, each cut to `max_chars_per_doc`,
    stopping once `max_total_chars` are given (train_new_from_iterator's memory grows with input)."""
    total = 0
    for i, text in enumerate(texts):
        if i >= max_docs or total >= max_total_chars:
            return
        text = text[:max_chars_per_doc]
        total += len(text)
        yield text


def main(argv: list[str] | None = None) -> int:
    from codecorpus.core.errors import UserError
    from codecorpus.lm.data import iter_texts

    ap = argparse.ArgumentParser(description="Train a byte-level BPE tokenizer from shards or dataset Parquet.")
    ap.add_argument("--data", required=True, help="folder of *.json.gz shards, or Parquet with a content column")
    ap.add_argument("--out", required=True, help="tokenizer directory to write")
    ap.add_argument("--vocab-size", type=int, default=32768)
    ap.add_argument("--min-frequency", type=int, default=2)
    ap.add_argument("--max-docs", type=int, default=200_000)
    ap.add_argument("--max-chars-per-doc", type=int, default=100_000)
    ap.add_argument("--max-total-chars", type=int, default=100_000_000)
    args = ap.parse_args(argv)
    try:
        texts = sample_texts((t for _, t in iter_texts(args.data)), args.max_docs,
                             args.max_chars_per_doc, args.max_total_chars)
        tok = train_bytelevel_bpe(texts, args.out, args.vocab_size, args.min_frequency)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"bpe: vocabulary of {len(tok)} tokens -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
