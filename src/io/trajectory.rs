//! Trajectory logs: one row per agent step (`run`, `step`, `state`) instead of one per
//! transition. Within each run, rows ordered by `step` give one transition per consecutive pair
//! `f → g`, a self-transition when `f = g`; a run may not hold one step twice. A step whose state
//! is null (kept with `--drop-null-states`) is a gap: the run breaks there, and no transition is
//! made into it, out of it, or across it (`a, null, b` gives no `a → b`). The row index of a
//! pair (which orders states, see [`crate::graph::GraphBuilder`]) is that of its later step.
//!
//! Memory stays bounded by the states, the edges and a buffer, whatever the number of rows:
//! - **In order**: while the rows come sorted by (run, step) (runs in increasing order of their
//!   label, integers by value, texts by bytes), each pair is added as it is read, and only the
//!   last row is kept.
//! - **Otherwise** the steps are buffered, up to [`LoadOptions::trajectory_buffer_rows`]
//!   (`super::LoadOptions`); a full buffer is spilled to temporary files partitioned by run
//!   ([`super::spill`]). At the end each partition (or the buffer alone, when nothing was
//!   spilled) is sorted by (run, step) and its pairs added. A partition of more steps than the
//!   buffer is split again, by another hash, up to [`MAX_DEPTH`] times (a single run of more
//!   steps than that is sorted whole).
//! - A dataset that leaves the (run, step) order after some of its runs were added (a row of
//!   such a run, or of a smaller one, comes later) is read again from the start with every step
//!   buffered ([`Trajectory::add`] says so); rows read in order until then are the only work
//!   lost.
//!
//! Either way the graph is the same, count for count, as sorting all the rows at once would give.

use super::spill::{Partitions, Reader, RunKey, Spilled};
use super::table::NULL;
use crate::error::{Error, Result};
use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Partitions a spill is split into.
const PARTITIONS: usize = 64;
/// Times a partition larger than the buffer may be split again.
const MAX_DEPTH: u64 = 3;

/// The steps of every run read so far, and where each file's rows start (for messages).
pub(super) struct Trajectory {
    mode: Mode,
    /// Steps buffered at most before a spill.
    limit: usize,
    /// Runs whose rows were added in order.
    streamed_runs: u64,
    files: Vec<Segment>,
}

enum Mode {
    /// Rows so far sorted by (run, step): the last one, and whether its run has more rows
    /// (then its pairs were added, and it cannot be buffered any more).
    InOrder {
        last: Option<Spilled>,
        last_run_added: bool,
        /// The run before the last row's, if any: every run up to it was added.
        previous: Option<RunKey>,
    },
    Buffered(Buffer),
}

/// Steps buffered in memory, and the partitions of those spilled.
struct Buffer {
    steps: Vec<Spilled>,
    partitions: Option<Partitions>,
    /// Every run up to this one was added in order: a later step of one of them cannot be
    /// placed any more.
    added_up_to: Option<RunKey>,
}

/// The rows of one input file: the first's global index, and the first row of each row group
/// (Parquet; `None` for CSV, whose rows are named by line).
struct Segment {
    path: PathBuf,
    first_row: u64,
    row_groups: Option<Arc<Vec<u64>>>,
}

/// What [`Trajectory::add`] found.
pub(super) enum Added {
    /// The pairs added: `(source, target, 1, row)` and the group of each.
    Pairs(Vec<(u32, u32, u64, u64)>, Vec<u32>),
    /// The rows left the (run, step) order after a run they may belong to was added: the
    /// dataset must be read again, with `in_order` off.
    ReadAgain,
}

impl Trajectory {
    /// An empty trajectory; `in_order`: add the pairs of rows sorted by (run, step) as they come.
    pub(super) fn new(limit: usize, in_order: bool) -> Self {
        let mode = match in_order {
            true => Mode::InOrder {
                last: None,
                last_run_added: false,
                previous: None,
            },
            false => Mode::Buffered(Buffer::new(None)),
        };
        Trajectory {
            mode,
            limit: limit.max(1),
            streamed_runs: 0,
            files: Vec::new(),
        }
    }

