//! [`Batches`]: the indices of one epoch, shuffled by a seed, cut into batches.

use mixprec_tensor::Rng;

/// Shuffled mini-batches of `0..n`: epoch `e` uses the permutation drawn from
/// `Rng::seed(seed + e)` (Fisher-Yates), so runs are reproducible.
#[derive(Clone, Debug)]
pub struct Batches {
    n: usize,
    batch: usize,
    seed: u64,
    epoch: u64,
    order: Vec<usize>,
    pos: usize,
}

impl Batches {
    /// Batches of `batch` out of `n` items; the last, smaller batch of an epoch is
    /// dropped (every batch has the same size). Errors when `n` or `batch` is 0 or
    /// `batch > n` (no full batch could ever be drawn).
    pub fn new(n: usize, batch: usize, seed: u64) -> mixprec_autograd::Result<Batches> {
        if n == 0 || batch == 0 || batch > n {
            return Err(mixprec_autograd::Error::invalid(
                "Batches",
                format!("cannot cut batches of {batch} from {n} items (need 1 <= batch <= n)"),
            ));
        }
        let mut b = Batches {
            n,
            batch,
            seed,
            epoch: 0,
            order: Vec::new(),
            pos: 0,
        };
        b.shuffle();
        Ok(b)
    }

    fn shuffle(&mut self) {
        let mut rng = Rng::seed(self.seed.wrapping_add(self.epoch));
        self.order = (0..self.n).collect();
        for i in (1..self.n).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            self.order.swap(i, j);
        }
        self.pos = 0;
    }

    /// The next batch of indices (a new epoch starts when the current one is used up).
    pub fn next_batch(&mut self) -> Vec<usize> {
        if self.pos + self.batch > self.n {
            self.epoch += 1;
            self.shuffle();
        }
        let out = self.order[self.pos..self.pos + self.batch].to_vec();
        self.pos += self.batch;
        out
    }

    /// Epochs started so far (0 during the first).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}
