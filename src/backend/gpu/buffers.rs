//! Device buffers: the uploaded problem (split into batches where an array exceeds one storage
//! binding), the dispatch parameters, and the [`Recorder`] that batches many dispatches into one
//! command buffer and reads back only scalars.
//!
//! Sizes per edge: src + dst (8 B), weight, deriv and curvature (3 × 8 B in f64, 3 × 4 B in
//! f32), two incidence entries (8 B); per state: V, gradient, preconditioner, curvature floor and
//! solver vectors (8 or 4 B each), the sum (8 B) and the segment arrays (8 B). Edge and incidence arrays larger
//! than `max_storage_buffer_binding_size` (128 MiB on lavapipe) are split into batches of their
//! own buffers; per-state arrays must each fit one binding (16.7 M states at 128 MiB).

use super::Precision;
use super::context::{Bound, GpuContext, Pipeline};
use super::fault::Fault;
use super::shaders::{ITEMS, RUN, WG};
use crate::backend::problem::ActionProblem;
use crate::error::{Error, Result};
use wgpu::util::DeviceExt;

/// Parameters of one dispatch; kept in sync with `Params` in shaders/common.wgsl (the fields'
/// meaning per kernel is documented there and in each kernel).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Params {
    pub n: u32,
    pub base: u32,
    pub lo: u32,
    pub hi: u32,
    pub extra: u32,
    pub pad: u32,
    pub alpha_hi: f32,
    pub alpha_lo: f32,
}

pub const PARAMS_BYTES: u64 = std::mem::size_of::<Params>() as u64;

impl Params {
    pub fn new(n: u32) -> Self {
        Params {
            n,
            ..Default::default()
        }
    }

    /// Sets the scalar α, split into two f32 whose sum holds 48 bits of it.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha_hi = alpha as f32;
        self.alpha_lo = (alpha - f64::from(self.alpha_hi)) as f32;
        self
    }
}

/// Dispatches recorded between two submits (each uses one slot of the parameter ring).
const RING_SLOTS: u64 = 512;
/// Scalar results a [`Recorder`] can hold for one read-back.
pub const SCALAR_SLOTS: u32 = 4;

pub const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// Buffers hold at least this many bytes (bindings cannot be empty).
const MIN_BYTES: u64 = 16;

pub fn storage_init(ctx: &GpuContext, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    if bytes.len() as u64 >= MIN_BYTES && bytes.len().is_multiple_of(4) {
        ctx.tally.upload(bytes.len() as u64);
        ctx.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytes,
                usage: STORAGE,
            })
    } else {
        let mut padded = bytes.to_vec();
        padded.resize(
            (bytes.len() as u64).max(MIN_BYTES).next_multiple_of(4) as usize,
            0,
        );
        storage_init(ctx, label, &padded)
    }
}

/// A zero-filled storage buffer (wgpu zero-initialises buffers).
pub fn storage_zeroed(ctx: &GpuContext, label: &str, bytes: u64) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(MIN_BYTES).next_multiple_of(4),
        usage: STORAGE,
        mapped_at_creation: false,
    })
}

/// Workgroups for `items` items of `per_group` each.
pub fn groups_for(items: u32, per_group: u32) -> u32 {
    items.div_ceil(per_group)
}

/// One dispatch kept to be recorded again: a kernel, its bind group (created once) and its
/// parameters.
pub struct Dispatch<'k> {
    pub kernel: &'k Pipeline,
    pub group: Bound,
    pub params: Params,
    pub groups: u32,
}

/// Records dispatches, copies and clears into one command encoder and submits them only when a
/// result is read back (or the parameter ring is full): on lavapipe a submit + map + poll round
/// trip costs ~0.5 ms, a dependent dispatch ~60 µs (docs/GPU.md §1.3). Consecutive dispatches
/// share one compute pass; a copy, a clear or a submit ends it.
pub struct Recorder<'a> {
    ctx: &'a GpuContext,
    encoder: wgpu::CommandEncoder,
    /// The open compute pass of `encoder`, if any.
    pass: Option<wgpu::ComputePass<'static>>,
    ring: wgpu::Buffer,
    ring_group: wgpu::BindGroup,
    stride: u64,
    staged: Vec<u8>,
    scalars: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Ping-pong space for reductions of up to `scratch_items` inputs.
    pub scratch: [wgpu::Buffer; 2],
}

