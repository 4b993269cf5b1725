//! The WGSL sources. Each kernel is `shaders/<stem>.wgsl` with one entry point `main`; it is
//! compiled after a precision prelude (`shaders/precision/f64.wgsl` or `f32.wgsl`, which define
//! the vector element type `Real` and the sum type `Acc`), `shaders/common.wgsl` (dispatch
//! parameters, grid index) and, for the passes of a multi-pass kernel, the definitions its passes
//! share (`shaders/<kernel>.wgsl`, no entry point). The sources are embedded at compile time, so the binary needs no
//! shader files, and validated by naga in a plain unit test that needs no GPU.

use super::Precision;

/// One WGSL kernel.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    pub stem: &'static str,
    source: &'static str,
    /// Stem and source of the definitions shared with other passes, compiled before `source`.
    shared: Option<(&'static str, &'static str)>,
}

macro_rules! kernel {
    ($stem:literal) => {
        Kernel {
            stem: $stem,
            source: include_str!(concat!("../../../shaders/", $stem, ".wgsl")),
            shared: None,
        }
    };
    ($stem:literal after $shared:literal) => {
        Kernel {
            shared: Some((
                $shared,
                include_str!(concat!("../../../shaders/", $shared, ".wgsl")),
            )),
            ..kernel!($stem)
        }
    };
}

pub const EDGE_ACTION: Kernel = kernel!("edge_action");
pub const GATHER_GRADIENT: Kernel = kernel!("gather_gradient");
pub const GATHER_GRADIENT_CARRIES: Kernel = kernel!("gather_gradient_carries");
pub const GATHER_GRADIENT_FINISH: Kernel = kernel!("gather_gradient_finish");
pub const REDUCE: Kernel = kernel!("reduce" after "tree_reduce");
pub const REDUCE_VECTOR: Kernel = kernel!("reduce_vector" after "tree_reduce");
pub const VECTOR_OPS: Kernel = kernel!("vector_ops");
pub const HESSIAN_EDGE: Kernel = kernel!("hessian_edge");
pub const CG_UPDATE: Kernel = kernel!("cg_update" after "cg");
pub const CG_PRODUCT: Kernel = kernel!("cg_product" after "cg");
pub const CG_COEFFICIENTS: Kernel = kernel!("cg_coefficients" after "cg");
pub const RECIPROCAL_TRIANGLES_COUNT: Kernel =
    kernel!("reciprocal_triangles_count" after "reciprocal_triangles");
pub const RECIPROCAL_TRIANGLES_SCAN: Kernel = kernel!("reciprocal_triangles_scan");
pub const RECIPROCAL_TRIANGLES_WRITE: Kernel =
    kernel!("reciprocal_triangles_write" after "reciprocal_triangles");
pub const RESAMPLE: Kernel = kernel!("resample");
pub const RESAMPLE_PERMUTE: Kernel = kernel!("resample_permute" after "philox");
pub const PHILOX_DRAWS: Kernel = kernel!("philox_draws" after "philox");

#[cfg(test)]
const ALL: [Kernel; 17] = [
    EDGE_ACTION,
    GATHER_GRADIENT,
    GATHER_GRADIENT_CARRIES,
    GATHER_GRADIENT_FINISH,
    REDUCE,
    REDUCE_VECTOR,
    VECTOR_OPS,
    HESSIAN_EDGE,
    CG_UPDATE,
    CG_PRODUCT,
    CG_COEFFICIENTS,
    RECIPROCAL_TRIANGLES_COUNT,
    RECIPROCAL_TRIANGLES_SCAN,
    RECIPROCAL_TRIANGLES_WRITE,
    RESAMPLE,
    RESAMPLE_PERMUTE,
    PHILOX_DRAWS,
];

const COMMON: &str = include_str!("../../../shaders/common.wgsl");
const PRELUDE_F64: &str = include_str!("../../../shaders/precision/f64.wgsl");
const PRELUDE_F32: &str = include_str!("../../../shaders/precision/f32.wgsl");

/// Invocations per workgroup; kept in sync with `WG` in shaders/common.wgsl.
pub const WG: u32 = 256;
/// Entries (or carries) reduced by one invocation; kept in sync with `RUN` in
/// shaders/gather_gradient.wgsl and shaders/gather_gradient_carries.wgsl.
pub const RUN: u32 = 32;
/// Inputs per invocation of a reduction or a scan; kept in sync with `ITEMS` in
/// shaders/tree_reduce.wgsl (reduce, reduce_vector) and shaders/reciprocal_triangles_scan.wgsl.
pub const ITEMS: u32 = 4;
/// Cap on the merge steps of one reciprocal_triangles invocation; kept in sync with `MAX_STEPS`
/// in shaders/reciprocal_triangles.wgsl.
pub const MERGE_STEPS: u32 = 40_000;
/// Most intersection steps of one work item of reciprocal_triangles (heavier edges are split);
/// kept in sync with `HEAVY` in shaders/reciprocal_triangles.wgsl.
pub const HEAVY_STEPS: u32 = 128;
/// Items one resample invocation adds per dispatch; kept in sync with `K` in
/// shaders/resample.wgsl.
pub const RESAMPLE_ITEMS: u32 = 64;

