"""Builds the partitioned-counts fixture of tests/groups.rs (run from the repository root):

    cargo run --release -- simulate --mode driven --rows 30000 --states 80 --groups 2 \
        --seed 11 -o tests/data/partitioned/raw.parquet
    python3 tests/data/partitioned/make_fixture.py

`counts/` is what a cluster job writes for the README's `GROUP BY` query: the raw log's
transitions counted per (group, source, target), written by pyarrow's dataset writer as Hive-style
partitions `group=VALUE/part-0.parquet` (the layout Spark, Trino, DataFusion and DuckDB use).
"""

import pathlib
import shutil

import pyarrow.dataset as ds
import pyarrow.parquet as pq

here = pathlib.Path(__file__).parent
raw = pq.read_table(here / "raw.parquet")
counts = raw.group_by(["group", "source", "target"]).aggregate([("run", "count")])
counts = counts.rename_columns(["group", "source", "target", "count"])
shutil.rmtree(here / "counts", ignore_errors=True)
ds.write_dataset(
    counts,
    here / "counts",
    format="parquet",
    partitioning=["group"],
    partitioning_flavor="hive",
    basename_template="part-{i}.parquet",
)
print(f"{raw.num_rows} rows -> {counts.num_rows} counted pairs in {here / 'counts'}")
