//! The recovery suite (BENCHMARKS.md, "Recovery"): how well each estimator, with and without the
//! ridge chosen from the data (`--l2 auto`), recovers the planted potential of llm-like logs, sparse
//! ones included. The default estimator is chosen by this table.
//!
//! For each size and seed it simulates an llm-like log (50,000 states) into `DIR` (kept, so the
//! reference method can be run on the same files), fits it with every estimator, and prints
//! Pearson and Spearman of the fitted and planted `V` over the states with ≥ 20 visits and over
//! every state given a value, over the states the fit identifies (a ridge fit's prior-dominated
//! states, whose value the prior sets, left out: `fit::attach_posterior`, as `detbal analyze`
//! marks them), and the planted attractors found: of the planted attractors that are
//! attractors of the planted `V` on the log's graph (a local minimum over the observed
//! out-neighbours, the rule of `stats::attractors`; a planted attractor next to a deeper one is
//! not), how many are attractors of the fit. When `DIR/<log>.ref/converged.parquet` exists (columns `state`,
//! `potential`: `reference.py LOG --methods converged --potentials-out DIR/<log>.ref`), the
//! reference method's numbers are printed beside.
//!
//! `cargo run --release --example recovery -- DIR [ROWS,ROWS,…] [SEEDS]` (defaults
//! `10000,100000,1000000` and 3); prints a Markdown table of every run and one of the means per size.

use detbal::backend::cpu::CpuBackend;
use detbal::fit::{Estimator, FitSettings, Identifiability, Potential, attach_posterior, fit};
use detbal::graph::TransitionGraph;
use detbal::io::{self, LoadOptions};
use detbal::simulate::{SimMode, SimParams, Truth, read_truth, simulate};
use detbal::stats::attractors::attractors;
use detbal::stats::{pearson, spearman};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One method's recovery on one log.
#[derive(Clone, Copy, Default)]
struct Score {
    /// Pearson and Spearman over states with ≥ 20 visits, over all states with a value, over the
    /// states the fit identifies, and over the states every method values.
    frequent: [f64; 2],
    all: [f64; 2],
    identified: [f64; 2],
    common: [f64; 2],
    states: usize,
    identified_states: usize,
    /// Planted attractors that are attractors of the planted `V` on the log (`[1]`) and of the
    /// fit too (`[0]`).
    attractors: [usize; 2],
    seconds: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().expect("usage: recovery DIR [ROWS,…] [SEEDS]"));
    let sizes: Vec<u64> = args
        .get(1)
        .map_or("10000,100000,1000000", String::as_str)
        .split(',')
        .map(|s| s.parse().expect("rows"))
        .collect();
    let seeds: u64 = args.get(2).map_or(3, |s| s.parse().expect("seeds"));
    std::fs::create_dir_all(&dir).unwrap();
    let cpu = CpuBackend::new("recovery");
    let mut means: BTreeMap<(u64, String), Vec<Score>> = BTreeMap::new();
    println!(
        "| rows | seed | seen ≤ 2 times | method | states | identified | r (≥ 20 visits) | ρ (≥ 20) | r (all) | ρ (all) | r (identified) | ρ (identified) | r (common) | ρ (common) | attractors | s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &rows in &sizes {
        for seed in 1..=seeds {
            let (graph, truth, log) = log(&dir, rows, seed);
            let planted = truth
                .potential_of(&graph.names)
                .expect("every state is planted");
            let sparse = sparse_share(&graph);
            let mut fits: Vec<(String, Potential, f64)> = Vec::new();
            for estimator in [
                Estimator::LeastAction,
                Estimator::Counts,
                Estimator::ReversibleMle,
            ] {
                for auto in [false, true] {
                    let settings = FitSettings {
                        estimator,
                        l2_auto: auto,
                        ..FitSettings::default()
                    };
                    let clock = Instant::now();
                    let (mut v, mut report) = fit(&graph, &settings, &cpu).unwrap();
                    assert!(report.converged, "{}", report.status);
                    let seconds = clock.elapsed().as_secs_f64();
                    attach_posterior(&graph, &settings, &mut v, &mut report).unwrap();
                    let name = format!(
                        "{}{}",
                        serde_json::to_value(estimator).unwrap().as_str().unwrap(),
                        if auto {
                            format!(" + ridge λ={:.3}", report.l2)
                        } else {
                            String::new()
                        }
                    );
                    fits.push((name, v, seconds));
                }
            }
            if let Some(v) = reference(&graph, &log) {
                fits.push(("reference (converged)".into(), v, f64::NAN));
            }
            let common: Vec<bool> = (0..graph.n_states())
                .map(|f| fits.iter().all(|(_, v, _)| v.value[f].is_some()))
                .collect();
            let methods: Vec<(String, Score)> = fits
                .into_iter()
                .map(|(name, v, seconds)| {
                    let score = Score {
                        seconds,
                        ..score(&graph, &v, &planted, &truth, &common)
                    };
                    (name, score)
                })
                .collect();
            for (name, s) in methods {
                println!(
                    "| {rows} | {seed} | {:.0} % | {name} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {}/{} | {:.2} |",
                    100.0 * sparse,
                    s.states,
                    s.identified_states,
                    s.frequent[0],
                    s.frequent[1],
                    s.all[0],
                    s.all[1],
                    s.identified[0],
                    s.identified[1],
                    s.common[0],
                    s.common[1],
                    s.attractors[0],
                    s.attractors[1],
                    s.seconds
                );
                let key = name.split(" λ=").next().unwrap().to_owned();
                means.entry((rows, key)).or_default().push(s);
            }
        }
    }
    println!("\nMeans over seeds:\n");
    println!(
        "| rows | method | r (≥ 20 visits) | ρ (≥ 20) | r (all) | ρ (all) | r (identified) | ρ (identified) | r (common) | ρ (common) | attractors | s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for ((rows, name), scores) in &means {
        let mean =
            |f: &dyn Fn(&Score) -> f64| scores.iter().map(f).sum::<f64>() / scores.len() as f64;
        println!(
            "| {rows} | {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1}/{:.1} | {:.2} |",
            mean(&|s| s.frequent[0]),
            mean(&|s| s.frequent[1]),
            mean(&|s| s.all[0]),
            mean(&|s| s.all[1]),
            mean(&|s| s.identified[0]),
            mean(&|s| s.identified[1]),
            mean(&|s| s.common[0]),
            mean(&|s| s.common[1]),
            mean(&|s| s.attractors[0] as f64),
            mean(&|s| s.attractors[1] as f64),
            mean(&|s| s.seconds),
        );
    }
}