impl Kernel {
    /// The complete module: precision prelude, common definitions, kernel.
    pub fn source(&self, precision: Precision) -> String {
        let prelude = match precision {
            Precision::F64 => PRELUDE_F64,
            Precision::F32 => PRELUDE_F32,
        };
        let shared = self.shared.map_or("", |(_, source)| source);
        format!("{prelude}\n{COMMON}\n{shared}\n{}", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::buffers::Params;

    fn parse(kernel: &Kernel, precision: Precision) -> (naga::Module, naga::valid::ModuleInfo) {
        let source = kernel.source(precision);
        let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| {
            panic!(
                "{}.wgsl ({precision:?}): {}",
                kernel.stem,
                e.emit_to_string(&source)
            )
        });
        let caps = match precision {
            Precision::F64 => naga::valid::Capabilities::FLOAT64,
            Precision::F32 => naga::valid::Capabilities::empty(),
        };
        let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .validate(&module)
            .unwrap_or_else(|e| {
                panic!(
                    "{}.wgsl ({precision:?}): {}",
                    kernel.stem,
                    e.emit_to_string(&source)
                )
            });
        (module, info)
    }

    #[test]
    fn every_kernel_parses_and_validates_in_both_precisions() {
        for kernel in ALL {
            for precision in [Precision::F64, Precision::F32] {
                let (module, _) = parse(&kernel, precision);
                let entry: Vec<_> = module.entry_points.iter().map(|e| &e.name).collect();
                assert_eq!(entry, ["main"], "{}.wgsl entry points", kernel.stem);
            }
        }
    }

    #[test]
    fn every_wgsl_file_is_a_registered_kernel() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "wgsl") {
                let stem = path.file_stem().unwrap().to_str().unwrap();
                let shared = |k: &Kernel| k.shared.is_some_and(|(s, _)| s == stem);
                assert!(
                    stem == "common" || ALL.iter().any(|k| k.stem == stem || shared(k)),
                    "shaders/{stem}.wgsl is not listed in shaders::ALL"
                );
            }
        }
    }

    /// A constant of `kernel` as the shader sees it.
    fn shader_u32(kernel: &Kernel, name: &str) -> u32 {
        let (module, _) = parse(kernel, Precision::F32);
        let (_, constant) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{}.wgsl has no constant {name}", kernel.stem));
        match module.global_expressions[constant.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => v,
            ref other => panic!("{name} is {other:?}"),
        }
    }

    #[test]
    fn rust_constants_match_the_shaders() {
        assert_eq!(shader_u32(&EDGE_ACTION, "WG"), WG);
        assert_eq!(shader_u32(&GATHER_GRADIENT, "RUN"), RUN);
        assert_eq!(shader_u32(&GATHER_GRADIENT_CARRIES, "RUN"), RUN);
        assert_eq!(shader_u32(&REDUCE, "ITEMS"), ITEMS);
        assert_eq!(shader_u32(&REDUCE_VECTOR, "ITEMS"), ITEMS);
        assert_eq!(shader_u32(&RECIPROCAL_TRIANGLES_SCAN, "ITEMS"), ITEMS);
        assert_eq!(
            shader_u32(&RECIPROCAL_TRIANGLES_COUNT, "MAX_STEPS"),
            MERGE_STEPS
        );
        assert_eq!(
            shader_u32(&RECIPROCAL_TRIANGLES_WRITE, "HEAVY"),
            HEAVY_STEPS
        );
        assert_eq!(shader_u32(&RESAMPLE, "K"), RESAMPLE_ITEMS);
        assert_eq!(
            shader_u32(&RESAMPLE_PERMUTE, "MAX_WALK"),
            crate::rng::MAX_WALK
        );
    }

    /// The size WGSL gives struct `name` in `kernel`'s module.
    fn struct_size(kernel: &Kernel, precision: Precision, name: &str) -> u64 {
        let (module, _) = parse(kernel, precision);
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (handle, _) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} in {}.wgsl", kernel.stem));
        u64::from(layouter[handle].size)
    }

    #[test]
    fn cg_state_has_the_size_the_host_reads_and_writes() {
        for precision in [Precision::F64, Precision::F32] {
            let size = struct_size(&CG_COEFFICIENTS, precision, "CgState");
            assert_eq!(size, crate::backend::gpu::cg::state_bytes(precision));
        }
    }

    #[test]
    fn params_struct_has_the_same_size_in_rust_and_wgsl() {
        for precision in [Precision::F64, Precision::F32] {
            let size = struct_size(&EDGE_ACTION, precision, "Params");
            assert_eq!(size as usize, std::mem::size_of::<Params>());
        }
    }
}
