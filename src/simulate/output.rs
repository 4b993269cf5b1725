//! Runs → batches → Parquet. Batches of whole runs are simulated in parallel, each with its own
//! random stream, and written in order, so memory stays bounded and the bytes do not depend on
//! the thread count.

use super::model::{Kernel, Model};
use super::truth::TruthStats;
use super::{SimParams, Stream, rng};
use crate::error::{Error, Result};
use arrow::array::{Array, ArrayRef, StringArray, UInt32Array, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::RngExt;
use rand_distr::Geometric;
use rayon::prelude::*;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// Rows per batch (a batch ends with the run that reaches it). Fixed: it shapes the random streams.
const BATCH_ROWS: u64 = 1 << 17;
/// Batches simulated at once before they are written.
const WINDOW: usize = 8;

/// Whole runs of one group, simulated with stream `Batch(group, index)`.
struct Plan {
    group: u32,
    index: u64,
    first_run: u64,
    lens: Vec<u64>,
}

/// Splits each group's rows into runs of geometric length (mean `run_len`) and the runs into
/// batches; the last run of a group is cut to fit its rows exactly.
struct Planner<'a> {
    params: &'a SimParams,
    group: u32,
    rows_left: u64,
    rng: rand_xoshiro::Xoshiro256PlusPlus,
    geometric: Geometric,
    next_run: u64,
    index: u64,
}

impl<'a> Planner<'a> {
    fn new(params: &'a SimParams) -> Planner<'a> {
        Planner {
            params,
            group: 0,
            rows_left: group_rows(params, 0),
            rng: rng(params.seed, Stream::Layout(0)),
            geometric: Geometric::new(1.0 / params.run_len).expect("run_len ≥ 1 is validated"),
            next_run: 0,
            index: 0,
        }
    }
}

/// Rows of group `g`: an even split, the remainder going to the first groups.
fn group_rows(params: &SimParams, g: u32) -> u64 {
    let groups = u64::from(params.groups);
    params.rows / groups + u64::from(u64::from(g) < params.rows % groups)
}

impl Iterator for Planner<'_> {
    type Item = Plan;

    fn next(&mut self) -> Option<Plan> {
        while self.rows_left == 0 {
            if self.group + 1 == self.params.groups {
                return None;
            }
            self.group += 1;
            self.rows_left = group_rows(self.params, self.group);
            self.rng = rng(self.params.seed, Stream::Layout(self.group));
            self.index = 0;
        }
        let mut plan = Plan {
            group: self.group,
            index: self.index,
            first_run: self.next_run,
            lens: Vec::new(),
        };
        let mut rows = 0;
        while rows < BATCH_ROWS && self.rows_left > 0 {
            let len = (1 + self.rng.sample(self.geometric)).min(self.rows_left);
            plan.lens.push(len);
            rows += len;
            self.rows_left -= len;
        }
        self.next_run += plan.lens.len() as u64;
        self.index += 1;
        Some(plan)
    }
}

/// One simulated batch: the record batch and what the statistics need.
struct Chunk {
    batch: RecordBatch,
    sources: Vec<u32>,
    ends: Vec<u32>,
    self_rows: u64,
}

/// State and group names, and the output schema.
struct Names {
    states: StringArray,
    groups: Option<Vec<String>>,
    schema: Arc<Schema>,
}

