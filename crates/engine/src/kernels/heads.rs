//! Splitting projections into attention heads and merging them back, with the rotary position
//! embedding applied on the way ([`split_heads`], [`merge_heads`] and their grouped forms).

#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use super::cpu;
#[cfg(feature = "cuda")]
use super::cuda;

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
pub(super) struct Heads {
    pub(super) batch: usize,
    pub(super) time: usize,
    pub(super) heads: usize,
    pub(super) dim: usize,
    /// Rows to heads (rotating by +θ), or heads to rows (rotating by −θ).
    pub(super) to_heads: bool,
    /// Query heads per key head on the heads side, `[B, heads / groups, T, groups, D]`; 1 for
    /// the plain `[B, heads, T, D]`.
    pub(super) groups: usize,
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

    pub(super) fn out_shape(&self) -> Shape {
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
        cpu::heads::heads_plain(&self.0, x, lx, bias, lb)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        bias: &CudaStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        cuda::heads::heads_plain(&self.0, x, lx, bias, lb)
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
        cpu::heads::heads_rope(&self.0, x, lx, bias, lb, table, lt)
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
        cuda::heads::heads_rope(&self.0, x, lx, bias, lb, table, lt)
    }
}
