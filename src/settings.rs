//! Command-line arguments → validated [`AnalyzeSettings`]. Every check happens here, before any
//! file is read or any computation starts.

use crate::analyze::AnalyzeSettings;
use crate::backend::DeviceChoice;
use crate::bench::{self, BenchSettings, BenchSuite};
use crate::cli::{AnalyzeArgs, BenchArgs, FormatArg, L2Arg, SimulateArgs};
use crate::error::{Error, Result};
use crate::fit::{Estimator, Exposure, FitSettings};
use crate::io::{InputFormat, LoadOptions};
use crate::simulate::SimParams;
use crate::stats::cycles::CycleSettings;
use crate::stats::detailed_balance::PairSettings;

/// The settings of `detbal analyze` from its arguments, validated: the first check that fails
/// is the error.
pub fn analyze_settings(args: &AnalyzeArgs) -> Result<AnalyzeSettings> {
    check_ranges(args)?;
    check_combinations(args)?;
    Ok(AnalyzeSettings {
        load: load_options(args),
        fit: FitSettings {
            estimator: estimator(args),
            exposure: args.exposure,
            attempts: args.attempts,
            threshold: args.threshold,
            l2: match l2(args) {
                L2Arg::Fixed(l2) => l2,
                L2Arg::Auto => 0.0,
            },
            l2_auto: l2(args) == L2Arg::Auto,
            grad_tol: args.grad_tol,
            max_iterations: args.max_iterations,
            potential_tol: crate::fit::POTENTIAL_TOL,
            paper: args.paper,
        },
        pairs: PairSettings {
            paper: args.paper,
            min_count: args.min_count,
        },
        cycles: CycleSettings {
            threshold: args.threshold,
            min_count: args.min_count,
            fdr: args.fdr,
            max_len: args.max_cycle_len,
            max_cycles: args.max_cycles,
            max_triangles: args.max_triangles,
        },
        device: args.device,
        alpha: args.alpha,
        verdict: crate::stats::quasi_symmetry::VerdictSettings {
            min_transitions: args.verdict_min_transitions,
            max_resamples: args.verdict_resamples,
            seed: args.seed,
            ..Default::default()
        },
        paper: args.paper,
        verify: args.verify,
        state_score: args.state_score.clone(),
        resampling: crate::stats::permutation::ResamplingSettings {
            permutations: args.permutations,
            bootstrap: args.bootstrap,
            seed: args.seed,
            holdout: args.holdout,
            ..Default::default()
        },
        interrupt: Default::default(),
    })
}

/// An error unless `x` lies strictly between 0 and 1.
fn probability(name: &str, x: f64) -> Result<()> {
    if x > 0.0 && x < 1.0 {
        Ok(())
    } else {
        Err(Error::settings(format!(
            "--{name} must lie strictly between 0 and 1, got {x}"
        )))
    }
}

/// The flags that each have a range of their own.
fn check_ranges(args: &AnalyzeArgs) -> Result<()> {
    probability("alpha", args.alpha)?;
    if let Some(level) = args.fail_on_violation {
        probability("fail-on-violation", level)?;
    }
    probability("fdr", args.fdr)?;
    if args.threshold.is_nan() || args.threshold < 0.0 {
        return Err(Error::settings(format!(
            "--threshold must be ≥ 0, got {}",
            args.threshold
        )));
    }
    if !(args.grad_tol > 0.0 && args.grad_tol < 1.0) {
        return Err(Error::settings(format!(
            "--grad-tol must lie in (0, 1), got {}",
            args.grad_tol
        )));
    }
    if !(3..=4).contains(&args.max_cycle_len) {
        return Err(Error::settings(format!(
            "--max-cycle-len must be 3 or 4, got {}",
            args.max_cycle_len
        ))
        .hint("longer cycles are not implemented; 4-cycles with a chord add nothing"));
    }
    let most = crate::stats::permutation::MAX_PERMUTATIONS;
    if args.permutations > most {
        return Err(Error::settings(format!(
            "--permutations must be at most {most}, got {}",
            args.permutations
        ))
        .hint(
            "every null sample is kept for nulls.parquet and the figures; 1,000,000 resamples \
             resolve p-values down to 1e-6",
        ));
    }
    let most = crate::stats::bootstrap::MAX_BOOTSTRAP;
    if args.bootstrap > most {
        return Err(Error::settings(format!(
            "--bootstrap must be at most {most}, got {}",
            args.bootstrap
        ))
        .hint("each resample is a full refit; 90 % intervals settle within a few thousand"));
    }
    if args.min_count < 1 {
        return Err(Error::settings("--min-count must be at least 1"));
    }
    if args.max_iterations < 1 {
        // With none, no step's decrement is known: the fit could only report "not converged".
        return Err(Error::settings("--max-iterations must be at least 1"));
    }
    Ok(())
}

