//! GGUF files: a bounds-checked reader of the header, metadata and tensor table, and dequantisation of
//! the block formats small models ship in (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K).
//!
//! Every length and offset in the file is checked against the file's size before it is used, so a
//! truncated or hostile file gives a [`EngineError::BadFile`] and never a panic or a huge allocation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};

use crate::error::{EngineError, Result};

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// More metadata entries or tensors than this is not a model we would load.
const MAX_ENTRIES: u64 = 1 << 20;
const MAX_DIMS: u32 = 4;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// Any unsigned integer type.
    Uint(u64),
    /// Any signed integer type.
    Int(i64),
    /// f32 or f64.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string (invalid UTF-8 is replaced, never rejected).
    Str(String),
    /// An array of values.
    Array(Vec<MetaValue>),
}

impl MetaValue {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::Uint(v) => Some(v),
            MetaValue::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::Float(v) => Some(v),
            MetaValue::Uint(v) => Some(v as f64),
            MetaValue::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an array, if it is one.
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// The storage type of a GGUF tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
    /// bfloat16.
    Bf16,
    /// 32 weights: f16 scale, 32 × i8.
    Q8_0,
    /// 32 weights: f16 scale, 32 × 4-bit, offset 8.
    Q4_0,
    /// 32 weights: f16 scale and minimum, 32 × 4-bit.
    Q4_1,
    /// 256 weights in 8 sub-blocks with 6-bit scales and minimums.
    Q4K,
    /// 256 weights of 6 bits in 16 sub-blocks with i8 scales.
    Q6K,
}

impl GgmlType {
    fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            12 => Self::Q4K,
            14 => Self::Q6K,
            30 => Self::Bf16,
            _ => return None,
        })
    }

    /// (weights per block, bytes per block).
    pub fn block_layout(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::Bf16 => (1, 2),
            Self::Q8_0 => (32, 34),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q4K => (256, 144),
            Self::Q6K => (256, 210),
        }
    }
}

/// Where one tensor lives in the file.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// Its GGUF name (e.g. `blk.0.attn_q.weight`).
    pub name: String,
    /// Its shape in row-major order (GGUF stores dimensions innermost first; this is reversed).
    pub shape: Vec<usize>,
    /// Its storage type.
    pub dtype: GgmlType,
    /// Absolute byte offset of its data in the file.
    pub offset: usize,
    /// Its size in bytes.
    pub n_bytes: usize,
}

/// A parsed GGUF file, memory-mapped.
pub struct GgufFile {
    path: PathBuf,
    data: memmap2::Mmap,
    /// Metadata key/value pairs.
    pub metadata: BTreeMap<String, MetaValue>,
    /// Tensors by name, in file order of their names.
    pub tensors: BTreeMap<String, TensorInfo>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and validates `path`: header, metadata, tensor table, and that every tensor lies inside the file.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| EngineError::read(path, e))?;
        // SAFETY: the map is read-only and we never hand out references that outlive it; a file
        // changed underneath us can give wrong numbers but not memory unsafety in safe code paths.
        let data = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| EngineError::read(path, e))?;
        let (metadata, tensors) = parse(&data).map_err(|m| EngineError::bad_file(path, m))?;
        Ok(Self {
            path: path.to_path_buf(),
            data,
            metadata,
            tensors,
        })
    }

    /// Parses and validates the header of GGUF bytes held in memory (used by tests and fuzzing):
    /// the same checks as [`GgufFile::open`], giving the metadata and the tensor table.
    pub fn parse_header(bytes: &[u8]) -> std::result::Result<GgufHeader, String> {
        parse(bytes)
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A metadata value, or a precise error naming the missing key.
    pub fn meta(&self, key: &str) -> Result<&MetaValue> {
        self.metadata.get(key).ok_or_else(|| {
            EngineError::bad_file(&self.path, format!("metadata key `{key}` is missing"))
        })
    }

    /// An integer metadata value.
    pub fn meta_u64(&self, key: &str) -> Result<u64> {
        self.meta(key)?.as_u64().ok_or_else(|| {
            EngineError::bad_file(
                &self.path,
                format!("metadata `{key}` is not an unsigned integer"),
            )
        })
    }

    /// A float metadata value.
    pub fn meta_f64(&self, key: &str) -> Result<f64> {
        self.meta(key)?.as_f64().ok_or_else(|| {
            EngineError::bad_file(&self.path, format!("metadata `{key}` is not a number"))
        })
    }

    /// A string metadata value.
    pub fn meta_str(&self, key: &str) -> Result<&str> {
        self.meta(key)?.as_str().ok_or_else(|| {
            EngineError::bad_file(&self.path, format!("metadata `{key}` is not a string"))
        })
    }

    /// Dequantises tensor `name` to f32, row-major in [`TensorInfo::shape`].
    pub fn dequantize(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let info = self.tensors.get(name).ok_or_else(|| {
            EngineError::bad_file(&self.path, format!("tensor `{name}` is missing"))
        })?;
        let bytes = &self.data[info.offset..info.offset + info.n_bytes];
        let n: usize = info.shape.iter().product();
        let values = dequantize(info.dtype, bytes, n)
            .map_err(|m| EngineError::bad_file(&self.path, format!("tensor `{name}`: {m}")))?;
        Ok((values, info.shape.clone()))
    }
}

