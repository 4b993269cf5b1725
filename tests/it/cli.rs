//! The `detbal` binary end to end: devices, exit codes, error messages, outputs.

use crate::support::{
    self, column, command, detbal, detbal_in, fixture, read_parquet, repo, report, text,
};
use arrow::array::AsArray;
use arrow::datatypes::Float64Type;
use std::path::{Path, PathBuf};

/// The bundled sample, as an argument.
fn sample() -> String {
    support::sample().display().to_string()
}

fn potentials(dir: &Path) -> Vec<Option<f64>> {
    let table = read_parquet(&dir.join("potentials.parquet"));
    column(&table, "potential")
        .as_primitive::<Float64Type>()
        .iter()
        .collect()
}

#[test]
fn gpu_and_cpu_give_the_same_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let (gpu_dir, cpu_dir) = (dir.path().join("gpu"), dir.path().join("cpu"));
    let gpu = detbal(
        &[
            "analyze",
            &sample(),
            "-o",
            gpu_dir.to_str().unwrap(),
            "--device",
            "gpu",
            "--verify",
        ],
        &[],
    );
    if !gpu.status.success() && text(&gpu.stderr).contains("no GPU adapter") {
        assert_ne!(
            std::env::var("REQUIRE_GPU").as_deref(),
            Ok("1"),
            "REQUIRE_GPU=1 but: {}",
            text(&gpu.stderr)
        );
        eprintln!("SKIP gpu_and_cpu_give_the_same_analysis: no GPU adapter");
        return;
    }
    assert!(gpu.status.success(), "{}", text(&gpu.stderr));
    for kernel in ["gather_gradient", "verdict refits"] {
        assert!(
            text(&gpu.stdout).contains(kernel),
            "the --verify table has a {kernel} row"
        );
    }
    let cpu = detbal(
        &[
            "analyze",
            &sample(),
            "-o",
            cpu_dir.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        &[],
    );
    assert!(cpu.status.success(), "{}", text(&cpu.stderr));

    // Identifiable potentials within 1e-4 (both centred per component).
    let (vg, vc) = (potentials(&gpu_dir), potentials(&cpu_dir));
    assert_eq!(vg.len(), vc.len());
    for (i, (a, b)) in vg.iter().zip(&vc).enumerate() {
        assert_eq!(
            a.is_some(),
            b.is_some(),
            "state {i}: identifiability differs"
        );
        if let (Some(a), Some(b)) = (a, b) {
            assert!((a - b).abs() <= 1e-4, "state {i}: gpu {a} vs cpu {b}");
        }
    }
    // Statistics to 1e-6 relative; counts and everything else identical.
    let (rg, rc) = (report(&gpu_dir), report(&cpu_dir));
    assert_eq!(rg["device"]["backend"], "gpu");
    assert_eq!(rc["device"]["backend"], "cpu");
    for section in ["graph", "pairs", "cycles", "entropy_production"] {
        compare(&rg[section], &rc[section], section);
    }
    for key in [
        "estimator",
        "converged",
        "identifiable_states",
        "components",
        "kept_states",
        "fitted_edges",
    ] {
        assert_eq!(rg["fit"][key], rc["fit"][key], "fit.{key}");
    }
    compare(&rg["fit"]["action"], &rc["fit"]["action"], "fit.action");
    // The verdict's fits ran on each backend: numbers to 1e-6, the solvers' step counts aside.
    let verdict = |r: &serde_json::Value| {
        let mut v = r["verdict"].clone();
        let test = v["quasi_symmetry"].as_object_mut().unwrap();
        for key in ["newton_steps", "cg_steps", "decrement", "fit_status"] {
            test.remove(key);
        }
        v
    };
    compare(&verdict(&rg), &verdict(&rc), "verdict");
}

