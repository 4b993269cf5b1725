//! Stopping an analysis from outside: a check that the stages call between them. The Python
//! package passes one that asks Python whether Ctrl-C was pressed; the binary passes none, as
//! the terminal's Ctrl-C ends its process.
//!
//! Why between stages and not inside them: a check there costs nothing and needs no stage to
//! know about it; the price is that a long stage (the bootstrap refits, say) runs to its end
//! before the analysis stops.

use crate::error::{Error, Result};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether to stop, asked between stages; the default never stops.
#[derive(Clone, Default)]
pub struct Interrupt(Option<Arc<dyn Fn() -> bool + Send + Sync>>);

impl Interrupt {
    /// An interrupt that stops the analysis once `requested` returns true.
    pub fn new(requested: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Interrupt(Some(Arc::new(requested)))
    }

    /// [`Error::Interrupted`] naming the stage just finished when a stop was requested.
    pub fn check(&self, stage: &str) -> Result<()> {
        if self.requested() {
            return Err(Error::Interrupted(stage.to_owned()));
        }
        Ok(())
    }

    /// Whether a stop was requested.
    pub(super) fn requested(&self) -> bool {
        self.0.as_ref().is_some_and(|requested| requested())
    }

    /// `(here, there)` for two threads: `here` asks this interrupt and remembers a request;
    /// `there` never asks, it stops once `here` saw one. The Python package's Ctrl-C is seen
    /// only on the thread that called the analysis, and only once.
    pub(super) fn relay(&self) -> (Self, Self) {
        let seen = Arc::new(AtomicBool::new(false));
        let (this, latch) = (self.clone(), seen.clone());
        let here = Interrupt::new(move || {
            let now = latch.load(Ordering::Relaxed) || this.requested();
            latch.store(now, Ordering::Relaxed);
            now
        });
        (here, Interrupt::new(move || seen.load(Ordering::Relaxed)))
    }

    /// An interrupt that stops when this one does or when `also` returns true (the
    /// analysis stops one path when the other failed).
    pub(super) fn or(&self, also: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        let this = self.clone();
        Interrupt::new(move || this.requested() || also())
    }
}

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Interrupt(set)"
        } else {
            "Interrupt(none)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{AnalyzeSettings, analyze_graph};
    use crate::backend::cpu::CpuBackend;
    use crate::graph::GraphBuilder;
    use crate::io::InputSummary;
    use std::sync::atomic::AtomicUsize;

    /// Runs the analysis of a triangle on `threads` threads with `requested` as its interrupt.
    fn stop_on(threads: usize, requested: impl Fn() -> bool + Send + Sync + 'static) -> String {
        let mut b = GraphBuilder::default();
        let s: Vec<u32> = ["a", "b", "c"].iter().map(|n| b.intern(n)).collect();
        for (row, (f, g)) in [(0, 1), (1, 0), (1, 2), (2, 1), (2, 0), (0, 2)]
            .into_iter()
            .enumerate()
        {
            b.add(s[f], s[g], 10, row as u64).unwrap();
        }
        let graph = b.finish();
        let settings = AnalyzeSettings {
            interrupt: Interrupt::new(requested),
            ..AnalyzeSettings::default()
        };
        let backend = CpuBackend::new("test");
        let start = std::time::Instant::now();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let result = pool.install(|| {
            analyze_graph(
                graph,
                InputSummary::default(),
                &backend,
                &settings,
                0.0,
                start,
            )
        });
        result.err().expect("the analysis stops").to_string()
    }

    #[test]
    fn a_requested_stop_ends_the_analysis_after_the_current_stage() {
        // One thread runs the stages in order, asking once per finished stage: the second
        // answer stops it, after `pairs`.
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let error = stop_on(1, move || counter.fetch_add(1, Ordering::SeqCst) == 1);
        assert_eq!(error, "interrupted after the `pairs` stage");
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_stop_seen_once_on_one_thread_stops_both_paths() {
        // As the Python package's Ctrl-C: answered once, and asked on one thread only (the
        // calling one); the request reaches the potential path's thread through the relay.
        let threads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (fired, asking) = (AtomicBool::new(false), threads.clone());
        let error = stop_on(2, move || {
            asking.lock().unwrap().push(std::thread::current().id());
            !fired.swap(true, Ordering::SeqCst)
        });
        assert!(error.starts_with("interrupted after the `"), "{error}");
        let mut threads = threads.lock().unwrap().clone();
        threads.dedup();
        assert_eq!(threads.len(), 1);
    }
}
