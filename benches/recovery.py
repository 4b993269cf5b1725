#!/usr/bin/env python3
"""Correlation of fitted potentials with the planted one, on the states every method identifies.

Usage: recovery.py TRUTH.json NAME=POTENTIALS.parquet [NAME=POTENTIALS.parquet ...] [--min-visits K]
Each parquet has columns `state`, `potential` (detbal's potentials.parquet, or reference.py's
--potentials-out files). Prints one JSON line per method: Pearson r with the planted V over the
common states (and over each method's own identifiable states).
"""
import argparse, json
import numpy as np, pyarrow.parquet as pq

ap = argparse.ArgumentParser()
ap.add_argument("truth"); ap.add_argument("methods", nargs="+"); ap.add_argument("--min-visits", type=int, default=0)
a = ap.parse_args()
truth = json.load(open(a.truth))
planted = dict(zip(truth["states"], truth["V"]))
fits = {}
for spec in a.methods:
    name, path = spec.split("=", 1)
    t = pq.read_table(path).to_pydict()
    visits = t.get("out_count", [None] * len(t["state"]))
    fits[name] = {s: v for s, v, n in zip(t["state"], t["potential"], visits)
                  if v is not None and np.isfinite(v) and (n is None or n >= a.min_visits)}
common = set.intersection(*(set(f) for f in fits.values())) & set(planted)
for name, f in fits.items():
    own = [s for s in f if s in planted]
    r_common = np.corrcoef([f[s] for s in common], [planted[s] for s in common])[0, 1]
    r_own = np.corrcoef([f[s] for s in own], [planted[s] for s in own])[0, 1]
    print(json.dumps({"method": name, "pearson_common": round(float(r_common), 5), "common_states": len(common),
                      "pearson_own": round(float(r_own), 5), "own_states": len(own)}))
