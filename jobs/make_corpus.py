"""Build CodeParrot-format shards from source trees (pure Python; runs without Spark)."""
import sys

import _door  # noqa: F401  (puts lib/ on the path)
from codecorpus.tools.make_corpus import main

if __name__ == "__main__":
    sys.exit(main())