impl<'a> Recorder<'a> {
    /// A recorder whose reductions take up to `max_items` inputs.
    pub fn new(ctx: &'a GpuContext, max_items: u32) -> Self {
        let stride = PARAMS_BYTES.max(u64::from(ctx.limits.min_uniform_buffer_offset_alignment));
        let ring = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params ring"),
            size: stride * RING_SLOTS,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let ring_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("params ring"),
            layout: ctx.params_layout(),
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &ring,
                    offset: 0,
                    size: wgpu::BufferSize::new(PARAMS_BYTES),
                }),
            }],
        });
        let acc = Precision::ACC_BYTES;
        let scratch_bytes = u64::from(groups_for(max_items, ITEMS * WG)) * acc;
        Recorder {
            ctx,
            encoder: new_encoder(ctx),
            pass: None,
            ring,
            ring_group,
            stride,
            staged: Vec::new(),
            scalars: storage_zeroed(ctx, "scalars", u64::from(SCALAR_SLOTS) * acc),
            readback: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("scalar read-back"),
                size: u64::from(SCALAR_SLOTS) * acc,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            scratch: [
                storage_zeroed(ctx, "reduce scratch 0", scratch_bytes),
                storage_zeroed(ctx, "reduce scratch 1", scratch_bytes),
            ],
        }
    }

    pub fn ctx(&self) -> &'a GpuContext {
        self.ctx
    }

    /// Where reductions leave their results, one `Acc` per slot.
    pub fn scalars(&self) -> &wgpu::Buffer {
        &self.scalars
    }

    /// Records `groups` workgroups of `kernel`, as a 2-D grid when `groups` exceeds the
    /// per-dimension limit (kernels recover the linear index with `group_index`).
    pub fn dispatch(&mut self, kernel: &Pipeline, group: &Bound, params: Params, groups: u32) {
        if groups == 0 {
            return;
        }
        self.ctx.tally.dispatch(group.bytes);
        if self.staged.len() as u64 >= self.stride * RING_SLOTS {
            self.submit();
        }
        let offset = self.staged.len();
        self.staged.extend_from_slice(bytemuck::bytes_of(&params));
        self.staged.resize(offset + self.stride as usize, 0);
        let max = self.ctx.limits.max_compute_workgroups_per_dimension;
        let (x, y) = if groups <= max {
            (groups, 1)
        } else {
            (max, groups.div_ceil(max))
        };
        let encoder = &mut self.encoder;
        let pass = self.pass.get_or_insert_with(|| {
            encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: None,
                })
                .forget_lifetime()
        });
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &self.ring_group, &[offset as u32]);
        pass.set_bind_group(1, &group.group, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }

    /// Records `d` again.
    pub fn replay(&mut self, d: &Dispatch) {
        self.dispatch(d.kernel, &d.group, d.params, d.groups);
    }

    pub fn copy(&mut self, src: &wgpu::Buffer, dst: &wgpu::Buffer, bytes: u64) {
        self.pass = None;
        self.encoder.copy_buffer_to_buffer(src, 0, dst, 0, bytes);
    }

    /// Zero-fills `bytes` bytes of `buffer` from `offset` (the whole buffer when `None`).
    pub fn clear(&mut self, buffer: &wgpu::Buffer, offset: u64, bytes: Option<u64>) {
        self.pass = None;
        self.encoder.clear_buffer(buffer, offset, bytes);
    }

    /// Sends everything recorded so far to the device.
    pub fn submit(&mut self) {
        self.pass = None;
        self.ctx.tally.submit(self.staged.len() as u64);
        if !self.staged.is_empty() {
            self.ctx.queue.write_buffer(&self.ring, 0, &self.staged);
            self.staged.clear();
        }
        let encoder = std::mem::replace(&mut self.encoder, new_encoder(self.ctx));
        self.ctx.queue.submit([encoder.finish()]);
    }

    /// Submits and returns the first `count` scalar slots.
    pub fn read_scalars(&mut self, count: u32) -> Result<Vec<f64>> {
        let bytes = u64::from(count) * Precision::ACC_BYTES;
        self.pass = None;
        self.encoder
            .copy_buffer_to_buffer(&self.scalars, 0, &self.readback, 0, bytes);
        let raw = self.read(&self.readback.clone(), bytes)?;
        Ok(self.ctx.precision.decode_acc(&raw))
    }

    /// Submits and returns the first `len` elements of a vector (`Real`) buffer.
    pub fn download(&mut self, buffer: &wgpu::Buffer, len: u32) -> Result<Vec<f64>> {
        let bytes = u64::from(len) * self.ctx.precision.real_bytes();
        let raw = self.download_bytes(buffer, 0, bytes)?;
        Ok(self.ctx.precision.decode_real(&raw))
    }

    /// Submits and returns `bytes` bytes of `buffer` from `offset` (both multiples of 4).
    pub fn download_bytes(
        &mut self,
        buffer: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
    ) -> Result<Vec<u8>> {
        let mut parts = self.read_parts(&[(buffer, offset, bytes)])?;
        Ok(parts.pop().expect("one part"))
    }

    /// Submits and returns each `(buffer, offset, bytes)` part (multiples of 4), all in one
    /// read-back.
    pub fn read_parts(&mut self, parts: &[(&wgpu::Buffer, u64, u64)]) -> Result<Vec<Vec<u8>>> {
        let total: u64 = parts.iter().map(|p| p.2).sum();
        if total == 0 {
            return Ok(parts.iter().map(|_| Vec::new()).collect());
        }
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: total.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.pass = None;
        let mut at = 0;
        for &(buffer, offset, bytes) in parts {
            if bytes > 0 {
                self.encoder
                    .copy_buffer_to_buffer(buffer, offset, &staging, at, bytes);
            }
            at += bytes;
        }
        let data = self.read(&staging, total)?;
        let mut at = 0;
        Ok(parts
            .iter()
            .map(|p| {
                at += p.2 as usize;
                data[at - p.2 as usize..at].to_vec()
            })
            .collect())
    }

    /// Submits, waits, and copies `bytes` bytes out of the mappable `staging` buffer. A lost
    /// device, or any error recorded since the last read, is an [`Error::Gpu`].
    fn read(&mut self, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let scope = self.ctx.scope();
        self.ctx.inject_loss();
        self.submit();
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..bytes, move |r| {
            let _ = tx.send(r);
        });
        let polled = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
        let scoped = scope.close();
        self.ctx.check()?;
        scoped.map_err(Error::Gpu)?;
        polled.map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
        rx.recv()
            .map_err(|_| Error::Gpu("read-back was cancelled".into()))?
            .map_err(|e| Error::Gpu(format!("read-back failed: {e}")))?;
        self.ctx.tally.readback(bytes);
        let data = staging
            .get_mapped_range(..bytes)
            .map_err(|e| Error::Gpu(format!("read-back failed: {e}")))?
            .to_vec();
        staging.unmap();
        Ok(data)
    }
}