/// A bounds-checked little-endian reader over the file's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

type ParseResult<T> = std::result::Result<T, String>;

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> ParseResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!(
                "file truncated: {what} needs {n} bytes at offset {} but the file has {} bytes \
                 (re-download or re-convert the model)",
                self.pos,
                self.bytes.len()
            ));
        };
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn u8(&mut self) -> ParseResult<u8> {
        Ok(self.take(1, "a u8")?[0])
    }

    fn u32(&mut self) -> ParseResult<u32> {
        let b = self.take(4, "a u32")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> ParseResult<u64> {
        let b = self.take(8, "a u64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self) -> ParseResult<String> {
        let len = self.u64()?;
        let len = usize::try_from(len).map_err(|_| format!("string length {len} is absurd"))?;
        let b = self.take(len, "a string")?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    fn value(&mut self, type_id: u32, depth: u32) -> ParseResult<MetaValue> {
        Ok(match type_id {
            0 => MetaValue::Uint(self.u8()? as u64),
            1 => MetaValue::Int(self.u8()? as i8 as i64),
            2 => MetaValue::Uint(u16::from_le_bytes(self.fixed::<2>()?) as u64),
            3 => MetaValue::Int(i16::from_le_bytes(self.fixed::<2>()?) as i64),
            4 => MetaValue::Uint(self.u32()? as u64),
            5 => MetaValue::Int(self.u32()? as i32 as i64),
            6 => MetaValue::Float(f32::from_le_bytes(self.fixed::<4>()?) as f64),
            7 => MetaValue::Bool(self.u8()? != 0),
            8 => MetaValue::Str(self.string()?),
            9 => self.array(depth)?,
            10 => MetaValue::Uint(self.u64()?),
            11 => MetaValue::Int(self.u64()? as i64),
            12 => MetaValue::Float(f64::from_le_bytes(self.fixed::<8>()?)),
            other => return Err(format!("unknown metadata value type {other}")),
        })
    }

    fn fixed<const N: usize>(&mut self) -> ParseResult<[u8; N]> {
        let b = self.take(N, "a number")?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn array(&mut self, depth: u32) -> ParseResult<MetaValue> {
        if depth > 2 {
            return Err("metadata arrays nested more than twice".into());
        }
        let elem_type = self.u32()?;
        let len = self.u64()?;
        // A length the remaining bytes cannot hold is a lie; refusing it before reserving memory
        // keeps a small hostile file from reserving many times its size.
        let least = min_value_bytes(elem_type);
        if len.saturating_mul(least) > self.remaining() as u64 {
            return Err(format!(
                "metadata array claims {len} elements of at least {least} bytes each but only {} bytes remain",
                self.remaining()
            ));
        }
        let mut out = Vec::with_capacity(len as usize);
        for _ in 0..len {
            out.push(self.value(elem_type, depth + 1)?);
        }
        Ok(MetaValue::Array(out))
    }
}

/// The fewest bytes a metadata value of type `type_id` occupies (1 for unknown types, which fail
/// when read).
fn min_value_bytes(type_id: u32) -> u64 {
    match type_id {
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        // Element type and length of an empty array.
        9 => 12,
        _ => 1,
    }
}

/// A parsed GGUF header: metadata by key and tensors by name.
pub type GgufHeader = (BTreeMap<String, MetaValue>, BTreeMap<String, TensorInfo>);

fn parse(bytes: &[u8]) -> ParseResult<GgufHeader> {
    let mut c = Cursor { bytes, pos: 0 };
    if c.take(4, "the magic number")? != MAGIC {
        return Err("not a GGUF file (the first 4 bytes are not `GGUF`)".into());
    }
    let version = c.u32()?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not supported (2 and 3 are)"
        ));
    }
    let n_tensors = c.u64()?;
    let n_kv = c.u64()?;
    if n_tensors > MAX_ENTRIES || n_kv > MAX_ENTRIES {
        return Err(format!(
            "implausible counts: {n_tensors} tensors, {n_kv} metadata entries"
        ));
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = c.string()?;
        let ty = c.u32()?;
        let value = c
            .value(ty, 0)
            .map_err(|e| format!("metadata `{key}`: {e}"))?;
        metadata.insert(key, value);
    }
    // Each tensor entry takes at least 32 bytes (name length, dimension count, one dimension,
    // type, offset), so the count is checked against the bytes left before reserving for it.
    if n_tensors.saturating_mul(32) > c.remaining() as u64 {
        return Err(format!(
            "the tensor table claims {n_tensors} tensors but only {} bytes remain",
            c.remaining()
        ));
    }
    let mut infos = Vec::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        infos.push(read_tensor_info(&mut c)?);
    }
    let alignment = metadata
        .get("general.alignment")
        .and_then(MetaValue::as_u64)
        .unwrap_or(DEFAULT_ALIGNMENT);
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(format!(
            "general.alignment {alignment} is not a power of two"
        ));
    }
    let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
    let mut tensors = BTreeMap::new();
    for (name, shape, dtype, rel_offset) in infos {
        let info = place_tensor(name, shape, dtype, rel_offset, data_start, bytes.len())?;
        tensors.insert(info.name.clone(), info);
    }
    Ok((metadata, tensors))
}

