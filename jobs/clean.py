"""spark-submit entry point: Exact dedup, CodeParrot filters, licences, secrets and decontamination."""
import sys

from _door import stage_job

main = stage_job(["clean"], "Exact dedup, CodeParrot filters, licences, secrets and decontamination.")

if __name__ == "__main__":
    sys.exit(main())
