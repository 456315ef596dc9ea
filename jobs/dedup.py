"""spark-submit entry point: Near-deduplication with MinHash LSH and connected components."""
import sys

from _door import stage_job

main = stage_job(["dedup"], "Near-deduplication with MinHash LSH and connected components.")

if __name__ == "__main__":
    sys.exit(main())