/// `bytes` in KiB, MiB or GiB.
pub fn show_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..0x10_0000 => format!("{:.1} KiB", b / 1024.0),
        0x10_0000..0x4000_0000 => format!("{:.1} MiB", b / f64::from(1 << 20)),
        _ => format!("{:.1} GiB", b / f64::from(1 << 30)),
    }
}

fn new_encoder(ctx: &GpuContext) -> wgpu::CommandEncoder {
    ctx.device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
}

/// Edges `first .. first + len` in buffers of their own.
pub struct EdgeBatch {
    pub first: u32,
    pub len: u32,
    pub src: wgpu::Buffer,
    pub dst: wgpu::Buffer,
    pub weight: wgpu::Buffer,
    /// `w K'(d)` per edge, written by edge_action.
    pub deriv: wgpu::Buffer,
    /// `w K''(d)` per edge, written by edge_action.
    pub curvature: wgpu::Buffer,
    /// Index of this batch's first per-workgroup partial value.
    pub partial_base: u32,
}

/// Incidence entries `first .. first + len`.
pub struct EntryBatch {
    pub first: u32,
    pub len: u32,
    pub incidence: wgpu::Buffer,
}

/// An [`ActionProblem`] on the device.
pub struct ProblemBuffers {
    pub n_states: u32,
    pub l2: f64,
    pub edges: Vec<EdgeBatch>,
    pub entries: Vec<EntryBatch>,
    /// Non-empty nodes in incidence order: segment `s` covers entries
    /// `seg_ptr[s] .. seg_ptr[s+1]` of node `seg_node[s]`.
    pub seg_ptr: wgpu::Buffer,
    pub seg_node: wgpu::Buffer,
    pub n_segments: u32,
    /// Per-state gradient sums (`Acc`), cleared before each gradient.
    pub grad_acc: wgpu::Buffer,
    /// Carry arrays (keys, sums) of the gradient's fix-up levels, used in turn.
    pub carries: [(wgpu::Buffer, wgpu::Buffer); 2],
    /// One partial action value per edge_action workgroup.
    pub partials: wgpu::Buffer,
    pub n_partials: u32,
    /// Lower bounds of the Hessian diagonal ([`ActionProblem::curvature_floor`]).
    pub curvature_floor: wgpu::Buffer,
}

