//! The pure arithmetic of sentence-embedding similarity; the encoder model lives in the engine.
//!
//! These follow `sentence-transformers`: mean pooling averages token embeddings weighted by the
//! attention mask, dividing by the mask sum clamped to at least 1e-9 (`torch.clamp(min=1e-9)`);
//! L2 normalisation divides by the norm clamped to at least 1e-12 (`F.normalize`'s `eps`); and
//! cosine is the dot product of the two clamped-normalised vectors, so a zero vector has cosine
//! 0 with everything. Every sum is accumulated in f32, as the project requires.

/// Smallest norm divided by, as in `torch.nn.functional.normalize`.
const NORM_EPSILON: f32 = 1e-12;
/// Smallest mask sum divided by in mean pooling, as in sentence-transformers.
const MASK_SUM_EPSILON: f32 = 1e-9;

/// Errors for vectors whose shapes do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbeddingError {
    /// Two vectors that must have one length differ.
    #[error("vector lengths differ: {left} and {right}")]
    LengthMismatch {
        /// Length of the first vector.
        left: usize,
        /// Length of the second vector.
        right: usize,
    },
    /// The token embeddings are not `mask length × hidden size` values.
    #[error("{values} embedding values do not form {tokens} tokens of width {hidden_size}")]
    ShapeMismatch {
        /// Number of values given.
        values: usize,
        /// Number of tokens in the attention mask.
        tokens: usize,
        /// Width of one token embedding.
        hidden_size: usize,
    },
}

/// Cosine similarity of `a` and `b` (0 when either is the zero vector).
pub fn cosine(a: &[f32], b: &[f32]) -> Result<f32, EmbeddingError> {
    if a.len() != b.len() {
        return Err(EmbeddingError::LengthMismatch {
            left: a.len(),
            right: b.len(),
        });
    }
    let dot = sum_of_products(a, b);
    Ok(dot / (clamped_norm(a) * clamped_norm(b)))
}

/// `v` scaled to unit L2 norm (unchanged in direction; the zero vector stays zero).
pub fn l2_normalize(v: &[f32]) -> Vec<f32> {
    let norm = clamped_norm(v);
    v.iter().map(|x| x / norm).collect()
}

fn clamped_norm(v: &[f32]) -> f32 {
    sum_of_products(v, v).sqrt().max(NORM_EPSILON)
}

/// Lanes summed independently in [`sum_of_products`], so the compiler can vectorise the loop.
const LANES: usize = 8;

/// The f32 dot product of two equally long slices, accumulated in [`LANES`] partial sums.
fn sum_of_products(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Mask-weighted mean of token embeddings.
///
/// `token_embeddings` holds `attention_mask.len()` rows of `hidden_size` values, row-major; a
/// mask entry is the weight of its token (1 for real tokens, 0 for padding). All-padding input
/// gives the zero vector.
pub fn mean_pool(
    token_embeddings: &[f32],
    attention_mask: &[u32],
    hidden_size: usize,
) -> Result<Vec<f32>, EmbeddingError> {
    let shape_error = EmbeddingError::ShapeMismatch {
        values: token_embeddings.len(),
        tokens: attention_mask.len(),
        hidden_size,
    };
    let expected = attention_mask.len().checked_mul(hidden_size);
    if expected != Some(token_embeddings.len()) || hidden_size == 0 {
        return Err(shape_error);
    }
    let mut pooled = vec![0.0f32; hidden_size];
    let mut mask_sum = 0.0f32;
    for (row, &weight) in token_embeddings
        .chunks_exact(hidden_size)
        .zip(attention_mask)
    {
        let weight = weight as f32;
        mask_sum += weight;
        for (total, value) in pooled.iter_mut().zip(row) {
            *total += value * weight;
        }
    }
    let divisor = mask_sum.max(MASK_SUM_EPSILON);
    pooled.iter_mut().for_each(|total| *total /= divisor);
    Ok(pooled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_and_zero_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]).unwrap() - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]).unwrap(), 0.0);
        assert!(cosine(&[1.0], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn mean_pool_skips_padding() {
        let pooled = mean_pool(&[1.0, 2.0, 3.0, 4.0, 100.0, 100.0], &[1, 1, 0], 2).unwrap();
        assert_eq!(pooled, [2.0, 3.0]);
        assert_eq!(mean_pool(&[5.0, 5.0], &[0], 2).unwrap(), [0.0, 0.0]);
        assert!(mean_pool(&[1.0; 5], &[1, 1], 2).is_err());
        assert!(mean_pool(&[], &[], 0).is_err());
    }

    #[test]
    fn normalize_gives_unit_norm() {
        let unit = l2_normalize(&[3.0, 4.0]);
        assert_eq!(unit, [0.6, 0.8]);
        assert_eq!(l2_normalize(&[0.0]), [0.0]);
    }
}
