//! Training without autograd: the model's forward pass written out again, keeping exactly what
//! its backward needs, then the backward written by hand, layer by layer in reverse.
//!
//! ```text
//! forward  x ─► norm₁ ─► q k v ─► heads+rope ─► attention ─► o ─► + ─► norm₂ ─► gate, up ─► silu·up ─► down ─► +
//! kept     x    xn₁      (lora low-rank inputs)  q k v        attn  x₂    xn₂      gate, up
//! backward the same chain reversed; frozen weights pass gradients through and get none
//! ```
//!
//! Why not candle's autograd: it accumulates every node's gradient as `zeros + grad`, keeps every
//! intermediate of a composed op alive until backward, and has no fused backward for RMSNorm or
//! rope; on the GPU that made a training step 2–4× slower than PyTorch's (docs/gpu-notes.md).
//! Here each step is one fused op ([`crate::fused`], [`crate::ops`]) or one matmul, and memory
//! holds ten activations per layer. The arithmetic is that of [`crate::Pass::Training`]; the tests
//! compare every gradient with candle's autograd through that pass.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, TensorId};

use crate::error::Result;
use crate::kernels::accumulate::scatter_add_rows;
use crate::kernels::attention::{causal_attention_blocks, causal_attention_blocks_backward};
use crate::kernels::elementwise::{add, silu_mul, silu_mul_backward};
use crate::kernels::heads::{merge_heads, merge_heads_grouped, split_heads, split_heads_grouped};
use crate::kernels::loss::{token_nll, token_nll_backward};
use crate::kernels::norm::{rms_norm, rms_norm_backward, rms_norm_weight_grad};
use crate::models::llama::{Block, Linear, Model, RmsNorm, Rope};
use crate::train::data::Example;

/// Gradients by parameter, each in its parameter's dtype and shape.
#[derive(Debug, Default)]
pub struct Gradients(HashMap<TensorId, Tensor>);

impl Gradients {
    /// The gradient of `param`, if it got one.
    pub fn get(&self, param: &Tensor) -> Option<&Tensor> {
        self.0.get(&param.id())
    }

    /// Adds `grad` to `param`'s gradient (a tied embedding gets two contributions).
    fn add(&mut self, param: &Tensor, grad: Tensor) -> Result<()> {
        let grad = grad.to_dtype(param.dtype())?.reshape(param.shape())?;
        let total = match self.0.remove(&param.id()) {
            Some(before) => add(&before, &grad)?,
            None => grad,
        };
        self.0.insert(param.id(), total);
        Ok(())
    }
}

/// The scored tokens of a batch: `ids` `[B, T]` u32; the output at flat position `positions[i]`
/// (`row · T + column`) predicts `targets[i]`.
#[derive(Debug, Clone)]
pub struct ScoredBatch {
    /// Token ids `[B, T]`, right-padded.
    pub ids: Tensor,
    /// Flat positions `[n]` u32 whose next token is scored.
    pub positions: Tensor,
    /// The tokens they should predict, `[n]` u32.
    pub targets: Tensor,
}

impl ScoredBatch {
    /// `examples` right-padded into one batch, each completion token scored at the position
    /// before it.
    pub fn new(examples: &[&Example], device: &Device) -> Result<Self> {
        let width = examples.iter().map(|e| e.tokens.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(examples.len() * width);
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        for (r, e) in examples.iter().enumerate() {
            ids.extend(
                e.tokens
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(0, width - e.tokens.len())),
            );
            for p in e.prompt_len..e.tokens.len() {
                positions.push((r * width + p - 1) as u32);
                targets.push(e.tokens[p]);
            }
        }
        let n = positions.len();
        Ok(Self {
            ids: Tensor::from_vec(ids, (examples.len(), width), device)?,
            positions: Tensor::from_vec(positions, n, device)?,
            targets: Tensor::from_vec(targets, n, device)?,
        })
    }
}

