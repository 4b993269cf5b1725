//! Bootstrap intervals of the potential (`--bootstrap B`).
//!
//! Each resample redraws the transitions out of every source state from the multinomial of
//! its observed counts (arcs and self-transitions; `N(f)` fixed), as sequential conditional
//! binomials from the Philox stream `(seed, Bootstrap)`, counter `(item, resample, j)` with the
//! items of [`super::resampling::split_half`]; the counts are drawn on the host (cheap next
//! to the refit), then V is refitted on the analysis' backend. Intervals are percentile
//! intervals at `level`.
//!
//! Only V gets intervals. Percentile intervals of the pair χ², the cycle χ² and `r` were dropped:
//! each resample adds a second layer of sampling noise to these statistics, so their intervals
//! were shifted away from the observed value and did not contain it (pair χ² 3927.6 against
//! [4414.7, 4781.5] on the bundled sample). The intervals of V cover the planted
//! potential at close to their level (tests/it/resampling.rs, examples/calibration.rs).
//!
//! Gauge: a fitted component is only determined up to a constant, so each resample's V is
//! centred over the states of each component of the original fit, as the fit centres it; a
//! resample in which a state of the component has no potential (its counts no longer close a
//! cycle) or lands in another component gives that component no value, and its intervals use
//! the other resamples (`resamples` per state says how many). The refit starts where the original
//! fit did, from the least-squares start of the resample's reciprocal pairs (`fit::fit`). A warm
//! start from the original fit's V was measured and not kept: on llm-hard-1M three resamples took
//! 45, 37 and 41 Newton steps from it against 50, 15 and 15 from V = 0 (a resample moves sparse
//! states' optima by several units, where Newton's steps are short).

use super::resampling::ResamplingSettings;
use crate::backend::Backend;
use crate::error::Result;
use crate::fit::{self, FitSettings, Potential};
use crate::graph::TransitionGraph;
use crate::rng::{Purpose, Stream, binomial};

/// A percentile interval and how many resamples it rests on.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    pub resamples: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Bootstrap {
    pub resamples: u32,
    pub level: f64,
    /// Per state: the interval of V (`None` when not identifiable in the original fit, or when
    /// no resample identified its whole component).
    #[serde(skip)]
    pub potential: Vec<Option<Interval>>,
    /// Resamples whose fit did not converge (kept: their V is still the best point reached).
    pub not_converged: u32,
}

/// The percentile interval of `values` at `level` (empty: `None`).
pub fn percentile_interval(values: &mut [f64], level: f64) -> Option<Interval> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let quantile = |q: f64| {
        let h = q * (values.len() - 1) as f64;
        let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
        values[lo] + (h - lo as f64) * (values[hi] - values[lo])
    };
    let tail = (1.0 - level) / 2.0;
    Some(Interval {
        low: quantile(tail),
        high: quantile(1.0 - tail),
        resamples: values.len(),
    })
}

/// Resample `b`: every source's transitions redrawn from the multinomial of its counts.
pub fn multinomial_resample(graph: &TransitionGraph, stream: &Stream, b: u32) -> TransitionGraph {
    let m = graph.n_edges();
    let mut drawn = vec![0u64; m + graph.n_states()];
    for f in 0..graph.n_states() {
        let items = (graph.out_ptr[f]..graph.out_ptr[f + 1]).chain([m + f]);
        let counts = |i: usize| {
            if i < m {
                graph.count[i]
            } else {
                graph.self_count[i - m]
            }
        };
        let mut trials = graph.out_count[f];
        let mut mass = graph.out_count[f];
        for i in items {
            let n = counts(i);
            if trials == 0 || mass == 0 {
                break;
            }
            let k = if n >= mass {
                trials
            } else {
                binomial(stream, trials, n as f64 / mass as f64, i as u32, b)
            };
            drawn[i] = k;
            trials -= k;
            mass -= n;
        }
    }
    graph.recount(|item, _| drawn[item as usize])
}

