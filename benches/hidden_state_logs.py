"""Logs that obey detailed balance but are not Markov in the logged state: an audit of the verdict.

An agent's next output depends on more than its last one (its context). This script writes logs
of the simplest such process: a reversible Metropolis chain on (state, mode) pairs, of which only
the state is logged. The mode (two of them) changes with probability `--switch` per step and
shifts the potential, `V(f, h) = V0(f) + h U(f)`, so that the walk prefers other states while a
mode lasts. Runs start from the joint stationary distribution; the flux between logged states is
then symmetric in expectation, so the logged transitions obey detailed balance with the potential
`-log π(f)` (`π(f) = Σ_h π(f, h)`), and the verdict's null hypothesis holds. What does not hold is
the verdict's sampling model: transitions within a run are dependent beyond the logged state.

`--momentum M` writes a second kind: a walk without potential that, with probability `M`, does
not step back to the state it came from (a non-backtracking move; otherwise a uniform
neighbour). Its stationary flux is the same along every arc in both directions (the lifted
chain on arcs is doubly stochastic), so detailed balance holds again, with `π(f) ∝ deg(f)`; but a
run keeps its direction around the graph's cycles, as an agent working through a plan does.

    python benches/hidden_state_logs.py OUT_DIR --logs 100 --rows 100000 --switch 0.05

writes OUT_DIR/log-SEED.parquet (columns run, source, target) for seeds 1..LOGS. With
`--shift 0` the mode does not matter and the logged chain is Markov (the control). Needs numpy
and pyarrow.
"""

import argparse
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def graph(n, degree, rng):
    """A connected random graph: a ring plus uniform extra edges up to the mean degree."""
    edges = {(i, (i + 1) % n) for i in range(n)}
    while 2 * len(edges) < degree * n:
        a, b = rng.integers(n, size=2)
        if a != b:
            edges.add((min(a, b), max(a, b)))
    neighbours = [[] for _ in range(n)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    return neighbours


def run_lengths(rows, run_len, rng):
    runs = max(1, round(rows / run_len))
    lengths = rng.geometric(1 / run_len, size=runs)
    return np.maximum(1, np.round(lengths * rows / lengths.sum()).astype(np.int64))


def as_table(run_ids, sources, targets, states):
    order = np.argsort(np.concatenate(run_ids), kind="stable")
    name = np.array([f"s{i}" for i in range(states)])
    return pa.table(
        {
            "run": pa.array(np.concatenate(run_ids)[order].astype(np.uint64)),
            "source": pa.array(name[np.concatenate(sources)[order]]),
            "target": pa.array(name[np.concatenate(targets)[order]]),
        }
    )


def momentum_walk(rng, neighbours, rows, run_len, momentum):
    """Runs of the walk that avoids stepping back with probability `momentum`, each started on
    a uniform arc (its stationary distribution)."""
    deg = np.array([len(x) for x in neighbours])
    width = deg.max()
    table = np.array([x + [x[0]] * (width - len(x)) for x in neighbours])
    arcs = np.array([(a, b) for a, x in enumerate(neighbours) for b in x])
    lengths = run_lengths(rows, run_len, rng)
    start = arcs[rng.integers(len(arcs), size=lengths.size)]
    previous, f = start[:, 0].copy(), start[:, 1].copy()
    sources, targets, run_ids = [], [], []
    alive = np.arange(lengths.size)
    for step in range(lengths.max()):
        alive = alive[lengths[alive] > step]
        fa, back = f[alive], previous[alive]
        forward = rng.random(alive.size) < momentum
        # A non-backtracking move: a uniform neighbour among the others (deg ≥ 2: the ring).
        pick = (rng.random(alive.size) * np.where(forward, deg[fa] - 1, deg[fa])).astype(np.int64)
        g = table[fa, pick]
        skip = forward & (g == back)
        g = np.where(skip, table[fa, deg[fa] - 1], g)
        sources.append(fa)
        targets.append(g)
        run_ids.append(alive)
        previous[alive], f[alive] = fa, g
    return run_ids, sources, targets


def simulate(seed, rows, states, degree, switch, shift, run_len, momentum):
    rng = np.random.default_rng(seed)
    neighbours = graph(states, degree, rng)
    if momentum > 0:
        return as_table(*momentum_walk(rng, neighbours, rows, run_len, momentum), states)
    deg = np.array([len(x) for x in neighbours])
    width = deg.max()
    table = np.array([x + [x[0]] * (width - len(x)) for x in neighbours])
    potential = rng.normal(size=states)[:, None] + shift * np.outer(rng.normal(size=states), [0, 1])
    # The acceptance below (degree-corrected for the uniform proposal over neighbours) makes
    # the chain reversible with respect to π(f, h) ∝ e^{-V(f, h)}.
    joint = np.exp(-(potential - potential.min()))
    joint = (joint / joint.sum()).ravel()
    lengths = run_lengths(rows, run_len, rng)
    start = rng.choice(joint.size, size=lengths.size, p=joint)
    f, h = start // 2, start % 2
    sources, targets, run_ids = [], [], []
    alive = np.arange(lengths.size)
    for step in range(lengths.max()):
        alive = alive[lengths[alive] > step]
        if alive.size == 0:
            break
        fa, ha = f[alive], h[alive]
        flip = rng.random(alive.size) < switch
        g = table[fa, (rng.random(alive.size) * deg[fa]).astype(np.int64)]
        # Mode changes: the proposal (f, h) -> (f, 1 - h) is symmetric; accept by Metropolis.
        h_new = np.where(flip, 1 - ha, ha)
        target_f = np.where(flip, fa, g)
        log_accept = potential[fa, ha] - potential[target_f, h_new]
        log_accept += np.where(flip, 0.0, np.log(deg[fa] / deg[target_f]))
        accept = np.log(rng.random(alive.size)) < log_accept
        f_next = np.where(accept, target_f, fa)
        h_next = np.where(accept, h_new, ha)
        sources.append(fa)
        targets.append(f_next)
        run_ids.append(alive)
        f[alive], h[alive] = f_next, h_next
    return as_table(run_ids, sources, targets, states)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--logs", type=int, default=100)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--states", type=int, default=300)
    parser.add_argument("--degree", type=float, default=6.0)
    parser.add_argument("--switch", type=float, default=0.05)
    parser.add_argument("--shift", type=float, default=1.0)
    parser.add_argument("--run-len", type=float, default=20.0)
    parser.add_argument("--momentum", type=float, default=0.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in range(1, args.logs + 1):
        table = simulate(
            seed,
            args.rows,
            args.states,
            args.degree,
            args.switch,
            args.shift,
            args.run_len,
            args.momentum,
        )
        pq.write_table(table, args.out / f"log-{seed}.parquet")


if __name__ == "__main__":
    main()
