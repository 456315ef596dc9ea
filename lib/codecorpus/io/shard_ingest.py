"""Inside an executor: ingest a task's shards, each streamed from its URI into the task's Parquet files.

A task gets shard URIs, not shard bytes: it opens each shard itself (`io.uri`: a path or any
object-store URI), reads it block by block (`io.shards.shard_tables`) and appends each block's
typed rows and quarantine rows to the task's two Parquet files as row groups fill, so a task's
memory is a few blocks and a row group, whatever the shard's size. One pair of files per task,
not per shard: 184 small shards make 8 files, not 368, which is cheaper to write here and to
read in every later stage. Files are named after the task's first shard (the task plan is fixed
by the shard list and the parallelism) and written atomically, so a retried task rewrites the
same files. Only a per-shard summary (rows and content bytes per status and reason) goes back
to Spark, for the accounting.
"""
from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from codecorpus.io.shards import ROW_GROUP_ROWS, ParseOptions, quarantine_schema, split_rows, typed_schema

SUMMARY_SCHEMA = pa.schema([("shard", pa.string()), ("status", pa.string()), ("reason", pa.string()),
                            ("n", pa.int64()), ("bytes", pa.int64())])


def ingest_tasks(batches: Iterator[pa.RecordBatch], *, tasks: list[list[tuple[str, str]]], ok_dir: str,
                 bad_dir: str, opts: ParseOptions) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: each input row's `id` indexes `tasks`, lists of (uri, name) shards,
    read one after the other; yields one summary batch per shard."""
    for batch in batches:
        for i in batch.column("id").to_pylist():
            stem = tasks[i][0][1].replace(".", "_")  # unique: shard names are unique
            ok_file = _LazyParquet(f"{ok_dir}/{stem}.parquet", typed_schema(), plain=("content",))
            bad_file = _LazyParquet(f"{bad_dir}/{stem}.parquet", quarantine_schema(), plain=("raw",))
            try:
                summaries = [ingest_shard(uri, name, ok_file, bad_file, opts) for uri, name in tasks[i]]
                ok_file.close()
                bad_file.close()
            except BaseException:
                ok_file.abort()
                bad_file.abort()
                raise
            yield from summaries


def read_ahead(items: Iterator, depth: int) -> Iterator:
    """`items`, produced in a thread of their own up to `depth` ahead of the consumer.

    Reading a shard (object-store reads, gunzip, JSON parse) and writing its Parquet (encode,
    zstd) both run in C with the GIL released, so overlapping them lets one shard use a second
    core when its task is the last one running (a 4 GB shard beside 1 GB ones), and hides a
    remote store's latency. Memory stays bounded: at most `depth` parsed blocks wait. An error
    in the producer is raised in the consumer; a consumer that stops early stops the producer."""
    import queue
    import threading

    done = object()
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put((done, exc))

    worker = threading.Thread(target=produce, name="shard-reader", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(0.1)


class _LazyParquet:
    """A ParquetFileWriter opened at the first row, so a shard with no rows of a kind leaves no
    file of that kind (as before: readers fall back to the stage's empty file)."""

    def __init__(self, path: str, schema: pa.Schema, plain: tuple[str, ...]):
        self.path, self.schema, self.plain, self.writer = path, schema, plain, None

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self.writer is None:
            from codecorpus.io.arrow_files import ParquetFileWriter

            self.writer = ParquetFileWriter(self.path, self.schema, row_group_rows=ROW_GROUP_ROWS,
                                            plain=self.plain)
        self.writer.write(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def ingest_shard(uri: str, name: str, ok_file: "_LazyParquet", bad_file: "_LazyParquet", opts: ParseOptions
                 ) -> pa.RecordBatch:
    """Stream one shard's typed rows into `ok_file` and its quarantine rows into `bad_file`;
    returns its summary rows."""
    import pyarrow.compute as pc

    from codecorpus.io import uri as uris
    from codecorpus.io.shards import shard_tables

    ok_rows = ok_bytes = 0
    reasons: dict[str, int] = {}
    with uris.open_input(uri) as stream:
        # Three threads: gunzip, parse, write (all in C with the GIL released), so the last,
        # largest shard of a job can keep two cores busy on its own.
        tables = shard_tables(stream, name, opts, ahead=lambda blocks: read_ahead(blocks, depth=2))
        for table in read_ahead(tables, depth=2):
            ok, bad = split_rows(table)
            ok_file.write(ok)
            bad_file.write(bad)
            ok_rows += ok.num_rows
            ok_bytes += pc.sum(pc.binary_length(ok.column("content"))).as_py() or 0
            if bad.num_rows:
                for r in pc.value_counts(bad.column("reason")).to_pylist():
                    reasons[r["values"]] = reasons.get(r["values"], 0) + r["counts"]
    rows = [(name, "ok", None, ok_rows, ok_bytes)] + [(name, "quarantine", r, n, 0) for r, n in reasons.items()]
    return pa.RecordBatch.from_pylist([dict(zip(SUMMARY_SCHEMA.names, r)) for r in rows], schema=SUMMARY_SCHEMA)
