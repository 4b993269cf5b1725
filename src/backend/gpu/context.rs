//! The GPU device: which adapter, the device and queue, error capture, and the pipeline factory
//! every kernel uses. One context (one device) serves all kernels of a [`super::GpuBackend`].
//!
//! Adapter order: hardware adapters (any device type but `Cpu`) before software renderers,
//! Vulkan before the other APIs. `WGPU_BACKEND` restricts the APIs (e.g. `vulkan`) and
//! `WGPU_ADAPTER_NAME` the adapter names (case-insensitive substring). The device gets the
//! adapter's own limits and, of the optional features, only `SHADER_F64` when the f64 precision
//! is chosen (per adapter: [`super::adapter`]); adapters without compute shaders are refused.
//!
//! Errors: wgpu reports most errors asynchronously, to an error scope or else to the device's
//! uncaptured-error handler, whose default panics. Uploads and pipeline creation run inside
//! [`ErrorScope`]s; the handler installed here records any other error, and a lost device is
//! recorded by its callback. Each read-back ([`GpuContext::check`]) turns what was recorded into
//! an [`Error::Gpu`], so every fault ends as an error the backend can act on, never a panic.

use super::Precision;
use super::counters::Tally;
use super::fault::Fault;
use super::shaders::Kernel;
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: wgpu::AdapterInfo,
    /// The device's limits (`max_compute_workgroups_per_dimension` possibly lowered by
    /// [`super::GpuOptions`]).
    pub limits: wgpu::Limits,
    pub precision: Precision,
    /// Why this precision ([`super::adapter::choose_precision`]).
    pub precision_reason: &'static str,
    /// What the device was asked to do ([`super::counters`]).
    pub tally: Tally,
    params_layout: wgpu::BindGroupLayout,
    /// The fault to inject (tests; see [`super::fault`]).
    pub fault: Option<Fault>,
    /// Why the device was lost, once it was.
    lost: Arc<Mutex<Option<String>>>,
    /// The first error no scope captured.
    uncaptured: Arc<Mutex<Option<String>>>,
}

/// Why no GPU could be opened.
#[derive(Debug)]
pub enum Unavailable {
    /// A choice, not a fault: `--device auto` passes over software renderers, `--device cpu`
    /// over every GPU.
    Declined(String),
    /// No adapter, a missing feature, or a device, allocation or shader failure.
    Fault(String),
}

impl From<Unavailable> for Error {
    fn from(e: Unavailable) -> Self {
        match e {
            Unavailable::Declined(m) | Unavailable::Fault(m) => Error::Gpu(m),
        }
    }
}

impl From<Error> for Unavailable {
    fn from(e: Error) -> Self {
        match e {
            Error::Gpu(m) => Unavailable::Fault(m),
            other => Unavailable::Fault(other.to_string()),
        }
    }
}

/// A compiled kernel: its pipeline and the layout of its storage bindings (group 1; group 0 is
/// the parameter ring).
pub struct Pipeline {
    pub name: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// A bind group of storage buffers (group 1) and the bytes it binds, which each dispatch of it
/// adds to the traffic estimate of [`super::counters`].
pub struct Bound {
    pub group: wgpu::BindGroup,
    pub bytes: u64,
}

/// Access of one storage binding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// Errors raised by wgpu while a scope is open (wgpu reports them per thread, not per call).
/// The guards are declared in reverse order of their pushes: dropped unpopped, they pop in order.
pub struct ErrorScope {
    validation: wgpu::ErrorScopeGuard,
    internal: wgpu::ErrorScopeGuard,
    memory: wgpu::ErrorScopeGuard,
}

impl ErrorScope {
    /// The first error captured, on one line, its kind first (out-of-memory errors first).
    pub fn close(self) -> std::result::Result<(), String> {
        let validation = pollster::block_on(self.validation.pop());
        let internal = pollster::block_on(self.internal.pop());
        let memory = pollster::block_on(self.memory.pop());
        match memory.or(validation).or(internal) {
            Some(e) => Err(one_line(&e)),
            None => Ok(()),
        }
    }
}

/// A wgpu error on one line: its kind, then the first line of each error in its source chain
/// (wgpu's own text spans several lines, with the WGSL excerpt of a shader error).
fn one_line(e: &wgpu::Error) -> String {
    let mut parts = vec![
        match e {
            wgpu::Error::OutOfMemory { .. } => "out of memory",
            wgpu::Error::Validation { .. } => "validation error",
            wgpu::Error::Internal { .. } => "internal error",
        }
        .to_string(),
    ];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) {
            parts.push(line.to_string());
        }
        source = s.source();
    }
    parts.join(": ")
}

