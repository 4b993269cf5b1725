//! Adapter facts the backend decides by: which precision an adapter computes in, and what its
//! driver is.
//!
//! Precision per adapter (docs/GPU.md §4). f64 arithmetic runs at 1/2 of f32 on datacenter GPUs
//! built for it (NVIDIA P100, V100, A100, A30, H100, H200, B200; AMD Instinct MI50 and later;
//! Intel Data Center GPU Max) and at 1/16 to 1/64 on consumer and workstation GPUs (GeForce,
//! Radeon, Arc, RTX A-series, and the inference cards A10, A40, L4, L40, T4), where the all-f64
//! path would spend most of its time in the per-edge series of `K` and `σ`. So:
//! - `DETBAL_GPU_PRECISION=f32|f64` decides (f64 on an adapter without `SHADER_F64` is an error);
//! - without `SHADER_F64`: f32;
//! - a software renderer (device type `Cpu`: lavapipe): f64, which it runs at CPU speed;
//! - an adapter named as one of the full-rate f64 GPUs above: f64;
//! - any other: f32 (f32 per-edge math, compensated f32 sums read back in f64).
//!
//! Names are matched by whole tokens (`A100` in "NVIDIA A100-SXM4-80GB", not in "RTX A1000"),
//! so an unknown name falls to f32: the fast, less precise side, whose tolerances the tests
//! check on every adapter.

use super::{GpuBackend, Precision};

/// Name tokens of GPUs that run f64 at half the f32 rate (or better).
const FULL_RATE_F64: [&str; 19] = [
    "P100", "GP100", "V100", "V100S", "GV100", "A100", "A800", "A30", "H100", "H200", "H800",
    "GH200", "B100", "B200", "GB200", // NVIDIA
    "GFX908", "GFX90A", "GFX942", // AMD, as RADV names Instinct chips
    "PVC",    // Intel Ponte Vecchio (also matched by "Data Center GPU Max")
];

/// The precision for an adapter described by `info` that has `SHADER_F64` or not, given what
/// `DETBAL_GPU_PRECISION` asked for (`None`: auto), with why in a few words; an error when f64
/// is asked of an adapter without it.
pub fn choose_precision(
    info: &wgpu::AdapterInfo,
    has_f64: bool,
    asked: Option<Precision>,
) -> Result<(Precision, &'static str), String> {
    Ok(match asked {
        Some(Precision::F64) if !has_f64 => {
            return Err(format!(
                "{} lacks a feature f64 precision needs: SHADER_F64",
                info.name
            ));
        }
        Some(p) => (p, "set by DETBAL_GPU_PRECISION"),
        None if !has_f64 => (Precision::F32, "the adapter has no SHADER_F64"),
        None if info.device_type == wgpu::DeviceType::Cpu => (
            Precision::F64,
            "a software renderer, whose f64 runs on the CPU's own f64 units",
        ),
        None if full_rate_f64(&info.name) => {
            (Precision::F64, "a datacenter GPU with full-rate f64")
        }
        None => (
            Precision::F32,
            "f64 runs at 1/16 to 1/64 of f32 on GPUs outside the datacenter list",
        ),
    })
}

/// Whether `name` names a GPU of [`FULL_RATE_F64`], an AMD Instinct MI50 or later, or an Intel
/// Data Center GPU Max.
fn full_rate_f64(name: &str) -> bool {
    let upper = name.to_uppercase();
    let instinct = |token: &str| {
        token
            .strip_prefix("MI")
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|digits| digits.parse::<u32>().ok())
            .is_some_and(|model| model >= 50)
    };
    upper.contains("DATA CENTER GPU MAX")
        || upper
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|token| FULL_RATE_F64.contains(&token) || instinct(token))
}

impl GpuBackend {
    /// The driver's name and version as wgpu reports them (empty parts left out).
    pub fn driver(&self) -> String {
        let a = &self.ctx.adapter;
        [a.driver.as_str(), a.driver_info.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::context::tests::adapter;
    use wgpu::DeviceType::{Cpu, DiscreteGpu, IntegratedGpu};

    fn info(name: &str, device_type: wgpu::DeviceType) -> wgpu::AdapterInfo {
        adapter(name, device_type, wgpu::Backend::Vulkan)
    }

    fn auto(name: &str, device_type: wgpu::DeviceType) -> Precision {
        choose_precision(&info(name, device_type), true, None)
            .unwrap()
            .0
    }

    #[test]
    fn datacenter_gpus_get_f64_and_the_others_f32() {
        use Precision::{F32, F64};
        let cases = [
            ("NVIDIA H100 80GB HBM3", DiscreteGpu, F64),
            ("NVIDIA H200", DiscreteGpu, F64),
            ("NVIDIA A100-SXM4-80GB", DiscreteGpu, F64),
            ("NVIDIA GH200 480GB", DiscreteGpu, F64),
            ("Tesla V100-SXM2-16GB", DiscreteGpu, F64),
            ("NVIDIA A30", DiscreteGpu, F64),
            ("AMD Instinct MI250X", DiscreteGpu, F64),
            ("AMD Instinct MI300X (RADV GFX942)", DiscreteGpu, F64),
            ("AMD Radeon Instinct MI50", DiscreteGpu, F64),
            ("Intel(R) Data Center GPU Max 1550", DiscreteGpu, F64),
            ("llvmpipe (LLVM 15.0.6, 256 bits)", Cpu, F64),
            ("NVIDIA GeForce RTX 4090", DiscreteGpu, F32),
            ("NVIDIA RTX A1000 Laptop GPU", DiscreteGpu, F32),
            ("NVIDIA RTX A6000", DiscreteGpu, F32),
            ("NVIDIA A10", DiscreteGpu, F32),
            ("NVIDIA L40S", DiscreteGpu, F32),
            ("Tesla T4", DiscreteGpu, F32),
            ("AMD Radeon Instinct MI25", DiscreteGpu, F32),
            ("AMD Radeon RX 7900 XTX (RADV NAVI31)", DiscreteGpu, F32),
            ("Intel(R) Arc(tm) A770 Graphics (DG2)", DiscreteGpu, F32),
            ("Intel(R) UHD Graphics 630 (CFL GT2)", IntegratedGpu, F32),
            ("Apple M2 Max", IntegratedGpu, F32),
        ];
        for (name, device_type, expected) in cases {
            assert_eq!(auto(name, device_type), expected, "{name}");
        }
    }

    #[test]
    fn the_feature_and_the_override_come_first() {
        let h100 = info("NVIDIA H100 PCIe", DiscreteGpu);
        let (p, why) = choose_precision(&h100, false, None).unwrap();
        assert_eq!((p, why), (Precision::F32, "the adapter has no SHADER_F64"));
        let (p, why) = choose_precision(&h100, true, Some(Precision::F32)).unwrap();
        assert_eq!((p, why), (Precision::F32, "set by DETBAL_GPU_PRECISION"));
        let gtx = info("NVIDIA GeForce GTX 1080", DiscreteGpu);
        assert_eq!(
            choose_precision(&gtx, true, Some(Precision::F64))
                .unwrap()
                .0,
            Precision::F64
        );
        let err = choose_precision(&gtx, false, Some(Precision::F64)).unwrap_err();
        assert_eq!(
            err,
            "NVIDIA GeForce GTX 1080 lacks a feature f64 precision needs: SHADER_F64"
        );
        let (p, why) = choose_precision(&gtx, true, None).unwrap();
        assert_eq!(p, Precision::F32);
        assert!(why.starts_with("f64 runs at 1/16 to 1/64 of f32"), "{why}");
    }
}
