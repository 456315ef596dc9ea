"""A seeded sample of files, streamed from Spark to the driver in Arrow batches.

The sample is the `n` files with the smallest `(xxhash64(seed, id), id)`: a fixed set for a
given input, seed and n, whatever the partitioning. It is found in two passes:

1. over `(key, id)` of the non-empty files (a top-n, no content kept): the n-th smallest key;
2. the files at or below the cut, with their content cut to `max_chars` characters, hashed
   into P partitions by key and sorted by key inside each, then packed into Arrow IPC blobs of
   about `blob_bytes` by `mapInArrow`. `toLocalIterator` fetches one partition at a time, so
   the driver holds one partition (about ROWS_PER_PART files), never the whole sample; the
   shuffle makes the filtering pass run in parallel before the first fetch.

The order in which files reach the driver depends only on the sample and P (fixed by the
sample size), not on the input's partitioning.
"""
from __future__ import annotations

import logging
import math
import resource
import time
from dataclasses import dataclass, field
from typing import Iterator

from codecorpus.core.errors import EmptyInput, UserError

log = logging.getLogger("codecorpus")

ROWS_PER_PART = 2000
BLOB_BYTES = 8 * 1024 * 1024
PROGRESS_SECONDS = 10.0


def peak_rss_mb() -> float:
    """Peak resident memory of this (driver) process so far, in MiB. VmHWM, not ru_maxrss:
    ru_maxrss survives exec, so a driver that spark-submit's JVM forked would report the JVM's."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def keyed(df, seed: int, max_chars: int):
    """Non-empty files with their sample key; content cut to `max_chars` characters."""
    from pyspark.sql import functions as F

    missing = [c for c in ("id", "content") if c not in df.columns]
    if missing:
        raise UserError(f"sample input lacks column(s) {', '.join(missing)}; it has {', '.join(df.columns)}")
    return (df.where(F.col("content").isNotNull() & (F.length("content") > 0))
              .select(F.xxhash64(F.lit(seed), F.col("id")).alias("_key"), F.col("id"),
                      F.substring("content", 1, max_chars).alias("content")))


def cut(df, n: int, seed: int) -> tuple[int, int, int] | None:
    """(files in the sample, key, id) of the n-th smallest key; None when there is no file."""
    from pyspark.sql import functions as F

    ids = keyed(df, seed, 1).select("_key", "id")
    row = (ids.orderBy("_key", "id").limit(n)
              .agg(F.count(F.lit(1)).alias("n"), F.max(F.struct("_key", "id")).alias("last")).first())
    if row is None or row["n"] == 0:
        return None
    return row["n"], row["last"]["_key"], row["last"]["id"]


def _pack(blob_bytes: int):
    """mapInArrow function: the content column regrouped into Arrow IPC blobs of ~blob_bytes."""

    def pack(batches):
        import pyarrow as pa

        def blob(arrays):
            table = pa.Table.from_arrays([pa.concat_arrays(arrays)], names=["content"])
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            return pa.RecordBatch.from_arrays([pa.array([sink.getvalue().to_pybytes()], pa.binary())],
                                              names=["blob"])

        pending, size = [], 0
        for batch in batches:
            content = batch.column(batch.schema.get_field_index("content"))
            for start in range(0, len(content), 256):
                part = content.slice(start, 256)
                pending.append(part)
                size += part.nbytes
                if size >= blob_bytes:
                    yield blob(pending)
                    pending, size = [], 0
        if pending:
            yield blob(pending)

    return pack


@dataclass
class SampleStream:
    """Iterate to get the sampled texts; `files`, `chars`, `bytes` count what was handed out."""
    df: object  # the packed DataFrame (one blob column)
    expected: int
    label: str = "sample"
    files: int = 0
    chars: int = 0
    bytes: int = 0
    seconds: float = 0.0
    _started: float = field(default=0.0, repr=False)

    def __iter__(self) -> Iterator[str]:
        import pyarrow as pa

        self._started = time.time()
        last_log = self._started
        for row in self.df.toLocalIterator(prefetchPartitions=True):
            table = pa.ipc.open_stream(row["blob"]).read_all()
            for text in table.column("content").to_pylist():
                self.files += 1
                self.chars += len(text)
                self.bytes += len(text.encode("utf-8", "surrogatepass"))
                yield text
            now = time.time()
            if now - last_log >= PROGRESS_SECONDS:
                last_log = now
                self._log(now)
        self.seconds = round(time.time() - self._started, 3)
        self._log(time.time(), done=True)

    def _log(self, now: float, done: bool = False) -> None:
        elapsed = max(now - self._started, 1e-9)
        log.info("[%s] %s%s/%s files, %.1f MB, %.0f files/s, %.1f MB/s, driver peak RSS %.0f MiB",
                 self.label, "done: " if done else "", f"{self.files:,}", f"{self.expected:,}",
                 self.bytes / 1e6, self.files / elapsed, self.bytes / 1e6 / elapsed, peak_rss_mb())

    def summary(self) -> dict:
        return {"files": self.files, "chars": self.chars, "bytes": self.bytes, "seconds": self.seconds,
                "files_per_s": round(self.files / self.seconds, 1) if self.seconds else None}


def sample_stream(df, n: int, seed: int, max_chars: int, label: str = "sample",
                  blob_bytes: int = BLOB_BYTES, rows_per_part: int = ROWS_PER_PART) -> SampleStream:
    """The seeded sample of `df` (columns id, content) as a stream of texts on the driver."""
    from pyspark.sql import functions as F

    if n <= 0:
        raise UserError(f"sample size must be positive, not {n}")
    found = cut(df, n, seed)
    if found is None:
        raise EmptyInput(f"{label}: the input has no file with content to sample")
    count, key, last_id = found
    parts = max(1, math.ceil(count / rows_per_part))
    rows = keyed(df, seed, max_chars)
    at_or_below = (F.col("_key") < F.lit(key)) | ((F.col("_key") == F.lit(key)) & (F.col("id") <= F.lit(last_id)))
    chosen = rows.where(at_or_below)
    packed = (chosen.repartition(parts, "_key").sortWithinPartitions("_key", "id")
                    .mapInArrow(_pack(blob_bytes), "blob binary"))
    log.info("[%s] %s files chosen (seed %d), streaming them in %d partitions", label, f"{count:,}", seed, parts)
    return SampleStream(packed, count, label)


def sample_or_skip(df, n: int, seed: int, max_chars: int, label: str = "sample") -> SampleStream:
    """`sample_stream` for a stage: an input without text makes the stage skip (it says why),
    so a small corpus still finishes the pipeline."""
    from codecorpus.core.errors import StageSkipped

    try:
        return sample_stream(df, n, seed, max_chars, label=label)
    except EmptyInput as exc:
        raise StageSkipped(str(exc).removeprefix(f"{label}: ")) from None
