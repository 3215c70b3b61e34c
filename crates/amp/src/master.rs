//! [`MasterWeights`]: named F32 parameters that optimizers update; each step's
//! low-precision compute copies come from [`crate::Autocast`]'s per-step cache.

use crate::scaler::UnscaledGrads;
use mixprec_autograd::{Result, Tape, Var};
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;

/// The F32 master copy of a model's parameters, in a fixed order.
#[derive(Clone, Debug, Default)]
pub struct MasterWeights {
    params: Vec<(String, Tensor<F32>)>,
}

impl MasterWeights {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named parameter; returns its index.
    pub fn add(&mut self, name: impl Into<String>, value: Tensor<F32>) -> usize {
        self.params.push((name.into(), value));
        self.params.len() - 1
    }

    /// The parameters as leaves of `tape`, in order (one per step).
    pub fn leaves(&self, tape: &Tape) -> Vec<Var<F32>> {
        self.params
            .iter()
            .map(|(_, t)| tape.leaf(t.clone()))
            .collect()
    }

    /// Parameter `i`.
    pub fn get(&self, i: usize) -> Option<&Tensor<F32>> {
        self.params.get(i).map(|(_, t)| t)
    }

    /// Replaces every parameter's value at once (loading weights): `values` in parameter
    /// order, each of its parameter's shape. Errors, changing nothing, on a count or a
    /// shape that differs (the error names the parameter).
    pub fn set_values(&mut self, values: Vec<Tensor<F32>>) -> Result<()> {
        const OP: &str = "MasterWeights::set_values";
        if values.len() != self.params.len() {
            return Err(mixprec_autograd::Error::invalid(
                OP,
                format!(
                    "{} values for {} parameters",
                    values.len(),
                    self.params.len()
                ),
            ));
        }
        for ((name, p), v) in self.params.iter().zip(&values) {
            if p.shape() != v.shape() {
                return Err(mixprec_autograd::Error::invalid(
                    OP,
                    format!(
                        "{name:?} has shape {:?}, the value {:?}",
                        p.shape(),
                        v.shape()
                    ),
                ));
            }
        }
        for ((_, p), v) in self.params.iter_mut().zip(values) {
            *p = v;
        }
        Ok(())
    }

    /// The index of the parameter called `name` (the first, if two share it).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|(n, _)| n == name)
    }

    /// Names and values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<F32>)> {
        self.params.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Number of parameters (tensors).
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Total scalar parameters.
    pub fn count(&self) -> usize {
        self.params.iter().map(|(_, t)| t.numel()).sum()
    }

    /// Bytes of the master copy (4 per parameter).
    pub fn bytes(&self) -> usize {
        self.params.iter().map(|(_, t)| t.nbytes()).sum()
    }

    /// Commits one optimizer step to every parameter that has a gradient, atomically:
    /// first [`ParamUpdate::prepare`] for each (checks and allocations; may fail, changes
    /// no value), then, only when all succeeded, [`ParamUpdate::commit`] for each (the
    /// new values; cannot fail). A failed step changes nothing. Gradients reach `update`
    /// contiguous (a strided gradient is copied in the first phase). This is the one
    /// path by which parameters change.
    pub fn apply(&mut self, grads: &UnscaledGrads, update: &mut impl ParamUpdate) -> Result<()> {
        const OP: &str = "MasterWeights::apply";
        let mut prepared = Vec::with_capacity(self.params.len());
        for (i, (_, p)) in self.params.iter_mut().enumerate() {
            let Some(g) = grads.get(i) else { continue };
            let g = g.try_contiguous(OP)?;
            update.prepare(i, p, &g)?;
            prepared.push((i, g));
        }
        for (i, g) in prepared {
            update.commit(i, &mut self.params[i].1, &g);
        }
        Ok(())
    }

    /// [`MasterWeights::apply`] with a closure `update(i, param, grad) -> new param`:
    /// every new value is computed first and all are kept only if every call succeeded
    /// and returned the parameter's shape.
    ///
    /// ```
    /// use mixprec_amp::{MasterWeights, UnscaledGrads};
    /// use mixprec_autograd::Tape;
    /// use mixprec_dtype::F32;
    /// use mixprec_tensor::Tensor;
    /// let mut m = MasterWeights::new();
    /// m.add("w", Tensor::<F32>::from_f32(&[1.0, 2.0], &[2]).unwrap());
    /// let tape = Tape::new();
    /// let w = &m.leaves(&tape)[0];
    /// let grads = UnscaledGrads::from_gradients(&w.sum_all().backward().unwrap(), &[w]);
    /// m.apply_with(&grads, |_, p, g| Ok(p.sub(&g.mul_scalar(0.5))?)).unwrap();
    /// assert_eq!(m.get(0).unwrap().to_f32_vec(), vec![0.5, 1.5]);
    /// ```
    pub fn apply_with(
        &mut self,
        grads: &UnscaledGrads,
        update: impl FnMut(usize, &Tensor<F32>, &Tensor<F32>) -> Result<Tensor<F32>>,
    ) -> Result<()> {
        self.apply(
            grads,
            &mut Replace {
                update,
                new: Default::default(),
            },
        )
    }
}

/// One optimizer step's change to the master weights, in the two phases of
/// [`MasterWeights::apply`].
pub trait ParamUpdate {
    /// Phase 1 for parameter `index` and its (contiguous) gradient: check and allocate
    /// everything the update needs. May fail; must change no value. (Making `param` or
    /// state the sole owner of its storage with [`Tensor::try_make_owned`] keeps the
    /// values, so it belongs here.)
    fn prepare(&mut self, index: usize, param: &mut Tensor<F32>, grad: &Tensor<F32>) -> Result<()>;

    /// Phase 2, after every `prepare` of the step succeeded: write the new values.
    /// Nothing is left that can fail.
    fn commit(&mut self, index: usize, param: &mut Tensor<F32>, grad: &Tensor<F32>);
}

/// The closure form of [`MasterWeights::apply_with`]: new values made in `prepare`,
/// swapped in by `commit`.
struct Replace<F> {
    update: F,
    new: std::collections::VecDeque<(usize, Tensor<F32>)>,
}

impl<F> ParamUpdate for Replace<F>
where
    F: FnMut(usize, &Tensor<F32>, &Tensor<F32>) -> Result<Tensor<F32>>,
{
    fn prepare(&mut self, index: usize, param: &mut Tensor<F32>, grad: &Tensor<F32>) -> Result<()> {
        let new = (self.update)(index, param, grad)?;
        if new.shape() != param.shape() {
            return Err(mixprec_autograd::Error::invalid(
                "MasterWeights::apply_with",
                format!(
                    "the update of parameter {index} has shape {:?}, the parameter {:?}",
                    new.shape(),
                    param.shape()
                ),
            ));
        }
        self.new.push_back((index, new));
        Ok(())
    }

    fn commit(&mut self, index: usize, param: &mut Tensor<F32>, _grad: &Tensor<F32>) {
        // Commits come in the order of the prepares, so each finds its value first.
        let (i, new) = self.new.pop_front().expect("one prepared value per commit");
        debug_assert_eq!(i, index);
        *param = new;
    }
}
