//! Round cadence and seeds (finetuning `neurons/validator.py`, `finetune/utils.py`).

use sha2::{Digest, Sha256};

/// First block of SN37's sync schedule (`constants.GENESIS_BLOCK`).
pub const GENESIS_BLOCK: u64 = 3_138_611;

/// Blocks between sync points (`constants.SYNC_BLOCK_CADENCE`).
pub const SYNC_BLOCK_CADENCE: u64 = 360;

/// The sync block a block belongs to: `GENESIS + floor((block - GENESIS) / 360) * 360`.
/// Blocks before genesis (test chains, demos) are their own sync block.
pub fn sync_block(block: u64) -> u64 {
    if block < GENESIS_BLOCK {
        return block;
    }
    GENESIS_BLOCK + (block - GENESIS_BLOCK) / SYNC_BLOCK_CADENCE * SYNC_BLOCK_CADENCE
}

/// The round seed from the sync block's hash string: SHA-256 of the string, as SN37 does,
/// read as a big-endian integer and cut to its first 8 bytes (SN37 keeps all 256 bits for
/// Python's `random.seed`; our samplers take a `u64`).
pub fn seed_from_block_hash(block_hash: &str) -> u64 {
    let digest = Sha256::digest(block_hash.as_bytes());
    u64::from_be_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 32 bytes"),
    )
}

/// A stand-in block hash when no chain is reachable: SHA-256 of `"assay-sn37-block:<block>"`,
/// `0x`-prefixed hex, so that offline rounds still get a fresh, reproducible seed per block.
pub fn offline_block_hash(block: u64) -> String {
    let digest = Sha256::digest(format!("assay-sn37-block:{block}").as_bytes());
    format!("0x{}", assay_engine::assets::hex(&digest))
}

/// A task's own seed, so tasks of one round draw independent samples.
pub fn task_seed(round_seed: u64, task_name: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(round_seed.to_be_bytes());
    hasher.update(task_name.as_bytes());
    let digest = hasher.finalize();
    u64::from_be_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 32 bytes"),
    )
}
