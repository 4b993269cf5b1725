//! `--device auto` on a hardware GPU: the [`GpuBackend`] with the CPU behind it. A GPU failure
//! during a kernel (an [`Error::Gpu`]: a lost device, a failed allocation, a graph too large for
//! the device) reruns that kernel on the CPU, and every later one too, with one warning on stderr
//! and [`Backend::info`] saying why. Errors of other kinds pass through. `--device gpu` uses the
//! GPU backend alone, so there a GPU failure is an error.

use super::cpu::CpuBackend;
use super::cpu::reciprocal_triangles::{OrientedReciprocal, enumerate};
use super::gpu::GpuBackend;
use super::jobs::ResampleJob;
use super::newton::{NewtonOptions, NewtonOutcome};
use super::problem::ActionProblem;
use super::{ActionEval, Backend, BackendKind, DeviceInfo, Precision};
use crate::error::{Error, Result};
use crate::rng::Stream;
use std::ops::Range;
use std::sync::OnceLock;

pub struct Fallback {
    gpu: GpuBackend,
    cpu: CpuBackend,
    /// Set when the CPU took over, for the rest of the run.
    fell_back: OnceLock<DeviceInfo>,
}

impl Fallback {
    pub fn new(gpu: GpuBackend) -> Self {
        Fallback {
            gpu,
            cpu: CpuBackend::new("fallback"),
            fell_back: OnceLock::new(),
        }
    }

    /// `on_gpu`, or `on_cpu` when it fails with an [`Error::Gpu`] or the CPU already took over.
    fn run<T>(
        &self,
        on_gpu: impl FnOnce(&GpuBackend) -> Result<T>,
        on_cpu: impl FnOnce(&CpuBackend) -> Result<T>,
    ) -> Result<T> {
        if self.fell_back.get().is_some() {
            return on_cpu(&self.cpu);
        }
        match on_gpu(&self.gpu) {
            Err(Error::Gpu(why)) => {
                self.fall_back(why);
                on_cpu(&self.cpu)
            }
            other => other,
        }
    }

    /// Records the GPU failure `why` once in [`Backend::info`] and says it once on stderr.
    fn fall_back(&self, why: String) {
        self.fell_back.get_or_init(|| {
            let gpu = self.gpu.info();
            eprintln!(
                "warning: GPU fault on {}, --device auto continues on the CPU: {why}",
                gpu.adapter
            );
            DeviceInfo {
                backend: BackendKind::Cpu,
                precision: Precision::F64,
                adapter: self.cpu.info().adapter.clone(),
                reason: format!(
                    "the GPU failed, so --device auto used the CPU instead of {} (the warning \
                     on stderr says why)",
                    gpu.adapter
                ),
                fault: Some(why),
            }
        });
    }
}

impl Backend for Fallback {
    fn info(&self) -> &DeviceInfo {
        self.fell_back.get().unwrap_or(self.gpu.info())
    }

    fn edge_action(&self, problem: &ActionProblem, v: &[f64]) -> Result<ActionEval> {
        self.run(
            |gpu| gpu.edge_action(problem, v),
            |cpu| cpu.edge_action(problem, v),
        )
    }

    fn hessian_product(&self, problem: &ActionProblem, v: &[f64], x: &[f64]) -> Result<Vec<f64>> {
        self.run(
            |gpu| gpu.hessian_product(problem, v, x),
            |cpu| cpu.hessian_product(problem, v, x),
        )
    }

    fn minimize_action(
        &self,
        problem: &ActionProblem,
        v0: &[f64],
        opts: &NewtonOptions,
    ) -> Result<NewtonOutcome> {
        self.run(
            |gpu| gpu.minimize_action(problem, v0, opts),
            |cpu| cpu.minimize_action(problem, v0, opts),
        )
    }

    /// A GPU failure part-way hands the oriented edges not yet streamed to the CPU (chunks hold
    /// whole edges), so `visit` sees every triangle once, in order, whichever backend made it.
    fn reciprocal_triangles(
        &self,
        r: &OrientedReciprocal,
        chunk: usize,
        visit: &mut dyn FnMut(&[[u32; 3]]) -> Result<()>,
    ) -> Result<()> {
        if self.fell_back.get().is_some() {
            return enumerate(r, 0..r.n_edges(), chunk, visit);
        }
        let (mut done, mut visit_failed) = (0, false);
        let result = self.gpu.reciprocal_triangles(r, chunk, &mut |triangles| {
            visit(triangles).inspect_err(|_| visit_failed = true)?;
            if let Some(last) = triangles.last() {
                done = last[0] as usize + 1;
            }
            Ok(())
        });
        match result {
            Err(Error::Gpu(why)) if !visit_failed => {
                self.fall_back(why);
                enumerate(r, done..r.n_edges(), chunk, visit)
            }
            other => other,
        }
    }

    fn resample(
        &self,
        job: &ResampleJob,
        stream: &Stream,
        resamples: Range<u32>,
    ) -> Result<Vec<[f64; 2]>> {
        self.run(
            |gpu| gpu.resample(job, stream, resamples.clone()),
            |cpu| cpu.resample(job, stream, resamples.clone()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::DeviceChoice;
    use crate::backend::gpu::GpuOptions;

    /// A GPU backend with 1 KiB bindings, or `None` without an adapter (a failure when
    /// `REQUIRE_GPU=1`).
    fn small_gpu() -> Option<GpuBackend> {
        let options = GpuOptions {
            max_binding_bytes: Some(1024),
            ..GpuOptions::default()
        };
        match GpuBackend::with_options(DeviceChoice::Gpu, options) {
            Ok(gpu) => Some(gpu),
            Err(e) if std::env::var("REQUIRE_GPU").as_deref() == Ok("1") => panic!("{e}"),
            Err(e) => {
                eprintln!("SKIP: {e}");
                None
            }
        }
    }

    #[test]
    fn auto_fits_graphs_too_large_for_the_device_on_the_cpu_and_says_so() {
        let Some(gpu) = small_gpu() else { return };
        // 200 states need 1.6 KiB per state array, above the 1 KiB bindings.
        let (src, dst): (Vec<u32>, Vec<u32>) = (0..200).map(|i| (i, (i + 1) % 200)).unzip();
        let problem = ActionProblem::new(200, src, dst, vec![1.0; 200], 0.0).unwrap();
        let v: Vec<f64> = (0..200).map(|i| f64::from(i) / 50.0).collect();
        let Err(Error::Gpu(why)) = gpu.edge_action(&problem, &v) else {
            panic!("--device gpu must fail on a graph too large for the device");
        };
        assert!(
            why.contains("above the device's 1.0 KiB storage-binding limit"),
            "{why}"
        );

        let auto = Fallback::new(gpu); // what `--device auto` builds
        let eval = auto.edge_action(&problem, &v).unwrap();
        let cpu = CpuBackend::new("reference")
            .edge_action(&problem, &v)
            .unwrap();
        assert_eq!(eval.value, cpu.value);
        let info = auto.info();
        assert_eq!(info.backend, BackendKind::Cpu);
        assert!(
            info.reason
                .contains("--device auto used the CPU instead of"),
            "{}",
            info.reason
        );
        let fault = info.fault.as_deref().unwrap_or_default();
        assert!(fault.contains("storage-binding limit"), "{fault}");
        assert!(!info.reason.contains(fault), "{}", info.reason);
    }
}
