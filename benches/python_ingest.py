#!/usr/bin/env python3
"""Load time of the Python package by source: the Parquet file, a pyarrow.Table (plain and
dictionary-encoded strings) and a pandas DataFrame of the same log (BENCHMARKS.md, "Python").

Usage: python_ingest.py LOG.parquet [--repeat N]
Runs detbal.analyze on each source with --device cpu --permutations 0 --verdict-resamples 0 and
prints one JSON line per source: the medians over N runs of report.json's timings.load, and of
the call's wall time beyond the engine's timings.total (the binding: reading the source object,
building the result), the load as a ratio to the file's.
"""
import argparse, json, statistics, time

import pandas as pd
import pyarrow.parquet as pq

import detbal

ap = argparse.ArgumentParser()
ap.add_argument("log")
ap.add_argument("--repeat", type=int, default=5)
a = ap.parse_args()
sources = {
    "parquet file": a.log,
    "pyarrow.Table": pq.read_table(a.log),
    "pyarrow.Table, dictionary strings": pq.read_table(a.log, read_dictionary=["source", "target"]),
    "pandas.DataFrame": pd.read_parquet(a.log),
}
rows = {}
for name, source in sources.items():
    loads, overheads = [], []
    for _ in range(a.repeat):
        start = time.perf_counter()
        report = detbal.analyze(source, device="cpu", permutations=0, verdict_resamples=0).report
        overheads.append(time.perf_counter() - start - report["timings"]["total"])
        loads.append(report["timings"]["load"])
    rows[name] = (statistics.median(loads), statistics.median(overheads), report["input"]["rows"])
base = rows["parquet file"][0]
for name, (load, overhead, n) in rows.items():
    print(json.dumps({"source": name, "rows": n, "load_s": round(load, 4), "load_ratio": round(load / base, 2),
                      "overhead_s": round(overhead, 4)}))
