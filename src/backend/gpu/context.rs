//! The GPU device: which adapter, the device and queue, error capture, and the pipeline factory
//! every kernel uses. One context (one device) serves all kernels of a [`super::GpuBackend`].
//!
//! Adapter order: hardware adapters (any device type but `Cpu`) before software renderers,
//! Vulkan before the other APIs. `WGPU_BACKEND` restricts the APIs (e.g. `vulkan`) and
//! `WGPU_ADAPTER_NAME` the adapter names (case-insensitive substring). The device gets the
//! adapter's own limits and, of the optional features, only `SHADER_F64` (the one the kernels
//! use: it selects the f64 precision).

use super::Precision;
use super::shaders::Kernel;
use crate::error::{Error, Result};
use std::borrow::Cow;

pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: wgpu::AdapterInfo,
    /// The device's limits (`max_compute_workgroups_per_dimension` possibly lowered by
    /// [`super::GpuOptions`]).
    pub limits: wgpu::Limits,
    pub precision: Precision,
    params_layout: wgpu::BindGroupLayout,
}

/// A compiled kernel: its pipeline and the layout of its storage bindings (group 1; group 0 is
/// the parameter ring).
pub struct Pipeline {
    pub name: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// Access of one storage binding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// Errors raised by wgpu while a scope is open (wgpu reports them per thread, not per call).
pub struct ErrorScope {
    validation: wgpu::ErrorScopeGuard,
    memory: wgpu::ErrorScopeGuard,
}

/// What went wrong inside an [`ErrorScope`].
pub enum ScopeError {
    OutOfMemory(String),
    Other(String),
}

impl ErrorScope {
    pub fn close(self) -> std::result::Result<(), ScopeError> {
        let validation = pollster::block_on(self.validation.pop());
        let memory = pollster::block_on(self.memory.pop());
        match (memory, validation) {
            (Some(e), _) => Err(ScopeError::OutOfMemory(e.to_string())),
            (None, Some(e)) => Err(ScopeError::Other(e.to_string())),
            (None, None) => Ok(()),
        }
    }
}

impl From<ScopeError> for Error {
    fn from(e: ScopeError) -> Self {
        match e {
            ScopeError::OutOfMemory(m) => Error::Gpu(format!("out of device memory: {m}")),
            ScopeError::Other(m) => Error::Gpu(m),
        }
    }
}

impl GpuContext {
    /// Opens the best adapter; software renderers only when `allow_software`. `precision`
    /// `None` takes f64 when the adapter has `SHADER_F64`.
    pub fn open(allow_software: bool, precision: Option<Precision>) -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        if let Ok(name) = std::env::var("WGPU_ADAPTER_NAME") {
            let name = name.to_lowercase();
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(&name));
        }
        let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
        let adapter = &adapters[choose(&infos, allow_software)?];
        let info = adapter.get_info();
        let has_f64 = adapter.features().contains(wgpu::Features::SHADER_F64);
        let precision = match precision {
            Some(Precision::F64) if !has_f64 => {
                return Err(Error::Gpu(format!(
                    "{} lacks SHADER_F64, which f64 precision needs",
                    info.name
                )));
            }
            Some(p) => p,
            None if has_f64 => Precision::F64,
            None => Precision::F32,
        };
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
        .map_err(|e| Error::Gpu(format!("cannot open {}: {e}", info.name)))?;
        let params_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
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
        });
        Ok(GpuContext {
            device,
            queue,
            adapter: info,
            limits,
            precision,
            params_layout,
        })
    }

    /// `"<name> (<API>, <device type>)"`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.adapter.name, self.adapter.backend, self.adapter.device_type
        )
    }

    /// Starts capturing this thread's wgpu errors.
    pub fn scope(&self) -> ErrorScope {
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        ErrorScope { validation, memory }
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
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(kernel.stem),
                source: wgpu::ShaderSource::Wgsl(Cow::Owned(kernel.source(self.precision))),
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
        scope
            .close()
            .map_err(|e| Error::Gpu(format!("kernel {}: {}", kernel.stem, Error::from(e))))?;
        Ok(Pipeline {
            name: kernel.stem,
            pipeline,
            layout,
        })
    }
}

/// Index of the adapter to use: hardware before software, Vulkan before other APIs; an
/// [`Error::Gpu`] saying why when there is none (or only software ones and `!allow_software`).
fn choose(adapters: &[wgpu::AdapterInfo], allow_software: bool) -> Result<usize> {
    let best = (0..adapters.len()).min_by_key(|&i| {
        let a = &adapters[i];
        (
            a.device_type == wgpu::DeviceType::Cpu,
            a.backend != wgpu::Backend::Vulkan,
        )
    });
    let Some(best) = best else {
        return Err(Error::Gpu(
            "no GPU adapter found (this build supports Vulkan, Metal and DX12); on Linux, \
             `apt-get install mesa-vulkan-drivers` provides lavapipe, a software GPU"
                .into(),
        ));
    };
    if !allow_software && adapters[best].device_type == wgpu::DeviceType::Cpu {
        return Err(Error::Gpu(format!(
            "no hardware GPU adapter found (only {}, a software renderer); pass --device gpu \
             to use it",
            adapters[best].name
        )));
    }
    Ok(best)
}

impl Pipeline {
    /// A bind group of whole buffers for group 1, in binding order.
    pub fn bind(&self, ctx: &GpuContext, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.name),
            layout: &self.layout,
            entries: &entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(
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
        assert_eq!(choose(&list, false).unwrap(), 2);
        assert_eq!(choose(&list[..1], true).unwrap(), 0);
    }

    #[test]
    fn auto_refuses_software_renderers_and_says_why() {
        use wgpu::{Backend::*, DeviceType::*};
        let Err(Error::Gpu(why)) = choose(&[adapter("llvmpipe (LLVM 15)", Cpu, Vulkan)], false)
        else {
            panic!("a software renderer was accepted");
        };
        assert_eq!(
            why,
            "no hardware GPU adapter found (only llvmpipe (LLVM 15), a software renderer); \
             pass --device gpu to use it"
        );
        let Err(Error::Gpu(why)) = choose(&[], true) else {
            panic!("no adapter was accepted");
        };
        assert!(why.starts_with("no GPU adapter found"), "{why}");
    }
}
