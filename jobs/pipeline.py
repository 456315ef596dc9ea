"""spark-submit entry point: every CPU stage in order (completed stages are skipped unless --force)."""
import sys

from _door import stage_job
from codecorpus.core.registry import STAGES

main = stage_job(list(STAGES), "Run the whole CPU pipeline: ingest, stats, clean, dedup, split, "
                 "train/eval tokenizer, tokens, report.")

if __name__ == "__main__":
    sys.exit(main())