    /// Notes that the rows of `path` start at global row `first_row`; `row_groups` are the
    /// first rows of its row groups (Parquet).
    pub(super) fn begin_file(
        &mut self,
        path: &Path,
        first_row: u64,
        row_groups: Option<Arc<Vec<u64>>>,
    ) {
        self.files.push(Segment {
            path: path.to_owned(),
            first_row,
            row_groups,
        });
    }

    /// Adds the steps of a batch, in row order; the pairs found in order are returned for the
    /// caller to add to the graph (and to groups).
    pub(super) fn add(&mut self, steps: Vec<Spilled>) -> Result<Added> {
        let (mut pairs, mut groups) = (Vec::new(), Vec::new());
        let mut steps = steps.into_iter();
        while let Mode::InOrder {
            last,
            last_run_added,
            previous,
        } = &mut self.mode
        {
            let Some(step) = steps.next() else {
                break;
            };
            let Some(prior) = last.take() else {
                *last = Some(step);
                continue;
            };
            match (step.run.cmp(&prior.run), step.step.cmp(&prior.step)) {
                (std::cmp::Ordering::Equal, std::cmp::Ordering::Greater) => {
                    if prior.state != NULL && step.state != NULL {
                        pairs.push((prior.state, step.state, 1, step.row));
                        groups.push(step.group);
                    }
                    *last_run_added = true;
                    *last = Some(step);
                }
                (std::cmp::Ordering::Equal, std::cmp::Ordering::Equal) => {
                    return Err(self.duplicate(&prior, &step));
                }
                (std::cmp::Ordering::Greater, _) => {
                    self.streamed_runs += 1;
                    *previous = Some(prior.run);
                    *last_run_added = false;
                    *last = Some(step);
                }
                (std::cmp::Ordering::Equal | std::cmp::Ordering::Less, _) => {
                    // Out of order: buffer from here on, the last row too unless its run was
                    // already added (as every run before it was).
                    let (added_up_to, held) = match last_run_added {
                        true => (Some(prior.run.clone()), None),
                        false => (previous.take(), Some(prior)),
                    };
                    if *last_run_added {
                        self.streamed_runs += 1;
                    }
                    let mut buffer = Buffer::new(added_up_to);
                    buffer.steps.extend(held);
                    self.mode = Mode::Buffered(buffer);
                    if !self.buffer(step)? {
                        return Ok(Added::ReadAgain);
                    }
                }
            }
        }
        for step in steps {
            if !self.buffer(step)? {
                return Ok(Added::ReadAgain);
            }
        }
        Ok(Added::Pairs(pairs, groups))
    }

    /// Buffers `step` (spilling a full buffer); false when its run may have been added in order.
    fn buffer(&mut self, step: Spilled) -> Result<bool> {
        let Mode::Buffered(buffer) = &mut self.mode else {
            unreachable!("buffer is called in buffered mode")
        };
        if buffer
            .added_up_to
            .as_ref()
            .is_some_and(|up_to| step.run <= *up_to)
        {
            return Ok(false);
        }
        buffer.steps.push(step);
        if buffer.steps.len() >= self.limit {
            let rows = buffer.steps.len();
            buffer.spill().map_err(|e| self.spill_error(&e, rows))?;
        }
        Ok(true)
    }

    /// Adds the pairs of every buffered or spilled step to `graph`, through `add` (which also
    /// adds them to the groups); returns the number of runs.
    pub(super) fn finish(
        mut self,
        mut add: impl FnMut(&[(u32, u32, u64, u64)], &[u32]) -> Result<()>,
    ) -> Result<u64> {
        let mode = std::mem::replace(&mut self.mode, Mode::Buffered(Buffer::new(None)));
        match mode {
            Mode::InOrder { last, .. } => Ok(self.streamed_runs + u64::from(last.is_some())),
            Mode::Buffered(Buffer {
                mut steps,
                partitions: None,
                ..
            }) => Ok(self.streamed_runs + self.add_sorted(&mut steps, &mut add)?),
            Mode::Buffered(Buffer {
                steps,
                partitions: Some(mut partitions),
                ..
            }) => {
                let rows = steps.len();
                let io = |e: std::io::Error| self.spill_error(&e, rows);
                steps
                    .iter()
                    .try_for_each(|s| partitions.write(s))
                    .map_err(io)?;
                let readers = partitions.finish().map_err(io)?;
                let mut runs = self.streamed_runs;
                for reader in readers {
                    runs += self.add_partition(reader, 1, &mut add)?;
                }
                Ok(runs)
            }
        }
    }