/// The summed negative log-likelihood of `batch`'s targets (as a scalar f32 tensor) and the
/// gradients of `sum / denominator` for every trainable parameter of `model`: its `Var` weights
/// and its LoRA adapters.
pub fn loss_and_grads(
    model: &Model,
    batch: &ScoredBatch,
    denominator: f64,
) -> Result<(Tensor, Gradients)> {
    let (b, t) = batch.ids.dims2()?;
    let c = &model.config;
    let dtype = model.dtype();
    let positions = Tensor::arange(0f32, t as f32, model.device())?
        .unsqueeze(0)?
        .broadcast_as((b, t))?
        .contiguous()?;
    let rope = Rope::new(&model.inv_freq, &positions, dtype)?;
    let flat_ids = batch.ids.flatten_all()?;

    let mut x = model.embed_tokens.detach().index_select(&flat_ids, 0)?;
    let mut kept = Vec::with_capacity(model.layers.len());
    for block in &model.layers {
        let (next, k) = block_forward(block, &x, &rope, b)?;
        kept.push(k);
        x = next;
    }
    let normed = rms_norm(&x, &model.norm.weight.detach(), c.rms_norm_eps)?;
    let mut grads = Gradients::default();
    let (loss_sum, dnormed) = output_loss(model, &normed, batch, denominator, &mut grads)?;
    drop(normed);
    let mut dx = norm_backward(&model.norm, &x, &dnormed, &mut grads)?;
    for (block, k) in model.layers.iter().zip(kept).rev() {
        dx = block_backward(block, k, &dx, &rope, b, &mut grads)?;
    }
    if model.embed_tokens.is_variable() {
        let vocab = model.embed_tokens.dim(0)?;
        grads.add(
            &model.embed_tokens,
            scatter_add_rows(&dx, &flat_ids, vocab)?,
        )?;
    }
    Ok((loss_sum, grads))
}

/// The summed loss of the scored positions of the final normalised states `normed` `[B·T, H]`,
/// and the gradient of `loss / denominator` with respect to them (zero at unscored rows); adds
/// the output head's gradient when it is trainable. The logits stay in the model's dtype and
/// are dropped as soon as their gradient exists.
fn output_loss(
    model: &Model,
    normed: &Tensor,
    batch: &ScoredBatch,
    denominator: f64,
    grads: &mut Gradients,
) -> Result<(Tensor, Tensor)> {
    let picked = normed.index_select(&batch.positions, 0)?;
    let head = model.lm_head.detach();
    let logits = picked.matmul(&head.t()?)?;
    let nll = token_nll(&logits, &batch.targets)?;
    let loss_sum = nll.narrow(1, 0, 1)?.sum_all()?;
    let n = batch.targets.dim(0)?;
    let per_row = Tensor::full((1.0 / denominator) as f32, (n, 1), model.device())?;
    let dlogits = token_nll_backward(&logits, &batch.targets, &nll, &per_row)?;
    drop(logits);
    let dpicked = dlogits.matmul(&head)?;
    if model.lm_head.is_variable() {
        grads.add(&model.lm_head, dlogits.t()?.matmul(&picked)?)?;
    }
    let rows = normed.dim(0)?;
    let dnormed = scatter_add_rows(&dpicked, &batch.positions, rows)?.to_dtype(normed.dtype())?;
    Ok((loss_sum, dnormed))
}

/// What one block's backward needs from its forward.
struct Kept {
    x: Tensor,
    xn1: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn: Tensor,
    x2: Tensor,
    xn2: Tensor,
    gate: Tensor,
    up: Tensor,
    /// Per projection in [`crate::models::llama::PROJECTIONS`] order.
    lora: [Option<LoraKept>; 7],
}

/// What an adapter's backward needs: its dropout mask and its scaled low-rank activations
/// `scale · x_d Aᵀ`.
struct LoraKept {
    mask: Option<Tensor>,
    low: Tensor,
}

fn attention_scale(block: &Block) -> f32 {
    1.0 / (block.self_attn.head_dim as f32).sqrt()
}

