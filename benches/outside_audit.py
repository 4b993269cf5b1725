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
  chung-lu-giant        20,000 states on a Chung–Lu graph (60,000 links drawn ∝ w_f w_g, w Pareto
                        with tail 1.5: heavy-tailed degrees, one giant strongly connected
                        component), log π = 0.5 log w + N(0, 1); 200,000 rows in runs of 10, each
                        run started ∝ w (popular states, not π): sparse, as agent logs are.
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
  python benches/outside_audit.py oracle WORKDIR LOGS RESAMPLES SHAPE...
      the verdict's null (its pairs, fit and X² rewritten in numpy) drawn from the fitted odds
      and from the true ones: which of the two is calibrated (shapes without a drive)
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
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats
from scipy.sparse import coo_matrix, identity
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import spsolve

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


def chung_lu(rng, n, links):
    """A random graph with expected degrees ∝ `w` (Pareto, tail 1.5), and `w`."""
    w = rng.pareto(1.5, n) + 1.0
    ends = rng.choice(n, size=(links, 2), p=w / w.sum())
    nb = [set() for _ in range(n)]
    for f, g in ends:
        if f != g:
            nb[f].add(g)
            nb[g].add(f)
    return [sorted(s) for s in nb], w


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


def chain(shape, seed):
    """SHAPE's Metropolis–Hastings chain at SEED, and the generator that built it (the walk
    draws on from the same stream)."""
    shape, stationary = shape.removesuffix("+stationary"), shape.endswith("+stationary")
    shape, _, length = shape.partition("+rows=")
    shape, _, runs = shape.partition("+runs=")
    rng = np.random.default_rng(seed * 7919 + sum(map(ord, shape)))
    name, _, drive = shape.partition("=")
    lazy, fixed_start, start_p = 0.0, False, None
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
    elif name == "chung-lu-giant":
        nb, w = chung_lu(rng, 20000, 60000)
        log_pi = 0.5 * np.log(w) + rng.normal(0, 1, len(nb))
        rows, run_len, start_p = 200000, 10, np.cumsum(w) / w.sum()
    elif name == "torus-shear-driven":
        nb = torus(rng, TORUS_SIDE, 60)
        log_pi, rows, run_len = rng.normal(0, 1.0, len(nb)), 50000, 50
    elif name == "lazy-selfloops":
        nb = torus(rng, 15, 30)
        log_pi, rows, run_len, lazy = rng.normal(0, 1.0, len(nb)), 40000, 50, 0.7
    else:
        raise SystemExit(f"unknown shape {shape}")
    return SimpleNamespace(
        rng=rng, shape=shape, nb=nb, degree=np.array([len(x) for x in nb]), log_pi=log_pi,
        lazy=lazy, drive_term=shear(float(drive) if drive else 0.0), stationary=stationary,
        fixed_start=fixed_start, start_p=start_p, rows=int(float(length)) if length else rows,
        run_len=int(runs) if runs else run_len)


def log_acceptance(c, f, g):
    """Log acceptance of the move `f → g` (uniform proposals among neighbours, with the drive)."""
    return (c.log_pi[g] - c.log_pi[f] + np.log(c.degree[f] / c.degree[g])
            + c.drive_term(f, g))


def generate(shape, seed, out, truth=None):
    c = chain(shape, seed)
    rng, nb, n = c.rng, c.nb, len(c.nb)
    names = np.array([f"state-{c.shape[:4]}-{f:05d}" for f in range(n)])
    pi = np.exp(c.log_pi - c.log_pi.max())
    pi /= pi.sum()

    def first_state():
        if c.stationary:
            return rng.choice(n, p=pi)
        if c.start_p is not None:  # cumulative start probabilities
            return min(int(np.searchsorted(c.start_p, rng.random(), side="right")), n - 1)
        return 0 if c.fixed_start else rng.integers(n)

    src, dst, run = [], [], []
    r, left, f = 0, c.run_len, first_state()
    while len(src) < c.rows:
        if left == 0:
            r, left, f = r + 1, c.run_len, first_state()
        if rng.random() < c.lazy or c.degree[f] == 0:
            g = f
        else:
            g = nb[f][rng.integers(c.degree[f])]
            # Uniform proposals among neighbours: accept with π_g d_f / (π_f d_g).
            if np.log(rng.random()) >= log_acceptance(c, f, g):
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
        Path(truth).write_text(json.dumps({str(names[f]): float(-c.log_pi[f]) for f in range(n)}))


