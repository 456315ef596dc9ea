"""Characters per token (CodeParrot's `min_token_ratio` filter), over Arrow batches.

The tokenizer's JSON travels with the UDF (read once on the driver), so executors need no
access to the tokenizer's folder; it is parsed once per batch iterator and used with
`encode_batch` (Rust, multi-threaded). As in the original, the ratio is `len(content)` (code
points) over the number of tokens, untruncated and without special tokens; an empty file has
no ratio (null), which never drops it.
"""
from typing import Iterator

import pyarrow as pa

from codecorpus.tokenizer.load import backend_from_json


def chars_per_token(tokenizer, texts: list) -> list:
    present = [i for i, t in enumerate(texts) if t]
    out = [None] * len(texts)
    if present:
        encodings = tokenizer.encode_batch([texts[i] for i in present], add_special_tokens=False)
        for i, enc in zip(present, encodings):
            n = len(enc.ids)
            out[i] = len(texts[i]) / n if n else None
    return out


def token_ratio_udf(tokenizer_json: str):
    """An Arrow UDF: string column (null = not measured) -> chars per token (double)."""
    from pyspark.sql.functions import arrow_udf

    def ratio(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        tok = backend_from_json(tokenizer_json)
        for arr in batches:
            yield pa.array(chars_per_token(tok, arr.to_pylist()), pa.float64())

    return arrow_udf(ratio, "double")
