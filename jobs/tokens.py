"""spark-submit entry point: Tokenize the split with the trained tokenizer and pack fixed-length sequences."""
import sys

from _door import stage_job

main = stage_job(["tokens"], "Tokenize the split with the trained tokenizer and pack fixed-length sequences.")

if __name__ == "__main__":
    sys.exit(main())