impl GpuContext {
    /// Opens the best adapter; software renderers only when `allow_software`. `precision`
    /// `None` chooses by the adapter ([`super::adapter::choose_precision`]).
    pub fn open(
        allow_software: bool,
        precision: Option<Precision>,
        fault: Option<Fault>,
    ) -> std::result::Result<Self, Unavailable> {
        let adapter = best_adapter(allow_software, fault)?;
        let info = adapter.get_info();
        let has_f64 = adapter.features().contains(wgpu::Features::SHADER_F64);
        let (precision, precision_reason) =
            super::adapter::choose_precision(&info, has_f64, precision)
                .map_err(Unavailable::Fault)?;
        let required_features = match precision {
            Precision::F64 => wgpu::Features::SHADER_F64,
            Precision::F32 => wgpu::Features::empty(),
        };
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("detbal"),
            required_features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Unavailable::Fault(format!("cannot open {}: {e}", info.name)))?;
        let (lost, uncaptured) = record_errors(&device);
        let params_layout = params_ring_layout(&device);
        Ok(GpuContext {
            device,
            queue,
            adapter: info,
            limits,
            precision,
            precision_reason,
            tally: Tally::default(),
            params_layout,
            fault,
            lost,
            uncaptured,
        })
    }

    /// Under `DETBAL_GPU_FAULT=device-lost`, loses the device (called before each read-back).
    pub fn inject_loss(&self) {
        if self.fault == Some(Fault::DeviceLost) {
            self.device.destroy();
        }
    }

    /// An [`Error::Gpu`] when the device was lost or an error escaped every scope.
    pub fn check(&self) -> Result<()> {
        if let Some(why) = self.lost.lock().expect("not poisoned").as_ref() {
            return Err(Error::Gpu(format!(
                "the GPU device was lost ({why}){}",
                note(self.fault, Fault::DeviceLost)
            )));
        }
        match self.uncaptured.lock().expect("not poisoned").as_ref() {
            Some(why) => Err(Error::Gpu(why.clone())),
            None => Ok(()),
        }
    }

    /// `"<name> (<API>, <device type>)"`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.adapter.name, self.adapter.backend, self.adapter.device_type
        )
    }

    /// The precision's description and why it was chosen (the end of the device reason).
    pub fn precision_text(&self) -> String {
        format!("{}: {}", self.precision.describe(), self.precision_reason)
    }

    /// Starts capturing this thread's wgpu errors.
    pub fn scope(&self) -> ErrorScope {
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        ErrorScope {
            validation,
            internal,
            memory,
        }
    }

    pub fn params_layout(&self) -> &wgpu::BindGroupLayout {
        &self.params_layout
    }

    /// Compiles `kernel` in this context's precision with storage bindings `access` (binding
    /// `i` of group 1 has `access[i]`) and pipeline constants `constants` (`OP`, `SIGNED`).
    pub fn pipeline(
        &self,
        kernel: Kernel,
        access: &[Access],
        constants: &[(&str, f64)],
    ) -> Result<Pipeline> {
        let scope = self.scope();
        let entries: Vec<wgpu::BindGroupLayoutEntry> = access
            .iter()
            .enumerate()
            .map(|(i, a)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *a == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(kernel.stem),
                entries: &entries,
            });
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(kernel.stem),
                bind_group_layouts: &[Some(&self.params_layout), Some(&layout)],
                immediate_size: 0,
            });
        let mut source = kernel.source(self.precision);
        if self.fault == Some(Fault::Shader) {
            source.push_str("\nfn injected_fault( {\n");
        }
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(kernel.stem),
                source: wgpu::ShaderSource::Wgsl(Cow::Owned(source)),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.stem),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    ..Default::default()
                },
                cache: None,
            });
        scope.close().map_err(|e| {
            Error::Gpu(format!(
                "cannot compile kernel {} (shader or pipeline rejected): {}{}",
                kernel.stem,
                e,
                note(self.fault, Fault::Shader)
            ))
        })?;
        Ok(Pipeline {
            name: kernel.stem,
            pipeline,
            layout,
        })
    }
}

/// `fault`'s note when it is `injected`, else nothing.
fn note(injected: Option<Fault>, fault: Fault) -> String {
    if injected == Some(fault) {
        fault.note()
    } else {
        String::new()
    }
}

/// Why `--device auto` passes over the software renderer `name` (the summary's `Device` line):
/// it runs the GPU kernels, for testing them, but slower than the CPU path (7× on the bundled
/// sample with llvmpipe), so recommending it would recommend the slower path.
fn software_declined(name: &str) -> String {
    format!(
        "no hardware GPU adapter found; {name} is a software renderer, slower than the CPU: \
         --device gpu uses it to test the GPU kernels, not for speed"
    )
}

/// The adapter [`choose`] picks among those `WGPU_ADAPTER_NAME` leaves; one without compute
/// shaders is refused.
fn best_adapter(
    allow_software: bool,
    fault: Option<Fault>,
) -> std::result::Result<wgpu::Adapter, Unavailable> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    if let Ok(name) = std::env::var("WGPU_ADAPTER_NAME") {
        let name = name.to_lowercase();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&name));
    }
    if fault == Some(Fault::NoAdapter) {
        adapters.clear();
    }
    let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
    let adapter = adapters.swap_remove(choose(&infos, allow_software, fault)?);
    let mut downlevel = adapter.get_downlevel_capabilities().flags;
    if fault == Some(Fault::MissingFeature) {
        downlevel.remove(wgpu::DownlevelFlags::COMPUTE_SHADERS);
    }
    if !downlevel.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
        return Err(Unavailable::Fault(format!(
            "{} lacks a feature every kernel needs: compute shaders{}",
            adapter.get_info().name,
            note(fault, Fault::MissingFeature)
        )));
    }
    Ok(adapter)
}

