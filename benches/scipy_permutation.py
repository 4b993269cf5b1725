"""Resamples/s of scipy.stats.permutation_test on the statistic of detbal's explanatory-power
test, 1e5 pairs (BENCHMARKS.md, "Resampling tests"; detbal's side: `cargo bench --bench kernels
-- resample`): permutation_type="pairings", statistic the correlation through the origin of 1e5
standardised log-ratios with 1e5 standardised potential differences (scipy permutes the pairs'
y values; detbal permutes V over states and recomputes each pair's difference: the same amount
of work per resample).

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


print("| scipy | items | resamples | time | resamples/s |")
print("|---|---|---|---|---|")

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
