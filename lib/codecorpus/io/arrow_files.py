"""Files written with pyarrow inside executors: Parquet outputs whose types Spark cannot write
itself (unsigned integers: Spark has none, so uint16 token ids are written here) and Arrow IPC
staging files that a later task reads back in slices, memory-mapped. Also Parquet read with
pyarrow by row group (`row_groups`, `read_row_groups`), for tasks that share out a stage
output's row groups themselves instead of going through Spark's reader.

Files are written through `fs.AtomicFile`, on any run root `fs` serves: a retried or
speculative task rewrites the same name, and no half file is ever visible under it.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from codecorpus.io import fs


def write_table(table: pa.Table, path: str, *, row_group_rows: int, compression: str = "zstd") -> None:
    """One whole Parquet file, written atomically."""
    with fs.AtomicFile(path) as f:
        pq.write_table(table, f.stream, compression=compression, row_group_size=row_group_rows)


class _AtomicFile:
    def __init__(self, path: str):
        self._file = fs.AtomicFile(path)
        self.path, self._sink = self._file.path, self._file.stream
        self.rows = 0

    def _commit(self) -> None:
        self._file.commit()

    def _discard(self) -> None:
        self._file.discard()


class ParquetFileWriter(_AtomicFile):
    """One Parquet file in row groups of exactly `row_group_rows` (the last may be shorter).

    `plain` names columns written without a dictionary and without min/max statistics: large,
    nearly unique values such as file contents, where building a dictionary (hashing every
    value, then giving up past the page limit) and comparing values for statistics cost CPU
    and buy nothing (no reader prunes row groups on them)."""

    def __init__(self, path: str, schema: pa.Schema, *, row_group_rows: int, compression: str = "zstd",
                 compression_level: int | None = None, plain: tuple[str, ...] = ()):
        super().__init__(path)
        self.schema = schema
        self.row_group_rows = row_group_rows
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        others = [n for n in schema.names if n not in plain]
        options = {"use_dictionary": others, "write_statistics": others} if plain else {}
        self._writer = pq.ParquetWriter(self._sink, schema, compression=compression,
                                        compression_level=compression_level, **options)

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        self._pending.append(table if table.schema.equals(self.schema) else table.cast(self.schema))
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.row_group_rows:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._pending_rows:
            return
        table = pa.concat_tables(self._pending)
        full = table.num_rows if final else table.num_rows - table.num_rows % self.row_group_rows
        if full:
            self._writer.write_table(table.slice(0, full), row_group_size=self.row_group_rows)
            self.rows += full
        rest = table.slice(full)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def close(self) -> int:
        """Finish the file and move it into place; returns the number of rows written."""
        self._flush(final=True)
        self._writer.close()
        self._commit()
        return self.rows

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._discard()


class ArrowFileWriter(_AtomicFile):
    """An uncompressed Arrow IPC file, for staging: read back zero-copy with `read_arrow_slice`."""

    def __init__(self, path: str, schema: pa.Schema):
        super().__init__(path)
        self._writer = pa.ipc.new_file(self._sink, schema)

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        self._writer.write(data)
        self.rows += data.num_rows

    def close(self) -> int:
        self._writer.close()
        self._commit()
        return self.rows

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._discard()


def read_arrow_slice(path: str, start: int, stop: int) -> pa.Table:
    """Rows [start, stop) of an Arrow IPC file: memory-mapped where it is local (only the pages
    read are loaded; the returned buffers keep the mapping alive), else read through its
    filesystem, record batch by record batch, keeping only those that overlap the slice."""
    source = fs.open_random_access(path)
    if fs.is_local(path):  # left open: the slice's buffers are the mapping's pages
        return pa.ipc.open_file(source).read_all().slice(start, stop - start)
    with source:
        reader = pa.ipc.open_file(source)
        parts, first = [], 0
        for i in range(reader.num_record_batches):
            batch = reader.get_batch(i)
            end = first + batch.num_rows
            if end > start and first < stop:
                parts.append(batch.slice(max(start - first, 0), min(stop, end) - max(start, first)))
            first = end
        return pa.Table.from_batches(parts, schema=reader.schema)


def row_groups(source: str, columns: list[str]) -> list[tuple[str, int]]:
    """(file, row group) of every non-empty row group of the visible Parquet files of a folder
    (or the one file), files sorted by path; each file must have `columns`."""
    from codecorpus.core.errors import UserError
    from codecorpus.io import uri
    from codecorpus.io.parquet import missing_output

    found = uri.kind(source)
    if found == "missing":
        raise missing_output(source)
    if found == "file":
        files = [uri.file_entry(source).uri]
    else:
        files = [e.uri for e in uri.walk(source) if not uri.is_hidden(e.relative) and e.uri.endswith(".parquet")]
    units = []
    for name in files:
        loc = uri.resolve(name)
        with loc.fs.open_input_file(loc.path) as f:
            meta = pq.read_metadata(f)
        missing = [c for c in columns if c not in meta.schema.names]
        if missing:
            raise UserError(f"{name} lacks column(s) {', '.join(missing)}; it has {', '.join(meta.schema.names)}")
        units += [(name, g) for g in range(meta.num_row_groups) if meta.row_group(g).num_rows]
    return units


def read_row_groups(units: list[tuple[str, int]], columns: list[str], batch_rows: int):
    """Record batches of `columns` of these (file, row group) units, `batch_rows` rows at a time
    (bounded memory); each file is opened once."""
    import itertools

    from codecorpus.io import uri

    for name, group in itertools.groupby(units, key=lambda u: u[0]):
        loc = uri.resolve(name)
        with loc.fs.open_input_file(loc.path) as f:
            yield from pq.ParquetFile(f).iter_batches(batch_size=batch_rows, columns=columns,
                                                      row_groups=[g for _, g in group])
