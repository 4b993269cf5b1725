//! `--verify`: runs each kernel on the GPU and on the CPU at the same input and reports how far
//! apart they are, against the tolerances of [`super::tolerance`].
//!
//! ```no_run
//! use detbal::backend::{cpu::CpuBackend, select, verify, DeviceChoice};
//! use detbal::backend::problem::ActionProblem;
//! let problem = ActionProblem::new(3, vec![0, 1, 2], vec![1, 2, 0], vec![1.0; 3], 0.0).unwrap();
//! let gpu = select(DeviceChoice::Gpu).unwrap();
//! let deviations = verify::verify(&*gpu, &CpuBackend::new("reference"), &problem, &[0.5, 0.0, -0.5]).unwrap();
//! verify::check(&deviations).unwrap(); // Err with a table when a tolerance is exceeded
//! ```

use super::Backend;
use super::cpu::reciprocal_triangles::OrientedReciprocal;
use super::jobs::synthetic_job;
use super::{cpu, tolerance};
use crate::backend::problem::ActionProblem;
use crate::error::{Error, Result};
use crate::rng::{Purpose, Stream};

/// How far one kernel's output on `gpu` is from the CPU's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelDeviation {
    pub kernel: &'static str,
    /// Largest absolute difference.
    pub max_abs: f64,
    /// Largest difference relative to the output's scale (units in [`super::tolerance`]).
    pub max_rel: f64,
    /// Bound on `max_rel`.
    pub tolerance: f64,
    pub ok: bool,
}

/// Deviations of every kernel at potential `v`: `edge_action` (the action's value),
/// `gather_gradient` (every gradient entry) and `hessian_edge` (every entry of the Hessian at `v`
/// applied to a fixed vector of ±1 and 0.5 entries). The tolerances are those of `gpu`'s
/// precision.
pub fn verify(
    gpu: &dyn Backend,
    cpu: &dyn Backend,
    problem: &ActionProblem,
    v: &[f64],
) -> Result<Vec<KernelDeviation>> {
    let precision = gpu.info().precision;
    let (a, b) = (gpu.edge_action(problem, v)?, cpu.edge_action(problem, v)?);
    let value_abs = (a.value - b.value).abs();
    let value = deviation(
        "edge_action",
        value_abs,
        value_abs / tolerance::value_scale(problem, v).max(f64::MIN_POSITIVE),
        tolerance::action_value(precision),
    );
    let gradient = relative(
        "gather_gradient",
        &a.gradient,
        &b.gradient,
        &tolerance::gradient_scale(problem, v),
        tolerance::gradient(precision),
    );
    Ok(vec![value, gradient, hessian(gpu, cpu, problem, v)?])
}

/// Kernel `hessian_edge`: `H(v) x` on both backends, entries relative to
/// [`tolerance::hessian_scale`].
fn hessian(
    gpu: &dyn Backend,
    cpu: &dyn Backend,
    problem: &ActionProblem,
    v: &[f64],
) -> Result<KernelDeviation> {
    let x: Vec<f64> = (0..v.len()).map(|f| [1.0, -1.0, 0.5][f % 3]).collect();
    let (a, b) = (
        gpu.hessian_product(problem, v, &x)?,
        cpu.hessian_product(problem, v, &x)?,
    );
    Ok(relative(
        "hessian_edge",
        &a,
        &b,
        &tolerance::hessian_scale(problem, &x),
        tolerance::hessian_product(gpu.info().precision),
    ))
}

/// The deviation of `found` from `reference`, entry by entry relative to `scale`, against
/// `tolerance`. A NaN deviation fails (`max` would drop it).
pub fn relative(
    kernel: &'static str,
    found: &[f64],
    reference: &[f64],
    scale: &[f64],
    tolerance: f64,
) -> KernelDeviation {
    let (mut max_abs, mut max_rel) = (0.0f64, 0.0f64);
    for ((g, c), s) in found.iter().zip(reference).zip(scale) {
        let diff = (g - c).abs();
        max_abs = max_abs.max(diff);
        max_rel = if diff.is_nan() || max_rel.is_nan() {
            f64::NAN
        } else {
            max_rel.max(diff / s.max(f64::MIN_POSITIVE))
        };
    }
    deviation(kernel, max_abs, max_rel, tolerance)
}

/// `--verify`: kernel `resample` on `backend` against the CPU twin, on [`synthetic_job`] of
/// 10,000 items and 64 resamples; tolerance of `backend`'s precision.
pub fn resample(backend: &dyn Backend) -> Result<Vec<KernelDeviation>> {
    let precision = backend.info().precision;
    let stream = Stream::new(0, Purpose::Permutation);
    let job = synthetic_job(10_000);
    let reference = cpu::resample::resample(&job, &stream, 0..64);
    let device = backend.resample(&job, &stream, 0..64)?;
    let (mut max_abs, mut max_rel) = (0f64, 0f64);
    for (c, g) in reference.iter().zip(&device) {
        let scale = job.scale(*c);
        for k in 0..2 {
            let error = (c[k] - g[k]).abs();
            max_abs = max_abs.max(error);
            max_rel = max_rel.max(error / scale[k].max(f64::MIN_POSITIVE));
        }
    }
    let tolerance = tolerance::resample_statistic(precision);
    Ok(vec![KernelDeviation {
        kernel: "resample (permutations)",
        max_abs,
        max_rel,
        tolerance,
        ok: max_rel <= tolerance,
    }])
}

