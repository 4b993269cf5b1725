//! What the host asked of the device: submits, read-backs, dispatches, bind groups, bytes moved
//! over the bus each way, and an estimate of the device-memory traffic of the dispatches.
//!
//! Why: on a real GPU the fit's time is set less by arithmetic than by round trips (each
//! read-back is a submit, a map and a wait: tens of µs on a discrete GPU, docs/GPU.md §1.3) and
//! by memory traffic; these counts say what a solver iteration or an evaluation costs in those
//! terms on any adapter, lavapipe included, so a change can be judged here and timed there.
//!
//! One [`Tally`] per device (in its [`super::context::GpuContext`]), added to by the
//! [`super::buffers::Recorder`] (submits, read-backs, dispatches, parameter uploads, downloads),
//! by [`super::context::Pipeline::bind`] (bind groups) and by `storage_init` (uploads). Every
//! kernel records through these, so a new kernel is counted without code of its own.
//! [`GpuBackend::counters`] returns a [`GpuCounters`] snapshot; the work of a call is the
//! difference of the snapshots around it ([`GpuCounters::since`]).
//!
//! Traffic estimate (`bytes_bound`): each dispatch adds the sizes of the storage buffers it binds
//! (bindings × elements, each element read or written once). Exact for streaming kernels whose
//! buffers are sized to the dispatch (edge_action, vector_ops, the first reduction level, the
//! gradient gather); it counts a gathered vector (`V[src]`, `V[dst]`) once, as if cached; it
//! overstates dispatches that bind a buffer larger than they touch (later reduction levels read
//! part of a scratch buffer, carry levels of the gather, and each chunk's write pass of
//! reciprocal_triangles binds the whole graph). The uniform parameter ring is not counted as
//! traffic (its 32 B per dispatch are in `bytes_uploaded`).

use super::GpuBackend;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Totals since the device was opened (or since [`GpuBackend::reset_counters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GpuCounters {
    /// Command buffers submitted.
    pub submits: u64,
    /// Read-backs: each a submit, a `map_async` and a wait for the device.
    pub readbacks: u64,
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Bind groups created.
    pub bind_groups: u64,
    /// Bytes written to the device: buffers created with contents and dispatch parameters.
    pub bytes_uploaded: u64,
    /// Bytes read back from the device.
    pub bytes_downloaded: u64,
    /// Estimated device-memory traffic of the dispatches (module docs).
    pub bytes_bound: u64,
}

impl GpuCounters {
    /// The work done between `earlier` and this snapshot.
    pub fn since(self, earlier: GpuCounters) -> GpuCounters {
        GpuCounters {
            submits: self.submits - earlier.submits,
            readbacks: self.readbacks - earlier.readbacks,
            dispatches: self.dispatches - earlier.dispatches,
            bind_groups: self.bind_groups - earlier.bind_groups,
            bytes_uploaded: self.bytes_uploaded - earlier.bytes_uploaded,
            bytes_downloaded: self.bytes_downloaded - earlier.bytes_downloaded,
            bytes_bound: self.bytes_bound - earlier.bytes_bound,
        }
    }
}

/// The running counts of one device (atomic: a backend may be shared between threads).
#[derive(Debug, Default)]
pub struct Tally {
    submits: AtomicU64,
    readbacks: AtomicU64,
    dispatches: AtomicU64,
    bind_groups: AtomicU64,
    bytes_uploaded: AtomicU64,
    bytes_downloaded: AtomicU64,
    bytes_bound: AtomicU64,
}

impl Tally {
    pub fn submit(&self, parameter_bytes: u64) {
        self.submits.fetch_add(1, Relaxed);
        self.upload(parameter_bytes);
    }

    pub fn readback(&self, bytes: u64) {
        self.readbacks.fetch_add(1, Relaxed);
        self.bytes_downloaded.fetch_add(bytes, Relaxed);
    }

    pub fn dispatch(&self, bound_bytes: u64) {
        self.dispatches.fetch_add(1, Relaxed);
        self.bytes_bound.fetch_add(bound_bytes, Relaxed);
    }

    pub fn bind_group(&self) {
        self.bind_groups.fetch_add(1, Relaxed);
    }

    pub fn upload(&self, bytes: u64) {
        self.bytes_uploaded.fetch_add(bytes, Relaxed);
    }

    fn snapshot(&self) -> GpuCounters {
        GpuCounters {
            submits: self.submits.load(Relaxed),
            readbacks: self.readbacks.load(Relaxed),
            dispatches: self.dispatches.load(Relaxed),
            bind_groups: self.bind_groups.load(Relaxed),
            bytes_uploaded: self.bytes_uploaded.load(Relaxed),
            bytes_downloaded: self.bytes_downloaded.load(Relaxed),
            bytes_bound: self.bytes_bound.load(Relaxed),
        }
    }

    fn reset(&self) {
        for counter in [
            &self.submits,
            &self.readbacks,
            &self.dispatches,
            &self.bind_groups,
            &self.bytes_uploaded,
            &self.bytes_downloaded,
            &self.bytes_bound,
        ] {
            counter.store(0, Relaxed);
        }
    }
}

impl GpuBackend {
    /// What this backend's device has been asked to do so far (module docs).
    pub fn counters(&self) -> GpuCounters {
        self.ctx.tally.snapshot()
    }

    /// Sets every counter back to zero.
    pub fn reset_counters(&self) {
        self.ctx.tally.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_of_snapshots_is_the_work_between_them() {
        let tally = Tally::default();
        tally.dispatch(100);
        let before = tally.snapshot();
        tally.submit(64);
        tally.readback(8);
        tally.dispatch(40);
        tally.dispatch(2);
        tally.bind_group();
        tally.upload(16);
        let work = tally.snapshot().since(before);
        assert_eq!(
            work,
            GpuCounters {
                submits: 1,
                readbacks: 1,
                dispatches: 2,
                bind_groups: 1,
                bytes_uploaded: 80,
                bytes_downloaded: 8,
                bytes_bound: 42,
            }
        );
        tally.reset();
        assert_eq!(tally.snapshot(), GpuCounters::default());
    }
}
