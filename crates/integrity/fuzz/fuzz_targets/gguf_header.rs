//! Any bytes as a GGUF file: the header, metadata and tensor-table parser must never panic, every
//! accepted tensor must lie inside the file with the byte size its shape and type imply, and
//! dequantising it must succeed.
#![no_main]

use assay_engine::gguf::{GgufFile, dequantize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((_, tensors)) = GgufFile::parse_header(data) else {
        return;
    };
    for info in tensors.values() {
        let n: usize = info.shape.iter().product();
        let (per_block, block_bytes) = info.dtype.block_layout();
        assert_eq!(n % per_block, 0);
        assert_eq!(info.n_bytes, n / per_block * block_bytes);
        let end = info.offset + info.n_bytes;
        assert!(end <= data.len());
        let values = dequantize(info.dtype, &data[info.offset..end], n).unwrap();
        assert_eq!(values.len(), n);
    }
});
