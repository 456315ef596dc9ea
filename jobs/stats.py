"""spark-submit entry point: Corpus statistics of the ingested rows (stats/stats.json)."""
import sys

from _door import stage_job

main = stage_job(["stats"], "Corpus statistics of the ingested rows (stats/stats.json).")

if __name__ == "__main__":
    sys.exit(main())