/// The flags that only make sense together, or not together.
fn check_combinations(args: &AnalyzeArgs) -> Result<()> {
    match (args.exposure, args.attempts) {
        (Exposure::Uniform, None) => {
            return Err(
                Error::settings("--exposure uniform needs the number of agent attempts")
                    .hint("add --attempts N"),
            );
        }
        (Exposure::Uniform, Some(0)) => {
            return Err(Error::settings("--attempts must be at least 1"));
        }
        (Exposure::Observed, Some(_)) => {
            return Err(Error::settings(
                "--attempts only applies to --exposure uniform",
            ));
        }
        _ => {}
    }
    if args.verify && args.device == DeviceChoice::Cpu {
        return Err(Error::settings(
            "--verify compares the GPU with the CPU; it cannot run with --device cpu",
        )
        .hint("pass --device gpu"));
    }
    if args.paper && args.estimator.is_some_and(|e| e != Estimator::LeastAction) {
        return Err(Error::settings(
            "--paper reproduces the reference's least-action fit; drop --estimator",
        ));
    }
    if args.paper && args.l2.is_some_and(|l2| l2 != L2Arg::Fixed(0.0)) {
        return Err(Error::settings(
            "--paper reproduces the reference's unregularised fit; drop --l2",
        ));
    }
    Ok(())
}

/// The estimator of the potential when `--estimator` is not given: the reversible MLE with a
/// Gaussian prior on `V` whose strength is chosen from the data, the best measured in
/// BENCHMARKS.md "Recovery" and "Groups"; `--paper` fits the paper's least action.
pub const DEFAULT_ESTIMATOR: Estimator = Estimator::ReversibleMle;
/// The ridge when `--l2` is not given (`--paper`: none).
pub const DEFAULT_L2: L2Arg = L2Arg::Auto;

fn estimator(args: &AnalyzeArgs) -> Estimator {
    match (args.estimator, args.paper) {
        (Some(e), _) => e,
        (None, true) => Estimator::LeastAction,
        (None, false) => DEFAULT_ESTIMATOR,
    }
}

fn l2(args: &AnalyzeArgs) -> L2Arg {
    match (args.l2, args.paper) {
        (Some(l2), _) => l2,
        (None, true) => L2Arg::Fixed(0.0),
        (None, false) => DEFAULT_L2,
    }
}

/// How the input is read.
fn load_options(args: &AnalyzeArgs) -> LoadOptions {
    let format = match args.format {
        FormatArg::Auto => InputFormat::Auto,
        FormatArg::Transitions => InputFormat::Transitions,
        FormatArg::Trajectory => InputFormat::Trajectory,
        FormatArg::ReferenceJson => InputFormat::ReferenceJson,
    };
    LoadOptions {
        format,
        source_column: args.source_column.clone(),
        target_column: args.target_column.clone(),
        count_column: args.count_column.clone(),
        run_column: args.run_column.clone(),
        step_column: args.step_column.clone(),
        state_column: args.state_column.clone(),
        drop_null_states: args.drop_null_states,
        group_column: args.group_by.clone(),
        trajectory_buffer_rows: usize::try_from(args.trajectory_buffer).unwrap_or(usize::MAX),
        ..LoadOptions::default()
    }
}

/// The parameters of `detbal simulate` from its arguments (the mode's defaults for the rest),
/// validated.
pub fn sim_params(args: &SimulateArgs) -> Result<SimParams> {
    let mut params = SimParams::new(args.mode);
    params.rows = args.rows;
    params.seed = args.seed;
    params.groups = args.groups;
    params.shared_potential = args.shared_potential;
    if let Some(states) = args.states {
        params.states = states;
    }
    params.validate()?;
    Ok(params)
}

/// The settings of `detbal bench` from its arguments, validated.
pub fn bench_settings(args: &BenchArgs) -> Result<BenchSettings> {
    let (sizes, rows) = if args.quick {
        (&bench::QUICK_SIZES[..], &bench::QUICK_ROWS[..])
    } else {
        (&bench::SIZES[..], &bench::ROWS[..])
    };
    let mut rows = args.rows.clone().unwrap_or_else(|| rows.to_vec());
    if args.large && !rows.contains(&bench::LARGE_ROWS) {
        rows.push(bench::LARGE_ROWS);
    }
    let mut sizes = args.sizes.clone().unwrap_or_else(|| sizes.to_vec());
    let (mut dense, mut hard) = (Vec::new(), Vec::new());
    match args.suite {
        BenchSuite::All => {}
        BenchSuite::Hard => {
            sizes.clear();
            hard = args
                .rows
                .clone()
                .unwrap_or_else(|| bench::HARD_ROWS.to_vec());
            rows.clear();
        }
        BenchSuite::Kernel => rows.clear(),
        BenchSuite::Stage => sizes.clear(),
        BenchSuite::Dense => {
            rows.clear();
            sizes.clear();
            dense = args
                .dense_states
                .clone()
                .unwrap_or_else(|| bench::DENSE_STATES.to_vec());
        }
    }
    let settings = BenchSettings {
        device: args.device,
        sizes,
        rows,
        dense,
        hard,
        repeat: args.repeat as usize,
    };
    settings.validate()?;
    Ok(settings)
}
