//! [`gradcheck`]: analytic gradients against central finite differences in F64 — public,
//! so users can property-test their own models and layers with it.

use crate::error::Result;
use crate::tape::Tape;
use crate::var::Var;
use mixprec_dtype::F64;
use mixprec_tensor::Tensor;

/// The outcome of a gradient check.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckReport {
    /// Elements compared.
    pub checked: usize,
    /// Largest |analytic - numeric|.
    pub max_abs_error: f64,
    /// The first element outside `atol + rtol * |numeric|`, as (input, flat index,
    /// analytic, numeric).
    pub first_failure: Option<(usize, usize, f64, f64)>,
}

impl GradcheckReport {
    /// True when every element was within tolerance.
    pub fn passed(&self) -> bool {
        self.first_failure.is_none()
    }
}

/// Checks the gradients of `f` (which must return a one-element value) at `inputs`:
/// analytic gradients from one backward pass against central differences
/// `(f(x + eps) - f(x - eps)) / (2 eps)` per element, all in F64. An element passes when
/// `|analytic - numeric| <= atol + rtol * |numeric|`.
///
/// ```
/// use mixprec_autograd::gradcheck;
/// use mixprec_tensor::Tensor;
/// let x = Tensor::from_f64(&[0.3, -1.2, 2.0], &[3]).unwrap();
/// let r = gradcheck(|v| Ok(v[0].tanh().mul(&v[0])?.sum_all()), &[x], 1e-6, 1e-7, 1e-6).unwrap();
/// assert!(r.passed(), "{r:?}");
/// ```
pub fn gradcheck(
    f: impl Fn(&[Var<F64>]) -> Result<Var<F64>>,
    inputs: &[Tensor<F64>],
    eps: f64,
    atol: f64,
    rtol: f64,
) -> Result<GradcheckReport> {
    let tape = Tape::new();
    let leaves: Vec<Var<F64>> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
    let out = f(&leaves)?;
    let grads = out.backward()?;
    let eval = |vals: &[Tensor<F64>]| -> Result<f64> {
        let t = Tape::new();
        let vs: Vec<Var<F64>> = vals.iter().map(|v| t.constant(v.clone())).collect();
        Ok(f(&vs)?.value().to_f64_vec()[0])
    };
    let mut report = GradcheckReport {
        checked: 0,
        max_abs_error: 0.0,
        first_failure: None,
    };
    for (i, leaf) in leaves.iter().enumerate() {
        let analytic = grads
            .get(leaf)
            .map_or_else(|| vec![0.0; inputs[i].numel()], |g| g.to_f64_vec());
        let base = inputs[i].to_f64_vec();
        for j in 0..base.len() {
            let mut shifted: Vec<Tensor<F64>> = inputs.to_vec();
            let mut plus = base.clone();
            plus[j] += eps;
            shifted[i] = Tensor::from_f64(&plus, inputs[i].shape())?;
            let fp = eval(&shifted)?;
            let mut minus = base.clone();
            minus[j] -= eps;
            shifted[i] = Tensor::from_f64(&minus, inputs[i].shape())?;
            let fm = eval(&shifted)?;
            let numeric = (fp - fm) / (2.0 * eps);
            let err = (analytic[j] - numeric).abs();
            report.checked += 1;
            report.max_abs_error = report.max_abs_error.max(err);
            if err > atol + rtol * numeric.abs() && report.first_failure.is_none() {
                report.first_failure = Some((i, j, analytic[j], numeric));
            }
        }
    }
    Ok(report)
}