/// Equal JSON, numbers to 1e-6 relative.
fn compare(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, v) in x {
                compare(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                compare(u, v, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-300),
                "{path}: {x} vs {y}"
            );
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn without_any_adapter_auto_says_the_cpu_is_used_and_why() {
    let dir = tempfile::tempdir().unwrap();
    // This build has no OpenGL backend: pointing wgpu at it leaves no adapter at all.
    let out = detbal(
        &["analyze", &sample(), "-o", dir.path().to_str().unwrap()],
        &[("WGPU_BACKEND", "gl")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let device: Vec<&str> = stdout.lines().filter(|l| l.starts_with("Device")).collect();
    assert_eq!(device.len(), 1, "{stdout}");
    assert!(
        device[0].contains("cpu") && device[0].contains("no usable GPU"),
        "{}",
        device[0]
    );
    // The one warning names the fault; the Device line does not repeat it.
    let stderr = text(&out.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("no GPU adapter found"), "{stderr}");
    assert!(!device[0].contains("no GPU adapter found"), "{}", device[0]);
    let r = report(dir.path());
    assert_eq!(r["device"]["backend"], "cpu");
    assert!(
        r["device"]["fault"]
            .as_str()
            .is_some_and(|f| f.contains("no GPU adapter found")),
        "{}",
        r["device"]
    );
    // --device gpu is an error there, exit code 1, with the reason.
    let out = detbal(
        &[
            "analyze",
            &sample(),
            "-o",
            dir.path().to_str().unwrap(),
            "--device",
            "gpu",
        ],
        &[("WGPU_BACKEND", "gl")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no GPU adapter"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_input_exits_1_with_a_message_naming_the_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("log.csv");
    std::fs::write(&bad, "from,to\na,b\n").unwrap();
    let out_dir = dir.path().join("out");
    let out = detbal(
        &[
            "analyze",
            bad.to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("log.csv") && stderr.contains("source"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
    assert!(!out_dir.exists(), "no output for a failed run");
}

#[test]
fn invalid_settings_and_usage_errors_have_their_exit_codes() {
    let out = detbal(&["analyze", &sample(), "--exposure", "uniform"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--attempts"),
        "{}",
        text(&out.stderr)
    );
    let out = detbal(&["analyze", &sample(), "--no-such-flag"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn paper_mode_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture("paper_parity/parity_driven.json");
    let out = detbal(
        &[
            "analyze",
            fixture.to_str().unwrap(),
            "--paper",
            "--device",
            "cpu",
            "-o",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = report(dir.path());
    assert_eq!(r["pairs"]["n"], 591);
    assert_eq!(r["cycles"]["n"], 103);
}

#[test]
fn a_fit_that_does_not_converge_exits_4_with_its_status_and_writes_the_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = detbal(
        &[
            "analyze",
            &sample(),
            "-o",
            out_dir.to_str().unwrap(),
            "--device",
            "cpu",
            "--max-iterations",
            "2",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("did not converge") && stderr.contains("iteration limit (2)"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("NOT CONVERGED"));
    let r = report(&out_dir);
    assert_eq!(r["fit"]["converged"], false);
    assert_eq!(r["fit"]["iterations"], 2);
    assert!(r["fit"]["grad_norm"].as_f64().unwrap() > r["fit"]["grad_tolerance"].as_f64().unwrap());
}

/// The settings that keep a run on the sample short (no resampling, asymptotic verdict).
const QUICK: [&str; 8] = [
    "--device",
    "cpu",
    "--permutations",
    "0",
    "--bootstrap",
    "0",
    "--verdict-resamples",
    "0",
];

/// A log of two states, a→b and b→a: a fit, but no cycle, so no verdict (zero degrees of
/// freedom).
fn two_state_log(dir: &Path) -> PathBuf {
    let path = dir.join("two.csv");
    std::fs::write(&path, "source,target,count\na,b,20\nb,a,15\n").unwrap();
    path
}

/// The codes of the README's "Exit codes" table.
fn readme_exit_codes() -> Vec<i32> {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let section = readme
        .split("\n## Exit codes\n")
        .nth(1)
        .expect("README has an Exit codes section");
    let section = section.split("\n## ").next().unwrap();
    let codes: Vec<i32> = section
        .lines()
        .filter_map(|l| l.strip_prefix('|'))
        .filter_map(|l| l.split('|').next()?.trim().parse().ok())
        .collect();
    assert!(codes.len() >= 8, "{section}");
    codes
}

#[test]
fn every_exit_code_in_the_readme_is_produced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sample = sample();
    let two = two_state_log(d);
    let two = two.to_str().unwrap();
    let analyze = |extra: &[&str]| {
        let mut args = vec!["analyze", "-q"];
        args.extend(QUICK);
        args.extend(extra);
        detbal_in(d, &args, &[])
    };
    let mut produced = std::collections::BTreeMap::<i32, String>::new();
    let mut expect = |code: i32, what: &str, out: std::process::Output| {
        assert_eq!(
            out.status.code(),
            Some(code),
            "{what}: stdout {} stderr {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains("panicked"), "{what}");
        produced.entry(code).or_insert_with(|| what.to_string());
    };

    expect(0, "analyze", analyze(&[&sample, "-o", "a"]));
    expect(
        0,
        "analyze, another estimator",
        analyze(&[&sample, "-o", "b", "--estimator", "counts"]),
    );
    expect(
        1,
        "a bad value: --alpha 2",
        analyze(&[&sample, "--alpha", "2"]),
    );
    expect(
        1,
        "a value that is not a number: --alpha abc",
        analyze(&[&sample, "--alpha", "abc"]),
    );
    expect(1, "a missing input", analyze(&["missing.parquet"]));
    expect(2, "an unknown flag", analyze(&[&sample, "--no-such-flag"]));
    expect(2, "no input", detbal_in(d, &["analyze"], &[]));
    expect(
        3,
        "a violation: the sample has a planted one",
        analyze(&[&sample, "-o", "c", "--fail-on-violation", "0.01"]),
    );
    expect(
        4,
        "non-convergence",
        analyze(&[&sample, "-o", "d", "--max-iterations", "1"]),
    );
    expect(
        5,
        "compare: drift beyond a threshold",
        detbal_in(
            d,
            &["compare", "a", "b", "--max-potential-drift", "0.001"],
            &[],
        ),
    );
    expect(0, "analyze the two-state log", analyze(&[two, "-o", "e"]));
    expect(
        6,
        "compare: no shared state, so no measurable drift",
        detbal_in(d, &["compare", "a", "e", "--max-potential-drift", "1"], &[]),
    );
    expect(
        7,
        "--fail-on-violation without an independent cycle",
        analyze(&[two, "-o", "f", "--fail-on-violation", "0.01"]),
    );

    // Cycles of single transitions only (a walk a → b → c → a and back): a p-value, no decision.
    let single = d.join("single.csv");
    std::fs::write(
        &single,
        "source,target,count\na,b,1\nb,c,1\nc,a,1\nc,d,1\nd,e,1\ne,c,1\n",
    )
    .unwrap();
    let run = analyze(&[
        single.to_str().unwrap(),
        "-o",
        "g",
        "--fail-on-violation",
        "0.5",
    ]);
    assert!(
        text(&run.stderr).contains("cannot decide: Cannot decide at α = 0.5"),
        "{}",
        text(&run.stderr)
    );
    expect(
        7,
        "--fail-on-violation when the only cycles are single transitions",
        run,
    );
    let verdict = &report(&d.join("g"))["verdict"];
    assert_eq!(verdict["rejected"], serde_json::Value::Null);
    assert!(verdict["p_value"].is_number(), "{verdict}");
    assert_eq!(verdict["quasi_symmetry"]["decides"], false);
    assert_eq!(verdict["quasi_symmetry"]["min_transitions"], 1);

    let listed = readme_exit_codes();
    for code in &listed {
        assert!(
            produced.contains_key(code),
            "README lists exit code {code}, no test produces it ({produced:?})"
        );
    }
    for code in produced.keys() {
        assert!(
            listed.contains(code),
            "exit code {code} is not in the README"
        );
    }
}

#[test]
fn a_bad_value_exits_1_whether_clap_or_detbal_rejects_it() {
    let dir = tempfile::tempdir().unwrap();
    let sample = sample();
    for (args, says) in [
        (
            vec!["--alpha", "abc"],
            "invalid value 'abc' for '--alpha <ALPHA>'",
        ),
        (
            vec!["--alpha", "2"],
            "--alpha must lie strictly between 0 and 1",
        ),
        (
            vec!["--device", "tpu"],
            "invalid value 'tpu' for '--device <DEVICE>'",
        ),
        (
            vec!["--verdict-min-transitions", "0"],
            "--verdict-min-transitions",
        ),
        (
            vec!["--max-iterations", "0"],
            "--max-iterations must be at least 1",
        ),
        (
            vec!["--bootstrap", "100001"],
            "--bootstrap must be at most 100000, got 100001",
        ),
        (
            vec!["--l2", "1e308"],
            "expected `auto` or a number from 0 to 1e100, got `1e308`",
        ),
    ] {
        let mut argv = vec!["analyze", &sample, "-q"];
        argv.extend(&args);
        let out = detbal_in(dir.path(), &argv, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{args:?}: {stderr}"
        );
    }
    // The command line's shape stays a usage error.
    for args in [
        &["analyze", "--alpha"][..],
        &["analyze", &sample, "--frobnicate"],
    ] {
        let out = detbal_in(dir.path(), args, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

/// Without `XDG_RUNTIME_DIR` (a headless machine), enumerating Vulkan adapters makes libwayland
/// print `error: XDG_RUNTIME_DIR is invalid or not set` unless detbal gives it a private
/// directory: `--device auto` must print nothing on stderr, with or without `-q`.
#[test]
fn auto_on_a_headless_machine_prints_no_false_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sample = sample();
    let run = |extra: &[&str]| {
        let child = command(&[
            "analyze",
            &sample,
            "--device",
            "auto",
            "--permutations",
            "0",
        ])
        .args(["--bootstrap", "0", "--verdict-resamples", "0", "-o", "out"])
        .args(extra)
        .current_dir(dir.path())
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("RUST_LOG")
        .env_remove("DETBAL_ALLOW_SOFTWARE_GPU")
        .env_remove("DETBAL_GPU_FAULT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("detbal runs");
        let private = std::env::temp_dir().join(format!("detbal-runtime-{}-0", child.id()));
        let out = child.wait_with_output().unwrap();
        assert!(!private.exists(), "{} is left behind", private.display());
        out
    };
    let quiet = run(&["-q"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet.stderr));
    let no_adapter = text(&quiet.stderr).contains("no GPU adapter found");
    if !no_adapter {
        assert_eq!(text(&quiet.stderr), "", "stderr under -q");
    }
    assert_eq!(text(&quiet.stdout), "", "stdout under -q");

    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.starts_with("Input ")
            && stdout.contains("\nVerdict ")
            && stdout.ends_with("Outputs    out\n"),
        "{stdout}"
    );
    if no_adapter {
        // No Vulkan driver at all: a GPU fault, and auto's one warning names it.
        assert!(stderr.starts_with("warning: "), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    } else {
        // A hardware GPU, or a software adapter (lavapipe here and in CI) passed over: only
        // the summary.
        assert_eq!(stderr, "", "stderr");
    }
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    let device = stdout.lines().find(|l| l.starts_with("Device")).unwrap();
    if device.contains("software renderer") {
        // The Device line does not recommend the slower path.
        assert!(
            device.contains("slower than the CPU")
                && device.contains("to test the GPU kernels, not for speed")
                && !device.contains("pass --device gpu"),
            "{device}"
        );
    }
}

#[test]
fn output_is_optional_and_defaults_to_detbal_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["analyze", "-q"];
    let sample = sample();
    args.push(&sample);
    args.extend(QUICK);
    let out = detbal_in(dir.path(), &args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(dir.path().join("detbal-out/report.json").is_file());
    // The usage line shows -o as optional: `[OPTIONS]`, only the inputs required.
    let help = detbal_in(dir.path(), &["analyze", "--help"], &[]);
    let usage = text(&help.stdout);
    assert!(
        usage.contains("Usage: detbal analyze [OPTIONS] <INPUTS>...")
            && usage.contains("[default: detbal-out]"),
        "{usage}"
    );
}

#[test]
fn help_wraps_to_80_columns_when_not_a_terminal_and_groups_analyze_flags() {
    let dir = tempfile::tempdir().unwrap();
    for columns in ["200", "60"] {
        for args in [
            &["--help"][..],
            &["analyze", "--help"],
            &["simulate", "--help"],
        ] {
            let out = detbal_in(dir.path(), args, &[("COLUMNS", columns)]);
            assert_eq!(out.status.code(), Some(0));
            let help = text(&out.stdout);
            let widest = help.lines().map(|l| l.chars().count()).max().unwrap();
            let limit = columns.parse::<usize>().unwrap().min(80);
            assert!(
                widest <= limit,
                "{args:?} COLUMNS={columns}: {widest} > {limit}\n{help}"
            );
        }
    }
    let help = text(&detbal_in(dir.path(), &["analyze", "--help"], &[]).stdout);
    let headings: Vec<&str> = help
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
        .collect();
    assert_eq!(
        headings,
        [
            "Arguments:",
            "Options:",
            "Input:",
            "Fit:",
            "Verdict and tests:",
            "Resampling:",
            "Output:",
            "Device:"
        ],
        "{help}"
    );
    assert!(help.contains("--no-X"), "{help}");
}

#[test]
fn every_switch_of_analyze_has_a_no_flag_and_the_last_one_wins() {
    use clap::CommandFactory;
    let command = detbal::cli::Cli::command();
    let analyze = command.find_subcommand("analyze").unwrap();
    let long = |a: &clap::Arg| a.get_long().map(str::to_string);
    let switches: Vec<String> = analyze
        .get_arguments()
        .filter(|a| matches!(a.get_action(), clap::ArgAction::SetTrue))
        .filter(|a| !a.get_id().as_str().starts_with("no_"))
        .filter_map(long)
        .collect();
    assert!(switches.len() >= 7, "{switches:?}");
    for switch in &switches {
        let negation = format!("no-{switch}");
        assert!(
            analyze
                .get_arguments()
                .any(|a| a.get_long() == Some(&negation)),
            "--{switch} has no --{negation}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let sample = sample();
    let run = |extra: &[&str]| {
        let mut args = vec!["analyze", sample.as_str(), "-o", "out"];
        args.extend(QUICK);
        args.extend(extra);
        detbal_in(dir.path(), &args, &[])
    };
    let out = run(&["-q", "--no-quiet"]);
    assert!(out.status.success() && text(&out.stdout).contains("Verdict"));
    let out = run(&["--no-quiet", "--quiet", "--holdout", "--no-holdout"]);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        report(&dir.path().join("out"))["settings"]["resampling"]["holdout"],
        false
    );
}

#[test]
fn completions_print_a_script_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_detbal()"),
        ("zsh", "#compdef detbal"),
        ("fish", "complete -c detbal"),
    ] {
        let out = detbal_in(dir.path(), &["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        // Long flags without their dashes: fish writes `-l no-quiet`.
        for word in ["analyze", "compare", "fail-on-violation", "no-quiet"] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
        assert!(out.stderr.is_empty());
    }
    let out = detbal_in(dir.path(), &["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn simulate_refuses_a_name_that_is_not_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let out = detbal_in(
        dir.path(),
        &["simulate", "--rows", "1000", "-o", "x.csv"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: invalid setting: simulate writes a Parquet file")
            && stderr.contains("x.csv")
            && stderr.contains("hint: -o x.parquet"),
        "{stderr}"
    );
    assert!(!dir.path().join("x.csv").exists());
    let out = detbal_in(
        dir.path(),
        &["simulate", "--rows", "1000", "-o", "x.PARQUET"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// Four billion states need about 1.2 TiB: refused before any is built (a billion were killed
/// by the kernel's out-of-memory killer, with no message).
#[test]
fn simulate_refuses_more_states_than_memory_holds() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "simulate",
        "--rows",
        "100",
        "--states",
        "4000000000",
        "-o",
        "x.parquet",
    ];
    let out = detbal_in(dir.path(), &args, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: invalid setting: simulate: states = 4000000000 need about ")
            && stderr.contains(" GiB of memory available"),
        "{stderr}"
    );
    assert!(!dir.path().join("x.parquet").exists());
}

/// A small α is written as the user wrote it, not as 320 digits of zeros (`{}` spells an `f64`
/// out in full).
#[test]
fn a_small_alpha_is_written_short() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "analyze",
        &sample(),
        "--alpha",
        "1e-300",
        "--permutations",
        "0",
        "-o",
        out,
    ];
    let run = detbal(&args, &[]);
    let stdout = text(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(
        stdout.contains("Detailed balance is rejected at α = 1e-300."),
        "{stdout}"
    );
    let sentence = report(dir.path())["verdict"]["sentence"].clone();
    assert!(
        sentence
            .as_str()
            .unwrap()
            .starts_with("Detailed balance is rejected at α = 1e-300 ("),
        "{sentence}"
    );
}

/// One of a thing is singular in the summary: `1 row dropped`, `1 reciprocal pair`.
#[test]
fn the_summary_counts_one_in_the_singular() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tiny.csv");
    std::fs::write(&log, "source,target\na,b\nb,a\na,b\nb,c\nc,a\nx,\n").unwrap();
    let out = dir.path().join("out");
    let args = [
        "analyze",
        log.to_str().unwrap(),
        "--drop-null-states",
        "-o",
        out.to_str().unwrap(),
    ];
    let run = detbal(&args, &[("COLUMNS", "400")]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    for says in [
        // `x` of the dropped row is a state of the log (README, on `--drop-null-states`).
        "5 transitions (0 self), 4 states, 4 edges, 1 reciprocal pair; 1 row dropped (1: null",
        "in 1 component\n",
        "over 1 reciprocal pair;",
    ] {
        assert!(stdout.contains(says), "{says:?} in\n{stdout}");
    }
}

/// `simulate` says what it wrote, one of a thing in the singular.
#[test]
fn simulate_says_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "simulate",
        "--rows",
        "10",
        "--mode",
        "driven",
        "-o",
        "x.parquet",
    ];
    let out = detbal_in(dir.path(), &args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .starts_with("wrote 10 rows in 1 run over 4 states to x.parquet (truth: x.truth.json)"),
        "{stdout}"
    );
}

#[test]
fn too_few_states_for_the_modes_degree_says_how_many_are_needed() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "simulate",
        "--mode",
        "driven",
        "--states",
        "3",
        "--rows",
        "5",
        "-o",
        "x.parquet",
    ];
    let out = detbal_in(dir.path(), &args, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("mean_degree = 10, expected a value in [0, states − 1] = [0, 2]")
            && stderr.contains("--states 11 or more"),
        "{stderr}"
    );
    assert!(!dir.path().join("x.parquet").exists());
}
