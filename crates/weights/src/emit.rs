//! The `(uids, u16 weights)` a Bittensor validator sends on chain, exactly as the bittensor SDK
//! quantises them: `bittensor.intents.weights.normalize` in SDK 11.x, which does what
//! `bittensor.utils.weight_utils.convert_weights_and_uids_for_emit` did in 9.x/10.x
//! (opentensor/bittensor:bittensor/utils/weight_utils.py@bb526e6).
//!
//! Each weight is divided by the **largest** one (not the sum), multiplied by 65535 and rounded
//! half to even (Python's `round`); entries that round to 0 are dropped with their uid; all-zero
//! weights give two empty lists (nothing to set). The arithmetic is f64 in the same order as
//! Python's, so the output is identical, ties included (the Python tests check it against the
//! SDK's own function).

/// Why weights cannot be sent on chain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmitError {
    /// `uids` and `weights` differ in length.
    #[error("uids and weights must be equal length: {uids} vs {weights}")]
    LengthMismatch {
        /// Number of uids.
        uids: usize,
        /// Number of weights.
        weights: usize,
    },
    /// A weight is negative, NaN or infinite.
    #[error("weight {index} is {value}: weights must be finite and non-negative")]
    BadWeight {
        /// Position of the weight.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A uid is outside 0..=65535.
    #[error("uid {uid} (position {index}) is outside 0..65535")]
    BadUid {
        /// Position of the uid.
        index: usize,
        /// The value.
        uid: i64,
    },
}

impl assay_errors::Diagnose for EmitError {
    fn blame(&self) -> assay_errors::Blame {
        assay_errors::Blame::Operator
    }
}

/// Bittensor's max-upscale and u16 quantisation: the uids kept and their u16 weights.
pub fn emit_u16(uids: &[i64], weights: &[f64]) -> Result<(Vec<u16>, Vec<u16>), EmitError> {
    if uids.len() != weights.len() {
        return Err(EmitError::LengthMismatch {
            uids: uids.len(),
            weights: weights.len(),
        });
    }
    if let Some((index, &value)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        return Err(EmitError::BadWeight { index, value });
    }
    if let Some((index, &uid)) = uids
        .iter()
        .enumerate()
        .find(|(_, u)| !(0..=65_535).contains(*u))
    {
        return Err(EmitError::BadUid { index, uid });
    }
    let top = weights.iter().copied().fold(0.0, f64::max);
    if top == 0.0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut kept_uids = Vec::new();
    let mut values = Vec::new();
    for (&uid, &weight) in uids.iter().zip(weights) {
        let value = ((weight / top) * crate::U16_MAX).round_ties_even();
        if value != 0.0 {
            kept_uids.push(uid as u16);
            values.push(value as u16);
        }
    }
    Ok((kept_uids, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_becomes_65535_zeros_are_dropped_ties_round_to_even() {
        let (uids, values) = emit_u16(&[0, 1, 2, 3], &[2.0, 1.0, 0.0, 0.5]).unwrap();
        assert_eq!(uids, vec![0, 1, 3]);
        // 65535 / 2 = 32767.5 rounds to the even 32768; 65535 / 4 = 16383.75 rounds up.
        assert_eq!(values, vec![65535, 32768, 16384]);
        // 2.5 / 65535 of the max is a tie at 2.5: rounds to 2.
        let (_, values) = emit_u16(&[0, 1], &[65535.0, 2.5]).unwrap();
        assert_eq!(values, vec![65535, 2]);
        let (_, values) = emit_u16(&[0, 1], &[65535.0, 3.5]).unwrap();
        assert_eq!(values, vec![65535, 4]);
    }

    #[test]
    fn all_zero_sets_nothing_and_bad_input_is_refused() {
        assert_eq!(emit_u16(&[0, 1], &[0.0, 0.0]).unwrap(), (vec![], vec![]));
        assert_eq!(emit_u16(&[], &[]).unwrap(), (vec![], vec![]));
        assert!(matches!(
            emit_u16(&[0], &[1.0, 2.0]),
            Err(EmitError::LengthMismatch { .. })
        ));
        assert!(matches!(
            emit_u16(&[0, 1], &[1.0, -0.5]),
            Err(EmitError::BadWeight { index: 1, .. })
        ));
        assert!(matches!(
            emit_u16(&[0, 1], &[1.0, f64::NAN]),
            Err(EmitError::BadWeight { index: 1, .. })
        ));
        assert!(matches!(
            emit_u16(&[-1, 1], &[1.0, 1.0]),
            Err(EmitError::BadUid { index: 0, .. })
        ));
        assert!(matches!(
            emit_u16(&[70_000], &[1.0]),
            Err(EmitError::BadUid { index: 0, .. })
        ));
    }
}