/// Where `device` records why it was lost and the first error no scope captured (module docs),
/// in that order; wgpu's default handler would panic.
fn record_errors(
    device: &wgpu::Device,
) -> (Arc<Mutex<Option<String>>>, Arc<Mutex<Option<String>>>) {
    let lost = Arc::new(Mutex::new(None));
    let record = Arc::clone(&lost);
    device.set_device_lost_callback(move |reason, message| {
        let why = match message.as_str() {
            "" => format!("{reason:?}"),
            _ => format!("{reason:?}: {message}"),
        };
        *record.lock().expect("not poisoned") = Some(why);
    });
    let uncaptured = Arc::new(Mutex::new(None));
    let record = Arc::clone(&uncaptured);
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        record
            .lock()
            .expect("not poisoned")
            .get_or_insert_with(|| one_line(&e));
    }));
    (lost, uncaptured)
}

/// The layout of the parameter ring (group 0): one uniform block at a dynamic offset.
fn params_ring_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("params"),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: wgpu::BufferSize::new(super::buffers::PARAMS_BYTES),
            },
            count: None,
        }],
    })
}

/// Index of the adapter to use: hardware before software, Vulkan before other APIs; why not
/// when there is none (or only software ones and `!allow_software`).
fn choose(
    adapters: &[wgpu::AdapterInfo],
    allow_software: bool,
    fault: Option<Fault>,
) -> std::result::Result<usize, Unavailable> {
    let best = (0..adapters.len()).min_by_key(|&i| {
        let a = &adapters[i];
        (
            a.device_type == wgpu::DeviceType::Cpu,
            a.backend != wgpu::Backend::Vulkan,
        )
    });
    let Some(best) = best else {
        return Err(Unavailable::Fault(format!(
            "no GPU adapter found (this build supports Vulkan, Metal and DX12); on Linux, \
             `apt-get install mesa-vulkan-drivers` provides lavapipe, a software GPU{}",
            note(fault, Fault::NoAdapter)
        )));
    };
    if !allow_software && adapters[best].device_type == wgpu::DeviceType::Cpu {
        return Err(Unavailable::Declined(software_declined(
            &adapters[best].name,
        )));
    }
    Ok(best)
}

impl Pipeline {
    /// A bind group of whole buffers for group 1, in binding order.
    pub fn bind(&self, ctx: &GpuContext, buffers: &[&wgpu::Buffer]) -> Bound {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        ctx.tally.bind_group();
        Bound {
            group: ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(self.name),
                layout: &self.layout,
                entries: &entries,
            }),
            bytes: buffers.iter().map(|b| b.size()).sum(),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An adapter's description for the selection tests (here and in `adapter.rs`).
    pub(in crate::backend::gpu) fn adapter(
        name: &str,
        device_type: wgpu::DeviceType,
        backend: wgpu::Backend,
    ) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo {
            name: name.into(),
            vendor: 0,
            device: 0,
            device_type,
            device_pci_bus_id: String::new(),
            driver: String::new(),
            driver_info: String::new(),
            backend,
            subgroup_min_size: 4,
            subgroup_max_size: 128,
            transient_saves_memory: None,
            limit_bucket: None,
        }
    }

    #[test]
    fn hardware_and_vulkan_come_first() {
        use wgpu::{Backend::*, DeviceType::*};
        let list = [
            adapter("llvmpipe", Cpu, Vulkan),
            adapter("igpu-dx12", IntegratedGpu, Dx12),
            adapter("igpu-vk", IntegratedGpu, Vulkan),
        ];
        assert_eq!(choose(&list, false, None).unwrap(), 2);
        assert_eq!(choose(&list[..1], true, None).unwrap(), 0);
    }

    #[test]
    fn auto_refuses_software_renderers_and_says_why() {
        use wgpu::{Backend::*, DeviceType::*};
        let Err(Unavailable::Declined(why)) =
            choose(&[adapter("llvmpipe (LLVM 15)", Cpu, Vulkan)], false, None)
        else {
            panic!("a software renderer was accepted");
        };
        assert_eq!(
            why,
            "no hardware GPU adapter found; llvmpipe (LLVM 15) is a software renderer, slower \
             than the CPU: --device gpu uses it to test the GPU kernels, not for speed"
        );
        assert!(!why.contains("pass --device gpu"), "{why}");
        let Err(Unavailable::Fault(why)) = choose(&[], true, None) else {
            panic!("no adapter was accepted");
        };
        assert!(why.starts_with("no GPU adapter found"), "{why}");
    }
}
