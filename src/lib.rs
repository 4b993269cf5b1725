//! # detbal — detailed balance in LLM-driven agents
//!
//! An LLM agent shown a state `f` (a word, an expression, a plan) produces a state `g`. Song et al.
//! (arXiv:2512.10047) found such transitions obey *detailed balance*: a potential `V` exists with
//! `log T(f→g)/T(g→f) = V(f) − V(g)`. detbal measures whether that holds, and with what `V`, on
//! logs of millions of transitions.
//!
//! The pipeline runs in one direction (docs/ARCHITECTURE.md §1):
//!
//! ```text
//! io::load → graph::TransitionGraph → fit::fit (V) → stats (pairs, cycles, entropy) → report
//!                        kernels run on a backend::Backend: Cpu | Gpu
//! ```
//!
//! - [`io`]: Parquet, CSV, trajectory logs and the reference JSON → counts `n(f→g)`, `N(f)`.
//! - [`graph`]: state dictionary, CSR adjacency, reciprocal pairs, strongly connected components.
//! - [`fit`]: the paper's least action `S = Σ w K(V_f − V_g)`, `K(x) = log(1+e^(−x))`, plain
//!   Bradley–Terry counts, or the reversible maximum-likelihood chain; gauge per component.
//! - [`stats`]: pairwise test `x = log T(f→g)/T(g→f)` vs `y = V(f) − V(g)`, Kolmogorov 3-cycles,
//!   entropy production, attractors, resampling tests and bootstrap (Philox streams from [`rng`]).
//! - [`backend`]: one method per kernel; the CPU (f64) verifies the GPU (WGSL).
//! - [`analyze`]: the stages on one graph; [`groups`]: `--group-by`, one analysis per group and
//!   the correlation of their potentials; [`pipeline`]: load, backend, the whole log's analysis
//!   and the groups' side by side.
//! - [`report`]: `report.json`, Parquet tables, figures, `report.html`, the terminal summary.
//!
//! ```
//! use detbal::{analyze::{analyze_graph, AnalyzeSettings}, backend::cpu::CpuBackend, graph::GraphBuilder};
//! let mut b = GraphBuilder::default();
//! let s: Vec<u32> = ["a", "b", "c"].iter().map(|n| b.intern(n)).collect();
//! for (row, &(f, g, n)) in [(0, 1, 40), (1, 0, 20), (1, 2, 30), (2, 1, 10), (2, 0, 5), (0, 2, 15)].iter().enumerate() {
//!     b.add(s[f], s[g], n, row as u64).unwrap();
//! }
//! let graph = b.finish();
//! let settings = AnalyzeSettings::default();
//! let input = detbal::io::InputSummary::default();
//! let a = analyze_graph(graph, input, &CpuBackend::new("doc"), &settings, 0.0, std::time::Instant::now()).unwrap();
//! assert!(a.fit.converged);
//! assert_eq!(a.cycle_test.triangles, 1);
//! ```
pub mod analyze;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod compare;
pub mod config;
pub mod error;
pub mod fit;
pub mod graph;
pub mod groups;
pub mod io;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod rng;
pub mod run;
pub mod settings;
pub mod simulate;
pub mod stats;
pub mod system;
pub mod tables;
