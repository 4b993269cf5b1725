//! Subcommand drivers behind the binary; each returns the process exit code.

use crate::backend::verify;
use crate::bench;
use crate::cli::{AnalyzeArgs, BenchArgs, Command, CompareArgs, CompletionsArgs, SimulateArgs};
use crate::compare;
use crate::config;
use crate::error::{Error, Result};
use crate::pipeline::analyze;
use crate::progress;
use crate::report;
use crate::settings::{analyze_settings, bench_settings, sim_params};
use crate::simulate::simulate;
use std::path::PathBuf;

/// Exit code of `--fail-on-violation ALPHA` when detailed balance is rejected at ALPHA.
pub const EXIT_VIOLATION: u8 = 3;
/// Exit code when the fit did not converge (the outputs are still written).
pub const EXIT_NOT_CONVERGED: u8 = 4;
/// `--fail-on-violation` was asked for, but the log has no independent cycle to test: the gate
/// cannot decide (outputs are written).
pub const EXIT_UNDECIDED: u8 = 7;

pub fn run(command: Command) -> Result<u8> {
    match command {
        Command::Analyze(args) => run_analyze(&args),
        Command::Simulate(args) => run_simulate(&args),
        Command::Bench(args) => run_bench(&args),
        Command::Compare(args) => run_compare(&args),
        Command::Completions(args) => run_completions(&args),
    }
}

/// `detbal completions SHELL`: the completion script of every subcommand and flag on stdout.
fn run_completions(args: &CompletionsArgs) -> Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut config::command(), "detbal", &mut script);
    stdout(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

fn run_analyze(args: &AnalyzeArgs) -> Result<u8> {
    let settings = analyze_settings(args).map_err(|e| config::attribute(e, args))?;
    // Before anything is computed: replacing the output directory must not delete an input.
    let inputs: Vec<PathBuf> = (args.inputs.iter())
        .chain(&args.config)
        .chain(&args.state_score)
        .cloned()
        .collect();
    report::check_inputs_outside(&args.output, &inputs)?;
    // A foreign output directory fails now rather than after the analysis (and again then).
    report::check_output(&args.output, args.force)?;
    progress::enable(!args.quiet && !args.json);
    // The process exits once this returns: the system frees the analysis faster than its drop
    // would (llm-hard-1M: 8 ms of 0.85 s, mostly the states' names).
    let run = std::mem::ManuallyDrop::new(analyze(&args.inputs, &settings)?);
    let analysis = &run.pooled;
    let t = std::time::Instant::now();
    report::write_outputs(&run, &args.output, args.force)?;
    tracing::info!(stage = "write", output = %args.output.display(), seconds = t.elapsed().as_secs_f64());
    if args.json {
        let json =
            serde_json::to_string_pretty(&report::report_json(&run)).expect("report serialises");
        stdout(&format!("{json}\n"))?;
    } else if !args.quiet {
        stdout(&report::summary_with_outputs(&run, &args.output))?;
    }
    if let Some(deviations) = &analysis.verification {
        if !args.quiet {
            stdout(&verify::table(deviations))?;
        }
        verify::check(deviations)?;
    }
    if !analysis.fit.converged {
        eprintln!(
            "warning: the fit did not converge ({}; gradient norm {:.3e}); results are written but provisional",
            analysis.fit.status, analysis.fit.grad_norm
        );
        return Ok(EXIT_NOT_CONVERGED);
    }
    if let Some(alpha) = args.fail_on_violation {
        let verdict = report::Verdict::at(analysis, alpha);
        match verdict.rejected {
            Some(true) => {
                eprintln!("detbal: --fail-on-violation: {}", verdict.sentence);
                return Ok(EXIT_VIOLATION);
            }
            Some(false) => {}
            None => {
                eprintln!(
                    "detbal: --fail-on-violation cannot decide: {}",
                    verdict.sentence
                );
                return Ok(EXIT_UNDECIDED);
            }
        }
    }
    Ok(0)
}

fn run_compare(args: &CompareArgs) -> Result<u8> {
    let limits = compare::Thresholds {
        rms: args.max_potential_drift,
        max: args.max_state_drift,
        r_drop: args.max_r_drop,
    };
    let comparison = compare::compare(&args.old, &args.new, args.top, limits)?;
    if args.json {
        let json = serde_json::to_string_pretty(&comparison).expect("comparison serialises");
        stdout(&format!("{json}\n"))?;
    } else {
        stdout(&compare::text(&comparison))?;
    }
    for unmeasured in &comparison.unmeasured {
        eprintln!("detbal: compare: {unmeasured}");
    }
    Ok(comparison.exit_code())
}

/// Writes `text` to stdout. A closed pipe (`detbal … --json | head -c1`) is not an error: the
/// reader wants no more, and the run's exit code stays that of its result, as the outputs are
/// written already.
fn stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Write {
            path: PathBuf::from("standard output"),
            message: e.to_string(),
        }),
        _ => Ok(()),
    }
}

fn run_simulate(args: &SimulateArgs) -> Result<u8> {
    // The log is always Parquet: a `.csv` name would mislabel it for every reader.
    let parquet = args
        .output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if !parquet {
        return Err(Error::settings(format!(
            "simulate writes a Parquet file, so -o must end in `.parquet`, got {}",
            args.output.display()
        ))
        .hint(format!(
            "-o {}",
            args.output.with_extension("parquet").display()
        )));
    }
    let params = sim_params(args)?;
    let truth = args
        .truth
        .clone()
        .unwrap_or_else(|| args.output.with_extension("truth.json"));
    let summary = simulate(&params, &args.output, &truth)?;
    stdout(&format!(
        "wrote {} in {} over {} to {} (truth: {}) in {:.2} s\n",
        report::counted(summary.rows, "row"),
        report::counted(summary.runs, "run"),
        report::counted(summary.states_seen, "state"),
        args.output.display(),
        truth.display(),
        summary.seconds
    ))?;
    Ok(0)
}

fn run_bench(args: &BenchArgs) -> Result<u8> {
    let settings = bench_settings(args)?;
    let rows = bench::run(&settings)?;
    stdout(&bench::table(&rows))?;
    if let Some(path) = &args.json {
        bench::write_json(&rows, path)?;
    }
    Ok(0)
}
