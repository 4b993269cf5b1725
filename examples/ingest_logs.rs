//! Logs for the ingest benchmarks (BENCHMARKS.md, "Ingest"), rewritten from a `detbal simulate`
//! log (columns `run`, `source`, `target`, the rows of a run consecutive and chained):
//!
//! - `long-names IN OUT`: the same rows, every state renamed to a long expression (80–110 bytes,
//!   the old name kept at its end, so names stay distinct), written with the parquet crate's
//!   default properties. With a million or more distinct names the column chunks' dictionaries
//!   pass their 1 MiB limit and the writer falls back to plain pages: the high-cardinality case.
//! - `trajectory IN OUT [SEED [FILES [ROW_GROUP]]]`: the same runs as one row per step (`run`,
//!   `step`, `state`; a run of n transitions has n + 1 steps), shuffled with `SEED` (`sorted`:
//!   kept in (run, step) order), in `FILES` files `OUT-0.parquet`, … (default 1: `OUT` itself)
//!   of row groups of `ROW_GROUP` rows (default 1,048,576).
//! - `load [--buffer STEPS] INPUT...`: `detbal::io::load` alone (what `detbal analyze` does
//!   before the fit, states in name order), with its wall time, for whole-process timings and peak memory of the
//!   ingest without a fit; `--buffer` sets the trajectory buffer (`--trajectory-buffer`).
//!
//! `cargo run --release --example ingest_logs -- long-names llm.parquet llm-long.parquet`

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray, UInt64Array};
use arrow::datatypes::UInt64Type;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const USAGE: &str =
    "usage: ingest_logs long-names IN OUT | trajectory IN OUT [SEED|sorted [FILES [ROW_GROUP]]]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1), arg(2)) {
        (Some("long-names"), Some(input), Some(output)) => {
            long_names(input.as_ref(), output.as_ref())
        }
        (Some("trajectory"), Some(input), Some(output)) => {
            let seed = arg(3)
                .filter(|&s| s != "sorted")
                .map(|s| s.parse().expect(USAGE));
            let files = arg(4).map_or(1, |s| s.parse().expect(USAGE));
            let row_group = arg(5).map_or(1 << 20, |s| s.parse().expect(USAGE));
            trajectory(input.as_ref(), output.as_ref(), seed, files, row_group);
        }
        (Some("load"), Some(_), _) => load(&args[1..]),
        _ => panic!("{USAGE}"),
    }
}

/// The batches of `run`, `source`, `target` of a simulated log.
fn batches(input: &Path) -> impl Iterator<Item = RecordBatch> {
    let file = File::open(input).expect("cannot open the input");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("not a Parquet file");
    let mask = parquet::arrow::ProjectionMask::columns(
        builder.parquet_schema(),
        ["run", "source", "target"],
    );
    let reader = builder
        .with_projection(mask)
        .with_batch_size(1 << 16)
        .build();
    reader
        .expect("cannot read the input")
        .map(|b| b.expect("cannot decode the input"))
}

fn writer(path: &Path, batch: &RecordBatch, row_group: usize) -> ArrowWriter<File> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group))
        .build();
    let file = File::create(path).expect("cannot create the output");
    ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("cannot write Parquet")
}

/// A long expression ending in `name`: the words are drawn from a hash of the name.
fn long_name(name: &str) -> String {
    let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(name);
    let digit = |shift: u32| (h >> shift) % 90 + 10;
    let function = ["sin", "cos", "exp", "log", "sqrt", "tanh"][(h % 6) as usize];
    format!(
        "simplify (({a}*x^{b} + {c}*x - {d}) / ({function}({e}*y) + {f})) - integrate({g}*t^2, t, 0, x) for state {name}",
        a = digit(4),
        b = h >> 60,
        c = digit(12),
        d = digit(20),
        e = digit(28),
        f = digit(36),
        g = digit(44),
    )
}