/// `B` bootstrap refits and the intervals of the module docs.
pub fn bootstrap(
    graph: &TransitionGraph,
    potential: &Potential,
    backend: &dyn Backend,
    fit_settings: &FitSettings,
    settings: &ResamplingSettings,
) -> Result<Bootstrap> {
    let n = graph.n_states();
    let stream = Stream::new(settings.seed, Purpose::Bootstrap);
    let bar = crate::progress::bar(
        "bootstrap",
        u64::from(settings.bootstrap),
        crate::progress::Unit::Items,
    );
    // States of each original component.
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut slot = rustc_hash::FxHashMap::default();
    for f in 0..n {
        if potential.value[f].is_some() {
            let c = potential.component[f];
            let k = *slot.entry(c).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[k].push(f);
        }
    }
    let valued: usize = members.iter().map(Vec::len).sum();
    check_memory(valued, settings.bootstrap)?;
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut not_converged = 0;
    for b in 0..settings.bootstrap {
        let g = multinomial_resample(graph, &stream, b);
        let (v, report) = fit::fit(&g, fit_settings, backend)?;
        not_converged += u32::from(!report.converged);
        for states in &members {
            let c = v.value[states[0]].map(|_| v.component[states[0]]);
            let whole = states
                .iter()
                .all(|&f| v.value[f].is_some() && Some(v.component[f]) == c);
            if !whole {
                continue;
            }
            let mean =
                states.iter().map(|&f| v.value[f].unwrap()).sum::<f64>() / states.len() as f64;
            for &f in states {
                samples[f].push(v.value[f].unwrap() - mean);
            }
        }
        bar.inc(1);
    }
    bar.finish();
    let level = settings.level;
    Ok(Bootstrap {
        resamples: settings.bootstrap,
        level,
        potential: samples
            .iter_mut()
            .map(|s| percentile_interval(s, level))
            .collect(),
        not_converged,
    })
}

/// Most bootstrap refits (`--bootstrap`): 90 % percentile intervals settle within a few thousand.
pub const MAX_BOOTSTRAP: u32 = 100_000;

/// Every resample's V of every valued state is kept until the intervals are taken: refuses,
/// before the first refit, a `resamples` whose samples would not fit in the memory available.
fn check_memory(valued_states: usize, resamples: u32) -> Result<()> {
    let needed = valued_states as f64 * f64::from(resamples) * size_of::<f64>() as f64;
    match crate::system::available_memory() {
        Some(available) if needed > available => {
            let fits = (available / (valued_states.max(1) * size_of::<f64>()) as f64) as u64;
            let error = crate::error::Error::settings(format!(
                "--bootstrap {resamples} keeps {resamples} potentials of each of {valued_states} \
                 valued states, about {:.1} GiB, more than the {:.1} GiB of memory available",
                crate::system::gib(needed),
                crate::system::gib(available),
            ));
            Err(if fits > 0 {
                error.hint(format!("at most --bootstrap {fits} fits here"))
            } else {
                error
            })
        }
        _ => Ok(()),
    }
}

/// The fraction of states with an interval that covers `planted` (per state of the graph, e.g.
/// a simulation's truth), both centred per component of `potential` over its states.
pub fn coverage(bootstrap: &Bootstrap, potential: &Potential, planted: &[f64]) -> f64 {
    let mut sums: rustc_hash::FxHashMap<u32, (f64, f64)> = Default::default();
    for (f, v) in potential.value.iter().enumerate() {
        if v.is_some() {
            let e = sums.entry(potential.component[f]).or_default();
            e.0 += planted[f];
            e.1 += 1.0;
        }
    }
    let (mut covered, mut total) = (0usize, 0usize);
    for (f, interval) in bootstrap.potential.iter().enumerate() {
        if let Some(i) = interval {
            let (sum, k) = sums[&potential.component[f]];
            let v = planted[f] - sum / k;
            total += 1;
            covered += usize::from(i.low <= v && v <= i.high);
        }
    }
    covered as f64 / total.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_intervals_interpolate() {
        let mut v: Vec<f64> = (0..=100).map(f64::from).rev().collect();
        let i = percentile_interval(&mut v, 0.9).unwrap();
        assert!((i.low - 5.0).abs() < 1e-12 && (i.high - 95.0).abs() < 1e-12 && i.resamples == 101);
        assert!(percentile_interval(&mut [], 0.9).is_none());
    }

    #[test]
    fn samples_beyond_the_memory_available_are_refused() {
        if crate::system::available_memory().is_none() {
            return; // no /proc/meminfo: nothing to check against
        }
        // 2^40 states × 100,000 resamples × 8 bytes: 800 PiB.
        let err = check_memory(1 << 40, MAX_BOOTSTRAP)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--bootstrap 100000 keeps 100000 potentials of each of 1099511627776")
                && err.contains("more than the")
                && !err.contains("hint"),
            "{err}"
        );
        check_memory(300, 200).unwrap();
        let err = check_memory(1 << 28, MAX_BOOTSTRAP)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hint: at most --bootstrap "), "{err}");
    }
}