/// One block's forward over rows `x` `[B·T, H]` of `batch` sequences.
fn block_forward(block: &Block, x: &Tensor, rope: &Rope, batch: usize) -> Result<(Tensor, Kept)> {
    let a = &block.self_attn;
    let kv = a.n_kv_heads;
    let groups = a.n_heads / kv;
    let norm1 = &block.input_layernorm;
    let xn1 = rms_norm(x, &norm1.weight.detach(), norm1.eps)?;
    let (q_lin, lq) = linear_forward(&a.q_proj, &xn1, false)?;
    let (k_lin, lk) = linear_forward(&a.k_proj, &xn1, false)?;
    let (v_lin, lv) = linear_forward(&a.v_proj, &xn1, false)?;
    let bias = |l: &Linear| l.bias.as_ref().map(Tensor::detach);
    let rot = Some(&rope.rotation);
    let q = split_heads_grouped(&q_lin, bias(&a.q_proj).as_ref(), rot, batch, a.n_heads, kv)?;
    let k = split_heads(&k_lin, bias(&a.k_proj).as_ref(), rot, batch, kv)?;
    let v = split_heads(&v_lin, bias(&a.v_proj).as_ref(), None, batch, kv)?;
    drop((q_lin, k_lin, v_lin));
    let out = causal_attention_blocks(&q, &k, &v, groups, attention_scale(block))?;
    let attn = merge_heads_grouped(&out, a.n_heads, None)?;
    drop(out);
    let (o, lo) = linear_forward(&a.o_proj, &attn, true)?;
    let x2 = add(x, &o)?;
    drop(o);

    let m = &block.mlp;
    let norm2 = &block.post_attention_layernorm;
    let xn2 = rms_norm(&x2, &norm2.weight.detach(), norm2.eps)?;
    let (gate, lg) = linear_forward(&m.gate_proj, &xn2, true)?;
    let (up, lu) = linear_forward(&m.up_proj, &xn2, true)?;
    let (down, ld) = linear_forward(&m.down_proj, &silu_mul(&gate, &up)?, true)?;
    let out = add(&x2, &down)?;
    let kept = Kept {
        x: x.clone(),
        xn1,
        q,
        k,
        v,
        attn,
        x2,
        xn2,
        gate,
        up,
        lora: [lq, lk, lv, lo, lg, lu, ld],
    };
    Ok((out, kept))
}

fn block_backward(
    block: &Block,
    kept: Kept,
    dout: &Tensor,
    rope: &Rope,
    batch: usize,
    grads: &mut Gradients,
) -> Result<Tensor> {
    let Kept {
        x,
        xn1,
        q,
        k,
        v,
        attn,
        x2,
        xn2,
        gate,
        up,
        lora: [lq, lk, lv, lo, lg, lu, ld],
    } = kept;
    let m = &block.mlp;
    // The SwiGLU product is recomputed rather than kept: one cheap pass against an
    // intermediate-sized activation per layer held through the whole forward.
    let gated = silu_mul(&gate, &up)?;
    let dgated = linear_backward(&m.down_proj, &gated, ld.as_ref(), dout, grads)?;
    drop(gated);
    let dgu = silu_mul_backward(&gate, &up, &dgated)?;
    drop((gate, up, dgated));
    let dxn2 = add(
        &linear_backward(&m.gate_proj, &xn2, lg.as_ref(), &dgu.get(0)?, grads)?,
        &linear_backward(&m.up_proj, &xn2, lu.as_ref(), &dgu.get(1)?, grads)?,
    )?;
    drop((dgu, xn2));
    let dx2 = add(
        dout,
        &norm_backward(&block.post_attention_layernorm, &x2, &dxn2, grads)?,
    )?;
    drop((x2, dxn2));

    let a = &block.self_attn;
    let kv = a.n_kv_heads;
    let dattn = linear_backward(&a.o_proj, &attn, lo.as_ref(), &dx2, grads)?;
    drop(attn);
    let groups = a.n_heads / kv;
    let dheads = split_heads_grouped(&dattn, None, None, batch, a.n_heads, kv)?;
    let (dq, dk, dv) =
        causal_attention_blocks_backward(&q, &k, &v, &dheads, groups, attention_scale(block))?;
    drop((q, k, v, dheads));
    let rot = Some(&rope.rotation);
    let dq = merge_heads_grouped(&dq, a.n_heads, rot)?;
    let dk = merge_heads(&dk, rot)?;
    let dv = merge_heads(&dv, None)?;
    let dxn1 = add(
        &add(
            &linear_backward(&a.q_proj, &xn1, lq.as_ref(), &dq, grads)?,
            &linear_backward(&a.k_proj, &xn1, lk.as_ref(), &dk, grads)?,
        )?,
        &linear_backward(&a.v_proj, &xn1, lv.as_ref(), &dv, grads)?,
    )?;
    drop(xn1);
    Ok(add(
        &dx2,
        &norm_backward(&block.input_layernorm, &x, &dxn1, grads)?,
    )?)
}

/// `dx` of an RMSNorm for its output gradient `dy`, adding its weight's gradient when trainable.
fn norm_backward(norm: &RmsNorm, x: &Tensor, dy: &Tensor, grads: &mut Gradients) -> Result<Tensor> {
    if norm.weight.is_variable() {
        grads.add(&norm.weight, rms_norm_weight_grad(x, dy, norm.eps)?)?;
    }
    Ok(rms_norm_backward(x, &norm.weight.detach(), dy, norm.eps)?)
}

