//! Bits per byte, as PRISM scores prequential training (PlatformNetwork/prism, `container.py`
//! `_OnlineLossCapture` and `scoring.py`).
//!
//! Definition: before the miner trains on a batch of shape (B, T), the current model predicts it; the
//! batch's mean cross-entropy `loss_mean` (nats, over the B·(T−1) predicted positions) is accumulated
//! as `sum_nll_nats += loss_mean · B·(T−1)`, and `covered_bytes` grows by the UTF-8 bytes of all B·T
//! tokens (each token weighs its document's bytes ÷ its token count, first tokens of rows included).
//! Then `bpb = sum_nll_nats / ln 2 / covered_bytes`: nats converted to bits, divided by raw bytes. It is
//! not a tokens-per-byte ratio applied to a mean loss; each batch's mean counts by its predicted tokens.
//! PRISM rejects runs with no bytes, a non-finite bpb, or bpb ≤ 0, and flags bpb > 64.

use thiserror::Error;

/// Why bits per byte cannot be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BpbError {
    /// No bytes were covered.
    #[error("no bytes covered (n_bytes = 0); the run must consume data before it can be scored")]
    NoBytes,
    /// The summed loss is NaN, infinite or negative.
    #[error("total loss {total_nats} nats is not a finite non-negative number")]
    BadLoss {
        /// The summed loss.
        total_nats: f64,
    },
}

/// `total_nats / ln 2 / n_bytes`: summed cross-entropy in nats (mean loss × predicted positions, summed
/// over batches) converted to bits per covered UTF-8 byte.
pub fn bits_per_byte(total_nats: f64, n_bytes: u64) -> Result<f64, BpbError> {
    if n_bytes == 0 {
        return Err(BpbError::NoBytes);
    }
    if !total_nats.is_finite() || total_nats < 0.0 {
        return Err(BpbError::BadLoss { total_nats });
    }
    Ok(total_nats / std::f64::consts::LN_2 / n_bytes as f64)
}

/// The nats one batch adds: its mean loss times its predicted positions, `batch · (seq_len − 1)`.
pub fn batch_nats(loss_mean: f64, batch: usize, seq_len: usize) -> f64 {
    loss_mean * (batch * seq_len.saturating_sub(1)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_byte_model_is_eight_bits() {
        // A uniform model over 256 byte values loses ln 256 nats per predicted byte.
        let nats = batch_nats(256f64.ln(), 4, 101);
        let bpb = bits_per_byte(nats, 400).unwrap();
        assert!((bpb - 8.0).abs() < 1e-12, "{bpb}");
        assert_eq!(bits_per_byte(1.0, 0), Err(BpbError::NoBytes));
        assert!(bits_per_byte(f64::NAN, 3).is_err());
    }
}