/// `--verify`: kernel `reciprocal_triangles` on `backend` against the CPU twin on `r`: the
/// triangles must be equal in number and order, compared by a digest of the streamed sequences
/// (no list of triangles is held).
pub fn reciprocal_triangles(
    backend: &dyn Backend,
    cpu: &dyn Backend,
    r: &OrientedReciprocal,
) -> Result<KernelDeviation> {
    let digest = |b: &dyn Backend| -> Result<(u64, blake3::Hash)> {
        let (mut n, mut hash) = (0u64, blake3::Hasher::new());
        b.reciprocal_triangles(r, super::TRIANGLE_CHUNK, &mut |ts| {
            n += ts.len() as u64;
            for x in ts.iter().flatten() {
                hash.update(&x.to_le_bytes());
            }
            Ok(())
        })?;
        Ok((n, hash.finalize()))
    };
    let (found, reference) = (digest(backend)?, digest(cpu)?);
    let differ = if found == reference {
        0.0
    } else {
        found.0.abs_diff(reference.0).max(1) as f64
    };
    Ok(deviation(
        "reciprocal_triangles",
        differ,
        differ / reference.0.max(1) as f64,
        tolerance::EXACT,
    ))
}

fn deviation(kernel: &'static str, max_abs: f64, max_rel: f64, tolerance: f64) -> KernelDeviation {
    KernelDeviation {
        kernel,
        max_abs,
        max_rel,
        tolerance,
        ok: max_rel <= tolerance,
    }
}

/// The deviations as a table, one kernel per line.
pub fn table(deviations: &[KernelDeviation]) -> String {
    let mut out = format!(
        "{:<16} {:>10} {:>10} {:>10}  {}\n",
        "kernel", "max_abs", "max_rel", "tolerance", "ok"
    );
    for d in deviations {
        out += &format!(
            "{:<16} {:>10.3e} {:>10.3e} {:>10.3e}  {}\n",
            d.kernel,
            d.max_abs,
            d.max_rel,
            d.tolerance,
            if d.ok { "yes" } else { "NO" }
        );
    }
    out
}

/// `Err` listing every deviation when any kernel exceeds its tolerance.
pub fn check(deviations: &[KernelDeviation]) -> Result<()> {
    if deviations.iter().all(|d| d.ok) {
        Ok(())
    } else {
        Err(Error::Gpu(format!(
            "GPU and CPU disagree beyond tolerance:\n{}",
            table(deviations)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::backend::newton::{NewtonOptions, NewtonOutcome};
    use crate::backend::{ActionEval, DeviceInfo};

    /// The CPU backend with gradient entry 0 moved by `shift`.
    struct Shifted(CpuBackend, f64);

    impl Backend for Shifted {
        fn info(&self) -> &DeviceInfo {
            self.0.info()
        }
        fn edge_action(&self, problem: &ActionProblem, v: &[f64]) -> Result<ActionEval> {
            let mut eval = self.0.edge_action(problem, v)?;
            eval.gradient[0] += self.1;
            Ok(eval)
        }
        fn hessian_product(
            &self,
            problem: &ActionProblem,
            v: &[f64],
            x: &[f64],
        ) -> Result<Vec<f64>> {
            self.0.hessian_product(problem, v, x)
        }
        fn minimize_action(
            &self,
            _: &ActionProblem,
            _: &[f64],
            _: &NewtonOptions,
        ) -> Result<NewtonOutcome> {
            unreachable!()
        }
        fn reciprocal_triangles(
            &self,
            _: &crate::backend::cpu::reciprocal_triangles::OrientedReciprocal,
            _: usize,
            _: &mut dyn FnMut(&[[u32; 3]]) -> Result<()>,
        ) -> Result<()> {
            unreachable!()
        }
        fn resample(
            &self,
            _: &crate::backend::jobs::ResampleJob,
            _: &crate::rng::Stream,
            _: std::ops::Range<u32>,
        ) -> Result<Vec<[f64; 2]>> {
            unreachable!()
        }
    }

    #[test]
    fn reports_every_kernel_and_fails_beyond_tolerance() {
        let problem =
            ActionProblem::new(3, vec![0, 1, 2], vec![1, 2, 0], vec![1.0; 3], 0.0).unwrap();
        let v = [0.5, 0.0, -0.5];
        let cpu = CpuBackend::new("reference");
        let same = verify(&Shifted(CpuBackend::new("x"), 0.0), &cpu, &problem, &v).unwrap();
        assert!(same.iter().all(|d| d.ok && d.max_abs == 0.0));
        check(&same).unwrap();

        let off = verify(&Shifted(CpuBackend::new("x"), 1e-6), &cpu, &problem, &v).unwrap();
        assert!(off[0].ok, "the value is untouched");
        assert!(!off[1].ok && off[1].kernel == "gather_gradient");
        let Err(Error::Gpu(message)) = check(&off) else {
            panic!("check passed")
        };
        assert!(
            message.contains("gather_gradient") && message.contains("NO"),
            "{message}"
        );
    }
}