impl ProblemBuffers {
    /// Uploads `problem`; `max_binding` (bytes) caps every buffer, normally the device's
    /// `max_storage_buffer_binding_size`. An [`Error::Gpu`] when it does not fit the bindings or
    /// a buffer cannot be created.
    pub fn upload(ctx: &GpuContext, problem: &ActionProblem, max_binding: u64) -> Result<Self> {
        let precision = ctx.precision;
        let real = precision.real_bytes();
        let n_states = problem.n_states as u64;
        let n_edges = problem.n_edges() as u64;
        let per_state = Precision::ACC_BYTES.max(real);
        if n_states * per_state > max_binding {
            return Err(Error::Gpu(format!(
                "{n_states} states need {} per state array, above the device's {} \
                 storage-binding limit",
                show_bytes(n_states * per_state),
                show_bytes(max_binding)
            )));
        }
        let total = n_edges * (16 + 3 * real) + n_states * (8 * real + Precision::ACC_BYTES + 8);
        let scope = ctx.scope();
        let buffers = Self::create(ctx, problem, max_binding);
        let injected = (ctx.fault == Some(Fault::Allocation)).then(|| {
            storage_zeroed(
                ctx,
                "injected fault",
                ctx.limits.max_buffer_size.saturating_add(4),
            )
        });
        scope.close().map_err(|m| {
            Error::Gpu(format!(
                "buffer allocation failed: the graph needs about {} of device memory ({} edges, \
                 {} states) and the device could not allocate it: {m}{}",
                show_bytes(total),
                n_edges,
                n_states,
                injected.map_or(String::new(), |_| Fault::Allocation.note())
            ))
        })?;
        Ok(buffers)
    }