def analyze(detbal, log, out, *args):
    cmd = [detbal, "analyze", str(log), "--permutations", "0", "--output", str(out), "--force"]
    return subprocess.run(cmd + list(args), check=True, capture_output=True, text=True).stdout


def generated_logs(work, shape, logs):
    """(seed, log) for seeds 1..LOGS of SHAPE, each log written to WORK and removed once used."""
    for seed in range(1, logs + 1):
        log = work / f"{shape}-{seed}.parquet"
        generate(shape, seed, log)
        yield seed, log
        log.unlink()


def calibrate(detbal, work, logs, shapes, extra=()):
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    print("| shape | logs decided | median ndf | p ≤ 0.01 | p ≤ 0.05 | p ≤ 0.1 | p ≤ 0.5 "
          "| asymptotic χ² ≤ 0.01 / 0.05 / 0.5 | excess z (mean ± sd) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for shape in shapes:
        rows = []
        for seed, log in generated_logs(work, shape, logs):
            report = json.loads(analyze(detbal, log, work / "out", "--json", "--seed", str(seed), *extra))
            test = report["verdict"]["quasi_symmetry"]
            rows.append((test["decides"], report["verdict"]["p_value"], test["ndf"],
                         report["entropy_production"]["excess_z"], test["p_value_asymptotic"]))
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


def split_fit(a, b, x, m, states, start):
    """The verdict's split likelihood fitted in numpy: Bradley–Terry on the pairs `(a, b)` with `x`
    of `m` transitions `a → b` (Newton with a backtracking line search; a ridge of 1e-6 holds each
    component's free level and a separated pair's limit). `U`, Pearson's `X²`, converged."""
    ridge = 1e-6

    def loss(u):
        d = u[a] - u[b]
        return np.sum(x * np.logaddexp(0, -d) + (m - x) * np.logaddexp(0, d)) + ridge / 2 * u @ u

    u = start.copy()
    for _ in range(100):
        p = 1 / (1 + np.exp(-(u[a] - u[b])))
        r = x - m * p
        grad = np.bincount(a, r, states) - np.bincount(b, r, states) - ridge * u
        w = m * p * (1 - p)
        hess = coo_matrix((np.concatenate([w, w, -w, -w]),
                           (np.concatenate([a, b, a, b]), np.concatenate([a, b, b, a]))),
                          shape=(states, states)) + ridge * identity(states)
        step = spsolve(hess.tocsc(), grad)
        t, before = 1.0, loss(u)
        while loss(u + t * step) > before + 1e-12 * abs(before) and t > 1e-6:
            t /= 2
        u = u + t * step
        if np.max(np.abs(t * step)) < 1e-9:
            break
    else:
        return u, np.nan, False
    p = 1 / (1 + np.exp(-(u[a] - u[b])))
    v = m * p * (1 - p)
    x2 = np.sum(np.where(v > 1e-12, (x - m * p) ** 2 / np.maximum(v, 1e-300), 0.0))
    return u, x2, True


def oracle(work, logs, resamples, shapes):
    """The verdict's parametric null drawn from the fitted odds (as detbal does) and from the true
    odds given the visits, `N(f) T(f→g) / (N(g) T(g→f))` with the generator's kernel: if the
    true odds are calibrated and the fitted ones not, the fit is to blame; if neither, the
    binomial model of the splits is."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    print("| shape | logs (fits converged) | mean ndf | observed X² − ndf | null mean − ndf, "
          "fitted / true | null sd, fitted / true | P(p ≤ 0.05 / 0.1 / 0.2 / 0.5), fitted "
          "| the same, true |")
    print("|---|---|---|---|---|---|---|---|")
    for shape in shapes:
        rows = []
        for seed, log in generated_logs(work, shape, logs):
            t = pq.read_table(log, columns=["source", "target"]).to_pydict()
            src = np.array([int(q[-5:]) for q in t["source"]])
            dst = np.array([int(q[-5:]) for q in t["target"]])
            c = chain(shape, seed)
            n = len(c.nb)
            visits = np.bincount(src, minlength=n).astype(float)
            moved = src != dst
            lo, hi = np.minimum(src, dst)[moved], np.maximum(src, dst)[moved]
            keys, pair = np.unique(lo * n + hi, return_inverse=True)
            m = np.bincount(pair)
            x = np.bincount(pair, weights=src[moved] == lo).astype(int)
            A, B = keys // n, keys % n
            # detbal's selection: m ≥ 10, both states in one strongly connected component of
            # the arcs those pairs were seen on.
            keep = m >= 10
            A, B, x, m = A[keep], B[keep], x[keep], m[keep]
            arcs = (np.concatenate([A[x > 0], B[x < m]]), np.concatenate([B[x > 0], A[x < m]]))
            seen = coo_matrix((np.ones(len(arcs[0])), arcs), shape=(n, n))
            scc = connected_components(seen, directed=True, connection="strong")[1]
            keep = scc[A] == scc[B]
            A, B, x, m = A[keep], B[keep], x[keep], m[keep]
            states, ab = np.unique(np.concatenate([A, B]), return_inverse=True)
            a, b = ab[: len(A)], ab[len(A):]
            links = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(states),) * 2)
            ndf = len(a) - len(states) + connected_components(links, directed=False)[0]
            u, x2, ok = split_fit(a, b, x, m, len(states), np.log(visits[states]))

            def log_kernel(f, g):
                return (np.log1p(-c.lazy) - np.log(c.degree[f])
                        + min(0.0, log_acceptance(c, f, g)))

            true_odds = np.array([np.log(visits[f]) + log_kernel(f, g) - np.log(visits[g])
                                  - log_kernel(g, f) for f, g in zip(A, B)])
            draw = np.random.default_rng(seed + 99)
            null = {}
            for label, p in (("fitted", 1 / (1 + np.exp(-(u[a] - u[b])))),
                             ("true", 1 / (1 + np.exp(-true_odds)))):
                fits = [split_fit(a, b, draw.binomial(m, p), m, len(states), u)
                        for _ in range(resamples)]
                ok &= all(f[2] for f in fits)
                null[label] = np.array([f[1] for f in fits])
            if ok and ndf > 0:
                rows.append((ndf, x2, {k: ((1 + np.sum(z >= x2)) / (1 + resamples), z.mean(),
                                           z.std()) for k, z in null.items()}))
        ndf = np.mean([r[0] for r in rows])
        cells = [f"{len(rows)}/{logs}", f"{ndf:.0f}", f"{np.mean([r[1] - r[0] for r in rows]):+.1f}"]
        for i, fmt in ((1, "{:+.1f}"), (2, "{:.1f}")):
            cells.append(" / ".join(fmt.format(np.mean([r[2][k][i] - (r[0] if i == 1 else 0)
                                                        for r in rows])) for k in null))
        for k in null:
            p = np.array([r[2][k][0] for r in rows])
            cells.append(", ".join(f"{np.mean(p <= a):.1%}" for a in (0.05, 0.1, 0.2, 0.5)))
        print(f"| {shape} | " + " | ".join(cells) + " |")


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
    elif command == "oracle":
        oracle(args[0], int(args[1]), int(args[2]), args[3:])
    else:
        print(__doc__)
