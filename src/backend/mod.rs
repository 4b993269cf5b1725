//! The compute seam: every kernel is one method of [`Backend`], implemented on the CPU (f64, the
//! reference that verifies) and on the GPU (WGSL through wgpu). Stages above this module never
//! know which backend runs.

pub mod cpu;
pub mod fallback;
pub mod gpu;
pub mod jobs;
pub mod newton;
pub mod problem;
pub mod renumber;
pub mod tolerance;
pub mod verify;

use crate::backend::newton::{NewtonOptions, NewtonOutcome};
use crate::backend::problem::ActionProblem;
use crate::error::Result;
use crate::graph::TransitionGraph;
use crate::rng::Stream;
use cpu::reciprocal_triangles::OrientedReciprocal;
use jobs::ResampleJob;
use std::ops::Range;

/// Which backend the user asked for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// A hardware GPU when one exists, otherwise the CPU.
    Auto,
    /// The CPU only; never touches the GPU.
    Cpu,
    /// Any GPU adapter, software ones included (lavapipe: for testing the GPU kernels, slower
    /// than the CPU); an error when there is none.
    Gpu,
}

/// Which kind of backend computes; serialised as `"cpu"` or `"gpu"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Cpu,
    Gpu,
}

impl BackendKind {
    /// `"cpu"` or `"gpu"`, as in `report.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Gpu => "gpu",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Element type of the device's vectors and per-edge terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F64,
    F32,
}

impl Precision {
    /// Bytes of one sum (`Acc`): an f64, or an (f32, f32) compensated pair.
    pub const ACC_BYTES: u64 = 8;

    /// Bytes of one vector element (`Real`).
    pub fn real_bytes(self) -> u64 {
        match self {
            Precision::F64 => 8,
            Precision::F32 => 4,
        }
    }

    /// How this precision is described in [`DeviceInfo::reason`].
    pub fn describe(self) -> &'static str {
        match self {
            Precision::F64 => "f64 vectors and sums (SHADER_F64)",
            Precision::F32 => "f32 vectors, compensated f32 sums, fits finished in f64 on the host",
        }
    }
}

/// The backend actually used, and why; printed in the summary and the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceInfo {
    /// `"cpu"` or `"gpu"`.
    pub backend: BackendKind,
    /// The precision it computes in (the CPU: f64); not in `report.json` (the reason says it
    /// for a GPU).
    #[serde(skip)]
    pub precision: Precision,
    /// Adapter name (GPU) or processor description (CPU).
    pub adapter: String,
    /// Why this backend was chosen, in a few words (the summary's `Device` line).
    pub reason: String,
    /// The GPU fault that made `--device auto` use the CPU, in full; said once on stderr as a
    /// `warning:` (which the `Device` line does not repeat). Absent without a fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// Value and gradient of the action at one point.
#[derive(Debug, Clone)]
pub struct ActionEval {
    pub value: f64,
    pub gradient: Vec<f64>,
}

/// One method per kernel. `Sync`: on the CPU backend the analysis runs the stages that need the
/// potential and those that do not on two threads at once, sharing the backend.
pub trait Backend: Sync {
    fn info(&self) -> &DeviceInfo;

    /// Kernel `edge_action`: the action and its gradient at `v`.
    fn edge_action(&self, problem: &ActionProblem, v: &[f64]) -> Result<ActionEval>;

    /// Kernel `hessian_edge` (with `edge_action` for the Hessian's weights): `H(v) x`, the
    /// action's Hessian at `v` applied to `x`.
    fn hessian_product(&self, problem: &ActionProblem, v: &[f64], x: &[f64]) -> Result<Vec<f64>>;

    /// Minimises the action from `v0` by Newton–CG ([`newton`]) with the solver's vectors held
    /// by this backend: kernels `edge_action` (value, gradient, Hessian weights) and
    /// `hessian_edge` (Hessian–vector products), dot products and axpys.
    fn minimize_action(
        &self,
        problem: &ActionProblem,
        v0: &[f64],
        opts: &NewtonOptions,
    ) -> Result<NewtonOutcome>;

