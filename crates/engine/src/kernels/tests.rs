//! The kernels against composed candle ops (CPU) and the CUDA kernels against the CPU code.

#![allow(unused_imports)]

use super::accumulate::*;
use super::attention::SoftmaxBackward;
use super::attention::*;
use super::elementwise::*;
use super::heads::*;
use super::loss::*;
use super::matmul::*;
use super::norm::*;
use super::optimizer::*;
use super::sampling::*;
use candle_core::{DType, Tensor};

#[cfg(test)]
mod unfused {
    use super::*;
    use candle_core::{D, Device, Var};

    fn randn(shape: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Composed reference of causal attention with an additive mask, differentiable by candle.
    fn reference_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, t: usize) -> Tensor {
        let rows = q.dim(2).unwrap();
        let mask: Vec<f32> = (0..rows)
            .flat_map(|r| (0..t).map(move |j| if j > r % t { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (rows, t), &Device::Cpu).unwrap();
        let scores = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap();
        let probs =
            candle_nn::ops::softmax(&scores.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        probs.matmul(v).unwrap()
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_softmax_and_blocked_attention_match_cpu() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        let on = |t: &Tensor| t.to_device(&dev).unwrap();
        let back = |t: &Tensor| t.to_device(&Device::Cpu).unwrap();
        // Short rows take the warp-per-row kernels, long rows the block-per-row ones.
        for cols in [300usize, 1024, 1500] {
            for dtype in [DType::F32, DType::BF16] {
                let x = randn(&[2, 24, cols], 21).to_dtype(dtype).unwrap();
                let g = randn(&[2, 24, cols], 22).to_dtype(dtype).unwrap();
                let pad = Tensor::new(&[3u32, 0], &Device::Cpu).unwrap();
                let mask = AttentionMask {
                    queries: 8,
                    past: cols - 8,
                    rows_per_batch: 24,
                    scale: 0.7,
                    rows_per_query: 3,
                };
                let cpu = masked_softmax(&x, &pad, mask).unwrap();
                let gpu = back(&masked_softmax(&on(&x), &on(&pad), mask).unwrap());
                let tol = if dtype == DType::F32 { 1e-6 } else { 1e-2 };
                let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
                assert!(
                    max_diff(&f32(&gpu), &f32(&cpu)) < tol,
                    "softmax {cols} {dtype:?}"
                );
                let op = SoftmaxBackward(0.7);
                let cpu = cpu.apply_op2_no_bwd(&g, &op).unwrap();
                let gpu = back(&on(&gpu).apply_op2_no_bwd(&on(&g), &op).unwrap());
                assert!(
                    max_diff(&f32(&gpu), &f32(&cpu)) < tol,
                    "backward {cols} {dtype:?}"
                );
            }
        }
        let (b, kv, groups, t, d) = (2, 2, 3, 300, 8);
        let q = randn(&[b, kv, groups * t, d], 23);
        let k = randn(&[b, kv, t, d], 24);
        let v = randn(&[b, kv, t, d], 25);
        let w = randn(&[b, kv, groups * t, d], 26);
        let cpu = causal_attention_blocks(&q, &k, &v, groups, 0.4).unwrap();
        let gpu = causal_attention_blocks(&on(&q), &on(&k), &on(&v), groups, 0.4).unwrap();
        assert!(max_diff(&back(&gpu), &cpu) < 1e-4);
        let cpu = causal_attention_blocks_backward(&q, &k, &v, &w, groups, 0.4).unwrap();
        let gpu = causal_attention_blocks_backward(&on(&q), &on(&k), &on(&v), &on(&w), groups, 0.4)
            .unwrap();
        assert!(max_diff(&back(&gpu.0), &cpu.0) < 1e-4);
        assert!(max_diff(&back(&gpu.1), &cpu.1) < 1e-4);
        assert!(max_diff(&back(&gpu.2), &cpu.2) < 1e-4);
    }

    /// `[B, kv, g·T, d]` head-major rows to position-major `[B, kv, T·g, d]`.
    fn position_major(x: &Tensor, groups: usize) -> Tensor {
        let (b, kv, rows, d) = x.dims4().unwrap();
        x.reshape((b, kv, groups, rows / groups, d))
            .unwrap()
            .transpose(2, 3)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((b, kv, rows, d))
            .unwrap()
    }

    /// Random head-major q `[B, kv, g·T, d]`, k, v `[B, kv, T, d]` as variables, and their causal
    /// mask with scale 0.5.
    fn attention_inputs(
        (b, kv, groups, t, d): (usize, usize, usize, usize, usize),
        seed: u64,
    ) -> (Var, Var, Var, AttentionMask) {
        let var = |shape: &[usize], s: u64| Var::from_tensor(&randn(shape, s)).unwrap();
        let mask = AttentionMask {
            queries: t,
            past: 0,
            rows_per_batch: kv * groups * t,
            scale: 0.5,
            rows_per_query: 1,
        };
        (
            var(&[b, kv, groups * t, d], seed),
            var(&[b, kv, t, d], seed + 1),
            var(&[b, kv, t, d], seed + 2),
            mask,
        )
    }

    #[test]
    fn blocked_attention_matches_the_whole_matrix_forward_and_backward() {
        // 300 positions: three chunks, the last one shorter.
        let (b, kv, groups, t, d) = (2, 2, 3, 300, 4);
        let (q, k, v, mask) = attention_inputs((b, kv, groups, t, d), 11);
        let scale = mask.scale;
        let whole = causal_attention(&q, &k, &v, mask).unwrap();
        let qp = position_major(&q, groups);
        let ours = causal_attention_blocks(&qp, &k, &v, groups, scale).unwrap();
        assert!(max_diff(&ours, &position_major(&whole, groups)) < 1e-5);
        let w = randn(&[b, kv, groups * t, d], 14);
        let store = (whole * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let (dq, dk, dv) = causal_attention_blocks_backward(
            &qp,
            &k,
            &v,
            &position_major(&w, groups),
            groups,
            scale,
        )
        .unwrap();
        let dq_whole = position_major(store.get(&q).unwrap(), groups);
        assert!(max_diff(&dq, &dq_whole) < 1e-4);
        assert!(max_diff(&dk, store.get(&k).unwrap()) < 1e-4);
        assert!(max_diff(&dv, store.get(&v).unwrap()) < 1e-4);
        assert!(causal_attention_blocks(&qp, &k, &v, 2, scale).is_err());
    }

    #[test]
    fn causal_attention_matches_composed_ops_forward_and_backward() {
        let (b, kv, groups, t, d) = (2, 2, 3, 5, 4);
        let (q, k, v, mask) = attention_inputs((b, kv, groups, t, d), 1);
        let scale = mask.scale;
        let ours = causal_attention(&q, &k, &v, mask).unwrap();
        let theirs = reference_attention(&q, &k, &v, scale as f64, t);
        assert!(max_diff(&ours, &theirs) < 1e-5);
        let w = randn(&[b, kv, groups * t, d], 4);
        let g1 = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (theirs * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for var in [&q, &k, &v] {
            let (a, b) = (g1.get(var).unwrap(), g2.get(var).unwrap());
            assert!(
                max_diff(a, b) < 1e-4,
                "gradient differs by {}",
                max_diff(a, b)
            );
        }
    }

    #[test]
    fn masked_softmax_hides_left_padding_and_future_keys() {
        let x = randn(&[2, 3, 6], 5); // 2 batch entries, 3 queries, 6 keys, 3 cached before
        let pad = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        let mask = AttentionMask {
            queries: 3,
            past: 3,
            rows_per_batch: 3,
            scale: 1.0,
            rows_per_query: 1,
        };
        let p = masked_softmax(&x, &pad, mask)
            .unwrap()
            .to_vec3::<f32>()
            .unwrap();
        for (b, rows) in p.iter().enumerate() {
            for (q, row) in rows.iter().enumerate() {
                let lo = if b == 0 { 0 } else { 2 };
                for (j, &v) in row.iter().enumerate() {
                    assert_eq!(v == 0.0, j < lo || j > 3 + q, "b{b} q{q} key {j}: {v}");
                }
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn silu_mul_and_token_nll_match_composed_ops_with_gradients() {
        let g = Var::from_tensor(&randn(&[3, 7], 6)).unwrap();
        let u = Var::from_tensor(&randn(&[3, 7], 7)).unwrap();
        let ours = silu_mul(&g, &u).unwrap();
        let theirs = (g.silu().unwrap() * u.as_tensor()).unwrap();
        assert!(max_diff(&ours, &theirs) < 1e-6);
        let a = ours.sum_all().unwrap().backward().unwrap();
        let b = theirs.sum_all().unwrap().backward().unwrap();
        assert!(max_diff(a.get(&g).unwrap(), b.get(&g).unwrap()) < 1e-5);
        assert!(max_diff(a.get(&u).unwrap(), b.get(&u).unwrap()) < 1e-5);

        let logits = Var::from_tensor(&randn(&[4, 9], 8)).unwrap();
        let targets = Tensor::new(&[1u32, 8, 0, 4], &Device::Cpu).unwrap();
        let nll = token_nll(&logits, &targets)
            .unwrap()
            .narrow(1, 0, 1)
            .unwrap()
            .squeeze(1)
            .unwrap();
        let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
        let want = lsm
            .gather(&targets.unsqueeze(1).unwrap(), 1)
            .unwrap()
            .squeeze(1)
            .unwrap()
            .neg()
            .unwrap();
        assert!(max_diff(&nll, &want) < 1e-5);
        let a = nll.sum_all().unwrap().backward().unwrap();
        let b = want.sum_all().unwrap().backward().unwrap();
        assert!(max_diff(a.get(&logits).unwrap(), b.get(&logits).unwrap()) < 1e-5);
    }

    /// `-log_softmax(row)[target]` in f64 throughout: the reference `token_nll` must match.
    fn exact_nll(row: &[f32], target: usize) -> f64 {
        let max = row
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
        max + sum.ln() - f64::from(row[target])
    }

    #[test]
    fn token_nll_keeps_the_tail_of_a_152k_vocabulary() {
        token_nll_tail_on(&Device::Cpu);
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_token_nll_keeps_the_tail_of_a_152k_vocabulary() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        token_nll_tail_on(&dev);
    }

    fn token_nll_tail_on(device: &Device) {
        // Qwen2.5's vocabulary. A confident row (target at 0, the rest at −20) has a loss of
        // ln(1 + (V−1)·e^−20) ≈ 3.1e-4 nats, which an f32 running sum rounds away to 0; a random
        // row checks the ordinary case against the same f64 log-softmax.
        const V: usize = 151_936;
        let mut confident = vec![-20f32; V];
        confident[0] = 0.0;
        let random: Vec<f32> = randn(&[V], 21).affine(3.0, 0.0).unwrap().to_vec1().unwrap();
        let rows = [confident.clone(), random.clone(), random.clone()];
        let targets = [0u32, 77_777, 5];
        let logits = Tensor::from_vec(rows.concat(), (3, V), device).unwrap();
        let t = Tensor::new(&targets, device).unwrap();
        let got = token_nll(&logits, &t).unwrap().to_vec2::<f32>().unwrap();
        let want0 = ((V - 1) as f64 * (-20f64).exp()).ln_1p();
        assert!(want0 > 3.0e-4, "{want0}");
        for (r, (row, &target)) in rows.iter().zip(&targets).enumerate() {
            let want = exact_nll(row, target as usize);
            let nll = f64::from(got[r][0]);
            // A few f32 ulps of the loss itself (the result is stored in f32).
            let tol = 4.0 * f64::from(f32::EPSILON) * want.abs().max(1e-3);
            assert!((nll - want).abs() <= tol, "row {r}: {nll} vs exact {want}");
        }
        assert!((f64::from(got[0][0]) - want0).abs() < 1e-9);
    }

    #[test]
    fn device_sampler_draws_what_the_host_sampler_draws() {
        let logits = randn(&[3, 50], 9);
        let keys = Tensor::new(&[11i64, -5, 42], &Device::Cpu).unwrap();
        let rows = logits.to_vec2::<f32>().unwrap();
        for (temperature, step) in [(0.0f32, 0u32), (0.7, 3), (1.3, 9)] {
            let drawn = sample_rows(&logits, &keys, step, temperature)
                .unwrap()
                .to_vec1::<u32>()
                .unwrap();
            for (r, key) in [11u64, (-5i64) as u64, 42].into_iter().enumerate() {
                let inv = if temperature > 0.0 {
                    1.0 / temperature
                } else {
                    0.0
                };
                let all = rows[r].iter().enumerate().map(|(i, &l)| (i as u32, l));
                assert_eq!(drawn[r], gumbel_choice(all, key, step, inv));
            }
        }
    }
}

#[cfg(test)]
mod fused {
    use super::*;
    use candle_core::{D, Device, Var};

    const EPS: f64 = 1e-6;

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn rand_as(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
        rand(shape, seed).to_dtype(dtype).unwrap()
    }

    /// `max |a − b| / max |b|`, on the CPU in f32 whatever the devices and dtypes.
    fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
        let f = |t: &Tensor| {
            t.to_device(&Device::Cpu)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
        };
        let (a, b) = (f(a), f(b));
        assert_eq!(a.dims(), b.dims());
        let scalar = |t: Tensor| t.to_scalar::<f32>().unwrap();
        let diff = scalar((&a - &b).unwrap().abs().unwrap().max_all().unwrap());
        let scale = scalar(b.abs().unwrap().max_all().unwrap());
        diff / scale.max(1e-12)
    }

    fn assert_close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
        let d = rel_diff(a, b);
        assert!(d <= tol, "{what}: relative difference {d} > {tol}");
    }

    /// Tolerance for a comparison in `dtype`: about one bf16 rounding, or f32 noise.
    fn tol(dtype: DType) -> f32 {
        if dtype == DType::F32 { 1e-5 } else { 1e-2 }
    }

    /// Composed RMSNorm: normalised in f32, cast to `x`'s dtype, times `w` (differentiable).
    fn reference_norm(x: &Tensor, w: &Tensor, eps: f64) -> Tensor {
        let xf = x.to_dtype(DType::F32).unwrap();
        let ms = xf.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let xn = xf
            .broadcast_div(&(ms + eps).unwrap().sqrt().unwrap())
            .unwrap();
        xn.to_dtype(x.dtype()).unwrap().broadcast_mul(w).unwrap()
    }

    #[test]
    fn rms_norm_matches_composed_ops() {
        for dtype in [DType::F32, DType::BF16] {
            for (n, h) in [(5, 16), (3, 37)] {
                let x = rand_as(&[n, h], 1, dtype);
                let w = rand_as(&[h], 2, dtype);
                let ours = rms_norm(&x, &w, EPS).unwrap();
                assert_eq!(ours.dtype(), dtype);
                assert_close(&ours, &reference_norm(&x, &w, EPS), tol(dtype), "rms_norm");
            }
        }
    }

    #[test]
    fn rms_norm_gradients_match_autograd() {
        let (n, h) = (6, 24);
        let x = Var::from_tensor(&rand(&[n, h], 3)).unwrap();
        let w = Var::from_tensor(&rand(&[h], 4)).unwrap();
        let dy = rand(&[n, h], 5);
        let y = reference_norm(&x, &w, EPS);
        let grads = (y * &dy).unwrap().sum_all().unwrap().backward().unwrap();
        let (gx, gw) = (grads.get(&x).unwrap(), grads.get(&w).unwrap());
        let dx = rms_norm_backward(&x, &w, &dy, EPS).unwrap();
        let dw = rms_norm_weight_grad(&x, &dy, EPS).unwrap();
        assert_close(&dx, gx, 1e-5, "rms_norm_backward f32");
        assert_close(&dw, gw, 1e-5, "rms_norm_weight_grad f32");
        assert_eq!(dw.dtype(), DType::F32);

        // bf16 storage: the same gradients up to bf16 rounding of inputs and output.
        let bf = |t: &Tensor| t.to_dtype(DType::BF16).unwrap();
        let (xb, wb, db) = (bf(&x), bf(&w), bf(&dy));
        let up = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let x32 = Var::from_tensor(&up(&xb)).unwrap();
        let w32 = Var::from_tensor(&up(&wb)).unwrap();
        let y = reference_norm(&x32, &w32, EPS);
        let grads = (y * up(&db))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let dx = rms_norm_backward(&xb, &wb, &db, EPS).unwrap();
        assert_eq!(dx.dtype(), DType::BF16);
        assert_close(
            &dx,
            grads.get(&x32).unwrap(),
            2e-2,
            "rms_norm_backward bf16",
        );
        let dw = rms_norm_weight_grad(&xb, &db, EPS).unwrap();
        assert_close(
            &dw,
            grads.get(&w32).unwrap(),
            2e-2,
            "rms_norm_weight_grad bf16",
        );
    }

    #[test]
    fn rms_norm_shape_errors() {
        let x = rand(&[3, 8], 6);
        assert!(rms_norm(&x, &rand(&[9], 7), EPS).is_err());
        assert!(rms_norm(&x, &rand_as(&[8], 7, DType::BF16), EPS).is_err());
        let w = rand(&[8], 7);
        assert!(rms_norm_backward(&x, &w, &rand(&[3, 9], 8), EPS).is_err());
        assert!(rms_norm_backward(&x, &w, &rand_as(&[3, 8], 8, DType::BF16), EPS).is_err());
        assert!(rms_norm_weight_grad(&x, &rand(&[4, 8], 8), EPS).is_err());
    }

    /// Rotation tables `[b, t, d/2]` of real angles (so a rotation and its inverse cancel).
    fn rope_tables(b: usize, t: usize, d: usize, dtype: DType) -> (Tensor, Tensor) {
        let half = d / 2;
        let mut angles = Vec::with_capacity(b * t * half);
        for seq in 0..b {
            for pos in 0..t {
                for i in 0..half {
                    let inv_freq = 10000f32.powf(-((2 * i) as f32) / d as f32);
                    angles.push((pos + 3 * seq) as f32 * inv_freq);
                }
            }
        }
        let a = Tensor::from_vec(angles, (b, t, half), &Device::Cpu).unwrap();
        (
            a.cos().unwrap().to_dtype(dtype).unwrap(),
            a.sin().unwrap().to_dtype(dtype).unwrap(),
        )
    }

    /// `cat(−x₂, x₁)` over the last dimension.
    fn rotate_half(x: &Tensor) -> Tensor {
        let d = x.dim(D::Minus1).unwrap();
        let x1 = x.narrow(D::Minus1, 0, d / 2).unwrap();
        let x2 = x.narrow(D::Minus1, d / 2, d / 2).unwrap();
        Tensor::cat(&[&x2.neg().unwrap(), &x1], D::Minus1).unwrap()
    }

    /// Composed split_heads: bias add (rounded in the dtype), reshape, transpose, then the
    /// rotate-half rope in f32 and one rounding at the end.
    fn reference_split(
        lin: &Tensor,
        bias: Option<&Tensor>,
        rope: Option<(&Tensor, &Tensor)>,
        b: usize,
        heads: usize,
    ) -> Tensor {
        let (n, width) = lin.dims2().unwrap();
        let (t, d) = (n / b, width / heads);
        let x = match bias {
            Some(bias) => lin.broadcast_add(bias).unwrap(),
            None => lin.clone(),
        };
        let x = x
            .reshape((b, t, heads, d))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap();
        let Some((cos, sin)) = rope else {
            return x;
        };
        let full = |c: &Tensor| {
            Tensor::cat(&[c, c], D::Minus1)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .unsqueeze(1)
                .unwrap()
        };
        let xf = x.to_dtype(DType::F32).unwrap();
        let out = (xf.broadcast_mul(&full(cos)).unwrap()
            + rotate_half(&xf).broadcast_mul(&full(sin)).unwrap())
        .unwrap();
        out.to_dtype(lin.dtype()).unwrap()
    }

    #[test]
    fn split_heads_matches_composed_ops() {
        let (b, t, heads, d) = (2, 5, 3, 8);
        for dtype in [DType::F32, DType::BF16] {
            let lin = rand_as(&[b * t, heads * d], 10, dtype);
            let bias = rand_as(&[heads * d], 11, dtype);
            let (cos, sin) = rope_tables(b, t, d, dtype);
            let rope = Rotation::new(&cos, &sin).unwrap();
            for with_bias in [false, true] {
                let bias = with_bias.then_some(&bias);
                let plain = split_heads(&lin, bias, None, b, heads).unwrap();
                assert_eq!(plain.dims(), [b, heads, t, d]);
                let want = reference_split(&lin, bias, None, b, heads);
                assert_eq!(rel_diff(&plain, &want), 0.0, "split_heads without rope");
                let rotated = split_heads(&lin, bias, Some(&rope), b, heads).unwrap();
                let want = reference_split(&lin, bias, Some((&cos, &sin)), b, heads);
                assert_close(&rotated, &want, tol(dtype), "split_heads with rope");
            }
        }
    }

    #[test]
    fn merge_heads_inverts_split_heads() {
        let (b, t, heads, d) = (2, 4, 3, 6);
        let lin = rand(&[b * t, heads * d], 12);
        let (cos, sin) = rope_tables(b, t, d, DType::F32);
        let rope = Rotation::new(&cos, &sin).unwrap();
        let split = split_heads(&lin, None, Some(&rope), b, heads).unwrap();
        let back = merge_heads(&split, Some(&rope)).unwrap();
        assert_close(&back, &lin, 1e-5, "merge_heads(split_heads(x))");
        // Without rotation it is the plain layout change.
        let x = rand(&[b, heads, t, d], 13);
        let merged = merge_heads(&x, None).unwrap();
        let want = x
            .transpose(1, 2)
            .unwrap()
            .reshape((b * t, heads * d))
            .unwrap();
        assert_eq!(rel_diff(&merged, &want), 0.0);
    }

    #[test]
    fn grouped_heads_are_position_major_groups() {
        let (b, t, heads, kv, d) = (2, 5, 6, 2, 4);
        let groups = heads / kv;
        let lin = rand(&[b * t, heads * d], 16);
        let bias = rand(&[heads * d], 17);
        let (cos, sin) = rope_tables(b, t, d, DType::F32);
        let rope = Rotation::new(&cos, &sin).unwrap();
        let plain = split_heads(&lin, Some(&bias), Some(&rope), b, heads).unwrap();
        let want = plain
            .reshape((b, kv, groups, t, d))
            .unwrap()
            .transpose(2, 3)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((b, kv, t * groups, d))
            .unwrap();
        let grouped = split_heads_grouped(&lin, Some(&bias), Some(&rope), b, heads, kv).unwrap();
        assert_eq!(rel_diff(&grouped, &want), 0.0);
        let back = merge_heads_grouped(&grouped, heads, Some(&rope)).unwrap();
        let unbiased = lin.broadcast_add(&bias).unwrap();
        assert_close(
            &back,
            &unbiased,
            1e-5,
            "merge_heads_grouped(split_heads_grouped(x))",
        );
        assert!(split_heads_grouped(&lin, None, None, b, heads, 4).is_err());
        assert!(merge_heads_grouped(&grouped, 5, None).is_err());
    }

    #[test]
    fn add_prefix_accumulates_into_the_leading_rows() {
        let acc = rand(&[2, 3, 5, 4], 30);
        let before = acc.copy().unwrap();
        let part = rand(&[2, 3, 2, 4], 31);
        add_prefix(&acc, &part).unwrap();
        let head = (before.narrow(2, 0, 2).unwrap() + &part).unwrap();
        let want = Tensor::cat(&[&head, &before.narrow(2, 2, 3).unwrap()], 2).unwrap();
        assert_eq!(rel_diff(&acc, &want), 0.0);
        assert!(add_prefix(&acc, &rand(&[2, 3, 6, 4], 32)).is_err());
        assert!(add_prefix(&acc, &rand(&[2, 2, 2, 4], 33)).is_err());
    }

    #[test]
    fn heads_shape_errors() {
        let lin = rand(&[6, 12], 14);
        assert!(split_heads(&lin, None, None, 4, 3).is_err()); // 6 rows are not 4 sequences
        assert!(split_heads(&lin, None, None, 2, 5).is_err()); // 12 is not 5 heads
        assert!(split_heads(&lin, Some(&rand(&[11], 15)), None, 2, 3).is_err());
        let (cos, sin) = rope_tables(2, 3, 2, DType::F32); // head dim 2, not 4
        let rope = Rotation::new(&cos, &sin).unwrap();
        assert!(split_heads(&lin, None, Some(&rope), 2, 3).is_err());
        assert!(merge_heads(&lin, None).is_err()); // not [B, heads, T, D]
        let (cos, sin) = rope_tables(2, 3, 3, DType::F32); // odd head dim
        let x = rand(&[2, 1, 3, 3], 16);
        let rope = Rotation::new(&cos, &sin).unwrap();
        assert!(merge_heads(&x, Some(&rope)).is_err());
    }

    #[test]
    fn scatter_add_rows_matches_index_add() {
        let index = Tensor::new(&[3u32, 0, 3, 1, 3, 0], &Device::Cpu).unwrap();
        for dtype in [DType::F32, DType::BF16] {
            let src = rand_as(&[6, 7], 17, dtype);
            let ours = scatter_add_rows(&src, &index, 5).unwrap();
            assert_eq!((ours.dims(), ours.dtype()), (&[5, 7][..], DType::F32));
            let want = Tensor::zeros((5, 7), DType::F32, &Device::Cpu)
                .unwrap()
                .index_add(&index, &src.to_dtype(DType::F32).unwrap(), 0)
                .unwrap();
            assert_close(&ours, &want, 1e-6, "scatter_add_rows");
        }
        let src = rand(&[6, 7], 18);
        assert!(scatter_add_rows(&src, &index, 3).is_err()); // index 3 of 3 rows
        assert!(scatter_add_rows(&src, &index.to_dtype(DType::I64).unwrap(), 5).is_err());
        assert!(scatter_add_rows(&src, &index.narrow(0, 0, 5).unwrap(), 5).is_err());
    }

    fn adamw_step(step: u64) -> AdamWStep {
        AdamWStep {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
            step,
        }
    }

    /// The composed AdamW step the fused ops replace (`train::optim` before them).
    fn reference_adamw(
        param: &Tensor,
        m: &Tensor,
        v: &Tensor,
        grad: Option<&Tensor>,
        c: AdamWStep,
    ) -> (Tensor, Tensor, Tensor) {
        let t = c.step as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let theta = (param.to_dtype(DType::F32).unwrap() * (1.0 - c.lr * c.weight_decay)).unwrap();
        let Some(g) = grad else {
            return (theta.to_dtype(param.dtype()).unwrap(), m.clone(), v.clone());
        };
        let g = g.to_dtype(DType::F32).unwrap();
        let m = (m + ((&g - m).unwrap() * (1.0 - c.beta1)).unwrap()).unwrap();
        let v = ((v * c.beta2).unwrap() + (g.sqr().unwrap() * (1.0 - c.beta2)).unwrap()).unwrap();
        let denom = ((v.sqrt().unwrap() / bias2_sqrt).unwrap() + c.eps).unwrap();
        let update = ((&m / denom).unwrap() * (c.lr / bias1)).unwrap();
        let param = (theta - update).unwrap().to_dtype(param.dtype()).unwrap();
        (param, m, v)
    }

    #[test]
    fn adamw_matches_composed_ops() {
        let n = 37;
        for dtype in [DType::F32, DType::BF16] {
            let param = rand_as(&[n], 20, dtype);
            let mv = Tensor::zeros((2, n), DType::F32, &Device::Cpu).unwrap();
            let (mut p_ref, mut m_ref, mut v_ref) = (
                param.copy().unwrap(),
                Tensor::zeros(n, DType::F32, &Device::Cpu).unwrap(),
                Tensor::zeros(n, DType::F32, &Device::Cpu).unwrap(),
            );
            for step in 1..=3u64 {
                let c = adamw_step(step);
                let grad = rand_as(&[n], 20 + step, dtype);
                if step == 2 {
                    decay_only(&param, c).unwrap();
                    (p_ref, m_ref, v_ref) = reference_adamw(&p_ref, &m_ref, &v_ref, None, c);
                } else {
                    adamw_moments(&mv, &grad, c).unwrap();
                    adamw_apply(&param, &mv, c).unwrap();
                    (p_ref, m_ref, v_ref) = reference_adamw(&p_ref, &m_ref, &v_ref, Some(&grad), c);
                }
                assert_close(&mv.get(0).unwrap(), &m_ref, 1e-6, "adamw m");
                assert_close(&mv.get(1).unwrap(), &v_ref, 1e-6, "adamw v");
                assert_close(&param, &p_ref, 1e-6, "adamw param");
            }
        }
    }

    #[test]
    fn adamw_shape_errors() {
        let c = adamw_step(1);
        let param = rand(&[4, 3], 30);
        let grad = rand(&[4, 3], 31);
        let zeros = |shape: &[usize], dtype| Tensor::zeros(shape, dtype, &Device::Cpu).unwrap();
        assert!(adamw_moments(&zeros(&[2, 11], DType::F32), &grad, c).is_err());
        assert!(adamw_moments(&zeros(&[2, 12], DType::BF16), &grad, c).is_err());
        assert!(adamw_moments(&zeros(&[12, 2], DType::F32).t().unwrap(), &grad, c).is_err());
        assert!(adamw_apply(&param, &zeros(&[2, 13], DType::F32), c).is_err());
        assert!(adamw_apply(&param.t().unwrap(), &zeros(&[2, 12], DType::F32), c).is_err());
        assert!(adamw_moments(&zeros(&[2, 12], DType::F32), &grad, c).is_ok());
    }

    // -----------------------------------------------------------------------------------------
    // CUDA kernels against the CPU ops on the same inputs.

    #[cfg(feature = "cuda")]
    fn on(t: &Tensor, dev: &Device) -> Tensor {
        t.to_device(dev).unwrap()
    }

    /// Row shapes: vectorised (H a multiple of 8), a ragged tail, rows wider than one chunk of
    /// the weight gradient, and more rows than weight-gradient strips.
    #[cfg(feature = "cuda")]
    const NORM_SHAPES: [(usize, usize); 5] = [(64, 1536), (7, 100), (3, 8200), (1100, 64), (2, 3)];

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_rms_norm_matches_cpu() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        for dtype in [DType::F32, DType::BF16] {
            for (i, &(n, h)) in NORM_SHAPES.iter().enumerate() {
                let seed = 100 + 10 * i as u64;
                // One row more than needed, cut off the front: a view at an offset, unaligned
                // when H is not a multiple of 8.
                let x = rand_as(&[n + 1, h], seed, dtype).narrow(0, 1, n).unwrap();
                let w = rand_as(&[h], seed + 1, dtype);
                let dy = rand_as(&[n, h], seed + 2, dtype);
                let what = format!("{dtype:?} [{n}, {h}]");
                let (gx, gw, gd) = (on(&x, &dev), on(&w, &dev), on(&dy, &dev));
                let cpu = rms_norm(&x, &w, EPS).unwrap();
                let gpu = rms_norm(&gx, &gw, EPS).unwrap();
                assert_close(&gpu, &cpu, tol(dtype), &format!("rms_norm {what}"));
                let cpu = rms_norm_backward(&x, &w, &dy, EPS).unwrap();
                let gpu = rms_norm_backward(&gx, &gw, &gd, EPS).unwrap();
                assert_close(&gpu, &cpu, tol(dtype), &format!("rms_norm_backward {what}"));
                let cpu = rms_norm_weight_grad(&x, &dy, EPS).unwrap();
                let gpu = rms_norm_weight_grad(&gx, &gd, EPS).unwrap();
                let wtol = if dtype == DType::F32 { 2e-5 } else { 1e-2 };
                assert_close(&gpu, &cpu, wtol, &format!("rms_norm_weight_grad {what}"));
            }
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_add_prefix_matches_cpu() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        for dtype in [DType::F32, DType::BF16] {
            let acc = rand(&[2, 3, 37, 8], 40);
            let part = rand_as(&[2, 3, 21, 8], 41, dtype);
            let gacc = on(&acc, &dev);
            add_prefix(&acc, &part).unwrap();
            add_prefix(&gacc, &on(&part, &dev)).unwrap();
            assert_eq!(rel_diff(&gacc.to_device(&Device::Cpu).unwrap(), &acc), 0.0);
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_heads_match_cpu() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        // (batch, time, heads, dim): vectorised, odd pair count, and an odd dim without rope.
        let shapes = [(2, 33, 4, 64), (2, 5, 3, 8), (1, 7, 2, 6), (3, 2, 2, 5)];
        for dtype in [DType::F32, DType::BF16] {
            for (i, &(b, t, heads, d)) in shapes.iter().enumerate() {
                let seed = 200 + 10 * i as u64;
                let lin = rand_as(&[b * t, heads * d], seed, dtype);
                let bias = rand_as(&[heads * d], seed + 1, dtype);
                let x = rand_as(&[b, heads, t, d], seed + 2, dtype);
                let (cos, sin) = rope_tables(b, t, d, dtype);
                let (gcos, gsin) = (on(&cos, &dev), on(&sin, &dev));
                let (glin, gbias, gx) = (on(&lin, &dev), on(&bias, &dev), on(&x, &dev));
                let what = format!("{dtype:?} {:?}", (b, t, heads, d));
                for with_bias in [false, true] {
                    let (bias, gbias) = (with_bias.then_some(&bias), with_bias.then_some(&gbias));
                    let cpu = split_heads(&lin, bias, None, b, heads).unwrap();
                    let gpu = split_heads(&glin, gbias, None, b, heads).unwrap();
                    assert_eq!(rel_diff(&gpu, &cpu), 0.0, "split_heads {what}");
                    if d % 2 == 0 {
                        let rope = Rotation::new(&cos, &sin).unwrap();
                        let grope = Rotation::new(&gcos, &gsin).unwrap();
                        let cpu = split_heads(&lin, bias, Some(&rope), b, heads).unwrap();
                        let gpu = split_heads(&glin, gbias, Some(&grope), b, heads).unwrap();
                        assert_eq!(rel_diff(&gpu, &cpu), 0.0, "split_heads rope {what}");
                    }
                }
                let cpu = merge_heads(&x, None).unwrap();
                let gpu = merge_heads(&gx, None).unwrap();
                assert_eq!(rel_diff(&gpu, &cpu), 0.0, "merge_heads {what}");
                if heads % 2 == 0 && d % 2 == 0 {
                    // Two key heads: position-major groups both ways.
                    let rope = Rotation::new(&cos, &sin).unwrap();
                    let grope = Rotation::new(&gcos, &gsin).unwrap();
                    let kv = heads / 2;
                    let cpu = split_heads_grouped(&lin, Some(&bias), Some(&rope), b, heads, kv);
                    let gpu = split_heads_grouped(&glin, Some(&gbias), Some(&grope), b, heads, kv);
                    let (cpu, gpu) = (cpu.unwrap(), gpu.unwrap());
                    assert_eq!(rel_diff(&gpu, &cpu), 0.0, "split_heads_grouped {what}");
                    let cpu = merge_heads_grouped(&cpu, heads, Some(&rope)).unwrap();
                    let gpu = merge_heads_grouped(&gpu, heads, Some(&grope)).unwrap();
                    assert_eq!(rel_diff(&gpu, &cpu), 0.0, "merge_heads_grouped {what}");
                }
                if d % 2 == 0 {
                    let rope = Rotation::new(&cos, &sin).unwrap();
                    let grope = Rotation::new(&gcos, &gsin).unwrap();
                    let cpu = merge_heads(&x, Some(&rope)).unwrap();
                    let gpu = merge_heads(&gx, Some(&grope)).unwrap();
                    assert_eq!(rel_diff(&gpu, &cpu), 0.0, "merge_heads rope {what}");
                }
            }
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_scatter_add_rows_matches_cpu() {
        use rand::{Rng, SeedableRng};
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(300);
        for dtype in [DType::F32, DType::BF16] {
            for (n, h, rows) in [(500, 1536, 37), (50, 37, 10), (9, 3, 2)] {
                let src = rand_as(&[n, h], 301, dtype);
                let index: Vec<u32> = (0..n).map(|_| rng.random_range(0..rows as u32)).collect();
                let index = Tensor::new(index.as_slice(), &Device::Cpu).unwrap();
                let cpu = scatter_add_rows(&src, &index, rows).unwrap();
                let gpu = scatter_add_rows(&on(&src, &dev), &on(&index, &dev), rows).unwrap();
                // Atomic adds sum in any order: f32 rounding noise only.
                assert_close(
                    &gpu,
                    &cpu,
                    1e-5,
                    &format!("scatter_add_rows {dtype:?} {n}x{h}"),
                );
            }
        }
        // The GPU skips a row whose index is out of range (the CPU reports it).
        let src = rand(&[3, 16], 302);
        let index = Tensor::new(&[1u32, 7, 0], &Device::Cpu).unwrap();
        let gpu = scatter_add_rows(&on(&src, &dev), &on(&index, &dev), 2).unwrap();
        let kept = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        let want = scatter_add_rows(
            &src.index_select(&kept, 0).unwrap(),
            &Tensor::new(&[1u32, 0], &Device::Cpu).unwrap(),
            2,
        )
        .unwrap();
        assert_eq!(rel_diff(&gpu, &want), 0.0);
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_adamw_matches_cpu() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        // n = 1003 puts the v row off 16-byte alignment (the kernels' scalar path).
        for n in [4096, 1003] {
            for (pdtype, gdtype) in [
                (DType::F32, DType::F32),
                (DType::BF16, DType::BF16),
                (DType::F32, DType::BF16),
            ] {
                let param = rand_as(&[n], 400, pdtype);
                let gparam = on(&param, &dev);
                let mv = Tensor::zeros((2, n), DType::F32, &Device::Cpu).unwrap();
                let gmv = on(&mv, &dev);
                for step in 1..=3u64 {
                    let c = adamw_step(step);
                    if step == 2 {
                        decay_only(&param, c).unwrap();
                        decay_only(&gparam, c).unwrap();
                    } else {
                        let grad = rand_as(&[n], 400 + step, gdtype);
                        adamw_moments(&mv, &grad, c).unwrap();
                        adamw_moments(&gmv, &on(&grad, &dev), c).unwrap();
                        adamw_apply(&param, &mv, c).unwrap();
                        adamw_apply(&gparam, &gmv, c).unwrap();
                    }
                    // The kernels do the CPU's f32 operations in its order: equal values.
                    let what = format!("adamw {pdtype:?}/{gdtype:?} n={n} step {step}");
                    assert_eq!(rel_diff(&gmv, &mv), 0.0, "{what}: moments");
                    assert_eq!(rel_diff(&gparam, &param), 0.0, "{what}: parameter");
                }
            }
        }
    }

    /// Effective bandwidth of each kernel at training shapes ([32768, 1536] bf16, 12 heads of
    /// 128), next to a plain device copy of the same tensor as the ceiling. Run on a GPU with
    /// `--ignored --nocapture cuda_fused_bandwidth`.
    #[cfg(feature = "cuda")]
    #[test]
    #[ignore]
    fn cuda_fused_bandwidth() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        let (b, t, heads, d) = (16, 2048, 12, 128);
        let (n, h) = (b * t, heads * d);
        let bf = DType::BF16;
        let randg = |shape: &[usize]| {
            Tensor::rand(-2f32, 2f32, shape, &dev)
                .unwrap()
                .to_dtype(bf)
                .unwrap()
        };
        let (x, dy, w) = (randg(&[n, h]), randg(&[n, h]), randg(&[h]));
        let (cos, sin) = (randg(&[b, t, d / 2]), randg(&[b, t, d / 2]));
        let rope = Rotation::new(&cos, &sin).unwrap();
        let heads_x = split_heads(&x, None, None, b, heads).unwrap();
        let index = Tensor::arange(0u32, n as u32, &dev).unwrap();
        let params = n * h;
        let param = randg(&[params]);
        let grad = randg(&[params]);
        let mv = Tensor::zeros((2, params), DType::F32, &dev).unwrap();
        let elems = (n * h) as f64;
        let time = |what: &str, bytes: f64, f: &dyn Fn()| {
            f();
            dev.synchronize().unwrap();
            let reps = 20;
            let start = std::time::Instant::now();
            for _ in 0..reps {
                f();
            }
            dev.synchronize().unwrap();
            let s = start.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{what:<24} {:>8.1} us {:>8.1} GB/s",
                s * 1e6,
                bytes / s / 1e9
            );
        };
        time("copy (ceiling)", 4.0 * elems, &|| {
            x.copy().unwrap();
        });
        time("rms_norm", 4.0 * elems, &|| {
            rms_norm(&x, &w, EPS).unwrap();
        });
        time("rms_norm_backward", 6.0 * elems, &|| {
            rms_norm_backward(&x, &w, &dy, EPS).unwrap();
        });
        time("rms_norm_weight_grad", 4.0 * elems, &|| {
            rms_norm_weight_grad(&x, &dy, EPS).unwrap();
        });
        time("split_heads", 4.0 * elems, &|| {
            split_heads(&x, Some(&w), None, b, heads).unwrap();
        });
        time("split_heads rope", 4.0 * elems, &|| {
            split_heads(&x, Some(&w), Some(&rope), b, heads).unwrap();
        });
        // The rotation tables' concatenation, which split_heads and merge_heads pay each call.
        time("cat rope tables", 4.0 * (b * t * d) as f64, &|| {
            Tensor::cat(&[&cos, &sin], 2).unwrap();
        });
        time("merge_heads rope", 4.0 * elems, &|| {
            merge_heads(&heads_x, Some(&rope)).unwrap();
        });
        // Read bf16, read and write f32 (the zero fill is a further write).
        time("scatter_add_rows", 14.0 * elems, &|| {
            scatter_add_rows(&x, &index, n).unwrap();
        });
        let c = adamw_step(1);
        time("adamw_moments", 18.0 * elems, &|| {
            adamw_moments(&mv, &grad, c).unwrap();
        });
        time("adamw_apply", 12.0 * elems, &|| {
            adamw_apply(&param, &mv, c).unwrap();
        });
        time("decay_only", 4.0 * elems, &|| {
            decay_only(&param, c).unwrap();
        });
    }
}
