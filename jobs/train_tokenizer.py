"""spark-submit entry point: train a byte-level tokenizer on a seeded sample of dataset/train."""
import sys

from _door import stage_job

main = stage_job(["train_tokenizer"], "Train a byte-level BPE (or Unigram) tokenizer on a seeded sample of "
            "dataset/train, streamed to the driver; writes <output>/tokenizer.")

if __name__ == "__main__":
    sys.exit(main())
