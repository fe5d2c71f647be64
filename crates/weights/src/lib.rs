//! Scores to weights, shared by every pipeline: non-negative weights that sum to 1, and the u16
//! weights a Bittensor validator emits on chain.
#![warn(missing_docs)]

pub mod emit;
pub use emit::{EmitError, emit_u16};

/// Largest on-chain weight.
pub const U16_MAX: f64 = 65_535.0;

/// Non-negative scores scaled to sum 1. Negative, NaN and infinite scores count as 0; when nothing
/// is positive every weight is 0 (a validator then emits no preference rather than a uniform one).
pub fn normalize(scores: &[f64]) -> Vec<f64> {
    let clean: Vec<f64> = scores
        .iter()
        .map(|&s| if s.is_finite() && s > 0.0 { s } else { 0.0 })
        .collect();
    let total: f64 = clean.iter().sum();
    if total <= 0.0 {
        return vec![0.0; scores.len()];
    }
    clean.iter().map(|s| s / total).collect()
}

/// Bittensor's conversion for `set_weights`: the largest weight becomes 65535 and the others scale
/// with it, rounded half to even as Python's `round` does. All-zero input gives all zeros.
pub fn to_u16(weights: &[f64]) -> Vec<u16> {
    let clean = normalize(weights);
    let max = clean.iter().copied().fold(0.0, f64::max);
    if max <= 0.0 {
        return vec![0; weights.len()];
    }
    clean
        .iter()
        .map(|w| round_half_even(w / max * U16_MAX) as u16)
        .collect()
}

/// Rounds to the nearest integer, ties to even (Python 3's `round`).
pub fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_ignores_bad_scores() {
        assert_eq!(
            normalize(&[1.0, 3.0, -2.0, f64::NAN]),
            vec![0.25, 0.75, 0.0, 0.0]
        );
        assert_eq!(normalize(&[0.0, -1.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn u16_scales_the_largest_to_max_and_rounds_half_even() {
        assert_eq!(to_u16(&[0.5, 0.25, 0.0]), vec![65535, 32768, 0]);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(-2.5), -2.0);
        assert_eq!(to_u16(&[0.0, 0.0]), vec![0, 0]);
    }
}
