//! [`Batches`]: the indices of one epoch, shuffled by a seed, cut into batches.

use crate::checkpoint::TensorFile;
use mixprec_autograd::{Error, Result};
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
    pub fn new(n: usize, batch: usize, seed: u64) -> Result<Batches> {
        if n == 0 || batch == 0 || batch > n {
            return Err(Error::invalid(
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

    /// Items of the current epoch already handed out.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Continues from `epoch` and `position` (as [`Batches::epoch`] and
    /// [`Batches::position`] gave them): the next batches are those a run that never
    /// stopped would draw. Errors, changing nothing, when `position > n`.
    pub fn seek(&mut self, epoch: u64, position: usize) -> Result<()> {
        if position > self.n {
            return Err(Error::invalid(
                "Batches::seek",
                format!(
                    "position {position} is beyond the {} items of an epoch",
                    self.n
                ),
            ));
        }
        self.epoch = epoch;
        self.shuffle();
        self.pos = position;
        Ok(())
    }

    /// Records the data order under `data.<name>.*` metadata of a checkpoint: item count,
    /// batch size, seed, epoch and position.
    pub fn write_state(&self, file: &mut TensorFile, name: &str) {
        for (key, value) in self.fields() {
            file.set_metadata(&format!("data.{name}.{key}"), value.to_string());
        }
    }

    /// Continues from the order [`Batches::write_state`] recorded under `name`. Errors,
    /// changing nothing, when an entry is missing or not a number, or the item count,
    /// batch size or seed differ from this one's (another data set or run).
    pub fn read_state(&mut self, file: &TensorFile, name: &str) -> Result<()> {
        const OP: &str = "Batches::read_state";
        let mut saved = [0u64; 5];
        for ((key, ours), slot) in self.fields().into_iter().zip(&mut saved) {
            let entry = format!("data.{name}.{key}");
            let value = file
                .metadata(&entry)
                .ok_or_else(|| Error::invalid(OP, format!("the file has no {entry:?}")))?;
            *slot = value
                .parse()
                .map_err(|_| Error::invalid(OP, format!("{entry:?} is {value:?}, not a number")))?;
            if key != "epoch" && key != "position" && *slot != ours {
                return Err(Error::invalid(
                    OP,
                    format!("{entry:?} is {slot} in the file, {ours} here"),
                ));
            }
        }
        let position = usize::try_from(saved[4]).unwrap_or(usize::MAX);
        self.seek(saved[3], position)
    }

    /// `(key, value)` of everything that fixes the order, in [`Batches::write_state`]'s
    /// order.
    fn fields(&self) -> [(&'static str, u64); 5] {
        [
            ("items", self.n as u64),
            ("batch", self.batch as u64),
            ("seed", self.seed),
            ("epoch", self.epoch),
            ("position", self.pos as u64),
        ]
    }
}
