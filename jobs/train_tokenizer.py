"""spark-submit entry point: train a byte-level tokenizer on a seeded sample of dataset/train."""
import sys

from _door import door

main = door(["train_tokenizer"], "Train a byte-level BPE (or Unigram) tokenizer on a seeded sample of "
            "dataset/train, streamed to the driver; writes <output>/tokenizer.")

if __name__ == "__main__":
    sys.exit(main())