    /// Kernel `reciprocal_triangles`: every 3-cycle whose six arcs exist, streamed to `visit` in
    /// the canonical order of [`cpu::reciprocal_triangles`] on every backend, in chunks of
    /// whole oriented edges of at most `max(chunk, r.max_out_degree())` triangles, each
    /// triangle as its oriented-edge triple `[e, i, j]` of `r`
    /// ([`OrientedReciprocal::vertices`] gives `[a, b, c]`). How the triangles are cut into
    /// chunks may differ between backends; the sequence may not. An error of `visit` stops the
    /// enumeration and is returned.
    fn reciprocal_triangles(
        &self,
        r: &OrientedReciprocal,
        chunk: usize,
        visit: &mut dyn FnMut(&[[u32; 3]]) -> Result<()>,
    ) -> Result<()>;

    /// Kernel `resample`: the two sums of [`ResampleJob::statistic`] for each resample in
    /// `resamples`, from the Philox `stream` (bit-identical draws on every backend).
    fn resample(
        &self,
        job: &ResampleJob,
        stream: &Stream,
        resamples: Range<u32>,
    ) -> Result<Vec<[f64; 2]>>;
}

/// Triangles per chunk of [`Backend::reciprocal_triangles`] in analyses: 12 MiB of triples.
pub const TRIANGLE_CHUNK: usize = 1 << 20;

/// Every reciprocal triangle of `graph` as `[a, b, c]` (`a < b < c`), in the canonical order,
/// enumerated by `backend` in chunks of `chunk`: the whole list, for tests and small graphs.
pub fn triangle_list(
    backend: &dyn Backend,
    graph: &TransitionGraph,
    chunk: usize,
) -> Result<Vec<[u32; 3]>> {
    let r = OrientedReciprocal::new(graph);
    let mut out = Vec::new();
    backend.reciprocal_triangles(&r, chunk, &mut |ts| {
        out.extend(ts.iter().map(|&t| r.vertices(t)));
        Ok(())
    })?;
    Ok(out)
}

/// The backend for a choice. `Gpu` fails with an [`Error::Gpu`](crate::error::Error::Gpu)
/// naming the fault when no GPU can be used (no adapter, a missing feature, a device, allocation
/// or shader failure). `Auto` fails only on a bad setting: without a usable GPU it returns the CPU
/// backend, saying why in [`DeviceInfo::reason`] and, for a fault (not for passing over a
/// software renderer), naming the fault in [`DeviceInfo::fault`] and in one warning on stderr
/// (the reason does not repeat it); the GPU it returns is wrapped in [`fallback::Fallback`], which
/// reruns a kernel on the CPU when the GPU fails later.
pub fn select(choice: DeviceChoice) -> Result<Box<dyn Backend>> {
    if choice == DeviceChoice::Cpu {
        return Ok(Box::new(cpu::CpuBackend::new("--device cpu was asked for")));
    }
    let options = gpu::GpuOptions::from_env()?;
    match (choice, gpu::GpuBackend::open(choice, options)) {
        (DeviceChoice::Auto, Ok(gpu)) => Ok(Box::new(fallback::Fallback::new(gpu))),
        (_, Ok(gpu)) => Ok(Box::new(gpu)),
        (DeviceChoice::Auto, Err(gpu::Unavailable::Declined(why))) => {
            Ok(Box::new(cpu::CpuBackend::new(&why)))
        }
        (DeviceChoice::Auto, Err(gpu::Unavailable::Fault(why))) => {
            eprintln!("warning: no usable GPU, --device auto runs on the CPU: {why}");
            Ok(Box::new(cpu::CpuBackend::after_fault(
                "no usable GPU, so --device auto uses the CPU (the warning on stderr says why)",
                why,
            )))
        }
        (_, Err(e)) => Err(e.into()),
    }
}
