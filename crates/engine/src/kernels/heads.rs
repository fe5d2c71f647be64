//! Splitting projections into attention heads and merging them back, with the rotary position
//! embedding applied on the way ([`split_heads`], [`merge_heads`] and their grouped forms).

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor};

use candle_core::backend::BackendStorage;

use super::plumbing::{cpu_from_f32, cpu_rows_f32, round_to};
#[cfg(feature = "cuda")]
use super::plumbing::{cuda, load_kernel};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
#[cfg(feature = "cuda")]
use candle_core::cuda_backend::WrapErr;
#[cfg(feature = "cuda")]
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};

/// The rotation of [`split_heads`] and [`merge_heads`] (rotate-half layout, as transformers): one
/// table `[B, T, D]` holding `cos` then `sin` for each position, built once per pass and read by
/// every projection of every layer.
#[derive(Debug, Clone)]
pub struct Rotation {
    table: Tensor,
}

impl Rotation {
    /// From `cos`, `sin` `[B, T, D/2]` in the activations' dtype.
    pub fn new(cos: &Tensor, sin: &Tensor) -> candle_core::Result<Self> {
        if cos.rank() != 3 || cos.shape() != sin.shape() || cos.dtype() != sin.dtype() {
            candle_core::bail!(
                "rotation: cos {:?} {:?} and sin {:?} {:?} must be one [B, T, D/2] shape and dtype",
                cos.shape(),
                cos.dtype(),
                sin.shape(),
                sin.dtype()
            );
        }
        Ok(Self {
            table: Tensor::cat(&[cos, sin], 2)?.contiguous()?,
        })
    }
}

/// A projection's output `lin` `[B·T, heads·D]` (+ `bias` `[heads·D]`) as heads `[B, heads, T, D]`,
/// rotated by `rope` when given: one pass instead of a bias add, a transpose copy and a rope.
pub fn split_heads(
    lin: &Tensor,
    bias: Option<&Tensor>,
    rope: Option<&Rotation>,
    batch: usize,
    heads: usize,
) -> candle_core::Result<Tensor> {
    split_heads_grouped(lin, bias, rope, batch, heads, heads)
}

/// As [`split_heads`], into position-major groups `[B, kv, T·g, D]` for `kv` key heads of
/// `g = heads / kv` query heads each (row `t·g + i` is head `kv·g + i` at position `t`): the
/// layout of [`super::attention::causal_attention_blocks`]. With `kv == heads` it is `split_heads`.
pub fn split_heads_grouped(
    lin: &Tensor,
    bias: Option<&Tensor>,
    rope: Option<&Rotation>,
    batch: usize,
    heads: usize,
    kv: usize,
) -> candle_core::Result<Tensor> {
    let (n, width) = lin.dims2()?;
    if batch == 0 || n % batch != 0 || heads == 0 || width % heads != 0 {
        candle_core::bail!("split_heads: [{n}, {width}] is not {batch} sequences of {heads} heads");
    }
    if kv == 0 || !heads.is_multiple_of(kv) {
        candle_core::bail!("split_heads: {heads} heads do not form groups over {kv} key heads");
    }
    let op = Heads {
        batch,
        time: n / batch,
        heads,
        dim: width / heads,
        to_heads: true,
        groups: heads / kv,
    };
    op.check_rope(rope)?;
    let zeros;
    let bias = match bias {
        Some(b) => {
            if b.dims() != [width] || b.dtype() != lin.dtype() {
                candle_core::bail!("split_heads: bias {:?} for width {width}", b.shape());
            }
            b.contiguous()?
        }
        None => {
            zeros = Tensor::zeros(width, lin.dtype(), lin.device())?;
            zeros
        }
    };
    op.apply(&lin.contiguous()?, &bias, rope)
}

/// Heads `x` `[B, heads, T, D]` back to rows `[B·T, heads·D]`, rotated by the inverse of `rope`
/// when given. With a rotation this is the backward of [`split_heads`] (a rotation's adjoint is
/// its inverse); without, it is the layout change after attention.
pub fn merge_heads(x: &Tensor, rope: Option<&Rotation>) -> candle_core::Result<Tensor> {
    let heads = x.dim(1)?;
    merge_heads_grouped(x, heads, rope)
}

/// The inverse of [`split_heads_grouped`]: position-major groups `x` `[B, kv, T·g, D]` of
/// `heads` query heads back to rows `[B·T, heads·D]`, rotated by the inverse of `rope` when given.
pub fn merge_heads_grouped(
    x: &Tensor,
    heads: usize,
    rope: Option<&Rotation>,
) -> candle_core::Result<Tensor> {
    let (batch, kv, rows, dim) = x.dims4()?;
    if kv == 0 || !heads.is_multiple_of(kv) || !rows.is_multiple_of(heads / kv) {
        candle_core::bail!(
            "merge_heads: {:?} is not groups of {heads} heads",
            x.shape()
        );
    }
    let groups = heads / kv;
    let op = Heads {
        batch,
        time: rows / groups,
        heads,
        dim,
        to_heads: false,
        groups,
    };
    op.check_rope(rope)?;
    let no_bias = Tensor::zeros(heads * dim, x.dtype(), x.device())?;
    op.apply(&x.contiguous()?, &no_bias, rope)
}

