"""A seeded sample of files, read by the executors with pyarrow and streamed to the driver.

The sample is the `n` non-empty files with the smallest `(xxhash64(seed, id), id)`: a fixed set
for a given input, seed and n, whatever the partitioning. Executors read the input's Parquet
files themselves (`io.arrow_files`: pyarrow through `io.uri`) rather than through Spark's
reader: Spark would decode every file's content into JVM rows, test its length there and hand
the chosen texts to Python again, which cost more CPU than the trainer's own reading of them (docs/PERFORMANCE.md).
Keys are Spark's `xxhash64(lit(seed), id)` over whole id arrays (`core.xxhash64`).

1. Ranks: every task reads the `id` column of its files (8 bytes a file) and emits `(key, id)`;
   Spark finds the r-th smallest, the cut (r = n at first).
2. Texts: every task reads `id` and `content` of its files in record batches, keeps the
   non-empty files whose `(key, id)` falls in the round's range, cuts their content to
   `max_chars` characters and streams them into one Arrow IPC file in the scratch folder (one
   record batch in memory at a time); tasks share out the row groups of the files. If empty
   files made the round short of n, the next round moves the cut on by the shortfall. Clean
   keeps at most one empty file (the exact duplicates' representative), so one round is the
   rule; none follows when the cut already took every file.

The driver then reads the IPC files one batch at a time in (round, task) order (a fixed order for
a given input: tasks read the input's files sorted by path) and deletes each when done: it
never holds the sample. The trainers count words and pairs, so their result does not depend on
the order anyway (tests/test_tokenizer.py checks that).
"""
from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, field
from typing import Iterator

from codecorpus.core.errors import EmptyInput, UserError

log = logging.getLogger("codecorpus")

READ_ROWS = 2048  # rows per record batch read from a Parquet file: bounded memory per task
TASKS_PER_CORE = 2
PROGRESS_SECONDS = 10.0
COLUMNS = ["id", "content"]


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


def _keys(ids, seed: int):
    """(keys, ids) as int64 numpy arrays for the non-null ids of an Arrow array."""
    import numpy as np

    from codecorpus.core.xxhash64 import spark_xxhash64

    ids_np = ids.drop_null().to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return spark_xxhash64(seed, ids_np), ids_np


def _after(k, ids, bound):
    """Rows whose (key, id) is above `bound` (a (key, id) pair, None = below everything)."""
    import numpy as np

    if bound is None:
        return np.ones(len(k), bool)
    return (k > bound[0]) | ((k == bound[0]) & (ids > bound[1]))


def _task_units(units: list[tuple[str, int]], tasks: int):
    """Task t reads units t, t + tasks, ...: spark.range(tasks) gives each task its number."""
    def mine(batches):
        for batch in batches:
            for t in batch.column(0).to_pylist():
                yield t, units[t::tasks]
    return mine


def _rank_pass(units: list[tuple[str, int]], tasks: int, seed: int):
    """mapInArrow function of pass 1: (key, id) of every file."""
    assign = _task_units(units, tasks)

    def keys(batches):
        import pyarrow as pa

        from codecorpus.io.arrow_files import read_row_groups

        for _, mine in assign(batches):
            for batch in read_row_groups(mine, ["id"], READ_ROWS):
                k, ids = _keys(batch.column(0), seed)
                yield pa.RecordBatch.from_arrays([pa.array(k), pa.array(ids)], names=["_key", "id"])
    return keys


def _text_pass(units: list[tuple[str, int]], tasks: int, seed: int, max_chars: int, lo, hi, folder: str, round_: int):
    """mapInArrow function of pass 2: the chosen non-empty files' content, cut to `max_chars`
    characters, into <folder>/r<round>-t<task>.arrow; one (task, path, files) row per task."""
    assign = _task_units(units, tasks)

    def write(batches):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from codecorpus.io import fs
        from codecorpus.io.arrow_files import read_row_groups

        schema = pa.schema([("content", pa.string())])
        for task, mine in assign(batches):
            path, written = f"{folder}/r{round_:03d}-t{task:05d}.arrow", 0
            with fs.AtomicFile(path) as out, pa.ipc.new_stream(out.stream, schema) as writer:
                for batch in read_row_groups(mine, COLUMNS, READ_ROWS):
                    batch = batch.filter(pc.is_valid(batch.column(0)))
                    k, ids = _keys(batch.column(0), seed)
                    content = batch.column(1)
                    nonempty = pc.fill_null(pc.greater(pc.binary_length(content), 0), False).to_numpy(
                        zero_copy_only=False)
                    chosen = _after(k, ids, lo) & ~_after(k, ids, hi) & nonempty
                    if chosen.any():
                        texts = pc.utf8_slice_codeunits(content.filter(pa.array(chosen)), 0, max_chars)
                        writer.write_batch(pa.RecordBatch.from_arrays([texts], schema=schema))
                        written += int(np.count_nonzero(chosen))
            yield pa.RecordBatch.from_pylist([{"task": task, "path": path, "files": written}],
                                             schema=pa.schema([("task", pa.int32()), ("path", pa.string()),
                                                               ("files", pa.int64())]))
    return write