impl Names {
    fn new(params: &SimParams) -> Names {
        let states = StringArray::from_iter_values((0..params.states).map(|i| format!("s{i}")));
        let groups =
            (params.groups > 1).then(|| (0..params.groups).map(|g| format!("g{g}")).collect());
        let mut fields = vec![
            Field::new("run", DataType::UInt64, false),
            Field::new("source", DataType::Utf8, false),
            Field::new("target", DataType::Utf8, false),
        ];
        if groups.is_some() {
            fields.push(Field::new("group", DataType::Utf8, false));
        }
        Names {
            states,
            groups,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

fn simulate_batch(
    plan: &Plan,
    kernel: &Kernel,
    names: &Names,
    seed: u64,
) -> Result<Chunk, ArrowError> {
    let mut rng = rng(seed, Stream::Batch(plan.group, plan.index));
    let rows = plan.lens.iter().sum::<u64>() as usize;
    let (mut runs, mut sources, mut targets) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    let mut ends = Vec::with_capacity(plan.lens.len());
    let n = names.states.len() as u32;
    for (run, &len) in (plan.first_run..).zip(&plan.lens) {
        let mut f = rng.random_range(0..n);
        for _ in 0..len {
            let g = kernel.step(f, &mut rng);
            runs.push(run);
            sources.push(f);
            targets.push(g);
            f = g;
        }
        ends.push(f);
    }
    let self_rows = sources.iter().zip(&targets).filter(|(f, g)| f == g).count() as u64;
    let name = |ids: &[u32]| take(&names.states, &UInt32Array::from(ids.to_vec()), None);
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(runs)),
        name(&sources)?,
        name(&targets)?,
    ];
    if let Some(groups) = &names.groups {
        let group = groups[plan.group as usize].as_str();
        columns.push(Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(group, rows),
        )));
    }
    let batch = RecordBatch::try_new(names.schema.clone(), columns)?;
    Ok(Chunk {
        batch,
        sources,
        ends,
        self_rows,
    })
}

/// Visit counts: a state is visited once per row it is the source of, plus once per run it ends.
struct Tally {
    as_source: Vec<u64>,
    as_end: Vec<u64>,
    rows: u64,
    runs: u64,
    self_rows: u64,
}

impl Tally {
    fn add(&mut self, chunk: &Chunk) {
        chunk
            .sources
            .iter()
            .for_each(|&f| self.as_source[f as usize] += 1);
        chunk
            .ends
            .iter()
            .for_each(|&f| self.as_end[f as usize] += 1);
        self.rows += chunk.sources.len() as u64;
        self.runs += chunk.ends.len() as u64;
        self.self_rows += chunk.self_rows;
    }

    fn finish(self) -> TruthStats {
        let visits = || self.as_source.iter().zip(&self.as_end).map(|(s, e)| s + e);
        let states_seen = visits().filter(|&v| v > 0).count() as u64;
        let states_seen_once = visits().filter(|&v| v == 1).count() as u64;
        TruthStats {
            rows: self.rows,
            runs: self.runs,
            self_rows: self.self_rows,
            states_seen,
            states_seen_once,
            frac_seen_once_of_seen: states_seen_once as f64 / states_seen.max(1) as f64,
            states_as_source: self.as_source.iter().filter(|&&s| s > 0).count() as u64,
            max_state_visits: visits().max().unwrap_or(0),
        }
    }
}

/// Simulates every run and writes the log to `path`; returns the statistics of what was written.
pub(super) fn write_log(params: &SimParams, model: &Model, path: &Path) -> Result<TruthStats> {
    let write_err = |e: &dyn std::fmt::Display| Error::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let names = Names::new(params);
    let file = File::create(path).map_err(|e| write_err(&e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer =
        ArrowWriter::try_new(file, names.schema.clone(), Some(props)).map_err(|e| write_err(&e))?;
    let mut tally = Tally {
        as_source: vec![0; model.n],
        as_end: vec![0; model.n],
        rows: 0,
        runs: 0,
        self_rows: 0,
    };
    let mut planner = Planner::new(params);
    loop {
        let plans: Vec<Plan> = planner.by_ref().take(WINDOW).collect();
        if plans.is_empty() {
            break;
        }
        let chunks: Vec<Chunk> = plans
            .par_iter()
            .map(|plan| simulate_batch(plan, model.kernel(plan.group), &names, params.seed))
            .collect::<Result<_, _>>()
            .map_err(|e| write_err(&e))?;
        for chunk in &chunks {
            writer.write(&chunk.batch).map_err(|e| write_err(&e))?;
            tally.add(chunk);
        }
    }
    writer.close().map_err(|e| write_err(&e))?;
    Ok(tally.finish())
}
