//! [`SortTask`]: a generated sequence task for the transformer, no file needed — read `n`
//! random digits, a separator, and continue with the same digits sorted.
//!
//! Tokens: digits 0..9 and the separator 10 (vocabulary 11). A sequence is
//! `d_1 .. d_n SEP s_1 .. s_n` (length `2n + 1`); the model reads the first `2n` tokens
//! and is scored on predicting `s_1 .. s_n` at positions `n .. 2n - 1` (teacher forcing).

use mixprec_tensor::{Indices, Rng};

/// Sorting `n` digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortTask {
    /// Digits per sequence.
    pub n: usize,
}

/// A batch: model inputs and the targets at the scored positions.
#[derive(Clone, Debug)]
pub struct SortBatch {
    /// `[batch, 2n]` input tokens.
    pub inputs: Indices,
    /// `[batch * n]` targets: the sorted digits, row by row.
    pub targets: Indices,
    /// Rows in the batch.
    pub rows: usize,
}

impl SortTask {
    /// The separator token.
    pub const SEP: usize = 10;
    /// Vocabulary size.
    pub const VOCAB: usize = 11;

    /// Model input length `2n`.
    pub fn context(&self) -> usize {
        2 * self.n
    }

    /// `rows` random sequences from `Rng::seed(seed)`.
    pub fn batch(&self, rows: usize, seed: u64) -> SortBatch {
        let mut rng = Rng::seed(seed);
        let n = self.n;
        let mut inputs = Vec::with_capacity(rows * 2 * n);
        let mut targets = Vec::with_capacity(rows * n);
        for _ in 0..rows {
            let digits: Vec<usize> = (0..n).map(|_| (rng.next_u64() % 10) as usize).collect();
            let mut sorted = digits.clone();
            sorted.sort_unstable();
            inputs.extend_from_slice(&digits);
            inputs.push(Self::SEP);
            inputs.extend_from_slice(&sorted[..n - 1]);
            targets.extend_from_slice(&sorted);
        }
        SortBatch {
            inputs: Indices::from_vec(inputs, &[rows, 2 * n]).expect("rows x 2n ids"),
            targets: Indices::from_slice(&targets),
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_are_digits_then_separator_then_the_sorted_digits() {
        let t = SortTask { n: 5 };
        let b = t.batch(3, 7);
        assert_eq!(b.inputs.shape(), &[3, 10]);
        for r in 0..3 {
            let row = &b.inputs.as_slice()[10 * r..10 * r + 10];
            let target = &b.targets.as_slice()[5 * r..5 * r + 5];
            let mut digits = row[..5].to_vec();
            digits.sort_unstable();
            assert_eq!(digits, target);
            assert_eq!(row[5], SortTask::SEP);
            assert_eq!(&row[6..], &target[..4], "teacher forcing: shifted targets");
        }
        let again = t.batch(3, 7);
        assert_eq!(again.inputs.as_slice(), b.inputs.as_slice(), "seeded");
    }
}
