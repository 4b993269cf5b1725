//! Testing aids: GPU faults injected on demand, and software adapters under `--device auto`.
//!
//! `DETBAL_GPU_FAULT` makes the GPU path fail at one point, through the code a real failure
//! takes (tests/it/gpu_faults.rs):
//! - `no-adapter`: the adapter list is emptied, as on a machine without a GPU driver;
//! - `missing-feature`: the adapter is reported without compute shaders, which every kernel needs;
//! - `device-lost`: the device is destroyed just before the first read-back's submit (in
//!   `analyze`, the fit's first evaluation), so that submit and read-back fail as on a lost
//!   device and the device-lost callback fires;
//! - `allocation`: the problem's upload also asks for a buffer above the device's
//!   `max_buffer_size`, which wgpu refuses inside the upload's error scope (a real out-of-memory
//!   error cannot be forced: lavapipe commits memory lazily);
//! - `shader`: every WGSL module gets a syntax error, which the pipeline's error scope catches.
//!
//! `DETBAL_ALLOW_SOFTWARE_GPU=1` lets `--device auto` take a software adapter (lavapipe), so that
//! the faults can be tested under `--device auto` on machines without a hardware GPU.

use crate::error::{Error, Result};
use std::sync::OnceLock;

/// A fault to inject, from `DETBAL_GPU_FAULT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    NoAdapter,
    MissingFeature,
    DeviceLost,
    Allocation,
    Shader,
}

impl Fault {
    const ALL: [(Fault, &'static str); 5] = [
        (Fault::NoAdapter, "no-adapter"),
        (Fault::MissingFeature, "missing-feature"),
        (Fault::DeviceLost, "device-lost"),
        (Fault::Allocation, "allocation"),
        (Fault::Shader, "shader"),
    ];

    /// Parses a value of `DETBAL_GPU_FAULT` (empty: no fault).
    fn parse(value: &str) -> Result<Option<Fault>, String> {
        if value.is_empty() {
            return Ok(None);
        }
        match Self::ALL.iter().find(|(_, name)| *name == value) {
            Some((fault, _)) => Ok(Some(*fault)),
            None => Err(format!(
                "DETBAL_GPU_FAULT is {value:?}; expected one of no-adapter, missing-feature, \
                 device-lost, allocation, shader"
            )),
        }
    }

    /// Appended to the message of an injected fault, so it is never taken for a real one.
    pub fn note(self) -> String {
        let name = Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .expect("listed")
            .1;
        format!(" (injected by DETBAL_GPU_FAULT={name})")
    }
}

/// The testing switches.
#[derive(Debug, Clone, Copy)]
pub struct Switches {
    /// `DETBAL_GPU_FAULT`.
    pub fault: Option<Fault>,
    /// `DETBAL_ALLOW_SOFTWARE_GPU=1`.
    pub auto_takes_software: bool,
}

/// The switches, read from the environment once per process; a settings error when
/// `DETBAL_GPU_FAULT` names no fault.
pub fn switches() -> Result<Switches> {
    static READ: OnceLock<Result<Switches, String>> = OnceLock::new();
    READ.get_or_init(|| {
        Ok(Switches {
            fault: Fault::parse(&std::env::var("DETBAL_GPU_FAULT").unwrap_or_default())?,
            auto_takes_software: std::env::var("DETBAL_ALLOW_SOFTWARE_GPU").as_deref() == Ok("1"),
        })
    })
    .clone()
    .map_err(Error::settings)
}
