//! Exact elimination of dangling trees before the optimiser runs.
//!
//! A state `ℓ` whose only neighbour is `p` enters the action through one reciprocal pair,
//! `a K(V_ℓ − V_p) + b K(V_p − V_ℓ)` (`a = w(ℓ→p)`, `b = w(p→ℓ)`), a function of `d = V_ℓ − V_p`
//! alone, minimised at `d* = log(a/b)` whatever `V_p` is, where its gradient on `p` vanishes. So
//! `ℓ` and its pair can be removed, the rest fitted, and `V_ℓ = V_p + d*` set afterwards; peeling
//! repeats until no such state is left (the 2-core remains). Logs of LLM agents are full of states
//! seen once or twice hanging off popular ones: these long dangling trees are the worst
//! conditioned part of the problem (a chain of length L has curvature ~1/L²), and they cost
//! nothing once eliminated. Exact only without a ridge.

/// A removed state and how to restore it: `V[leaf] = V[parent] + difference`.
#[derive(Debug, Clone, Copy)]
pub struct Eliminated {
    pub leaf: u32,
    pub parent: u32,
    pub difference: f64,
}

/// Splits the weighted edges `(src, dst, w)` into the positions that stay in the problem and the
/// eliminated states, in elimination order (restore them in reverse).
pub fn peel_leaves(
    n_states: usize,
    src: &[u32],
    dst: &[u32],
    weight: &[f64],
) -> (Vec<usize>, Vec<Eliminated>) {
    let m = src.len();
    // Per state: (neighbour, edge position), sorted by neighbour.
    let mut ptr = vec![0usize; n_states + 1];
    for e in 0..m {
        ptr[src[e] as usize + 1] += 1;
        ptr[dst[e] as usize + 1] += 1;
    }
    for i in 0..n_states {
        ptr[i + 1] += ptr[i];
    }
    let mut fill = ptr.clone();
    let mut adjacent = vec![(0u32, 0usize); 2 * m];
    for e in 0..m {
        for (a, b) in [(src[e], dst[e]), (dst[e], src[e])] {
            adjacent[fill[a as usize]] = (b, e);
            fill[a as usize] += 1;
        }
    }
    let mut degree = vec![0u32; n_states];
    for f in 0..n_states {
        let list = &mut adjacent[ptr[f]..ptr[f + 1]];
        list.sort_unstable();
        degree[f] = list.windows(2).filter(|w| w[0].0 != w[1].0).count() as u32
            + u32::from(!list.is_empty());
    }
    let mut removed = vec![false; n_states];
    let mut eliminated_edge = vec![false; m];
    let mut order = Vec::new();
    let mut queue: Vec<u32> = (0..n_states as u32)
        .filter(|&f| degree[f as usize] == 1)
        .collect();
    while let Some(leaf) = queue.pop() {
        let l = leaf as usize;
        if removed[l] || degree[l] != 1 {
            continue;
        }
        let list = &adjacent[ptr[l]..ptr[l + 1]];
        let Some(&(parent, _)) = list.iter().find(|(q, _)| !removed[*q as usize]) else {
            continue;
        };
        let (mut forward, mut backward) = (None, None);
        for &(q, e) in list.iter().filter(|(q, _)| *q == parent) {
            if src[e] == leaf {
                forward = Some(e)
            } else {
                backward = Some(e)
            }
            let _ = q;
        }
        let (Some(a), Some(b)) = (forward, backward) else {
            continue;
        };
        removed[l] = true;
        eliminated_edge[a] = true;
        eliminated_edge[b] = true;
        order.push(Eliminated {
            leaf,
            parent,
            difference: (weight[a] / weight[b]).ln(),
        });
        degree[parent as usize] -= 1;
        if degree[parent as usize] == 1 {
            queue.push(parent);
        }
    }
    ((0..m).filter(|&e| !eliminated_edge[e]).collect(), order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_hanging_off_a_triangle_is_peeled_and_the_triangle_stays() {
        // Triangle 0-1-2 (both directions), chain 2-3-4.
        let pairs = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4)];
        let (mut src, mut dst, mut w) = (vec![], vec![], vec![]);
        for (i, &(a, b)) in pairs.iter().enumerate() {
            src.extend([a, b]);
            dst.extend([b, a]);
            w.extend([1.0 + i as f64, 2.0]);
        }
        let (core, gone) = peel_leaves(5, &src, &dst, &w);
        assert_eq!(core, (0..6).collect::<Vec<_>>());
        let leaves: Vec<u32> = gone.iter().map(|g| g.leaf).collect();
        assert_eq!(leaves, [4, 3]);
        assert!((gone[0].difference - (2.0f64 / 5.0).ln()).abs() < 1e-15); // w(4→3) = 2, w(3→4) = 5
    }
}
