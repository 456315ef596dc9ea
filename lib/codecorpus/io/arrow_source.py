"""Parquet on storage Spark cannot reach itself, read and written by the executors with pyarrow.

Spark's own Parquet reader and writer go through Hadoop's FileSystem, which serves `file:` and
`hdfs:` here, and `s3a:`/`gs:` only where their connector jars are installed (hadoop-aws, the GCS
connector). For any other run root, `io.parquet` uses this Python data source instead: the same
rows, through `io.uri`'s pyarrow filesystems and `fs.AtomicFile`, with the credentials of the
standard environment.

Reading: one partition per Parquet file (a file is streamed by record batches, so a task's memory
does not grow with the file); the schema is the first file's, with unsigned integers widened as
Spark's own reader widens them. Writing: each task writes one file, `part-<partition>.parquet`
(a retried task rewrites the same name); `split_by` writes a column's values to
`<column>=<value>/` sub-folders, as `partitionBy` does, without the column.
"""
from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql.datasource import (DataSource, DataSourceArrowWriter, DataSourceReader, InputPartition,
                                    WriterCommitMessage)
from pyspark.sql.types import StructType

NAME = "codecorpus_parquet"
BATCH_ROWS = 4096
ROW_GROUP_ROWS = 16384


def _spark_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type Spark reads a Parquet column of type `t` as (it has no unsigned integers)."""
    widen = {pa.uint8(): pa.int16(), pa.uint16(): pa.int32(), pa.uint32(): pa.int64(), pa.uint64(): pa.int64()}
    if t in widen:
        return widen[t]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(pa.field(t.value_field.name, _spark_type(t.value_type)))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _spark_type(f.type), f.nullable) for f in t])
    return t


def spark_arrow_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, _spark_type(f.type), f.nullable) for f in schema])


def _data_files(path: str) -> list[str]:
    from codecorpus.io import uri

    if uri.kind(path) == "file":
        return [uri.file_entry(path).uri]
    return [e.uri for e in uri.walk(path) if not uri.is_hidden(e.relative) and e.uri.endswith(".parquet")]


class ArrowParquet(DataSource):
    """`spark.read.format("codecorpus_parquet").load(uri)`, `df.write.format(...).save(uri)`."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def _path(self) -> str:
        return self.options["path"]

    def schema(self) -> str | StructType:
        import pyarrow.parquet as pq
        from pyspark.sql.pandas.types import from_arrow_schema

        from codecorpus.io import uri
        from codecorpus.io.parquet import missing_output

        files = _data_files(self._path())
        if not files:
            raise missing_output(self._path())
        loc = uri.resolve(files[0])
        with loc.fs.open_input_file(loc.path) as f:
            return from_arrow_schema(spark_arrow_schema(pq.read_schema(f)))

    def reader(self, schema: StructType) -> "DataSourceReader":
        return _Reader(self._path(), schema)

    def writer(self, schema: StructType, overwrite: bool) -> "DataSourceArrowWriter":
        from codecorpus.io import fs

        if overwrite:
            fs.remove(self._path())
        fs.makedirs(self._path())
        return _Writer(self._path(), schema, self.options.get("split_by", ""),
                       int(self.options.get("zstd_level", "1")))


class _File(InputPartition):
    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


class _Reader(DataSourceReader):
    def __init__(self, path: str, schema: StructType):
        from pyspark.sql.pandas.types import to_arrow_schema

        self.path = path
        self.arrow_schema = to_arrow_schema(schema)

    def partitions(self) -> list[InputPartition]:
        return [_File(p) for p in _data_files(self.path)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq

        from codecorpus.io import uri

        loc = uri.resolve(partition.path)
        names = self.arrow_schema.names
        with loc.fs.open_input_file(loc.path) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS, columns=names):
                yield pa.RecordBatch.from_arrays([batch.column(n).cast(self.arrow_schema.field(n).type)
                                                  for n in names], schema=self.arrow_schema)


class _Written(WriterCommitMessage):
    def __init__(self, rows: int):
        self.rows = rows


class _Writer(DataSourceArrowWriter):
    def __init__(self, path: str, schema: StructType, split_by: str, zstd_level: int):
        from pyspark.sql.pandas.types import to_arrow_schema

        self.path, self.split_by, self.zstd_level = path.rstrip("/"), split_by, zstd_level
        self.arrow_schema = to_arrow_schema(schema)

    def write(self, iterator: Iterator[pa.RecordBatch]) -> WriterCommitMessage:
        from pyspark import TaskContext

        part = TaskContext.get().partitionId()
        writers: dict[str, object] = {}
        rows = 0
        try:
            for batch in iterator:
                for folder, piece in self._pieces(pa.Table.from_batches([batch])):
                    if folder not in writers:
                        writers[folder] = self._open(f"{folder}part-{part:05d}.parquet", piece.schema)
                    writers[folder].write(piece)
                    rows += piece.num_rows
            for w in writers.values():
                w.close()
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        return _Written(rows)

    def _pieces(self, table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
        if not self.split_by:
            yield "", table
            return
        import pyarrow.compute as pc

        column = table.column(self.split_by)
        rest = table.drop_columns([self.split_by])
        for value in pc.unique(column).to_pylist():
            yield f"{self.split_by}={value}/", rest.filter(pc.equal(column, value))

    def _open(self, name: str, schema: pa.Schema):
        from codecorpus.io.arrow_files import ParquetFileWriter

        return ParquetFileWriter(f"{self.path}/{name}", schema, row_group_rows=ROW_GROUP_ROWS,
                                 compression="zstd", compression_level=self.zstd_level)

    def commit(self, messages: list[WriterCommitMessage]) -> None:
        """On the driver, once every task succeeded. An output with no rows still gets one file,
        so readers see its schema (Spark's writer does the same; with `split_by` there is no
        value to name a folder after, as with partitionBy)."""
        from codecorpus.io import fs

        if not self.split_by and not sum(getattr(m, "rows", 0) for m in messages):
            self._open("part-00000.parquet", self.arrow_schema).close()
        fs.touch_success(self.path)


def register(spark) -> None:
    """Make the format known to this session (once per session; registering again is harmless)."""
    spark.dataSource.register(ArrowParquet)
