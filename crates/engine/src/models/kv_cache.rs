//! The KV cache of the decoder ([`super::llama`]): keys and values of a batch of left-padded rows,
//! preallocated per layer and appended to in place.

use candle_core::{DType, Device, Tensor};

use crate::error::{EngineError, Result};
use crate::formats::config::ModelConfig;

/// Keys and values of a batch of sequences, preallocated `[rows, kv_heads, capacity, head_dim]`
/// per layer and written in place, one slot per token for every row at once.
///
/// Rows are left-padded: row `r` holds its first token at slot `pad[r]`, and the slots before it
/// are hidden from attention by the mask, so a row's result does not depend on its batch-mates.
/// All rows share the slot count, which lets one decode step append a token to every row with a
/// single in-place copy per layer, and lets attention run as one batched matmul.
#[derive(Debug)]
pub struct KvCache {
    /// `layers[l] = (k, v)`, `None` until the cache has rows.
    layers: Vec<Option<(Tensor, Tensor)>>,
    /// Left padding of each row.
    pad: Vec<u32>,
    /// `pad` on the device: u32 for the attention mask, f32 for rope positions.
    pad_device: Option<(Tensor, Tensor)>,
    /// Slots written so far (the same for every row).
    pub(crate) len: usize,
}

impl KvCache {
    /// An empty cache with no rows.
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: (0..num_layers).map(|_| None).collect(),
            pad: Vec::new(),
            pad_device: None,
            len: 0,
        }
    }

    /// Adds an empty, unpadded row able to hold `capacity` tokens; returns its index. Rows can be
    /// added only before the first token is written.
    pub fn add_row(
        &mut self,
        config: &ModelConfig,
        capacity: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<usize> {
        if self.len > 0 {
            return Err(EngineError::Request(
                "rows can be added to a KV cache only before its first token".into(),
            ));
        }
        if self.rows() > 0 && capacity != self.capacity()? {
            return Err(EngineError::Request(format!(
                "a KV cache row of capacity {capacity} cannot join rows of capacity {}",
                self.capacity()?
            )));
        }
        let shape = (1, config.num_key_value_heads, capacity, config.head_dim);
        for layer in &mut self.layers {
            let k = Tensor::zeros(shape, dtype, device)?;
            let v = Tensor::zeros(shape, dtype, device)?;
            *layer = Some(match layer.take() {
                None => (k, v),
                Some((ks, vs)) => (Tensor::cat(&[&ks, &k], 0)?, Tensor::cat(&[&vs, &v], 0)?),
            });
        }
        self.pad.push(0);
        self.pad_device = None;
        Ok(self.rows() - 1)
    }

    /// A cache of `rows` empty, unpadded rows able to hold `capacity` tokens each.
    pub fn with_rows(
        config: &ModelConfig,
        rows: usize,
        capacity: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let shape = (rows, config.num_key_value_heads, capacity, config.head_dim);
        let mut cache = Self::new(config.num_hidden_layers);
        for layer in &mut cache.layers {
            *layer = Some((
                Tensor::zeros(shape, dtype, device)?,
                Tensor::zeros(shape, dtype, device)?,
            ));
        }
        cache.pad = vec![0; rows];
        Ok(cache)
    }

    /// Builds one batch from caches whose rows each hold one sequence (all rows of a part equally
    /// padded), every row repeated `copies` times in place, left-padding the shorter parts so that
    /// every row ends at the same slot, with room for `extra` more tokens.
    pub fn stack_left_padded(parts: &[(&KvCache, usize)], extra: usize) -> Result<Self> {
        if parts
            .iter()
            .any(|(c, _)| c.pad.iter().any(|&p| p != c.pad[0]))
        {
            return Err(EngineError::Request(
                "stack_left_padded takes caches whose rows are equally padded".into(),
            ));
        }
        let num_layers = parts.first().map_or(0, |(c, _)| c.layers.len());
        let longest = parts.iter().map(|(c, _)| c.len(0)).max().unwrap_or(0);
        let width = longest + extra;
        let mut out = Self::new(num_layers);
        for (layer, slot) in out.layers.iter_mut().enumerate() {
            let mut ks = Vec::new();
            let mut vs = Vec::new();
            for (part, copies) in parts {
                let (k, v) = part.layers[layer].as_ref().expect("a row has every layer");
                let (first, tokens) = (part.pad[0] as usize, part.len(0));
                let place = |t: &Tensor| -> Result<Tensor> {
                    let (rows, h, _, d) = t.dims4()?;
                    let used = t.narrow(2, first, tokens)?.contiguous()?;
                    let full = Tensor::zeros((rows, h, width, d), t.dtype(), t.device())?;
                    full.slice_set(&used, 2, longest - tokens)?;
                    Ok(full
                        .unsqueeze(1)?
                        .broadcast_as((rows, *copies, h, width, d))?
                        .reshape((rows * copies, h, width, d))?)
                };
                ks.push(place(k)?);
                vs.push(place(v)?);
            }
            *slot = Some((
                Tensor::cat(&ks, 0)?.contiguous()?,
                Tensor::cat(&vs, 0)?.contiguous()?,
            ));
        }
        for (part, copies) in parts {
            let pad = (longest - part.len(0)) as u32;
            out.pad
                .extend(std::iter::repeat_n(pad, part.rows() * copies));
        }
        out.len = longest;
        Ok(out)
    }

    /// Appends a copy of row `row` (sharing nothing with it); returns the new row's index.
    pub fn duplicate_row(&mut self, row: usize) -> Result<usize> {
        let mut keep: Vec<u32> = (0..self.rows() as u32).collect();
        keep.push(row as u32);
        self.select_rows(&keep)?;
        Ok(self.rows() - 1)
    }

    /// Keeps only the rows listed, in that order.
    pub fn retain_rows(&mut self, keep: &[usize]) -> Result<()> {
        let keep: Vec<u32> = keep.iter().map(|&r| r as u32).collect();
        self.select_rows(&keep)
    }

    fn select_rows(&mut self, keep: &[u32]) -> Result<()> {
        for (k, v) in self.layers.iter_mut().flatten() {
            let index = Tensor::new(keep, k.device())?;
            *k = k.index_select(&index, 0)?;
            *v = v.index_select(&index, 0)?;
        }
        self.pad = keep.iter().map(|&r| self.pad[r as usize]).collect();
        self.pad_device = None;
        Ok(())
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.pad.len()
    }

    /// Tokens already cached in `row` (its slots after the padding).
    pub fn len(&self, row: usize) -> usize {
        self.len - self.pad[row] as usize
    }

    /// Whether the cache has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows() == 0
    }

    fn capacity(&self) -> Result<usize> {
        match self.layers.first().and_then(Option::as_ref) {
            Some((k, _)) => Ok(k.dim(2)?),
            None => Ok(0),
        }
    }

    /// The padding on `device`, uploaded once per batch rather than once per step (an upload from
    /// host memory waits for the device to finish its queue).
    pub(crate) fn pad_on(&mut self, device: &Device) -> Result<(Tensor, Tensor)> {
        if self.pad_device.is_none() {
            let pad = Tensor::new(self.pad.as_slice(), device)?;
            let as_f32 = pad.to_dtype(DType::F32)?;
            self.pad_device = Some((pad, as_f32));
        }
        Ok(self.pad_device.clone().expect("just set"))
    }

    /// Writes `k`, `v` `[rows, kv, t, d]` of `layer` at the next slots; returns the keys and values
    /// of every slot so far.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        k: &Tensor,
        v: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        let cap = self.capacity()?;
        if self.len + t > cap {
            return Err(EngineError::Request(format!(
                "KV cache full: {} + {t} tokens exceed its capacity {cap}",
                self.len
            )));
        }
        let (ks, vs) = self.layers[layer]
            .as_ref()
            .ok_or_else(|| EngineError::Request("the KV cache has no rows".into()))?;
        ks.slice_set(&k.contiguous()?, 2, self.len)?;
        vs.slice_set(&v.contiguous()?, 2, self.len)?;
        Ok((
            ks.narrow(2, 0, self.len + t)?,
            vs.narrow(2, 0, self.len + t)?,
        ))
    }
}
