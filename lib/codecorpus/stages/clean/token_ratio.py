"""Characters per token (CodeParrot's `min_token_ratio` filter), over Arrow batches.

The tokenizer's JSON travels with the UDF (read once on the driver), so executors need no
access to the tokenizer's folder; `tokenizer.encoder` builds the encoder once per worker
(tiktoken where it gives exactly the tokenizer's ids, else `tokenizers`). As in the original, the ratio is `len(content)` (code
points) over the number of tokens, untruncated and without special tokens; an empty file has
no ratio (null), which never drops it.
"""
from typing import Iterator

import pyarrow as pa

from codecorpus.tokenizer.encoder import encoder_for


def chars_per_token(encoder, texts: list) -> list:
    present = [i for i, t in enumerate(texts) if t]
    out = [None] * len(texts)
    if present:
        for i, ids in zip(present, encoder.encode([texts[i] for i in present])):
            out[i] = len(texts[i]) / len(ids) if len(ids) else None
    return out


def token_ratio_udf(tokenizer_json: str):
    """An Arrow UDF: string column (null = not measured) -> chars per token (double)."""
    from pyspark.sql.functions import arrow_udf

    def ratio(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        encoder = encoder_for(tokenizer_json, "auto", threads=1)
        for arr in batches:
            yield pa.array(chars_per_token(encoder, arr.to_pylist()), pa.float64())

    return arrow_udf(ratio, "double")
