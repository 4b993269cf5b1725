#!/usr/bin/env python3
"""An audit of detbal on logs it did not make: Metropolis–Hastings chains written here with numpy,
in shapes unlike `detbal simulate`'s (BENCHMARKS.md, "Outside shapes: an independent generator").

Shapes (exact detailed balance unless driven; `V = −log π` planted):
  dense-nonstationary   25 states, complete graph, log π ~ N(0, 1.5²); 20,000 rows in runs of 5,
                        every run from the same state (never near stationarity).
  torus-one-trajectory  22 × 22 torus plus 60 random shortcuts, log π ~ N(0, 1); 50,000 rows in
                        one run (one long, autocorrelated trajectory).
  hubs-sparse           3,000-state preferential-attachment graph (2 links per new state),
                        log π = 1.5 log degree + N(0, 1); 100,000 rows in runs of 20 from uniform
                        starts: hubs, and most states seen a few times.
  lazy-selfloops        15 × 15 torus plus 30 shortcuts; each step stays put with probability 0.7;
                        40,000 rows in runs of 50.
  torus-shear-driven=D  the torus of `torus-one-trajectory` in runs of 50 with a shear: a move along
                        +x gets `+D` on its log acceptance in the upper half of the rows and `−D`
                        in the lower half (non-conservative: the plaquettes across the two
                        boundaries carry an affinity of ±2D, a shortcut's loop back along
                        k steps of a row ±kD).
  SHAPE+runs=N          SHAPE with runs of N transitions (the same chain and seeds).
  SHAPE+rows=N          SHAPE with N rows (after +runs=N when both are given).
  SHAPE+stationary      SHAPE (with the suffixes above) with every run started from π.

Usage (the Python needs numpy, pyarrow, scipy):
  python benches/outside_audit.py generate SHAPE SEED OUT.parquet [TRUTH.json]
  python benches/outside_audit.py calibrate DETBAL WORKDIR LOGS SHAPE... [-- ANALYZE_OPTION...]
      the verdict's p-values (shares at four levels with their 99 % binomial intervals) and the
      entropy excess
  python benches/outside_audit.py recovery DETBAL REFERENCE WORKDIR SEEDS SHAPE...
      the planted V against the estimators
`calibrate` runs `detbal analyze --permutations 0 --seed S` on seeds 1..LOGS; `recovery` runs
detbal's default, `--estimator least-action --l2 0`, `--estimator reversible-mle --l2 0` and the
`converged` fit of REFERENCE (the workplace's reference script, `reference.py`, which takes the same
Parquet log) on seeds 1001.., and reports Pearson and Spearman over all valued states and over
states left ≥ 20 times.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

TORUS_SIDE = 22


def torus(rng, side, shortcuts):
    n = side * side
    nb = [set() for _ in range(n)]
    for i in range(side):
        for j in range(side):
            f = i * side + j
            for di, dj in ((0, 1), (1, 0)):
                g = ((i + di) % side) * side + (j + dj) % side
                nb[f].add(g)
                nb[g].add(f)
    for _ in range(shortcuts):
        f, g = rng.integers(n, size=2)
        if f != g:
            nb[f].add(g)
            nb[g].add(f)
    return [sorted(s) for s in nb]


def preferential_attachment(rng, n, links):
    nb = [set() for _ in range(n)]
    targets, ends = list(range(links)), []
    for f in range(links, n):
        for g in set(targets):
            nb[f].add(g)
            nb[g].add(f)
        ends += list(targets) + [f] * links
        targets = list(rng.choice(ends, size=links))
    return [sorted(s) for s in nb]


def shear(drive):
    """The drive's term in a move's log acceptance (antisymmetric in the move)."""

    def term(f, g):
        (fi, fj), (gi, gj) = divmod(f, TORUS_SIDE), divmod(g, TORUS_SIDE)
        if drive == 0.0 or fi != gi:
            return 0.0
        step = (gj - fj) % TORUS_SIDE
        sign = 1.0 if step == 1 else (-1.0 if step == TORUS_SIDE - 1 else 0.0)
        return sign * (drive if fi < TORUS_SIDE // 2 else -drive)

    return term


def generate(shape, seed, out, truth=None):
    shape, stationary = shape.removesuffix("+stationary"), shape.endswith("+stationary")
    shape, _, length = shape.partition("+rows=")
    shape, _, runs = shape.partition("+runs=")
    rng = np.random.default_rng(seed * 7919 + sum(map(ord, shape)))
    name, _, drive = shape.partition("=")
    lazy, fixed_start = 0.0, False
    if name == "dense-nonstationary":
        nb = [[g for g in range(25) if g != f] for f in range(25)]
        log_pi, rows, run_len, fixed_start = rng.normal(0, 1.5, 25), 20000, 5, True
    elif name == "torus-one-trajectory":
        nb = torus(rng, TORUS_SIDE, 60)
        log_pi, rows = rng.normal(0, 1.0, len(nb)), 50000
        run_len = rows
    elif name == "hubs-sparse":
        nb = preferential_attachment(rng, 3000, 2)
        degree = np.array([len(x) for x in nb])
        log_pi = 1.5 * np.log(degree) + rng.normal(0, 1, len(nb))
        rows, run_len = 100000, 20
    elif name == "torus-shear-driven":
        nb = torus(rng, TORUS_SIDE, 60)
        log_pi, rows, run_len = rng.normal(0, 1.0, len(nb)), 50000, 50
    elif name == "lazy-selfloops":
        nb = torus(rng, 15, 30)
        log_pi, rows, run_len, lazy = rng.normal(0, 1.0, len(nb)), 40000, 50, 0.7
    else:
        raise SystemExit(f"unknown shape {shape}")
    rows = int(float(length)) if length else rows
    run_len = int(runs) if runs else run_len
    n = len(nb)
    drive_term = shear(float(drive) if drive else 0.0)
    degree = np.array([len(x) for x in nb])
    names = np.array([f"state-{shape[:4]}-{f:05d}" for f in range(n)])
    pi = np.exp(log_pi - log_pi.max())
    pi /= pi.sum()

    def first_state():
        if stationary:
            return rng.choice(n, p=pi)
        return 0 if fixed_start else rng.integers(n)

    src, dst, run = [], [], []
    r, left, f = 0, run_len, first_state()
    while len(src) < rows:
        if left == 0:
            r, left, f = r + 1, run_len, first_state()
        if rng.random() < lazy:
            g = f
        else:
            g = nb[f][rng.integers(degree[f])]
            # Uniform proposals among neighbours: accept with π_g d_f / (π_f d_g).
            log_accept = log_pi[g] - log_pi[f] + np.log(degree[f] / degree[g]) + drive_term(f, g)
            if np.log(rng.random()) >= log_accept:
                g = f
        src.append(f)
        dst.append(g)
        run.append(r)
        f, left = g, left - 1
    table = pa.table(
        {
            "run": pa.array(run, pa.uint64()),
            "source": pa.array(names[src]),
            "target": pa.array(names[dst]),
        }
    )
    pq.write_table(table, out)
    if truth:
        Path(truth).write_text(json.dumps({str(names[f]): float(-log_pi[f]) for f in range(n)}))


def analyze(detbal, log, out, *args):
    cmd = [detbal, "analyze", str(log), "--permutations", "0", "--output", str(out), "--force"]
    return subprocess.run(cmd + list(args), check=True, capture_output=True, text=True).stdout


def calibrate(detbal, work, logs, shapes, extra=()):
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    print("| shape | logs decided | median ndf | p ≤ 0.01 | p ≤ 0.05 | p ≤ 0.1 | p ≤ 0.5 "
          "| asymptotic χ² ≤ 0.01 / 0.05 / 0.5 | excess z (mean ± sd) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for shape in shapes:
        rows = []
        for seed in range(1, logs + 1):
            log = work / f"{shape}-{seed}.parquet"
            generate(shape, seed, log)
            report = json.loads(analyze(detbal, log, work / "out", "--json", "--seed", str(seed), *extra))
            test = report["verdict"]["quasi_symmetry"]
            rows.append((test["decides"], report["verdict"]["p_value"], test["ndf"],
                         report["entropy_production"]["excess_z"], test["p_value_asymptotic"]))
            log.unlink()
        with open(work / "calibration.jsonl", "a") as f:
            f.write(json.dumps({"shape": shape, "logs": rows}) + "\n")
        p = [r[1] for r in rows if r[0] and r[1] is not None]
        cells = []
        for a in (0.01, 0.05, 0.1, 0.5):
            # The 99 % interval of the share under uniform p-values.
            lo, hi = (stats.binom.ppf(q, len(p), a) / len(p) for q in (0.005, 0.995))
            share = sum(x <= a for x in p) / len(p)
            cells.append(f"{share:.3f} [{lo:.3f}, {hi:.3f}]" + ("" if lo <= share <= hi else " **out**"))
        asymptotic = [r[4] for r in rows if r[0] and r[4] is not None]
        cells.append(" / ".join(f"{sum(x <= a for x in asymptotic) / len(asymptotic):.3f}"
                                for a in (0.01, 0.05, 0.5)))
        z = [r[3] for r in rows if r[3] is not None]
        ndf = int(np.median([r[2] for r in rows]))
        print(f"| {shape} | {len(p)}/{len(rows)} | {ndf} | " + " | ".join(cells)
              + f" | {np.mean(z):+.2f} ± {np.std(z, ddof=1):.2f} |")


def correlations(truth, visits, states, values):
    kept = [(s, v) for s, v in zip(states, values) if v is not None and np.isfinite(v)]
    valued = [(truth[s], v) for s, v in kept]
    frequent = [(truth[s], v) for s, v in kept if visits.get(s, 0) >= 20]
    out = {"valued": len(valued)}
    for label, pairs in (("all", valued), ("ge20", frequent)):
        a, b = np.array(pairs).T
        out[f"r_{label}"], out[f"rho_{label}"] = stats.pearsonr(a, b)[0], stats.spearmanr(a, b)[0]
    return out


def recovery(detbal, reference, work, seeds, shapes):
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    fits = {
        "detbal default": (),
        "detbal least-action --l2 0": ("--estimator", "least-action", "--l2", "0"),
        "detbal reversible-mle --l2 0": ("--estimator", "reversible-mle", "--l2", "0"),
    }
    print("| shape | fit | states valued | r (≥ 20) | ρ (≥ 20) | r (all) | ρ (all) |")
    print("|---|---|---|---|---|---|---|")
    for shape in shapes:
        results = {}
        for seed in range(1001, 1001 + seeds):
            log, truth_file = work / f"{shape}.parquet", work / f"{shape}.truth.json"
            generate(shape, seed, log, truth_file)
            truth = json.loads(truth_file.read_text())
            visits = {}
            for s in pq.read_table(log, columns=["source"]).column(0).to_pylist():
                visits[s] = visits.get(s, 0) + 1
            tables = {}
            for label, args in fits.items():
                analyze(detbal, log, work / "out", "-q", *args)
                t = pq.read_table(work / "out" / "potentials.parquet").to_pydict()
                tables[label] = (t["state"], t["potential"])
            subprocess.run([sys.executable, reference, str(log), "--methods", "converged",
                            "--potentials-out", str(work / "ref")], check=True, capture_output=True)
            t = pq.read_table(work / "ref" / "converged.parquet").to_pydict()
            tables["reference converged"] = (t["state"], t["potential"])
            for label, (states, values) in tables.items():
                results.setdefault(label, []).append(correlations(truth, visits, states, values))
        with open(work / "recovery.jsonl", "a") as f:
            f.write(json.dumps({"shape": shape, "results": results}) + "\n")
        for label, rs in results.items():
            mean = {k: np.mean([r[k] for r in rs]) for k in rs[0]}
            print(f"| {shape} | {label} | {mean['valued']:.0f} | {mean['r_ge20']:.3f} | "
                  f"{mean['rho_ge20']:.3f} | {mean['r_all']:.3f} | {mean['rho_all']:.3f} |")


if __name__ == "__main__":
    command, *args = sys.argv[1:] or ["help"]
    if command == "generate":
        generate(args[0], int(args[1]), args[2], args[3] if len(args) > 3 else None)
    elif command == "calibrate":
        rest = args[3:]
        cut = rest.index("--") if "--" in rest else len(rest)
        calibrate(args[0], args[1], int(args[2]), rest[:cut], rest[cut + 1:])
    elif command == "recovery":
        recovery(args[0], args[1], args[2], int(args[3]), args[4:])
    else:
        print(__doc__)
