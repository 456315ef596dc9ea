"""spark-submit entry point: Read CodeParrot-style shards into typed Parquet; quarantine bad records."""
import sys

from _door import stage_job

main = stage_job(["ingest"], "Read CodeParrot-style shards into typed Parquet; quarantine bad records.")

if __name__ == "__main__":
    sys.exit(main())
