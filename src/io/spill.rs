//! Trajectory steps spilled to disk: hash-partitioned by run into temporary files, so that each
//! partition holds whole runs and can be sorted alone (see [`super::trajectory`]).
//!
//! The files are created unnamed in the system's temporary directory (`TMPDIR`, else `/tmp`):
//! on Linux with `O_TMPFILE`, elsewhere removed right after creation, so nothing is left behind
//! on any exit path, a kill included, and nothing is ever written next to the inputs. A step
//! takes about 8–12 bytes: every field is a variable-length integer, the row as the difference
//! from the previous step of the partition (rows are written in increasing order).

use rustc_hash::FxBuildHasher;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// A run's label: the value of the run column, an integer or a text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum RunKey {
    Int(i128),
    Text(Box<str>),
}

impl RunKey {
    fn hash(&self, seed: u64) -> u64 {
        match self {
            RunKey::Int(v) => FxBuildHasher.hash_one((seed, v)),
            RunKey::Text(t) => FxBuildHasher.hash_one((seed, t.as_bytes())),
        }
    }
}

impl std::fmt::Display for RunKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunKey::Int(v) => write!(f, "{v}"),
            RunKey::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// One step as spilled: its run, step, state id (or `NULL`, a gap), global row and group id
/// (`NULL` without groups).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Spilled {
    pub run: RunKey,
    pub step: i64,
    pub state: u32,
    pub row: u64,
    pub group: u32,
}

/// Temporary files, one per partition, each holding the steps of the runs that hash to it.
pub(super) struct Partitions {
    /// Mixed into the hash: a partition split again is split by another hash.
    seed: u64,
    files: Vec<Partition>,
    /// The bytes of the step being written.
    scratch: Vec<u8>,
}

struct Partition {
    writer: BufWriter<File>,
    last_row: u64,
    steps: u64,
}

/// Bytes buffered per partition file before a write.
const BUFFER: usize = 8 << 10;

impl Partitions {
    /// `count` empty partitions in the system's temporary directory.
    pub fn create(count: usize, seed: u64) -> std::io::Result<Partitions> {
        let dir = std::env::temp_dir();
        let files = (0..count)
            .map(|_| {
                Ok(Partition {
                    writer: BufWriter::with_capacity(BUFFER, tempfile::tempfile_in(&dir)?),
                    last_row: 0,
                    steps: 0,
                })
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Partitions {
            seed,
            files,
            scratch: Vec::new(),
        })
    }

    /// Appends `step` to its run's partition; steps must come in increasing row order.
    pub fn write(&mut self, step: &Spilled) -> std::io::Result<()> {
        let at = (step.run.hash(self.seed) >> 32) as usize % self.files.len();
        let part = &mut self.files[at];
        let bytes = &mut self.scratch;
        bytes.clear();
        match &step.run {
            RunKey::Int(v) => {
                bytes.push(0);
                put(bytes, ((v << 1) ^ (v >> 127)) as u128);
            }
            RunKey::Text(t) => {
                bytes.push(1);
                put(bytes, t.len() as u128);
                bytes.extend_from_slice(t.as_bytes());
            }
        }
        put(bytes, ((step.step << 1) ^ (step.step >> 63)) as u64 as u128);
        put(bytes, u128::from(step.state));
        put(bytes, u128::from(step.row - part.last_row));
        put(bytes, u128::from(step.group));
        part.last_row = step.row;
        part.steps += 1;
        part.writer.write_all(bytes)
    }

    /// The partitions, written out, to be read back one at a time.
    pub fn finish(self) -> std::io::Result<Vec<Reader>> {
        self.files
            .into_iter()
            .map(|part| {
                let mut file = part.writer.into_inner().map_err(|e| e.into_error())?;
                file.seek(SeekFrom::Start(0))?;
                Ok(Reader {
                    reader: BufReader::with_capacity(BUFFER, file),
                    last_row: 0,
                    steps: part.steps,
                })
            })
            .collect()
    }
}

/// The steps of one partition, in the order written.
pub(super) struct Reader {
    reader: BufReader<File>,
    last_row: u64,
    /// Steps not read yet.
    pub steps: u64,
}

impl Reader {
    /// The next step.
    pub fn next_step(&mut self) -> std::io::Result<Spilled> {
        let run = match self.byte()? {
            0 => {
                let v = self.get()?;
                RunKey::Int((v >> 1) as i128 ^ -((v & 1) as i128))
            }
            _ => {
                let mut text = vec![0; self.get()? as usize];
                self.reader.read_exact(&mut text)?;
                let text = String::from_utf8(text).map_err(|_| corrupt())?;
                RunKey::Text(text.into())
            }
        };
        let step = self.get()? as u64;
        let step = (step >> 1) as i64 ^ -((step & 1) as i64);
        let state = u32::try_from(self.get()?).map_err(|_| corrupt())?;
        self.last_row += u64::try_from(self.get()?).map_err(|_| corrupt())?;
        let group = u32::try_from(self.get()?).map_err(|_| corrupt())?;
        self.steps -= 1;
        Ok(Spilled {
            run,
            step,
            state,
            row: self.last_row,
            group,
        })
    }

    fn byte(&mut self) -> std::io::Result<u8> {
        let mut b = [0];
        self.reader.read_exact(&mut b)?;
        Ok(b[0])
    }

    /// A variable-length integer (7 bits per byte, low bits first).
    fn get(&mut self) -> std::io::Result<u128> {
        let mut value = 0u128;
        for shift in (0..128).step_by(7) {
            let b = self.byte()?;
            value |= u128::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt())
    }
}

/// Appends `value` as a variable-length integer.
fn put(bytes: &mut Vec<u8>, mut value: u128) {
    while value >= 0x80 {
        bytes.push(value as u8 | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

/// A spill file that does not read back as written (it was changed under us).
fn corrupt() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "a spill file does not read back as it was written",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_back_as_written_in_their_runs_partition() {
        let steps: Vec<Spilled> = (0..1_000u64)
            .map(|row| Spilled {
                run: match row % 3 {
                    0 => RunKey::Int(i128::from(row % 17) - 8),
                    1 => RunKey::Int(i128::MIN + row as i128),
                    _ => RunKey::Text(format!("run {}", row % 5).into()),
                },
                step: [i64::MIN, -1, 0, i64::MAX][(row % 4) as usize],
                state: [0, 7, u32::MAX][(row % 3) as usize],
                row: row * 3,
                group: (row % 2) as u32,
            })
            .collect();
        let mut partitions = Partitions::create(4, 0).unwrap();
        for step in &steps {
            partitions.write(step).unwrap();
        }
        let mut back = Vec::new();
        for mut reader in partitions.finish().unwrap() {
            let mut runs = Vec::new();
            while reader.steps > 0 {
                let step = reader.next_step().unwrap();
                runs.push(step.run.clone());
                back.push(step);
            }
            // Each partition's runs are found in no other.
            assert!(
                runs.iter()
                    .all(|r| back.iter().filter(|s| s.run == *r).count()
                        == steps.iter().filter(|s| s.run == *r).count())
            );
        }
        back.sort_by_key(|s| s.row);
        assert_eq!(back, steps);
    }
}
