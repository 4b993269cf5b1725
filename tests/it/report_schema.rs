//! The JSON that detbal writes, against its JSON Schemas (`schema/report.schema.json`,
//! `schema/compare.schema.json`, draft 2020-12): the schemas are valid and close every object;
//! `analyze` in each of its modes writes a report.json (and group reports) that the schema
//! accepts, with the mode's own section filled; `compare --json` matches its schema; edits that
//! break the contract are rejected. The key trees of all those reports and of the comparison are
//! snapshots (`tests/it/snapshots/report_keys.snap`, `compare_keys.snap`): a change of the keys
//! fails here until it is reviewed, and `SCHEMA_VERSION` (src/report/mod.rs) goes up by one with
//! it (README, Output). Every other test that reads a report.json checks it too
//! (`support::report`).

use crate::support::{Schema, assert_valid, detbal, fixture, key_tree, report, sample, text};
use detbal::analyze::AnalyzeSettings;
use detbal::backend::DeviceChoice;
use detbal::pipeline::{analyze, analyze_stream};
use detbal::report::{SCHEMA_VERSION, report_json};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[test]
fn the_schemas_are_valid_and_close_every_object() {
    for schema in Schema::ALL {
        let document = schema.document();
        if let Err(e) = jsonschema::draft202012::meta::validate(&document) {
            panic!("{schema:?} schema is not a valid draft 2020-12 schema: {e}");
        }
        let mut open = Vec::new();
        open_objects(&document, "", &mut open);
        assert!(open.is_empty(), "{schema:?} schema:\n{}", open.join("\n"));
    }
    let version = &Schema::Report.document()["properties"]["schema_version"]["const"];
    assert_eq!(
        *version, SCHEMA_VERSION,
        "schema_version of the schema and of the code"
    );
}

/// Keys that a report may lack, by the schema path of their object: `device.fault` (only after
/// a GPU fault), `group` (only in a group's own report) and the verdict's `quasi_symmetry`
/// (required at the top level, absent from the verdicts of the `groups` section).
const OPTIONAL: [(&str, &str); 3] = [
    ("/properties/device", "fault"),
    ("", "group"),
    ("/$defs/verdict", "quasi_symmetry"),
];

