//! [`Digits`]: the 8x8 handwritten digits (UCI optdigits test set as scikit-learn ships
//! it; 1797 images, 10 classes, pixels 0..16), embedded in the crate (`data/digits.csv`,
//! provenance and license in `data/README.md`). Pixels are scaled to [0, 1].
//!
//! The split is fixed: a Fisher-Yates shuffle seeded with 0, the first 1437 images for
//! training and the last 360 for testing (80 / 20).

use crate::data::Batches;
use mixprec_autograd::Result;
use mixprec_dtype::F32;
use mixprec_tensor::{Indices, Tensor};

const CSV: &str = include_str!("../../data/digits.csv");

/// Images and labels of one split.
#[derive(Clone, Debug)]
pub struct DigitsSplit {
    /// `[n, 64]` pixels in [0, 1].
    pub images: Tensor<F32>,
    /// `n` labels in 0..10.
    pub labels: Vec<usize>,
}

impl DigitsSplit {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images and labels at `idx`.
    pub fn batch(&self, idx: &[usize]) -> Result<(Tensor<F32>, Indices)> {
        let ids = Indices::from_slice(idx);
        let x = self.images.index_select(0, &ids)?;
        let y = Indices::from_slice(&idx.iter().map(|&i| self.labels[i]).collect::<Vec<_>>());
        Ok((x, y))
    }

    /// The whole split as one batch (for evaluation).
    pub fn all(&self) -> Result<(Tensor<F32>, Indices)> {
        Ok((self.images.clone(), Indices::from_slice(&self.labels)))
    }

    /// Seeded shuffled batches over this split.
    pub fn batches(&self, batch: usize, seed: u64) -> mixprec_autograd::Result<Batches> {
        Batches::new(self.len(), batch, seed)
    }
}

/// The data set with its fixed train / test split.
#[derive(Clone, Debug)]
pub struct Digits {
    /// 1437 training images.
    pub train: DigitsSplit,
    /// 360 test images.
    pub test: DigitsSplit,
}

impl Digits {
    /// Images in the data set.
    pub const LEN: usize = 1797;
    /// Training images.
    pub const TRAIN: usize = 1437;

    /// Parses the embedded CSV and splits it.
    pub fn load() -> Result<Digits> {
        let (pixels, labels) = parse(CSV)?;
        let mut order: Vec<usize> = (0..labels.len()).collect();
        let mut rng = mixprec_tensor::Rng::seed(0);
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let split = |idx: &[usize]| -> Result<DigitsSplit> {
            let px: Vec<f32> = idx
                .iter()
                .flat_map(|&i| pixels[64 * i..64 * i + 64].iter().map(|&p| p / 16.0))
                .collect();
            Ok(DigitsSplit {
                images: Tensor::from_f32(&px, &[idx.len(), 64])?,
                labels: idx.iter().map(|&i| labels[i]).collect(),
            })
        };
        Ok(Digits {
            train: split(&order[..Self::TRAIN])?,
            test: split(&order[Self::TRAIN..])?,
        })
    }
}

/// Parses `label,p0..p63` rows after a header; errors name the line.
fn parse(csv: &str) -> Result<(Vec<f32>, Vec<usize>)> {
    let bad = |line: usize, what: String| {
        mixprec_autograd::Error::invalid("Digits", format!("line {line}: {what}"))
    };
    let mut pixels = Vec::with_capacity(Digits::LEN * 64);
    let mut labels = Vec::with_capacity(Digits::LEN);
    for (n, line) in csv.lines().enumerate().skip(1) {
        let mut fields = line.split(',');
        let label: usize = fields
            .next()
            .and_then(|f| f.trim().parse().ok())
            .filter(|&l| l < 10)
            .ok_or_else(|| bad(n + 1, "label is not 0..9".into()))?;
        let before = pixels.len();
        for f in fields {
            let v: f32 = f
                .trim()
                .parse()
                .map_err(|_| bad(n + 1, format!("pixel {f:?} is not a number")))?;
            pixels.push(v);
        }
        if pixels.len() - before != 64 {
            return Err(bad(
                n + 1,
                format!("{} pixels, expected 64", pixels.len() - before),
            ));
        }
        labels.push(label);
    }
    if labels.len() != Digits::LEN {
        return Err(bad(
            0,
            format!("{} images, expected {}", labels.len(), Digits::LEN),
        ));
    }
    Ok((pixels, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_all_images_with_the_documented_class_counts() {
        let d = Digits::load().unwrap();
        assert_eq!((d.train.len(), d.test.len()), (1437, 360));
        let mut counts = [0usize; 10];
        for &l in d.train.labels.iter().chain(&d.test.labels) {
            counts[l] += 1;
        }
        // data/README.md: samples per class.
        assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
        let px = d.train.images.to_f32_vec();
        assert!(px.iter().all(|&p| (0.0..=1.0).contains(&p)));
        // The first CSV row (label 0) starts 0,0,5,13,9,1: its scaled pixels appear in a split.
        let first = [0.0, 0.0, 5.0 / 16.0, 13.0 / 16.0, 9.0 / 16.0, 1.0 / 16.0];
        let all: Vec<f32> = px.into_iter().chain(d.test.images.to_f32_vec()).collect();
        assert!(all.chunks(64).any(|row| row[..6] == first));
    }

    #[test]
    fn bad_rows_are_errors_naming_the_line() {
        let e = parse("h\n3,1,2\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse("h\n11,0\n").unwrap_err();
        assert!(e.to_string().contains("label"), "{e}");
    }
}
