"""Stage `train_tokenizer`: sample dataset/train, train on the driver, save `<output>/tokenizer`.

The folder is a Hugging Face tokenizer (`AutoTokenizer.from_pretrained(<output>/tokenizer)`)
plus training.json: the sample, the settings, wall times and the driver's peak memory.
"""
from __future__ import annotations

import logging
import time

from codecorpus.core.config import Config
from codecorpus.core.stage import Counts, StageIO
from codecorpus.tokenizer.load import load_tokenizer
from codecorpus.tokenizer.sample import peak_rss_mb, sample_or_skip
from codecorpus.tokenizer.train import save, train_from_base, train_from_texts

log = logging.getLogger("codecorpus")

NAME = "train_tokenizer"


def build(spark, cfg: Config, io: StageIO) -> Counts:
    tc = cfg.tokenizer
    source = tc.train_input or io.input("dataset.train")
    stream = sample_or_skip(spark, source, tc.n_examples, tc.seed, tc.max_chars_per_file, io.scratch("sample"),
                            label=NAME)
    started = time.time()
    if tc.base:
        base = load_tokenizer(tc.base, allow_hub=True)
        log.info("[%s] retraining %s (%s) with vocab %d", NAME, tc.base, type(base).__name__, tc.vocab_size)
        tokenizer = train_from_base(base, stream, tc.vocab_size, min_frequency=tc.min_frequency,
                                    length=stream.expected)
    else:
        log.info("[%s] training byte-level %s, vocab %d", NAME, tc.model, tc.vocab_size)
        tokenizer = train_from_texts(stream, tc.vocab_size, min_frequency=tc.min_frequency, model=tc.model,
                                     length=stream.expected)
    seconds = round(time.time() - started, 3)
    info = {
        "input": source, "seed": tc.seed, "n_examples": tc.n_examples, "model": tc.model, "base": tc.base,
        "vocab_size_requested": tc.vocab_size, "vocab_size": len(tokenizer), "min_frequency": tc.min_frequency,
        "max_chars_per_file": tc.max_chars_per_file, "sample": stream.summary(),
        # The trainer counts words while the sample streams in; the rest is the merge phase.
        "train_seconds": seconds, "after_sample_seconds": round(seconds - stream.seconds, 3),
        "driver_peak_rss_mb": peak_rss_mb(),
    }
    log.info("[%s] vocab %d trained in %.1fs (sample %.1fs), driver peak RSS %.0f MiB", NAME, len(tokenizer),
             seconds, stream.seconds, info["driver_peak_rss_mb"])
    save(tokenizer, io.output("tokenizer"), info)
    return Counts(NAME, rows_in=stream.files, rows_out=stream.files, extra=info)