    /// Sorts and adds one partition, or splits it again when it holds more steps than the
    /// buffer; returns its number of runs.
    fn add_partition(
        &self,
        mut reader: Reader,
        depth: u64,
        add: &mut impl FnMut(&[(u32, u32, u64, u64)], &[u32]) -> Result<()>,
    ) -> Result<u64> {
        let io = |e: std::io::Error| self.spill_error(&e, 0);
        if reader.steps as usize > self.limit && depth <= MAX_DEPTH {
            let mut split = Partitions::create(PARTITIONS, depth).map_err(io)?;
            while reader.steps > 0 {
                split.write(&reader.next_step().map_err(io)?).map_err(io)?;
            }
            let mut runs = 0;
            for part in split.finish().map_err(io)? {
                runs += self.add_partition(part, depth + 1, add)?;
            }
            return Ok(runs);
        }
        let mut steps = Vec::with_capacity(reader.steps as usize);
        while reader.steps > 0 {
            steps.push(reader.next_step().map_err(io)?);
        }
        self.add_sorted(&mut steps, add)
    }

    /// Sorts `steps` (whole runs) by (run, step) and adds their pairs; returns their number of
    /// runs.
    fn add_sorted(
        &self,
        steps: &mut [Spilled],
        add: &mut impl FnMut(&[(u32, u32, u64, u64)], &[u32]) -> Result<()>,
    ) -> Result<u64> {
        // Runs numbered in order of first sight, so that the sort compares integers.
        let mut ids: FxHashMap<&RunKey, u32> = FxHashMap::default();
        let mut order: Vec<(u32, i64, usize)> = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let next = ids.len() as u32;
            order.push((*ids.entry(&step.run).or_insert(next), step.step, i));
        }
        order.sort_unstable();
        let (mut pairs, mut groups) = (Vec::new(), Vec::new());
        for w in order.windows(2) {
            let ((run, step, a), (next_run, next_step, b)) = (w[0], w[1]);
            if run != next_run {
                continue;
            }
            let (a, b) = (&steps[a], &steps[b]);
            if step == next_step {
                let (first, second) = if a.row < b.row { (a, b) } else { (b, a) };
                return Err(self.duplicate(first, second));
            }
            if a.state != NULL && b.state != NULL {
                pairs.push((a.state, b.state, 1, b.row));
                groups.push(b.group);
            }
        }
        add(&pairs, &groups)?;
        Ok(ids.len() as u64)
    }

    /// The error for two rows of one run with the same step.
    fn duplicate(&self, first: &Spilled, second: &Spilled) -> Error {
        let (path, at) = self.locate(second.row);
        let (first_path, first_at) = self.locate(first.row);
        let first_at = match first_path == path {
            true => first_at,
            false => format!("{first_at} of {}", first_path.display()),
        };
        Error::bad_input(
            path,
            format!(
                "run {} has step {} twice: here and at {first_at}",
                second.run, second.step
            ),
        )
        .at(format!("{at}, column `step`"))
        .hint("each (run, step) must name one step of one run")
    }

    /// The file of global row `row` and where the row is in it.
    fn locate(&self, row: u64) -> (&Path, String) {
        let at = self
            .files
            .partition_point(|f| f.first_row <= row)
            .saturating_sub(1);
        let file = &self.files[at];
        let in_file = row - file.first_row;
        let place = match &file.row_groups {
            Some(starts) => {
                let group = starts.partition_point(|&s| s <= in_file).saturating_sub(1);
                format!("row group {group}, row {in_file}")
            }
            None => format!("line {}", super::csv::line_of(&file.path, in_file)),
        };
        (&file.path, place)
    }

    /// The error for a failed write or read of the spill files.
    fn spill_error(&self, e: &std::io::Error, rows: usize) -> Error {
        let file = self.files.last().map(|f| f.path.display().to_string());
        let reading = file.map_or(String::new(), |f| format!(" (reading {f})"));
        let what = match rows {
            0 => "the trajectory's spilled steps".to_owned(),
            n => format!("{n} trajectory steps"),
        };
        Error::Write {
            path: std::env::temp_dir(),
            message: format!(
                "cannot spill {what} to a temporary file{reading}: {e}; set TMPDIR to a \
                 directory with room, or read fewer rows"
            ),
        }
    }
}