/// The llm-like log of `rows` rows and `seed`, simulated into `dir` unless already there.
fn log(dir: &Path, rows: u64, seed: u64) -> (TransitionGraph, Truth, PathBuf) {
    let log = dir.join(format!("llm-{rows}-s{seed}.parquet"));
    let truth = dir.join(format!("llm-{rows}-s{seed}.truth.json"));
    if !truth.exists() {
        let params = SimParams {
            rows,
            seed,
            ..SimParams::new(SimMode::LlmLike)
        };
        simulate(&params, &log, &truth).unwrap();
    }
    let graph = io::load(std::slice::from_ref(&log), &LoadOptions::default())
        .unwrap()
        .graph;
    (graph, read_truth(&truth).unwrap(), log)
}

/// A state's visits: the times it appears in the log.
fn visits(graph: &TransitionGraph, f: usize) -> u64 {
    graph.out_count[f].max(graph.in_count[f])
}

/// The share of the log's states seen at most twice.
fn sparse_share(graph: &TransitionGraph) -> f64 {
    let n = graph.n_states();
    (0..n).filter(|&f| visits(graph, f) <= 2).count() as f64 / n as f64
}

/// The recovery of `v`; `common` marks the states every method values.
fn score(
    graph: &TransitionGraph,
    v: &Potential,
    planted: &[f64],
    truth: &Truth,
    common: &[bool],
) -> Score {
    let correlations = |keep: &dyn Fn(usize) -> bool| {
        let (x, y): (Vec<f64>, Vec<f64>) = (0..graph.n_states())
            .filter(|&f| keep(f))
            .filter_map(|f| Some((v.value[f]?, planted[f])))
            .unzip();
        (
            [
                pearson(&x, &y).unwrap_or(f64::NAN),
                spearman(&x, &y).unwrap_or(f64::NAN),
            ],
            x.len(),
        )
    };
    let (frequent, _) = correlations(&|f| visits(graph, f) >= 20);
    let (all, states) = correlations(&|_| true);
    let (identified, identified_states) =
        correlations(&|f| v.status[f] == Identifiability::Identifiable);
    let (common, _) = correlations(&|f| common[f]);
    let minima = |v: &Potential| -> Vec<String> {
        attractors(graph, v).into_iter().map(|a| a.name).collect()
    };
    let n = graph.n_states();
    let planted_minima = minima(&Potential {
        value: planted.iter().map(|&x| Some(x)).collect(),
        status: vec![detbal::fit::Identifiability::Identifiable; n],
        component: vec![0; n],
        posterior_sd: vec![None; n],
    });
    let recoverable: Vec<&String> = (truth.attractors.iter())
        .filter(|a| planted_minima.contains(a))
        .collect();
    let fitted = minima(v);
    Score {
        frequent,
        all,
        identified,
        common,
        states,
        identified_states,
        attractors: [
            recoverable.iter().filter(|a| fitted.contains(a)).count(),
            recoverable.len(),
        ],
        seconds: f64::NAN,
    }
}

/// The reference method's potentials, when written beside the log.
fn reference(graph: &TransitionGraph, log: &Path) -> Option<Potential> {
    use arrow::array::{Array, Float64Array, StringArray};
    use arrow::datatypes::DataType;
    let path = log.with_extension("ref").join("converged.parquet");
    let file = std::fs::File::open(path).ok()?;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 8192).ok()?;
    let mut by_name: HashMap<String, f64> = HashMap::new();
    for batch in reader {
        let batch = batch.unwrap();
        // pyarrow writes `large_string`.
        let state = arrow::compute::cast(batch.column_by_name("state")?, &DataType::Utf8).ok()?;
        let potential = batch.column_by_name("potential")?;
        let state = state.as_any().downcast_ref::<StringArray>()?;
        let potential = potential.as_any().downcast_ref::<Float64Array>()?;
        for i in 0..batch.num_rows() {
            // The reference writes NaN where its fit left a state undefined.
            if potential.is_valid(i) && potential.value(i).is_finite() {
                by_name.insert(state.value(i).to_owned(), potential.value(i));
            }
        }
    }
    let value: Vec<Option<f64>> = graph
        .names
        .iter()
        .map(|n| by_name.get(n).copied())
        .collect();
    let n = value.len();
    Some(Potential {
        value,
        status: vec![detbal::fit::Identifiability::Identifiable; n],
        component: vec![0; n],
        posterior_sd: vec![None; n],
    })
}
