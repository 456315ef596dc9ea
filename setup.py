"""The one compiled part: the n-gram tokenizer of clean's decontamination (native/codecorpus_scan.c),
ingest's JSON-lines fast path (native/jsonl.c) and clean's per-file measurements
(native/measure.c), one extension module.

Everything else is in pyproject.toml. The extension is optional: where no C compiler is found
the install goes on, and codecorpus.stages.clean.ngrams uses its regular expression instead
(same codes, several times slower) and says so in the log, ingest reads every block with
Arrow's JSON reader, as it does anyway for any block the compiled parser declines, and clean
measures files with numpy over whole batches (same figures, slower).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("codecorpus_scan", ["native/codecorpus_scan.c", "native/jsonl.c", "native/measure.c"],
                             optional=True,
                             extra_compile_args=["-O3"])])
