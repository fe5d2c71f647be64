//! Choosing the device a model runs on, and setting CUDA up the way the engine uses it.

use candle_core::{DType, Device};

use crate::error::{EngineError, Result};

/// A device by name: the CPU or one CUDA GPU. Written `cpu`, `cuda` (GPU 0) or `cuda:N`, in flags,
/// settings files and the service's job payloads alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    /// The CPU (the default: every command runs without a GPU).
    #[default]
    Cpu,
    /// CUDA GPU number N (as the process sees them: `CUDA_VISIBLE_DEVICES` renumbers).
    Cuda(usize),
}

impl DeviceSpec {
    /// Whether this is a GPU.
    pub fn is_cuda(self) -> bool {
        matches!(self, Self::Cuda(_))
    }

    /// Opens the device (see [`open_device`]).
    pub fn open(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(ordinal) => open_cuda(ordinal),
        }
    }
}

impl std::str::FromStr for DeviceSpec {
    type Err = EngineError;

    fn from_str(spec: &str) -> Result<Self> {
        match spec {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            s if s.starts_with("cuda:") => s[5..].parse::<usize>().map(Self::Cuda).map_err(|_| {
                EngineError::Request(format!("bad device `{s}`: write cuda:N with N a GPU index"))
            }),
            other => Err(EngineError::Request(format!(
                "unknown device `{other}`: use cpu, cuda or cuda:N"
            ))),
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl serde::Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The dtype model weights are held and run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats: the CPU default, and the reference every other precision is checked against.
    F32,
    /// bfloat16: the GPU default (half the memory, tensor-core speed, f32's range).
    Bf16,
    /// IEEE half precision (f32 accumulation in every reduction).
    F16,
}

impl Precision {
    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 => DType::BF16,
            Self::F16 => DType::F16,
        }
    }

    /// The default on a device: f32 on the CPU, bf16 on a GPU.
    pub fn default_for(device: DeviceSpec) -> Self {
        if device.is_cuda() {
            Self::Bf16
        } else {
            Self::F32
        }
    }

    /// The name used in flags and files (`f32`, `bf16`, `f16`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            "f16" => Ok(Self::F16),
            other => Err(EngineError::Request(format!(
                "unknown dtype `{other}`: use f32, bf16 or f16"
            ))),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a pipeline's model work runs and in what precision: the one device setting that every
/// pipeline's settings carry, so that `--device cuda:1 --dtype bf16` means the same everywhere.
///
/// ```
/// use assay_engine::{DeviceSpec, Placement, Precision};
/// let p: Placement = serde_json::from_str(r#"{"device": "cuda:1"}"#).unwrap();
/// assert_eq!(p.device, DeviceSpec::Cuda(1));
/// assert_eq!(p.precision(), Precision::Bf16); // the GPU default
/// assert_eq!(Placement::default().precision(), Precision::F32); // the CPU default
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The device (default: the CPU).
    #[serde(default)]
    pub device: DeviceSpec,
    /// The weight dtype; `None` takes the device's default ([`Precision::default_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<Precision>,
}

impl Placement {
    /// The CPU in f32, the placement of every test and of the README's main job.
    pub fn cpu() -> Self {
        Self::default()
    }

    /// The precision in force: the one asked for, else the device's default.
    pub fn precision(&self) -> Precision {
        self.dtype
            .unwrap_or_else(|| Precision::default_for(self.device))
    }

    /// Opens the device and returns the options models are loaded with.
    ///
    /// ```
    /// use assay_engine::{ModelSource, Placement, load};
    /// let options = Placement::cpu().load_options()?;
    /// assert_eq!(options.dtype, assay_engine::candle_core::DType::F32);
    /// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-llama");
    /// let lm = load(&ModelSource::HfFolder(dir), &options)?;
    /// assert!(lm.model.device().is_cpu());
    /// # Ok::<(), assay_engine::EngineError>(())
    /// ```
    pub fn load_options(&self) -> Result<crate::LoadOptions> {
        Ok(crate::LoadOptions {
            device: self.device.open()?,
            dtype: self.precision().dtype(),
        })
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.device, self.precision())
    }
}

/// Opens the device `spec` names: `cpu`, `cuda` (GPU 0) or `cuda:N`.
///
/// A CUDA device is configured for the engine's single-stream use: candle's per-tensor event
/// tracking (needed only when several streams share tensors) is turned off, since it costs host
/// time on every op; and bf16 matmuls may reduce in reduced precision, as PyTorch allows by default.
pub fn open_device(spec: &str) -> Result<Device> {
    spec.parse::<DeviceSpec>()?.open()
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
