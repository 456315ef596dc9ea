"""codecorpus: source-code dumps to a language-model training corpus, as Spark batch jobs."""

__version__ = "0.1.0"