/// Object schemas below `schema` (at `path`) that admit keys they do not name or leave a named
/// key optional (but those of [`OPTIONAL`]).
fn open_objects(schema: &Value, path: &str, found: &mut Vec<String>) {
    match schema {
        Value::Object(fields) => {
            let is_object = match &fields.get("type") {
                Some(Value::String(t)) => t == "object",
                Some(Value::Array(types)) => types.iter().any(|t| t == "object"),
                _ => false,
            };
            if let (true, Some(Value::Object(properties))) = (is_object, fields.get("properties")) {
                if fields.get("additionalProperties") != Some(&Value::Bool(false)) {
                    found.push(format!("{path}: additionalProperties is not false"));
                }
                let required = fields.get("required").and_then(Value::as_array);
                for key in properties.keys() {
                    let listed = required.is_some_and(|r| r.iter().any(|k| k == key));
                    if !listed && !OPTIONAL.contains(&(path, key)) {
                        found.push(format!("{path}: `{key}` is not required"));
                    }
                }
            }
            for (key, value) in fields {
                open_objects(value, &format!("{path}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                open_objects(item, &format!("{path}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// One way of running `analyze`, and a check that the report has what the mode adds (so that
/// the schema's part for it was checked).
struct Mode {
    name: &'static str,
    args: Vec<String>,
    env: &'static [(&'static str, &'static str)],
    fills: fn(&Value) -> bool,
}

/// Every mode of `analyze` whose report.json differs in shape, on inputs written into `dir`.
fn modes(dir: &Path) -> Vec<Mode> {
    let sample = sample().display().to_string();
    let two_states = write(
        dir,
        "two.csv",
        "source,target,count\na,b,20\nb,a,15\nb,,3\n",
    );
    let parity = fixture("paper_parity/parity_driven.json");
    let mode = |name, args: &[&str], env, fills| Mode {
        name,
        args: args.iter().map(|a| a.to_string()).collect(),
        env,
        fills,
    };
    let cpu = ["--device", "cpu", "--permutations", "0"];
    vec![
        mode(
            "the bundled sample (by default a ridge chosen from the data, --l2 auto)",
            &[&sample, "--device", "cpu"],
            &[],
            |r| {
                let choice = &r["fit"]["l2_choice"];
                r["permutation"]["tests"][0].is_object()
                    && r["settings"]["fit"]["l2_auto"] == true
                    && choice["l2"] == r["fit"]["l2"]
                    && choice["candidates"].as_array().unwrap().len() >= 3
            },
        ),
        mode(
            "--paper",
            &[&[parity.to_str().unwrap(), "--paper"][..], &cpu].concat(),
            &[],
            |r| r["settings"]["paper"] == true,
        ),
        mode(
            "--group-by",
            &[
                &[grouped_log(dir).to_str().unwrap(), "--group-by", "group"][..],
                &cpu,
            ]
            .concat(),
            &[],
            |r| {
                let groups = r["groups"]["groups"].as_array().unwrap();
                groups.iter().any(|g| g["verdict"].is_object())
                    && groups.iter().any(|g| g["not_analysed"].is_string())
                    && r["groups"]["correlations"][0]["pearson"].is_number()
            },
        ),
        mode(
            "another estimator with a fixed ridge (--l2)",
            &[
                &[sample.as_str(), "--estimator", "counts", "--l2", "0.5"][..],
                &cpu,
            ]
            .concat(),
            &[],
            |r| r["settings"]["fit"]["l2"] == 0.5 && r["fit"]["l2_choice"].is_null(),
        ),
        mode(
            "--device gpu --verify",
            &[&sample, "--device", "gpu", "--verify"],
            &[],
            |r| r["device"]["backend"] == "gpu" && r["verification"][0].is_object(),
        ),
        mode(
            "a GPU fault under --device auto",
            &[&sample, "--permutations", "0"],
            // This build has no OpenGL backend: no adapter at all.
            &[("WGPU_BACKEND", "gl")],
            |r| r["device"]["fault"].is_string(),
        ),
        mode(
            "no independent cycle, a dropped row",
            &[
                &[two_states.to_str().unwrap(), "--drop-null-states"][..],
                &cpu,
            ]
            .concat(),
            &[],
            |r| r["verdict"]["rejected"].is_null() && r["input"]["dropped_reasons"][0].is_object(),
        ),
        mode(
            "--bootstrap",
            &[
                &sample,
                "--device",
                "cpu",
                "--permutations",
                "50",
                "--bootstrap",
                "5",
            ],
            &[],
            |r| r["permutation"]["bootstrap"]["potential"][0].is_object(),
        ),
        mode(
            "--holdout",
            &[&[sample.as_str(), "--holdout"][..], &cpu].concat(),
            &[],
            |r| r["permutation"]["holdout"]["slope_ci"][1].is_number(),
        ),
        mode(
            "--max-cycle-len 4",
            &[&[sample.as_str(), "--max-cycle-len", "4"][..], &cpu].concat(),
            &[],
            |r| r["cycles"]["chordless_4_cycles"]["listed"][0].is_object(),
        ),
        mode(
            "another estimator, uniform exposure, asymptotic verdict",
            &[
                &[
                    sample.as_str(),
                    "--estimator",
                    "counts",
                    "--exposure",
                    "uniform",
                ][..],
                &["--attempts", "400000", "--verdict-resamples", "0"],
                &cpu,
            ]
            .concat(),
            &[],
            |r| {
                r["settings"]["fit"]["attempts"] == 400000
                    && r["verdict"]["calibration"].is_string()
            },
        ),
    ]
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// Two groups over one ring of 8 states with chords (counts from a planted potential, scaled
/// differently), and a group with self-transitions only, which cannot be analysed.
fn grouped_log(dir: &Path) -> PathBuf {
    let mut csv = String::from("source,target,count,group\n");
    for (group, scale) in [("a", 1.0), ("b", 0.5)] {
        let v = |i: usize| scale * (i as f64).sin();
        for f in 0..8 {
            for g in [(f + 1) % 8, (f + 3) % 8] {
                for (x, y) in [(f, g), (g, f)] {
                    let n = (40.0 * ((v(x) - v(y)) / 2.0).exp()).round();
                    writeln!(csv, "s{x},s{y},{n},{group}").unwrap();
                }
            }
        }
    }
    csv.push_str("s0,s0,5,idle\n");
    write(dir, "grouped.csv", &csv)
}

/// Runs `mode` into `out`; `false` after a SKIP line when it needs a GPU and there is none (a
/// failure when `REQUIRE_GPU=1`).
fn run(mode: &Mode, out: &Path) -> bool {
    let mut args = vec!["analyze", "-q", "-o", out.to_str().unwrap()];
    args.extend(mode.args.iter().map(String::as_str));
    let run = detbal(&args, mode.env);
    let stderr = text(&run.stderr);
    if stderr.contains("no GPU adapter") && !run.status.success() {
        let required = std::env::var("REQUIRE_GPU").as_deref() == Ok("1");
        assert!(!required, "REQUIRE_GPU=1 but {}: {stderr}", mode.name);
        eprintln!("SKIP report_schema, {}: {stderr}", mode.name);
        return false;
    }
    assert_eq!(run.status.code(), Some(0), "{}: {stderr}", mode.name);
    true
}

/// Every mode's report.json and each group's match the schema and fill the mode's section;
/// `compare --json` of two of them matches its schema; the key trees are the snapshots'.
#[test]
fn every_mode_writes_a_report_the_schema_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    let mut skipped = false;
    for (i, mode) in modes(dir.path()).iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        if !run(mode, &out) {
            skipped = true;
            continue;
        }
        let r = report(&out);
        assert!(
            (mode.fills)(&r),
            "{}: the mode's section is missing",
            mode.name
        );
        for group in r["groups"]["groups"].as_array().into_iter().flatten() {
            if group["verdict"].is_object() {
                reports.push(report(&out.join(group["directory"].as_str().unwrap())));
            }
        }
        reports.push(r);
    }
    // The sample by default and by another estimator (other attractors).
    let (old, new) = (dir.path().join("out0"), dir.path().join("out3"));
    let compare = detbal(
        &[
            "compare",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(compare.status.code(), Some(0), "{}", text(&compare.stderr));
    let comparison: Value = serde_json::from_slice(&compare.stdout).unwrap();
    assert_valid(Schema::Compare, &comparison, "compare --json");
    assert!(comparison["top_movers"][0].is_object());

    if skipped {
        eprintln!("SKIP the key-tree snapshots: a mode did not run");
        return;
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    let report_keys = format!("schema_version {SCHEMA_VERSION}\n\n{}", key_tree(&reports));
    let compare_keys = key_tree([&comparison]);
    settings.bind(|| {
        insta::assert_snapshot!("report_keys", report_keys);
        insta::assert_snapshot!("compare_keys", compare_keys);
    });
}

/// The schema rejects a report edited against the contract (at the path of the edit) and
/// accepts what detbal really writes at the edges: `-0.0` (the empty sum of Rust's floats), a
/// correlation rounded past 1 (one pair, `bad_input::two_states_say_zero_degrees_of_freedom`) and
/// a non-finite deviance written as null (`bad_input::csv_counts_take_the_whole_u64_range`).
#[test]
fn the_report_schema_rejects_what_the_contract_rules_out() {
    let settings = AnalyzeSettings {
        device: DeviceChoice::Cpu,
        ..AnalyzeSettings::default()
    };
    let valid = report_json(&analyze(&[sample()], &settings).unwrap());
    assert_valid(Schema::Report, &valid, "report_json of the sample");
    let edits: [(&str, fn(&mut Value), &str); 9] = [
        ("an unknown key", |r| r["extra"] = json!(1), "/"),
        (
            "a missing key",
            |r| remove(&mut r["verdict"], "sentence"),
            "/verdict",
        ),
        (
            "a p-value above 1",
            |r| r["pairs"]["p_value"] = json!(1.5),
            "/pairs/p_value",
        ),
        (
            "a negative count",
            |r| r["graph"]["states"] = json!(-1),
            "/graph/states",
        ),
        (
            "a fractional count",
            |r| r["graph"]["edges"] = json!(2.5),
            "/graph/edges",
        ),
        (
            "a correlation above 1",
            |r| r["pairs"]["pearson_r"] = json!(1.000001),
            "/pairs/pearson_r",
        ),
        (
            "an unknown estimator",
            |r| r["fit"]["estimator"] = json!("median"),
            "/fit/estimator",
        ),
        (
            "text for a number",
            |r| r["fit"]["action"] = json!("0.37"),
            "/fit/action",
        ),
        (
            "another schema_version",
            |r| r["schema_version"] = json!(1),
            "/schema_version",
        ),
    ];
    for (what, edit, at) in edits {
        let mut r = valid.clone();
        edit(&mut r);
        let errors = Schema::Report.errors(&r);
        assert!(
            errors.iter().any(|e| e.starts_with(&format!("{at}: "))),
            "{what}: expected an error at {at}, got {errors:#?}"
        );
    }
    let edges: [(&str, fn(&mut Value)); 3] = [
        ("a chi2 of -0.0", |r| r["pairs"]["chi2"] = json!(-0.0)),
        ("a correlation of 1 + 2⁻⁵²", |r| {
            r["pairs"]["correlation_origin"] = json!(1.0000000000000002)
        }),
        ("a null deviance", |r| {
            r["verdict"]["quasi_symmetry"]["deviance"] = Value::Null
        }),
    ];
    for (what, edit) in edges {
        let mut r = valid.clone();
        edit(&mut r);
        assert_valid(Schema::Report, &r, what);
    }
}

/// A table in memory (the Python package's `detbal.analyze(frame)`) gives a report the schema
/// accepts: the table's name is its one input, read from no file, in format `arrow/…`, without
/// a content hash.
#[test]
fn a_table_in_memory_gives_a_report_the_schema_accepts() {
    let settings = AnalyzeSettings {
        device: DeviceChoice::Cpu,
        ..AnalyzeSettings::default()
    };
    let file = std::fs::File::open(sample()).unwrap();
    let batches = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let run = analyze_stream(batches.build().unwrap(), "<table>", &settings).unwrap();
    let r = report_json(&run);
    assert_valid(Schema::Report, &r, "report_json of a table in memory");
    let input = &r["input"];
    assert_eq!(input["paths"], json!(["<table>"]));
    assert_eq!((&input["files"], &input["hash"]), (&json!(0), &json!("")));
    assert_eq!(input["format"], "arrow/transitions");
    assert_eq!(input["rows"], 200_000);
}

fn remove(object: &mut Value, key: &str) {
    object.as_object_mut().unwrap().remove(key);
}