/// `x Wᵀ (+ b) + scale · B A (mask · x)`; the bias is left to the caller when `with_bias` is
/// false (the heads split adds it in the same pass).
fn linear_forward(lin: &Linear, x: &Tensor, with_bias: bool) -> Result<(Tensor, Option<LoraKept>)> {
    let mut y = x.matmul(&lin.weight.detach().t()?)?;
    if let (true, Some(b)) = (with_bias, &lin.bias) {
        y = y.broadcast_add(&b.detach())?;
    }
    let Some(adapter) = &lin.lora else {
        return Ok((y, None));
    };
    let mask = if adapter.dropout > 0.0 {
        Some(adapter.draw_dropout_mask(x)?)
    } else {
        None
    };
    let dropped = match &mask {
        Some(m) => (x * m)?,
        None => x.clone(),
    };
    let (a, b) = adapter_matrices(lin, x.dtype())?;
    // The scale goes on the rank-r activations, not on the full-width output.
    let low = (dropped.matmul(&a.t()?)? * adapter.scale)?;
    let y = add(&y, &low.matmul(&b.t()?)?)?;
    Ok((y, Some(LoraKept { mask, low })))
}

/// `dx` of [`linear_forward`] for `dy`, adding the gradients of its trainable parts: the weight
/// and bias when they are `Var`s, the adapter's A and B.
fn linear_backward(
    lin: &Linear,
    x: &Tensor,
    kept: Option<&LoraKept>,
    dy: &Tensor,
    grads: &mut Gradients,
) -> Result<Tensor> {
    let dx = dy.matmul(&lin.weight.detach())?;
    if lin.weight.is_variable() {
        grads.add(&lin.weight, dy.t()?.matmul(x)?)?;
    }
    if let Some(bias) = lin.bias.as_ref().filter(|b| b.is_variable()) {
        grads.add(bias, dy.to_dtype(DType::F32)?.sum(0)?)?;
    }
    let (Some(adapter), Some(kept)) = (&lin.lora, kept) else {
        return Ok(dx);
    };
    let (a, b) = adapter_matrices(lin, x.dtype())?;
    grads.add(adapter.b.as_tensor(), dy.t()?.matmul(&kept.low)?)?;
    let dlow = (dy.matmul(&b)? * adapter.scale)?;
    let dropped = match &kept.mask {
        Some(m) => (x * m)?,
        None => x.clone(),
    };
    grads.add(adapter.a.as_tensor(), dlow.t()?.matmul(&dropped)?)?;
    let mut dx_adapter = dlow.matmul(&a)?;
    if let Some(m) = &kept.mask {
        dx_adapter = (dx_adapter * m)?;
    }
    Ok(add(&dx, &dx_adapter)?)
}

