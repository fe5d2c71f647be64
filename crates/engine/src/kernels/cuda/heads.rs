//! Splitting into heads and merging back on the GPU: kernels `heads_plain` and `heads_rope` (see
//! `kernels::heads`).

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{CudaStorage, DType, Layout, Shape};

use crate::kernels::cuda::{self, load_kernel};
use crate::kernels::heads::Heads;

impl Heads {
    /// Blocks (token tile, head, sequence) of threads (unit, token), each thread taking
    /// `per_thread` values of a token's head: the kernels index without dividing.
    fn launch_config(&self, per_thread: usize) -> candle_core::Result<LaunchConfig> {
        let units = self.dim.div_ceil(per_thread).max(1);
        let x = units.min(cuda::BLOCK as usize);
        let y = (cuda::BLOCK as usize / x).max(1);
        if self.heads > 65535 || self.batch > 65535 {
            candle_core::bail!(
                "heads kernel: {} sequences of {} heads",
                self.batch,
                self.heads
            );
        }
        Ok(LaunchConfig {
            grid_dim: (
                self.time.div_ceil(y) as u32,
                self.heads as u32,
                self.batch as u32,
            ),
            block_dim: (x as u32, y as u32, 1),
            shared_mem_bytes: 0,
        })
    }

    /// Runs `heads_plain` (no table) or `heads_rope` on the GPU.
    fn cuda(
        &self,
        (x, lx): (&CudaStorage, &Layout),
        (bias, lb): (&CudaStorage, &Layout),
        table: Option<(&CudaStorage, &Layout)>,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let dev = x.device();
        let n = self.batch * self.time * self.heads * self.dim;
        // 8 values of a head a thread without rotation, 8 rotation pairs (16 values) with.
        let (name, cfg) = match table {
            Some(_) => ("heads_rope", self.launch_config(16)?),
            None => ("heads_plain", self.launch_config(8)?),
        };
        let f = load_kernel!(dev, name, x.dtype());
        let dims = (
            self.time as u32,
            self.heads as u32,
            self.dim as u32,
            self.to_heads as u32,
            self.groups as u32,
        );
        macro_rules! launch {
            ($ty:ty) => {{
                let (xv, bv) = (cuda::view::<$ty>(x, lx)?, cuda::view::<$ty>(bias, lb)?);
                let tv = match table {
                    Some((t, lt)) => {
                        if t.dtype() != x.dtype() {
                            candle_core::bail!(
                                "rotation tables {:?} for {:?} heads",
                                t.dtype(),
                                x.dtype()
                            );
                        }
                        Some(cuda::view::<$ty>(t, lt)?)
                    }
                    None => None,
                };
                let out = cuda::alloc::<$ty>(dev, n)?;
                if n > 0 {
                    let mut b = f.builder();
                    b.arg(&xv).arg(&bv);
                    if let Some(tv) = &tv {
                        b.arg(tv);
                    }
                    b.arg(&out)
                        .arg(&dims.0)
                        .arg(&dims.1)
                        .arg(&dims.2)
                        .arg(&dims.3)
                        .arg(&dims.4);
                    // SAFETY: arguments match the kernel's signature (the table only for
                    // heads_rope); the grid covers every (b, h, t) and the threads all of D.
                    unsafe { b.launch(cfg) }.w()?;
                }
                CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = match (x.dtype(), bias.dtype()) {
            (DType::F32, DType::F32) => launch!(f32),
            (DType::BF16, DType::BF16) => launch!(half::bf16),
            (a, b) => candle_core::bail!("heads: {a:?} values with {b:?} bias"),
        };
        Ok((out, self.out_shape()))
    }
}

/// The layout change `op` with a bias and no rotation.
pub(crate) fn heads_plain(
    op: &Heads,
    x: &CudaStorage,
    lx: &Layout,
    bias: &CudaStorage,
    lb: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    op.cuda((x, lx), (bias, lb), None)
}

/// The layout change `op` with a bias and the rotation of `table` `[B, T, D]` (cos then sin).
pub(crate) fn heads_rope(
    op: &Heads,
    x: &CudaStorage,
    lx: &Layout,
    bias: &CudaStorage,
    lb: &Layout,
    table: &CudaStorage,
    lt: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    op.cuda((x, lx), (bias, lb), Some((table, lt)))
}