impl Buffer {
    fn new(added_up_to: Option<RunKey>) -> Self {
        Buffer {
            steps: Vec::new(),
            partitions: None,
            added_up_to,
        }
    }

    /// Writes the buffered steps to their partitions (created on the first spill).
    fn spill(&mut self) -> std::io::Result<()> {
        let partitions = match &mut self.partitions {
            Some(p) => p,
            None => self.partitions.insert(Partitions::create(PARTITIONS, 0)?),
        };
        for step in self.steps.drain(..) {
            partitions.write(&step)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(run: i128, step: i64, state: u32, row: u64) -> Spilled {
        Spilled {
            run: RunKey::Int(run),
            step,
            state,
            row,
            group: NULL,
        }
    }

    /// The pairs of `steps` read as one batch, with a buffer of `limit` steps.
    fn pairs(steps: &[Spilled], limit: usize, in_order: bool) -> Result<Vec<(u32, u32, u64)>> {
        let mut t = Trajectory::new(limit, in_order);
        t.begin_file(Path::new("t.parquet"), 0, Some(Arc::new(vec![0])));
        let mut all = match t.add(steps.to_vec())? {
            Added::Pairs(p, _) => p,
            Added::ReadAgain => return pairs(steps, limit, false),
        };
        t.finish(|p, _| {
            all.extend_from_slice(p);
            Ok(())
        })?;
        let mut all: Vec<_> = all.into_iter().map(|(s, t, _, row)| (s, t, row)).collect();
        all.sort_unstable();
        Ok(all)
    }

    #[test]
    fn pairs_follow_steps_within_runs_in_every_mode() {
        // Run 0: steps 2, 0, 1 → states 0, 1, 2 in step order (rows 2, 4, 0); run 1: 2 then 2.
        let steps = [
            step(0, 2, 2, 0),
            step(1, 5, 2, 1),
            step(0, 0, 0, 2),
            step(1, 6, 2, 3),
            step(0, 1, 1, 4),
        ];
        // A pair takes the row of its later step: 0→1 at row 4, 1→2 at row 0, 2→2 at row 3.
        let expected = vec![(0, 1, 4), (1, 2, 0), (2, 2, 3)];
        for (limit, in_order) in [(100, true), (100, false), (1, false), (2, true)] {
            assert_eq!(pairs(&steps, limit, in_order).unwrap(), expected, "{limit}");
        }
        let mut sorted = steps.to_vec();
        sorted.sort_by_key(|s| (s.run.clone(), s.step));
        assert_eq!(pairs(&sorted, 1, true).unwrap(), expected);
    }

    #[test]
    fn a_null_state_breaks_its_run() {
        // Run 0: a, null, b → nothing; run 1: b, a → b → a.
        let steps = [
            step(0, 0, 0, 0),
            step(0, 1, NULL, 1),
            step(0, 2, 1, 2),
            step(1, 0, 1, 3),
            step(1, 1, 0, 4),
        ];
        for (limit, in_order) in [(100, true), (1, false)] {
            assert_eq!(pairs(&steps, limit, in_order).unwrap(), [(1, 0, 4)]);
        }
    }

    #[test]
    fn a_step_twice_in_a_run_is_an_error_naming_both_rows() {
        let steps = [step(0, 0, 0, 0), step(0, 1, 1, 1), step(0, 1, 2, 2)];
        for (limit, in_order) in [(100, true), (100, false), (1, false)] {
            let message = pairs(&steps, limit, in_order).unwrap_err().to_string();
            assert!(
                message.contains("run 0 has step 1 twice: here and at row group 0, row 1")
                    && message.contains("(row group 0, row 2, column `step`)"),
                "{message}"
            );
        }
    }
}
