//! The elementwise ops' launches: `silu_mul`, `silu_mul_backward` and `add`, 8 values a thread
//! (see `kernels::elementwise`).

use candle_core::DType;
use candle_core::backend::BackendStorage;
use candle_core::{Layout, Shape};

use crate::kernels::cuda::{self, elementwise_config, kernel_dtype, load_kernel};

/// Runs the elementwise kernel `name` (`(a, b, out, n)`) over two tensors of one shape.
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

/// `silu(g) · u` for the gate `a` and the up projection `b`: kernel `silu_mul`.
pub(crate) fn silu_mul(
    a: &candle_core::CudaStorage,
    la: &Layout,
    b: &candle_core::CudaStorage,
    lb: &Layout,
) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
    cuda_elementwise2("silu_mul", a, la, b, lb)
}

/// `[dg; du]` (shape `[2, ...]`) of `silu(g) · u` for the output gradient `d`: kernel
/// `silu_mul_backward`.
pub(crate) fn silu_mul_backward(
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

/// `a + b` value by value: kernel `add`.
pub(crate) fn fast_add(
    a: &candle_core::CudaStorage,
    la: &Layout,
    b: &candle_core::CudaStorage,
    lb: &Layout,
) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
    cuda_elementwise2("add", a, la, b, lb)
}
