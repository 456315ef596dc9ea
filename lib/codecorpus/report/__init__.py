"""The report: rendering and every plot. Stages hand it figures (their markers and JSON files);
only this package draws. One module per stage; SECTIONS is their order on the page."""
from codecorpus.report import clean, dedup, lm, split, stats, tokenizer, tokens

SECTIONS = [("stats", stats.section), ("clean", clean.section), ("dedup", dedup.section),
            ("split", split.section), ("eval_tokenizer", tokenizer.section), ("tokens", tokens.section),
            ("lm", lm.section)]
