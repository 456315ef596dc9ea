"""Tokenizer stages: `train_stage` (a byte-level BPE or Unigram tokenizer trained on a seeded
sample of dataset/train, streamed to the driver) and `eval_stage` (its figures on dataset/valid
next to baseline tokenizers). `load.load_tokenizer` is the one loader every stage uses."""
