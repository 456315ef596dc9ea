"""Inside an executor: ingest whole shards, each streamed from its URI to its Parquet files.

A task gets shard URIs, not shard bytes: it opens each shard itself (`io.uri`: a path or any
object-store URI), reads it block by block (`io.shards.shard_tables`) and appends each block's
typed rows and quarantine rows to that shard's two Parquet files as row groups fill, so a
task's memory is a few blocks and a row group, whatever the shard's size. Files are named after
the shard and written atomically, so a retried task rewrites the same files. Only a per-shard
summary (rows and content bytes per status and reason) goes back to Spark, for the accounting.
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
            for uri, name in tasks[i]:
                yield ingest_shard(uri, name, ok_dir=ok_dir, bad_dir=bad_dir, opts=opts)


class _LazyParquet:
    """A ParquetFileWriter opened at the first row, so a shard with no rows of a kind leaves no
    file of that kind (as before: readers fall back to the stage's empty file)."""

    def __init__(self, path: str, schema: pa.Schema):
        self.path, self.schema, self.writer = path, schema, None

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self.writer is None:
            from codecorpus.io.arrow_files import ParquetFileWriter

            self.writer = ParquetFileWriter(self.path, self.schema, row_group_rows=ROW_GROUP_ROWS)
        self.writer.write(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def ingest_shard(uri: str, name: str, *, ok_dir: str, bad_dir: str, opts: ParseOptions) -> pa.RecordBatch:
    """Stream one shard into `<ok_dir>/<stem>.parquet` and `<bad_dir>/<stem>.parquet`; returns
    its summary rows."""
    import pyarrow.compute as pc

    from codecorpus.io import uri as uris
    from codecorpus.io.shards import shard_tables

    stem = name.replace(".", "_")  # unique: shard names are unique
    ok_file = _LazyParquet(f"{ok_dir}/{stem}.parquet", typed_schema())
    bad_file = _LazyParquet(f"{bad_dir}/{stem}.parquet", quarantine_schema())
    ok_rows = ok_bytes = 0
    reasons: dict[str, int] = {}
    try:
        with uris.open_input(uri) as stream:
            for table in shard_tables(stream, name, opts):
                ok, bad = split_rows(table)
                ok_file.write(ok)
                bad_file.write(bad)
                ok_rows += ok.num_rows
                ok_bytes += pc.sum(pc.binary_length(ok.column("content"))).as_py() or 0
                if bad.num_rows:
                    for r in pc.value_counts(bad.column("reason")).to_pylist():
                        reasons[r["values"]] = reasons.get(r["values"], 0) + r["counts"]
        ok_file.close()
        bad_file.close()
    except BaseException:
        ok_file.abort()
        bad_file.abort()
        raise
    rows = [(name, "ok", None, ok_rows, ok_bytes)] + [(name, "quarantine", r, n, 0) for r, n in reasons.items()]
    return pa.RecordBatch.from_pylist([dict(zip(SUMMARY_SCHEMA.names, r)) for r in rows], schema=SUMMARY_SCHEMA)
