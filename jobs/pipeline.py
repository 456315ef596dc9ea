"""spark-submit entry point: every CPU stage in order (completed stages are skipped unless --force)."""
import sys

from _door import door

from codecorpus.stages import STAGES

main = door(list(STAGES), "Run the whole CPU pipeline: ingest, stats, clean, dedup, split, "
            "train/eval tokenizer, tokenize, report.")

if __name__ == "__main__":
    sys.exit(main())