fn read_tensor_info(c: &mut Cursor) -> ParseResult<(String, Vec<usize>, GgmlType, u64)> {
    let name = c.string()?;
    let n_dims = c.u32()?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(format!(
            "tensor `{name}` has {n_dims} dimensions (1 to 4 allowed)"
        ));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        let d = c.u64()?;
        let d =
            usize::try_from(d).map_err(|_| format!("tensor `{name}`: dimension {d} too large"))?;
        dims.push(d);
    }
    dims.reverse();
    let type_id = c.u32()?;
    let dtype = GgmlType::from_id(type_id).ok_or_else(|| {
        format!(
            "tensor `{name}` uses ggml type {type_id}, which assay does not dequantise \
             (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K); re-quantise the model to one of these"
        )
    })?;
    let offset = c.u64()?;
    Ok((name, dims, dtype, offset))
}

fn place_tensor(
    name: String,
    shape: Vec<usize>,
    dtype: GgmlType,
    rel_offset: u64,
    data_start: u64,
    file_len: usize,
) -> ParseResult<TensorInfo> {
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("tensor `{name}`: element count overflows"))?;
    let (per_block, block_bytes) = dtype.block_layout();
    if n % per_block != 0 {
        return Err(format!(
            "tensor `{name}` has {n} elements, not a multiple of the {per_block}-element {dtype:?} block"
        ));
    }
    let n_bytes = (n / per_block)
        .checked_mul(block_bytes)
        .ok_or_else(|| format!("tensor `{name}`: byte size overflows"))?;
    let start = data_start
        .checked_add(rel_offset)
        .and_then(|s| usize::try_from(s).ok())
        .ok_or_else(|| format!("tensor `{name}`: offset overflows"))?;
    if start.checked_add(n_bytes).is_none_or(|end| end > file_len) {
        return Err(format!(
            "tensor `{name}` ({n_bytes} bytes at offset {start}) runs past the end of the file \
             ({file_len} bytes): the file is truncated"
        ));
    }
    Ok(TensorInfo {
        name,
        shape,
        dtype,
        offset: start,
        n_bytes,
    })
}

