//! Elementwise ops: [`silu_mul`] (SwiGLU's gate) with its backward, and [`add`].

use candle_core::backend::BackendStorage;
#[cfg(feature = "cuda")]
use candle_core::DType;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::plumbing::{cpu_from_f32, cpu_rows_f32};
#[cfg(feature = "cuda")]
use super::plumbing::{cuda, elementwise_config, kernel_dtype, load_kernel};

/// `f(a, b)` value by value for two tensors of one shape, in f32, written in `a`'s dtype.
fn cpu_elementwise2(
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
    f: impl Fn(f32, f32) -> f32,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (x, y) = (cpu_rows_f32(a, la)?, cpu_rows_f32(b, lb)?);
    let out = x.iter().zip(&y).map(|(&p, &q)| f(p, q)).collect();
    Ok((cpu_from_f32(out, a.dtype())?, la.shape().clone()))
}

/// Runs the elementwise kernel `name` (`(a, b, out, n)`) over two tensors of one shape.
#[cfg(feature = "cuda")]
fn cuda_elementwise2(
    name: &str,
    a: &candle_core::CudaStorage,
    la: &Layout,
    b: &candle_core::CudaStorage,
    lb: &Layout,
) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
    use candle_core::cuda_backend::WrapErr;
    use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
    let n = la.shape().elem_count();
    let dev = a.device();
    let f = load_kernel!(dev, name, a.dtype());
    macro_rules! launch {
        ($ty:ty) => {{
            let (av, bv) = (cuda::view::<$ty>(a, la)?, cuda::view::<$ty>(b, lb)?);
            let out = cuda::alloc::<$ty>(dev, n)?;
            let mut builder = f.builder();
            builder.arg(&av).arg(&bv).arg(&out).arg(&n);
            // SAFETY: arguments match the kernel's signature.
            unsafe { builder.launch(elementwise_config(n)) }.w()?;
            candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
        }};
    }
    let out = match (a.dtype(), b.dtype()) {
        (DType::F32, DType::F32) => launch!(f32),
        (DType::BF16, DType::BF16) => launch!(half::bf16),
        (x, y) => candle_core::bail!("{name}: {x:?} and {y:?} inputs"),
    };
    Ok((out, la.shape().clone()))
}

/// `silu(g) · u`, the SwiGLU gate, in one pass; differentiable in both.
struct SiluMul;

impl CustomOp2 for SiluMul {
    fn name(&self) -> &'static str {
        "silu-mul"
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        la: &Layout,
        b: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu_elementwise2(a, la, b, lb, |g, u| g / (1.0 + (-g).exp()) * u)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        a: &candle_core::CudaStorage,
        la: &Layout,
        b: &candle_core::CudaStorage,
        lb: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda_elementwise2("silu_mul", a, la, b, lb)
    }

    fn bwd(
        &self,
        g: &Tensor,
        u: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let both = g.apply_op3_no_bwd(u, &grad.contiguous()?, &SiluMulBackward)?;
        Ok((Some(both.get(0)?), Some(both.get(1)?)))
    }
}

/// `[dg; du]` (shape `[2, ...]`) of `silu(g) · u` for the output gradient `d`.
struct SiluMulBackward;

impl candle_core::CustomOp3 for SiluMulBackward {
    fn name(&self) -> &'static str {
        "silu-mul-backward"
    }

    fn cpu_fwd(
        &self,
        g: &CpuStorage,
        lg: &Layout,
        u: &CpuStorage,
        lu: &Layout,
        d: &CpuStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g32, u32_, d32) = (
            cpu_rows_f32(g, lg)?,
            cpu_rows_f32(u, lu)?,
            cpu_rows_f32(d, ld)?,
        );
        let n = g32.len();
        let mut out = vec![0f32; 2 * n];
        for i in 0..n {
            let sg = 1.0 / (1.0 + (-g32[i]).exp());
            out[i] = d32[i] * u32_[i] * sg * (1.0 + g32[i] * (1.0 - sg));
            out[n + i] = d32[i] * g32[i] * sg;
        }
        let mut dims = vec![2];
        dims.extend_from_slice(lg.shape().dims());
        Ok((cpu_from_f32(out, g.dtype())?, Shape::from(dims)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        g: &candle_core::CudaStorage,
        lg: &Layout,
        u: &candle_core::CudaStorage,
        lu: &Layout,
        d: &candle_core::CudaStorage,
        ld: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::WrapErr;
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        let n = lg.shape().elem_count();
        let dev = g.device();
        let f = load_kernel!(dev, "silu_mul_backward", g.dtype());
        macro_rules! launch {
            ($ty:ty) => {{
                let (gv, uv, dv) = (
                    cuda::view::<$ty>(g, lg)?,
                    cuda::view::<$ty>(u, lu)?,
                    cuda::view::<$ty>(d, ld)?,
                );
                let out = cuda::alloc::<$ty>(dev, 2 * n)?;
                let mut b = f.builder();
                b.arg(&gv).arg(&uv).arg(&dv).arg(&out).arg(&n);
                // SAFETY: arguments match the kernel's signature; out holds 2n values.
                unsafe { b.launch(elementwise_config(n)) }.w()?;
                candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = kernel_dtype!(g.dtype(), "silu-mul backward", launch);
        let mut dims = vec![2];
        dims.extend_from_slice(lg.shape().dims());
        Ok((out, Shape::from(dims)))
    }
}

/// `silu(gate) · up` in one pass (one kernel forward, one backward), as SwiGLU needs.
pub fn silu_mul(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if gate.shape() != up.shape() || gate.dtype() != up.dtype() {
        candle_core::bail!("silu_mul: {:?} gate and {:?} up", gate.shape(), up.shape());
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, SiluMul)
}

/// `[dgate; dup]` (shape `[2, ...]`) of [`silu_mul`] for the output gradient `grad`.
pub fn silu_mul_backward(gate: &Tensor, up: &Tensor, grad: &Tensor) -> candle_core::Result<Tensor> {
    if gate.shape() != up.shape() || gate.shape() != grad.shape() {
        candle_core::bail!(
            "silu_mul_backward: {:?} gate, {:?} up, {:?} grad",
            gate.shape(),
            up.shape(),
            grad.shape()
        );
    }
    gate.contiguous()?
        .apply_op3_no_bwd(&up.contiguous()?, &grad.contiguous()?, &SiluMulBackward)
}

/// `a + b` for tensors of one shape and dtype, in one vectorised pass on the GPU.
struct FastAdd;

impl CustomOp2 for FastAdd {
    fn name(&self) -> &'static str {
        "fast-add"
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        la: &Layout,
        b: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu_elementwise2(a, la, b, lb, |p, q| p + q)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        a: &candle_core::CudaStorage,
        la: &Layout,
        b: &candle_core::CudaStorage,
        lb: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda_elementwise2("add", a, la, b, lb)
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.clone()), Some(grad.clone())))
    }
}

/// `a + b` (same shape and dtype): one vectorised kernel on the GPU, candle's add elsewhere.
pub fn add(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    if a.shape() != b.shape() || a.dtype() != b.dtype() || a.device().is_cpu() {
        return a + b;
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, FastAdd)
}
