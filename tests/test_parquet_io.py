"""io.parquet's two paths give the same rows: Spark's own Parquet reader and writer, and the
executors' pyarrow (io.arrow_source, what a run root on a store without a Hadoop connector
takes), forced here on local disk with spark.codecorpus.parquet=arrow."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.testing import assertDataFrameEqual

from codecorpus.io.parquet import ENGINE_CONF, read_parquet, write_parquet


@pytest.fixture
def arrow_engine(spark):
    spark.conf.set(ENGINE_CONF, "arrow")
    yield
    spark.conf.unset(ENGINE_CONF)


def test_split_sorted_and_empty_writes_match_sparks_own(spark, tmp_path, arrow_engine):
    df = spark.createDataFrame([(i, None if i % 3 == 0 else f"t{i}", "kept" if i % 2 else "dropped", [i, -i])
                                for i in range(50)], "id long, text string, _out string, ids array<int>")
    write_parquet(df, str(tmp_path / "arrow"), split_by="_out", sort_by=["id"], files=3)
    write_parquet(df.where("id < 0"), str(tmp_path / "arrow_empty"))
    write_parquet(spark.createDataFrame([], df.schema), str(tmp_path / "arrow_no_partitions"))
    spark.conf.unset(ENGINE_CONF)
    write_parquet(df, str(tmp_path / "spark"), split_by="_out", sort_by=["id"], files=3)
    for part in ("_out=kept", "_out=dropped"):
        ours = read_parquet(spark, str(tmp_path / "arrow" / part))
        assert ours.columns == ["id", "text", "ids"]
        assertDataFrameEqual(ours, read_parquet(spark, str(tmp_path / "spark" / part)))
        spark.conf.set(ENGINE_CONF, "arrow")
        assertDataFrameEqual(read_parquet(spark, str(tmp_path / "arrow" / part)),
                             read_parquet(spark, str(tmp_path / "spark" / part)))
        spark.conf.unset(ENGINE_CONF)
        # rows stay sorted inside each file, as sort_by promises
        for f in sorted((tmp_path / "arrow" / part).glob("*.parquet")):
            ids = pq.read_table(f).column("id").to_pylist()
            assert ids == sorted(ids)
    for name in ("arrow_empty", "arrow_no_partitions"):
        empty = read_parquet(spark, str(tmp_path / name))
        assert empty.count() == 0 and empty.schema == df.schema
        assert len(list((tmp_path / name).glob("*.parquet"))) == 1
    assert (tmp_path / "arrow" / "_SUCCESS").exists()


def test_unsigned_columns_read_as_sparks_own_reader_reads_them(spark, tmp_path, arrow_engine):
    table = pa.table({"input_ids": pa.array([[1, 65535], [7]], pa.list_(pa.uint16())),
                      "n": pa.array([3, 4294967295], pa.uint32())})
    (tmp_path / "t").mkdir()
    pq.write_table(table, tmp_path / "t" / "part-0.parquet")
    ours = read_parquet(spark, str(tmp_path / "t"))
    spark.conf.unset(ENGINE_CONF)
    assertDataFrameEqual(ours, read_parquet(spark, str(tmp_path / "t")))
    assert ours.schema == read_parquet(spark, str(tmp_path / "t")).schema