def rank_cut(keys, r: int) -> tuple[int, tuple[int, int]] | None:
    """(files at or below it, (key, id)) of the r-th smallest (key, id); None when there is no file."""
    from pyspark.sql import functions as F

    row = (keys.orderBy("_key", "id").limit(r)
               .agg(F.count(F.lit(1)).alias("n"), F.max(F.struct("_key", "id")).alias("last")).first())
    if row is None or row["n"] == 0:
        return None
    return row["n"], (row["last"]["_key"], row["last"]["id"])


@dataclass
class SampleStream:
    """Iterate to get the sampled texts; `files`, `chars`, `bytes` count what was handed out
    (a batch at a time, as it is handed out).
    Each IPC part is deleted once read, and the scratch folder when the iteration ends."""
    parts: list[str]
    folder: str
    expected: int
    label: str = "sample"
    files: int = 0
    chars: int = 0
    bytes: int = 0
    seconds: float = 0.0
    _started: float = field(default=0.0, repr=False)

    def __iter__(self) -> Iterator[str]:
        import pyarrow as pa
        import pyarrow.compute as pc

        from codecorpus.io import fs

        self._started = time.time()
        last_log = self._started
        try:
            for path in self.parts:
                with fs.open_random_access(path) as source:
                    for batch in pa.ipc.open_stream(source):
                        texts = batch.column(0)
                        self.files += len(texts)
                        self.chars += pc.sum(pc.utf8_length(texts)).as_py() or 0
                        self.bytes += pc.sum(pc.binary_length(texts)).as_py() or 0
                        yield from texts.to_pylist()
                fs.remove(path)
                now = time.time()
                if now - last_log >= PROGRESS_SECONDS:
                    last_log = now
                    self._log(now)
        finally:
            fs.remove(self.folder)
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


def sample_stream(spark, source: str, n: int, seed: int, max_chars: int, scratch: str, label: str = "sample",
                  tasks: int | None = None) -> SampleStream:
    """The seeded sample of the Parquet files at `source` (columns id, content) as a stream of
    texts on the driver. `scratch` is a folder on the run root (executors write it, the driver
    reads and removes it); `tasks` (default two per core, at most one per file) splits the reading."""
    from codecorpus.io import fs

    if n <= 0:
        raise UserError(f"sample size must be positive, not {n}")
    from codecorpus.io.arrow_files import row_groups

    try:
        units = row_groups(source, COLUMNS)
    except UserError as exc:
        raise UserError(f"sample input: {exc}") from None
    tasks = max(1, min(len(units), tasks or TASKS_PER_CORE * spark.sparkContext.defaultParallelism))
    fs.remove(scratch)
    keys = spark.range(tasks, numPartitions=tasks).mapInArrow(_rank_pass(units, tasks, seed), "_key long, id long")
    parts, chosen, ranked, lo, rounds = [], 0, 0, None, 0
    while chosen < n:
        want = ranked + n - chosen
        found = rank_cut(keys, want) if units else None
        if found is None or found[0] == ranked:
            break  # no file beyond the last cut
        ranked, hi = found
        rows = (spark.range(tasks, numPartitions=tasks)
                     .mapInArrow(_text_pass(units, tasks, seed, max_chars, lo, hi, scratch, rounds),
                                 "task int, path string, files long").collect())
        rows.sort(key=lambda r: r["task"])
        parts.extend(r["path"] for r in rows)
        chosen += sum(r["files"] for r in rows)
        lo, rounds = hi, rounds + 1
        log.info("[%s] round %d: %s files ranked, %s with content chosen of %s", label, rounds, f"{ranked:,}",
                 f"{chosen:,}", f"{n:,}")
        if ranked < want:
            break  # the cut took every file
    if chosen == 0:
        fs.remove(scratch)
        raise EmptyInput(f"{label}: the input has no file with content to sample")
    log.info("[%s] %s files chosen (seed %d) from %d Parquet row groups in %d tasks", label, f"{chosen:,}", seed,
             len(units), tasks)
    return SampleStream(parts, scratch, chosen, label)


def sample_or_skip(spark, source: str, n: int, seed: int, max_chars: int, scratch: str,
                   label: str = "sample") -> SampleStream:
    """`sample_stream` for a stage: an input without text makes the stage skip (it says why),
    so a small corpus still finishes the pipeline."""
    from codecorpus.core.errors import StageSkipped

    try:
        return sample_stream(spark, source, n, seed, max_chars, scratch, label=label)
    except EmptyInput as exc:
        raise StageSkipped(str(exc).removeprefix(f"{label}: ")) from None
