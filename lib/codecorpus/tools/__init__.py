"""Tools that run without Spark (make_corpus)."""
