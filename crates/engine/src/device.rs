//! Choosing the device a model runs on, and setting CUDA up the way the engine uses it.

use candle_core::Device;

use crate::error::{EngineError, Result};

/// Opens the device `spec` names: `cpu`, `cuda` (GPU 0) or `cuda:N`.
///
/// A CUDA device is configured for the engine's single-stream use: candle's per-tensor event
/// tracking (needed only when several streams share tensors) is turned off, since it costs host
/// time on every op; and bf16 matmuls may reduce in reduced precision, as PyTorch allows by default.
pub fn open_device(spec: &str) -> Result<Device> {
    let ordinal = match spec {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        s if s.starts_with("cuda:") => s[5..].parse::<usize>().map_err(|_| {
            EngineError::Request(format!("bad device `{s}`: write cuda:N with N a GPU index"))
        })?,
        other => {
            return Err(EngineError::Request(format!(
                "unknown device `{other}`: use cpu, cuda or cuda:N"
            )));
        }
    };
    open_cuda(ordinal)
}

/// GPU 0 for the CUDA tests, or `None` (after saying why) on a machine without one, where
/// they pass vacuously.
#[cfg(all(test, feature = "cuda"))]
pub(crate) fn test_gpu() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(device) => Some(device),
        Err(e) => {
            eprintln!("no CUDA device, skipping the GPU test: {e}");
            None
        }
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> Result<Device> {
    let device = Device::new_cuda(ordinal)
        .map_err(|e| EngineError::Request(format!("cannot open CUDA device {ordinal}: {e}")))?;
    if let Device::Cuda(cuda) = &device {
        // SAFETY: the engine runs every kernel of a device on that device's one stream.
        unsafe { cuda.disable_event_tracking() };
    }
    candle_core::cuda::set_gemm_reduced_precision_bf16(true);
    Ok(device)
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Err(EngineError::Request(format!(
        "CUDA device {ordinal} asked for, but this build has no CUDA support: rebuild with \
         `--features cuda` (see the README's GPU section)"
    )))
}

/// Bytes of device memory in use on a CUDA device (total minus free), or None on the CPU.
pub fn memory_in_use(device: &Device) -> Option<u64> {
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        let (free, total) = candle_core::cuda::cudarc::driver::result::mem_get_info().ok()?;
        return Some((total - free) as u64);
    }
    let _ = device;
    None
}