    /// Creates the buffers (in the caller's error scope).
    fn create(ctx: &GpuContext, problem: &ActionProblem, max_binding: u64) -> Self {
        let precision = ctx.precision;
        let n = problem.n_states;
        let (edges, partial_base) = EdgeBatch::upload_all(ctx, problem, max_binding);
        let (entries, longest) = EntryBatch::upload_all(ctx, problem, max_binding);
        let (seg_ptr, seg_node) = segments(problem);

        let acc = Precision::ACC_BYTES;
        let level1 = u64::from(groups_for(longest, RUN));
        let level2 = u64::from(groups_for(level1 as u32, RUN));
        let carry = |len: u64, label: &str| {
            (
                storage_zeroed(ctx, label, len * 4),
                storage_zeroed(ctx, label, len * acc),
            )
        };
        ProblemBuffers {
            n_states: n as u32,
            l2: problem.l2,
            edges,
            entries,
            n_segments: seg_node.len() as u32,
            seg_ptr: storage_init(ctx, "seg_ptr", bytemuck::cast_slice(&seg_ptr)),
            seg_node: storage_init(ctx, "seg_node", bytemuck::cast_slice(&seg_node)),
            grad_acc: storage_zeroed(ctx, "grad_acc", n as u64 * acc),
            carries: [carry(level1, "carries 0"), carry(level2, "carries 1")],
            partials: storage_zeroed(ctx, "partials", u64::from(partial_base) * acc),
            n_partials: partial_base,
            curvature_floor: storage_init(
                ctx,
                "curvature floor",
                &precision.encode(&problem.curvature_floor()),
            ),
        }
    }
}

impl EdgeBatch {
    /// The edges in batches of at most `max_binding` bytes per array, and the number of
    /// edge_action workgroups (partial values) over all batches.
    fn upload_all(
        ctx: &GpuContext,
        problem: &ActionProblem,
        max_binding: u64,
    ) -> (Vec<EdgeBatch>, u32) {
        let precision = ctx.precision;
        let real = precision.real_bytes();
        let m = problem.n_edges();
        let edge_batch = (max_binding / real.max(4)).max(1) as usize;
        let mut edges = Vec::new();
        let mut partial_base = 0;
        for first in (0..m).step_by(edge_batch) {
            let range = first..(first + edge_batch).min(m);
            let len = range.len() as u32;
            edges.push(EdgeBatch {
                first: first as u32,
                len,
                src: storage_init(
                    ctx,
                    "src",
                    bytemuck::cast_slice(&problem.src[range.clone()]),
                ),
                dst: storage_init(
                    ctx,
                    "dst",
                    bytemuck::cast_slice(&problem.dst[range.clone()]),
                ),
                weight: storage_init(ctx, "weight", &precision.encode(&problem.weight[range])),
                deriv: storage_zeroed(ctx, "deriv", u64::from(len) * real),
                curvature: storage_zeroed(ctx, "curvature", u64::from(len) * real),
                partial_base,
            });
            partial_base += groups_for(len, WG);
        }
        (edges, partial_base)
    }
}

impl EntryBatch {
    /// The incidence entries in batches of at most `max_binding` bytes, each of whole runs (so
    /// no run straddles two batches), and the longest batch's length.
    fn upload_all(
        ctx: &GpuContext,
        problem: &ActionProblem,
        max_binding: u64,
    ) -> (Vec<EntryBatch>, u32) {
        let m = problem.n_edges();
        let entry_batch =
            ((max_binding / 4) as usize / RUN as usize * RUN as usize).max(RUN as usize);
        let mut entries = Vec::new();
        let mut longest = 0;
        for first in (0..2 * m).step_by(entry_batch) {
            let range = first..(first + entry_batch).min(2 * m);
            longest = longest.max(range.len() as u32);
            entries.push(EntryBatch {
                first: first as u32,
                len: range.len() as u32,
                incidence: storage_init(
                    ctx,
                    "incidence",
                    bytemuck::cast_slice(&problem.incidence[range]),
                ),
            });
        }
        (entries, longest)
    }
}

/// The segments of [`ProblemBuffers`]: `seg_ptr` (from 0) and `seg_node`, the non-empty nodes.
fn segments(problem: &ActionProblem) -> (Vec<u32>, Vec<u32>) {
    let mut seg_ptr = vec![0u32];
    let mut seg_node = Vec::new();
    for f in 0..problem.n_states {
        if problem.incidence_ptr[f + 1] > problem.incidence_ptr[f] {
            seg_node.push(f as u32);
            seg_ptr.push(problem.incidence_ptr[f + 1]);
        }
    }
    (seg_ptr, seg_node)
}
