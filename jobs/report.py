"""spark-submit entry point: Render report/index.html from every completed stage."""
import sys

from _door import stage_job

main = stage_job(["report"], "Render report/index.html from every completed stage.")

if __name__ == "__main__":
    sys.exit(main())