/// Dequantises `n` weights of type `dtype` stored in `bytes` to f32.
pub fn dequantize(dtype: GgmlType, bytes: &[u8], n: usize) -> ParseResult<Vec<f32>> {
    let (per_block, block_bytes) = dtype.block_layout();
    if !n.is_multiple_of(per_block) || bytes.len() != n / per_block * block_bytes {
        return Err(format!(
            "{} bytes do not hold {n} weights of type {dtype:?}",
            bytes.len()
        ));
    }
    let mut out = vec![0f32; n];
    let blocks = bytes.chunks_exact(block_bytes);
    let outs = out.chunks_exact_mut(per_block);
    match dtype {
        GgmlType::F32 => blocks.zip(outs).for_each(|(b, o)| {
            o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }),
        GgmlType::F16 => blocks.zip(outs).for_each(|(b, o)| o[0] = read_f16(b)),
        GgmlType::Bf16 => blocks
            .zip(outs)
            .for_each(|(b, o)| o[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        GgmlType::Q8_0 => blocks.zip(outs).for_each(|(b, o)| dequant_q8_0(b, o)),
        GgmlType::Q4_0 => blocks.zip(outs).for_each(|(b, o)| dequant_q4_0(b, o)),
        GgmlType::Q4_1 => blocks.zip(outs).for_each(|(b, o)| dequant_q4_1(b, o)),
        GgmlType::Q4K => blocks.zip(outs).for_each(|(b, o)| dequant_q4_k(b, o)),
        GgmlType::Q6K => blocks.zip(outs).for_each(|(b, o)| dequant_q6_k(b, o)),
    }
    Ok(out)
}

fn read_f16(b: &[u8]) -> f32 {
    f16::from_le_bytes([b[0], b[1]]).to_f32()
}

fn dequant_q8_0(b: &[u8], out: &mut [f32]) {
    let d = read_f16(b);
    for (o, &q) in out.iter_mut().zip(&b[2..34]) {
        *o = d * (q as i8) as f32;
    }
}

/// Q4_0 and Q4_1 store weight j in the low nibble of byte j and weight j+16 in its high nibble.
fn dequant_nibbles(qs: &[u8], out: &mut [f32], scale: f32, offset: f32) {
    for (j, &q) in qs.iter().enumerate() {
        out[j] = (q & 0x0F) as f32 * scale + offset;
        out[j + 16] = (q >> 4) as f32 * scale + offset;
    }
}

fn dequant_q4_0(b: &[u8], out: &mut [f32]) {
    let d = read_f16(b);
    dequant_nibbles(&b[2..18], out, d, -8.0 * d);
}

fn dequant_q4_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (read_f16(b), read_f16(&b[2..]));
    dequant_nibbles(&b[4..20], out, d, m);
}

/// The 6-bit scale and minimum of sub-block `j` of a Q4_K block, packed into 12 bytes.
fn q4k_scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

fn dequant_q4_k(b: &[u8], out: &mut [f32]) {
    let (d, dmin) = (read_f16(b), read_f16(&b[2..]));
    let scales = &b[4..16];
    let qs = &b[16..144];
    for chunk in 0..4 {
        let q = &qs[chunk * 32..chunk * 32 + 32];
        let (sc_lo, m_lo) = q4k_scale_min(2 * chunk, scales);
        let (sc_hi, m_hi) = q4k_scale_min(2 * chunk + 1, scales);
        let base = chunk * 64;
        for l in 0..32 {
            out[base + l] = d * sc_lo as f32 * (q[l] & 0x0F) as f32 - dmin * m_lo as f32;
            out[base + 32 + l] = d * sc_hi as f32 * (q[l] >> 4) as f32 - dmin * m_hi as f32;
        }
    }
}

fn dequant_q6_k(b: &[u8], out: &mut [f32]) {
    let (ql_all, qh_all, sc_all) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = read_f16(&b[208..210]);
    for half in 0..2 {
        let ql = &ql_all[half * 64..];
        let qh = &qh_all[half * 32..];
        let sc = &sc_all[half * 8..];
        let o = &mut out[half * 128..];
        for l in 0..32 {
            let is = l / 16;
            let h = qh[l];
            let q1 = ((ql[l] & 0x0F) | ((h & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0F) | (((h >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((h >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((h >> 6) & 3) << 4)) as i32 - 32;
            let s = |k: usize| d * (sc[is + k] as i8) as f32;
            o[l] = s(0) * q1 as f32;
            o[l + 32] = s(2) * q2 as f32;
            o[l + 64] = s(4) * q3 as f32;
            o[l + 96] = s(6) * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(n_tensors.to_le_bytes());
        b.extend(n_kv.to_le_bytes());
        b
    }

    #[test]
    fn rejects_wrong_magic_and_truncation() {
        assert!(parse(b"GGML\0\0\0\0").unwrap_err().contains("not a GGUF"));
        let mut b = header(0, 1);
        b.extend(u64::MAX.to_le_bytes()); // a key claiming an enormous length
        assert!(parse(&b).unwrap_err().contains("truncated"));
    }

    /// A file whose one metadata entry `key` is an array of `len` values of type `elem_type`,
    /// cut off after the length.
    fn array_header(key: &[u8], elem_type: u32, len: u64) -> Vec<u8> {
        let mut b = header(0, 1);
        b.extend((key.len() as u64).to_le_bytes());
        b.extend(key);
        b.extend(9u32.to_le_bytes()); // array
        b.extend(elem_type.to_le_bytes());
        b.extend(len.to_le_bytes());
        b
    }

    #[test]
    fn rejects_array_longer_than_file() {
        let b = array_header(b"abc", 4, 1 << 40); // of u32
        assert!(parse(&b).unwrap_err().contains("claims"));
    }

    #[test]
    fn rejects_arrays_and_tensor_tables_the_remaining_bytes_cannot_hold() {
        // 100 strings need at least 800 bytes; only 16 follow.
        let mut b = array_header(b"k", 8, 100);
        b.extend([0u8; 16]);
        let err = parse(&b).unwrap_err();
        assert!(
            err.contains("claims 100 elements of at least 8 bytes"),
            "{err}"
        );
        // 1000 tensors need at least 32 000 bytes.
        let mut b = header(1000, 0);
        b.extend([0u8; 64]);
        let err = parse(&b).unwrap_err();
        assert!(err.contains("claims 1000 tensors"), "{err}");
    }

    #[test]
    fn rejects_tensor_past_end() {
        let mut b = header(1, 0);
        b.extend(1u64.to_le_bytes());
        b.push(b'w');
        b.extend(1u32.to_le_bytes());
        b.extend(64u64.to_le_bytes());
        b.extend(0u32.to_le_bytes()); // F32
        b.extend(0u64.to_le_bytes());
        let err = parse(&b).unwrap_err();
        assert!(err.contains("runs past the end"), "{err}");
    }

    #[test]
    fn q8_0_block_round_trips() {
        let mut block = f16::from_f32(0.5).to_le_bytes().to_vec();
        block.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let out = dequantize(GgmlType::Q8_0, &block, 32).unwrap();
        assert_eq!(out[0], -8.0);
        assert_eq!(out[31], 7.5);
    }
}
