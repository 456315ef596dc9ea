"""Between packing and writing: one Arrow staging file per packing group, then Parquet shards cut
from them.

Packing runs one task per group, so a group's rows can only be numbered once the group is done;
the rows wait in an uncompressed Arrow IPC file (`group-NNNNNN.arrow`) until every group's row
count is known and `shard_plan` can cut the whole split into equal shards. A shard's writer then
copies its slices out of the memory-mapped staging files. Arrow and the `io.arrow_files`
writers only: no Spark.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from codecorpus.io.arrow_files import ArrowFileWriter, ParquetFileWriter, read_arrow_slice
from codecorpus.tokens.packer import GroupPacker, output_schema, sequences_table

ROW_GROUP_ROWS = 128  # sequences per Parquet row group: what PackedDataset decodes for one random read


def group_file(staging: str, grp: int) -> str:
    return f"{staging}/group-{grp:06d}.arrow"


def shard_name(shard: int) -> str:
    return f"part-{shard:05d}.parquet"


class GroupStager:
    """Packs a stream of files sorted by group, each group into its own staging file.

    `add` takes a run of files of one group; whenever a new group begins, the previous one is
    finished and its (group, statistics) returned. The staging file is opened on the group's
    first row, so a group without rows leaves no file."""

    def __init__(self, staging: str, seq_length: int, eos_id: int, pad: bool, dtype: str):
        self.staging = staging
        self.seq_length = seq_length
        self.eos_id = eos_id
        self.pad = pad
        self.schema = output_schema(dtype, with_mask=pad)
        self.grp: int | None = None
        self.packer: GroupPacker | None = None
        self.writer: ArrowFileWriter | None = None

    def add(self, grp: int, ids: list[np.ndarray | None], chars: int) -> tuple[int, dict] | None:
        done = None
        if grp != self.grp:
            done = self.finish()
            self.grp, self.packer = grp, GroupPacker(self.seq_length, self.eos_id, self.pad)
        rows = self.packer.add(ids, chars)
        if len(rows):
            self._write(rows, [self.seq_length] * len(rows))
        return done

    def add_batch(self, groups: np.ndarray, ids: list, chars: np.ndarray) -> Iterator[tuple[int, dict]]:
        """A batch sorted by group: each run of equal groups in turn; yields the groups finished."""
        cuts = [0, *(np.flatnonzero(np.diff(groups)) + 1).tolist(), len(groups)]
        for a, b in itertools.pairwise(cuts):
            done = self.add(int(groups[a]), ids[a:b], int(chars[a:b].sum()))
            if done is not None:
                yield done

    def finish(self) -> tuple[int, dict] | None:
        """Ends the current group (its padded last row, its file); None when there is none."""
        if self.packer is None:
            return None
        (last, n_real), stats = self.packer.finish()
        if last is not None:
            self._write(last[None, :], [n_real])
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.packer = None
        return self.grp, stats

    def abort(self) -> None:
        """Drops a half-written staging file (a failed task); a retry writes it again."""
        if self.writer is not None:
            self.writer.abort()
            self.writer = None

    def _write(self, rows: np.ndarray, n_real: list[int]) -> None:
        if self.writer is None:
            self.writer = ArrowFileWriter(group_file(self.staging, self.grp), self.schema)
        self.writer.write(sequences_table(rows, n_real, self.schema))


def write_shard(path: str, pieces: list[tuple[int, int, int]], staging: str, schema: pa.Schema) -> int:
    """One Parquet shard from its (group, start, stop) slices of the staging files; returns its rows."""
    writer = ParquetFileWriter(path, schema, row_group_rows=ROW_GROUP_ROWS)
    try:
        for grp, start, stop in pieces:
            writer.write(read_arrow_slice(group_file(staging, grp), start, stop))
        return writer.close()
    except BaseException:
        writer.abort()
        raise


def write_empty_shard(path: str, schema: pa.Schema) -> None:
    """An empty but readable shard, for a split with no sequences."""
    ParquetFileWriter(path, schema, row_group_rows=ROW_GROUP_ROWS).close()
