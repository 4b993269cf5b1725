"""Resamples/s of scipy.stats.permutation_test on the statistics of detbal's resampling tests,
1e5 items each (BENCHMARKS.md, "Resampling tests"; detbal's side: `cargo bench --bench kernels
-- resample`).

- sign flips: one-sample test, permutation_type="samples" (each value's sign flipped), statistic
  the sum of the products z_A z_B of 1e5 cycles, one-sided ("greater");
- permutations: permutation_type="pairings", statistic the correlation through the origin of
  1e5 standardised log-ratios with 1e5 standardised potential differences (scipy permutes the
  pairs' y values; detbal permutes V over states and recomputes each pair's difference: the
  same amount of work per resample);
- splits: scipy has no parametric resampling test; numpy's binomial generator and the same
  statistic, vectorised over a batch of resamples, stand in.

Usage: python3 benches/scipy_permutation.py [RESAMPLES]   (default 1000)
"""
import sys
import time

import numpy as np
from scipy import stats

N_ITEMS = 100_000
RESAMPLES = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
BATCH = 100
rng = np.random.default_rng(5)


def rate(label, seconds):
    print(f"| {label} | 1e5 | {RESAMPLES} | {seconds:.2f} s | {RESAMPLES / seconds:,.0f} |")


print("| scipy / numpy | items | resamples | time | resamples/s |")
print("|---|---|---|---|---|")

products = rng.uniform(-1, 3, N_ITEMS)
start = time.perf_counter()
stats.permutation_test(
    (products,),
    lambda x, axis: np.sum(x, axis=axis),
    permutation_type="samples",
    n_resamples=RESAMPLES,
    vectorized=True,
    batch=BATCH,
    alternative="greater",
    random_state=1,
)
rate("permutation_test, sign flips (Σ z_A z_B)", time.perf_counter() - start)

x = rng.normal(size=N_ITEMS)
y = rng.normal(size=N_ITEMS)


def origin_correlation(x, y, axis):
    return np.sum(x * y, axis=axis) / np.sqrt(np.sum(x * x, axis=axis) * np.sum(y * y, axis=axis))


start = time.perf_counter()
stats.permutation_test(
    (x, y),
    origin_correlation,
    permutation_type="pairings",
    n_resamples=RESAMPLES,
    vectorized=True,
    batch=BATCH,
    alternative="greater",
    random_state=1,
)
rate("permutation_test, pairings (r through the origin)", time.perf_counter() - start)

m = 1 + rng.integers(0, 300, N_ITEMS)
p = rng.uniform(0.05, 0.95, N_ITEMS)
lam = np.log(p / (1 - p))
start = time.perf_counter()
for first in range(0, RESAMPLES, BATCH):
    n = rng.binomial(m, p, size=(min(BATCH, RESAMPLES - first), N_ITEMS))
    d = np.log(n + 0.5) - np.log(m - n + 0.5) - lam
    (d * d / (1 / (n + 0.5) + 1 / (m - n + 0.5))).sum(axis=1)
rate("numpy binomial splits (χ² of the log-odds)", time.perf_counter() - start)