/// The layout change (and rotation) between `[B, T, heads, D]` rows and `[B, heads, T, D]` heads.
#[derive(Debug, Clone, Copy)]
struct Heads {
    batch: usize,
    time: usize,
    heads: usize,
    dim: usize,
    /// Rows to heads (rotating by +θ), or heads to rows (rotating by −θ).
    to_heads: bool,
    /// Query heads per key head on the heads side, `[B, heads / groups, T, groups, D]`; 1 for
    /// the plain `[B, heads, T, D]`.
    groups: usize,
}

impl Heads {
    fn check_rope(&self, rope: Option<&Rotation>) -> candle_core::Result<()> {
        if let Some(r) = rope {
            let want = [self.batch, self.time, self.dim];
            if !self.dim.is_multiple_of(2) || r.table.dims() != want {
                candle_core::bail!(
                    "rotation table {:?} for {} sequences of {} tokens, head dim {}",
                    r.table.shape(),
                    self.batch,
                    self.time,
                    self.dim
                );
            }
        }
        Ok(())
    }

    fn out_shape(&self) -> Shape {
        if self.to_heads {
            let kv = self.heads / self.groups;
            Shape::from((self.batch, kv, self.time * self.groups, self.dim))
        } else {
            Shape::from((self.batch * self.time, self.heads * self.dim))
        }
    }

    fn apply(
        self,
        x: &Tensor,
        bias: &Tensor,
        rope: Option<&Rotation>,
    ) -> candle_core::Result<Tensor> {
        match rope {
            Some(r) => x.apply_op3_no_bwd(bias, &r.table, &HeadsRope(self)),
            None => x.apply_op2_no_bwd(bias, &HeadsPlain(self)),
        }
    }

    /// Index in the rows layout `[B, T, heads, D]` of element (b, h, t, d).
    fn row_index(&self, b: usize, h: usize, t: usize, d: usize) -> usize {
        ((b * self.time + t) * self.heads + h) * self.dim + d
    }

    /// Index in the heads layout `[B, kv, T, groups, D]` (`[B, heads, T, D]` for one group).
    fn head_index(&self, b: usize, h: usize, t: usize, d: usize) -> usize {
        let (g, kv) = (self.groups, self.heads / self.groups);
        (((b * kv + h / g) * self.time + t) * g + h % g) * self.dim + d
    }

    /// The CPU twin of the kernel: `table` `[B, T, D]` holds cos then sin halves, or None.
    fn cpu(&self, x: &[f32], bias: &[f32], table: Option<&[f32]>, dtype: DType) -> Vec<f32> {
        let (half, dim) = (self.dim / 2, self.dim);
        let mut out = vec![0f32; x.len()];
        let mut pair = vec![0f32; dim];
        for b in 0..self.batch {
            for t in 0..self.time {
                for h in 0..self.heads {
                    let (src, dst) = if self.to_heads {
                        (self.row_index(b, h, t, 0), self.head_index(b, h, t, 0))
                    } else {
                        (self.head_index(b, h, t, 0), self.row_index(b, h, t, 0))
                    };
                    for d in 0..dim {
                        // The bias is added (and rounded, as a separate add would) first.
                        pair[d] = round_to(x[src + d] + bias[h * dim + d], dtype);
                    }
                    let Some(table) = table else {
                        out[dst..dst + dim].copy_from_slice(&pair);
                        continue;
                    };
                    let row = (b * self.time + t) * dim;
                    let sign = if self.to_heads { 1.0 } else { -1.0 };
                    for i in 0..half {
                        let (c, s) = (table[row + i], sign * table[row + half + i]);
                        let (lo, hi) = (pair[i], pair[half + i]);
                        out[dst + i] = lo * c - hi * s;
                        out[dst + half + i] = hi * c + lo * s;
                    }
                }
            }
        }
        out
    }

    /// Blocks (token tile, head, sequence) of threads (unit, token), each thread taking
    /// `per_thread` values of a token's head: the kernels index without dividing.
    #[cfg(feature = "cuda")]
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
    #[cfg(feature = "cuda")]
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

struct HeadsPlain(Heads);

impl CustomOp2 for HeadsPlain {
    fn name(&self) -> &'static str {
        "fused-heads"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        bias: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = self.0.cpu(
            &cpu_rows_f32(x, lx)?,
            &cpu_rows_f32(bias, lb)?,
            None,
            x.dtype(),
        );
        Ok((cpu_from_f32(out, x.dtype())?, self.0.out_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        bias: &CudaStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        self.0.cuda((x, lx), (bias, lb), None)
    }
}

struct HeadsRope(Heads);

impl CustomOp3 for HeadsRope {
    fn name(&self) -> &'static str {
        "fused-heads-rope"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        bias: &CpuStorage,
        lb: &Layout,
        table: &CpuStorage,
        lt: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = self.0.cpu(
            &cpu_rows_f32(x, lx)?,
            &cpu_rows_f32(bias, lb)?,
            Some(&cpu_rows_f32(table, lt)?),
            x.dtype(),
        );
        Ok((cpu_from_f32(out, x.dtype())?, self.0.out_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        bias: &CudaStorage,
        lb: &Layout,
        table: &CudaStorage,
        lt: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        self.0.cuda((x, lx), (bias, lb), Some((table, lt)))
    }
}
