"""spark-submit entry point: Deterministic train/valid split to Parquet with a dataset card."""
import sys

from _door import stage_job

main = stage_job(["split"], "Deterministic train/valid split to Parquet with a dataset card.")

if __name__ == "__main__":
    sys.exit(main())
