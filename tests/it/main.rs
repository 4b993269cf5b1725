//! The integration tests: one crate, one module per area, shared helpers in [`support`]. One
//! crate links detbal, wgpu, arrow, parquet and plotters once, where a test crate per file
//! linked them once each. Run one area with a filter, e.g.
//! `cargo test --release --test it verdict::` (or one test by its full name,
//! `cargo test --release --test it -- --exact verdict::driven_logs_are_rejected`).

mod support;

mod bad_input;
mod batch;
mod bench;
mod cli;
mod compare;
mod config;
mod cycles;
mod entropy_null;
mod estimators;
mod fuzz_regressions;
mod gpu_agreement;
mod gpu_faults;
mod gpu_path;
mod gradient;
mod groups;
mod ingest;
mod input_forms;
mod known_answers;
mod newton;
mod output_safety;
mod recovery;
mod report_html;
mod report_schema;
mod resampling;
mod ridge;
mod run_memory;
mod shared_potential;
mod simulate;
mod snapshots;
mod trajectory_spill;
mod verdict;
mod verdict_gpu;