fn long_names(input: &Path, output: &Path) {
    let mut names: HashMap<String, Arc<str>> = HashMap::new();
    let mut rename = |column: &ArrayRef| -> ArrayRef {
        let strings = column.as_string::<i32>();
        Arc::new(StringArray::from_iter_values(strings.iter().map(|s| {
            let s = s.expect("no null states in a simulated log");
            names
                .entry(s.to_owned())
                .or_insert_with(|| long_name(s).into())
                .clone()
        })))
    };
    let mut out: Option<ArrowWriter<File>> = None;
    let mut rows = 0;
    for batch in batches(input) {
        let columns = [
            batch.column(0).clone(),
            rename(batch.column(1)),
            rename(batch.column(2)),
        ];
        let batch = RecordBatch::try_new(batch.schema(), columns.to_vec()).unwrap();
        let w = out.get_or_insert_with(|| writer(output, &batch, 1 << 20));
        w.write(&batch).expect("cannot write Parquet");
        rows += batch.num_rows();
    }
    out.expect("an empty input")
        .close()
        .expect("cannot write Parquet");
    println!(
        "wrote {rows} rows over {} long names to {}",
        names.len(),
        output.display()
    );
}

/// One step: run, step, state (an index into the names).
type Step = (u64, u32, u32);

fn trajectory(input: &Path, output: &Path, seed: Option<u64>, files: usize, row_group: usize) {
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut id = |s: &str| -> u32 {
        *ids.entry(s.to_owned()).or_insert_with(|| {
            names.push(s.to_owned());
            names.len() as u32 - 1
        })
    };
    let mut steps: Vec<Step> = Vec::new();
    let (mut last_run, mut n_runs) = (None, 0);
    for batch in batches(input) {
        let runs = batch.column(0).as_primitive::<UInt64Type>();
        let (sources, targets) = (
            batch.column(1).as_string::<i32>(),
            batch.column(2).as_string::<i32>(),
        );
        for i in 0..batch.num_rows() {
            let run = runs.value(i);
            if last_run != Some(run) {
                steps.push((run, 0, id(sources.value(i))));
                last_run = Some(run);
                n_runs += 1;
            }
            let step = steps.last().expect("pushed above").1 + 1;
            steps.push((run, step, id(targets.value(i))));
        }
    }
    if let Some(seed) = seed {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        for i in (1..steps.len()).rev() {
            steps.swap(i, rng.random_range(0..=i));
        }
    }
    let names = StringArray::from(names);
    let per_file = steps.len().div_ceil(files.max(1));
    for (f, part) in steps.chunks(per_file).enumerate() {
        let path = match files {
            1 => output.to_owned(),
            _ => PathBuf::from(format!(
                "{}-{f}.parquet",
                output.with_extension("").display()
            )),
        };
        let mut out: Option<ArrowWriter<File>> = None;
        for chunk in part.chunks(1 << 16) {
            let state = UInt64Array::from_iter_values(chunk.iter().map(|s| u64::from(s.2)));
            let columns: Vec<(&str, ArrayRef)> = vec![
                (
                    "run",
                    Arc::new(UInt64Array::from_iter_values(chunk.iter().map(|s| s.0))),
                ),
                (
                    "step",
                    Arc::new(Int64Array::from_iter_values(
                        chunk.iter().map(|s| i64::from(s.1)),
                    )),
                ),
                ("state", arrow::compute::take(&names, &state, None).unwrap()),
            ];
            let batch = RecordBatch::try_from_iter(columns).unwrap();
            let w = out.get_or_insert_with(|| writer(&path, &batch, row_group));
            w.write(&batch).expect("cannot write Parquet");
        }
        out.expect("a non-empty part")
            .close()
            .expect("cannot write Parquet");
        println!("wrote {} steps to {}", part.len(), path.display());
    }
    println!(
        "{} steps, {n_runs} runs, {} names",
        steps.len(),
        names.len()
    );
}

fn load(args: &[String]) {
    // As `detbal analyze` loads (outside `--paper`): states in name order.
    let mut opts = detbal::io::LoadOptions {
        state_order: detbal::graph::StateOrder::Name,
        ..Default::default()
    };
    let inputs = match args {
        [flag, steps, inputs @ ..] if flag == "--buffer" => {
            opts.trajectory_buffer_rows = steps.parse().expect(USAGE);
            inputs
        }
        inputs => inputs,
    };
    let inputs: Vec<PathBuf> = inputs.iter().map(PathBuf::from).collect();
    let start = std::time::Instant::now();
    let log = detbal::io::load(&inputs, &opts);
    let seconds = start.elapsed().as_secs_f64();
    let log = log.unwrap_or_else(|e| panic!("{e}"));
    let s = &log.summary;
    println!(
        "{} rows, {} transitions, {} states, {} edges, runs {:?}: {seconds:.3} s ({:.1} M rows/s)",
        s.rows,
        s.transitions,
        log.graph.n_states(),
        log.graph.n_edges(),
        s.runs,
        s.rows as f64 / seconds / 1e6
    );
}