/// The adapter's A and B in the activations' dtype, outside the autograd graph.
fn adapter_matrices(lin: &Linear, dtype: DType) -> Result<(Tensor, Tensor)> {
    let adapter = lin.lora.as_ref().expect("called for adapted projections");
    Ok((
        adapter.a.as_tensor().detach().to_dtype(dtype)?,
        adapter.b.as_tensor().detach().to_dtype(dtype)?,
    ))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;
    use crate::formats::config::{Arch, ModelConfig};
    use crate::models::llama::Pass;
    use crate::train::lora::{LoraConfig, attach_lora, lora_parameters};
    use crate::train::trainer::batch_loss;

    fn config(arch: Arch, tied: bool) -> ModelConfig {
        ModelConfig {
            arch,
            vocab_size: 61,
            hidden_size: 24,
            intermediate_size: 40,
            num_hidden_layers: 2,
            num_attention_heads: 6,
            num_key_value_heads: 2,
            head_dim: 4,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_scaling: None,
            max_position_embeddings: 512,
            tie_word_embeddings: tied,
            attention_bias: arch == Arch::Qwen2,
            bos_token_id: None,
            eos_token_ids: vec![0],
        }
    }

    /// Rows of different lengths with prompts, so padding and the position gather are exercised.
    fn examples() -> Vec<Example> {
        let row = |len: usize, prompt: usize, seed: u32| Example {
            tokens: (0..len as u32)
                .map(|i| (i * 7 + seed * 13 + 1) % 61)
                .collect(),
            prompt_len: prompt,
        };
        // The longest row spans three attention chunks.
        vec![row(11, 3, 1), row(7, 1, 2), row(300, 40, 3)]
    }

    fn relative(a: &Tensor, b: &Tensor) -> f32 {
        let diff = (a - b).unwrap().sqr().unwrap().sum_all().unwrap();
        let norm = b.sqr().unwrap().sum_all().unwrap();
        (diff.to_scalar::<f32>().unwrap() / norm.to_scalar::<f32>().unwrap().max(1e-30)).sqrt()
    }

    /// Every trainable parameter's gradient from [`loss_and_grads`] on `ours` equals candle's
    /// autograd through the composed training pass on `theirs` (an identical model: with LoRA
    /// dropout each pass draws fresh masks, so the two passes need two fresh twins), and so does
    /// the loss.
    fn assert_matches_autograd(
        theirs: &Model,
        their_vars: &[(String, Var)],
        ours: &Model,
        our_vars: &[(String, Var)],
    ) {
        let examples = examples();
        let refs: Vec<&Example> = examples.iter().collect();
        let count: usize = examples.iter().map(Example::target_count).sum();
        let (loss, sum) = batch_loss(theirs, &refs, count as f64, Pass::Training).unwrap();
        let store = loss.backward().unwrap();
        let batch = ScoredBatch::new(&refs, ours.device()).unwrap();
        let (our_sum, grads) = loss_and_grads(ours, &batch, count as f64).unwrap();
        let our_sum = our_sum.to_scalar::<f32>().unwrap() as f64;
        assert!((our_sum - sum).abs() < 1e-4 * sum, "{our_sum} vs {sum}");
        assert_eq!(their_vars.len(), our_vars.len());
        for ((name, theirs), (_, ours)) in their_vars.iter().zip(our_vars) {
            let expected = store
                .get(theirs.as_tensor())
                .unwrap_or_else(|| panic!("autograd has no gradient for {name}"));
            let got = grads
                .get(ours.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            assert_eq!(got.shape(), expected.shape(), "{name}");
            assert_eq!(got.dtype(), ours.dtype(), "{name}");
            let err = relative(got, expected);
            assert!(err < 1e-4, "{name}: relative error {err}");
        }
    }

    fn full_training_matches_on(device: &Device) {
        for (arch, tied) in [(Arch::Qwen2, true), (Arch::Llama, false)] {
            let mut model = Model::random(config(arch, tied), 0.2, 5, DType::F32, device).unwrap();
            let vars = model.make_trainable().unwrap();
            assert_matches_autograd(&model, &vars, &model, &vars);
        }
    }

    #[test]
    fn full_training_gradients_match_autograd() {
        full_training_matches_on(&Device::Cpu);
    }

    /// The same comparisons on the GPU: every fused kernel of the training pass in one test.
    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_gradients_match_autograd() {
        let Some(device) = crate::device::test_gpu() else {
            return;
        };
        full_training_matches_on(&device);
        for dropout in [0.0, 0.25] {
            let (theirs, their_vars) = adapted(dropout, &device);
            let (ours, our_vars) = adapted(dropout, &device);
            assert_matches_autograd(&theirs, &their_vars, &ours, &our_vars);
        }
    }

    fn adapted(dropout: f32, device: &Device) -> (Model, Vec<(String, Var)>) {
        let mut model =
            Model::random(config(Arch::Qwen2, false), 0.2, 6, DType::F32, device).unwrap();
        let lora = LoraConfig {
            rank: 3,
            // Scale 1: with PEFT's default alpha the adapters would dominate this tiny model
            // and saturate its softmaxes, leaving f32 rounding as the only thing compared.
            alpha: 3.0,
            dropout,
            ..LoraConfig::default()
        };
        attach_lora(&mut model, &lora, 1).unwrap();
        let vars = lora_parameters(&mut model);
        // B starts at zero, which would hide errors in A's gradient: give it values.
        for (i, (_, v)) in vars.iter().enumerate() {
            let t = (Tensor::ones(v.shape(), DType::F32, device).unwrap()
                * (0.01 * (i % 5) as f64 + 0.005))
                .unwrap();
            v.set(&(v.as_tensor() + t).unwrap()).unwrap();
        }
        (model, vars)
    }

    #[test]
    fn lora_gradients_match_autograd_with_and_without_dropout() {
        for dropout in [0.0, 0.25] {
            let (theirs, their_vars) = adapted(dropout, &Device::Cpu);
            let (ours, our_vars) = adapted(dropout, &Device::Cpu);
            assert_matches_autograd(&theirs, &their_vars, &ours, &our_vars);
        }
    }
}
