//! The GPU backends the tests share: one per configuration, opened on first use and kept for
//! the whole test binary (opening one compiles every kernel, seconds on lavapipe).

use detbal::backend::DeviceChoice;
use detbal::backend::gpu::{GpuBackend, GpuOptions, Precision};
use std::sync::OnceLock;

/// A configuration of the GPU backend.
#[derive(Clone, Copy, Debug)]
pub enum Gpu {
    /// `GpuOptions::default()`: f64 where the device has `SHADER_F64`, the device's limits.
    Auto,
    F64,
    /// f32 forced, so that both shader variants run on an adapter with f64.
    F32,
    /// f64 with 64 KiB bindings, so that edge, incidence and output arrays are split into
    /// batches, and at most 3 workgroups per grid dimension, so that every dispatch of more than
    /// 3 workgroups is a 2-D grid with spare workgroups (which large graphs need beyond 65,535).
    F64Batched,
    /// The device's precision with 128 KiB bindings (resamples in batches).
    Binding128K,
}

impl Gpu {
    const ALL: usize = 5;

    fn options(self) -> GpuOptions {
        let precision = |p| GpuOptions {
            precision: Some(p),
            ..GpuOptions::default()
        };
        match self {
            Gpu::Auto => GpuOptions::default(),
            Gpu::F64 => precision(Precision::F64),
            Gpu::F32 => precision(Precision::F32),
            Gpu::F64Batched => GpuOptions {
                precision: Some(Precision::F64),
                max_binding_bytes: Some(64 << 10),
                max_workgroups_per_dimension: Some(3),
            },
            Gpu::Binding128K => GpuOptions {
                max_binding_bytes: Some(128 << 10),
                ..GpuOptions::default()
            },
        }
    }
}

/// The shared backend of configuration `which`; `None` after a SKIP line for `test` when there
/// is no usable adapter, a failure instead when `REQUIRE_GPU=1` (as in CI).
pub fn gpu(which: Gpu, test: &str) -> Option<&'static GpuBackend> {
    static CELLS: [OnceLock<Result<GpuBackend, String>>; Gpu::ALL] =
        [const { OnceLock::new() }; Gpu::ALL];
    let backend = CELLS[which as usize].get_or_init(|| open(which));
    usable(backend.as_ref().map_err(String::as_str), which, test)
}

/// A backend of configuration `which` of the test's own, for tests that read the device
/// counters (a shared backend counts the work of every test running beside them).
pub fn private_gpu(which: Gpu, test: &str) -> Option<GpuBackend> {
    let backend = open(which);
    usable(backend.as_ref().map_err(String::as_str), which, test)?;
    backend.ok()
}

fn open(which: Gpu) -> Result<GpuBackend, String> {
    GpuBackend::with_options(DeviceChoice::Gpu, which.options()).map_err(|e| e.to_string())
}

fn usable<T>(backend: Result<T, &str>, which: Gpu, test: &str) -> Option<T> {
    match backend {
        Ok(b) => Some(b),
        Err(why) if std::env::var("REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("REQUIRE_GPU=1 but the {which:?} GPU backend is unusable: {why}")
        }
        Err(why) => {
            eprintln!("SKIP {test} ({which:?}): {why}");
            None
        }
    }
}
