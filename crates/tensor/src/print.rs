//! `Display` for tensors, the way PyTorch prints them: nested brackets, values aligned to
//! a common width with 4 decimals (`1.` style when all are integers, scientific notation
//! when magnitudes span more than 1000x, exceed 1e8 or fall below 1e-4), rows wrapped at
//! 80 columns, and tensors over 1000 elements summarised to their first and last 3 items
//! per axis around `...`. Then what PyTorch leaves implicit: shape, dtype, device (and the
//! scale of a scaled FP8 tensor). Values are the logical ones (FP8 decoded and unscaled)
//! printed from f64, so every precision prints the value it holds.
//!
//! ```
//! use mixprec_dtype::Bf16;
//! use mixprec_tensor::Tensor;
//! let t = Tensor::<Bf16>::from_f32(&[1.0, -2.5, 3.0, 0.125], &[2, 2]).unwrap();
//! assert_eq!(
//!     t.to_string(),
//!     "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  0.1250]], shape=[2, 2], dtype=bf16, device=cpu)"
//! );
//! ```

use crate::tensor::Tensor;
use mixprec_dtype::Dtype;
use std::fmt;

/// Tensors with more elements are summarised.
const THRESHOLD: usize = 1000;
/// Items kept at each end of a summarised axis.
const EDGE: usize = 3;
/// Line width rows wrap at.
const LINE_WIDTH: usize = 80;
const PREFIX: &str = "tensor(";

impl<D: Dtype> fmt::Display for Tensor<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_with(f, PREFIX, "")
    }
}

impl<D: Dtype> Tensor<D> {
    /// Prints as [`Display`](fmt::Display) does, with `prefix` in place of `tensor(` and
    /// `suffix` (such as `, requires_grad=true`) before the closing parenthesis: for
    /// types that wrap a tensor.
    pub fn fmt_with(&self, f: &mut fmt::Formatter<'_>, prefix: &str, suffix: &str) -> fmt::Result {
        let summarise = self.numel() > THRESHOLD;
        let shape = self.shape();
        // The flat indices shown, in order, and the formatted values.
        let shown: Vec<usize> = shown_indices(shape, summarise);
        let values: Vec<f64> = shown.iter().map(|&i| self.value_at(i)).collect();
        let style = Style::of(&values);
        let texts: Vec<String> = values.iter().map(|&v| style.format(v)).collect();
        let width = texts.iter().map(String::len).max().unwrap_or(0);
        f.write_str(prefix)?;
        if shape.is_empty() {
            f.write_str(texts.first().map_or("", String::as_str))?;
        } else {
            let mut items = texts.iter();
            let indent = prefix.len();
            write_axis(f, shape, 0, summarise, indent, width, &mut items)?;
        }
        write!(
            f,
            ", shape={shape:?}, dtype={}, device={}",
            D::NAME,
            self.device()
        )?;
        if D::DTYPE.is_fp8() && self.scale() != 1.0 {
            write!(f, ", scale={}", self.scale())?;
        }
        write!(f, "{suffix})")
    }

    /// The logical value of flat (row-major) element `i`, without copying the tensor.
    pub(crate) fn value_at(&self, i: usize) -> f64 {
        let data = self.storage.as_slice();
        data[self.layout.offset_of(i)].to_f64() / f64::from(self.scale)
    }
}

/// Positions shown along an axis of `n` items.
fn axis_items(n: usize, summarise: bool) -> Vec<Option<usize>> {
    if summarise && n > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain([None])
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    }
}

/// Flat indices of the shown elements, in print order.
fn shown_indices(shape: &[usize], summarise: bool) -> Vec<usize> {
    let mut out = vec![0usize];
    for &n in shape {
        let items: Vec<usize> = axis_items(n, summarise).into_iter().flatten().collect();
        out = out
            .iter()
            .flat_map(|&base| items.iter().map(move |&i| base * n + i))
            .collect();
    }
    out
}

/// Writes axis `dim` of `shape` (its values taken in order from `items`).
fn write_axis<'a>(
    f: &mut fmt::Formatter<'_>,
    shape: &[usize],
    dim: usize,
    summarise: bool,
    indent: usize,
    width: usize,
    items: &mut impl Iterator<Item = &'a String>,
) -> fmt::Result {
    f.write_str("[")?;
    let positions = axis_items(shape[dim], summarise);
    let last_axis = dim + 1 == shape.len();
    let pad = indent + dim + 1;
    if last_axis {
        // Values per line so that a row fits the line width (at least one).
        let per_line = ((LINE_WIDTH.saturating_sub(pad)) / (width + 2)).max(1);
        for (k, p) in positions.iter().enumerate() {
            if k > 0 {
                f.write_str(",")?;
                if k % per_line == 0 {
                    write!(f, "\n{:pad$}", "")?;
                } else {
                    f.write_str(" ")?;
                }
            }
            match p {
                Some(_) => write!(f, "{:>width$}", items.next().map_or("", String::as_str))?,
                // PyTorch's item for the gap in a row is " ...".
                None => f.write_str(" ...")?,
            }
        }
    } else {
        let blank_lines = shape.len() - dim - 1;
        for (k, p) in positions.iter().enumerate() {
            if k > 0 {
                f.write_str(",")?;
                for _ in 0..blank_lines {
                    f.write_str("\n")?;
                }
                write!(f, "{:pad$}", "")?;
            }
            match p {
                Some(_) => write_axis(f, shape, dim + 1, summarise, indent, width, items)?,
                None => f.write_str("...")?,
            }
        }
    }
    f.write_str("]")
}

/// How the values of one tensor are written (PyTorch's `_Formatter` rules).
enum Style {
    /// All finite values are integers (within 1000x of each other, below 1e8): `3.`.
    Integer,
    /// Magnitudes span > 1000x, exceed 1e8 or fall below 1e-4: `1.0000e-05`.
    Scientific,
    /// `0.1250`.
    Fixed,
}

impl Style {
    fn of(values: &[f64]) -> Style {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let nonzero: Vec<f64> = finite
            .iter()
            .map(|v| v.abs())
            .filter(|&a| a != 0.0)
            .collect();
        let max = nonzero.iter().copied().fold(0.0, f64::max);
        let min = nonzero.iter().copied().fold(f64::INFINITY, f64::min);
        let wide = !nonzero.is_empty() && (max / min > 1000.0 || max > 1e8);
        if finite.iter().all(|v| v.fract() == 0.0) {
            return if wide {
                Style::Scientific
            } else {
                Style::Integer
            };
        }
        if wide || (!nonzero.is_empty() && min < 1e-4) {
            Style::Scientific
        } else {
            Style::Fixed
        }
    }

    fn format(&self, v: f64) -> String {
        if v.is_nan() {
            return "nan".into();
        }
        if v.is_infinite() {
            return if v > 0.0 { "inf".into() } else { "-inf".into() };
        }
        match self {
            Style::Integer => format!("{v:.0}."),
            Style::Fixed => format!("{v:.4}"),
            Style::Scientific => {
                // Rust writes `1.0000e-5`; PyTorch (C's printf) `1.0000e-05`.
                let s = format!("{v:.4e}");
                let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                format!("{mantissa}e{sign}{digits:0>2}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use mixprec_dtype::{E4M3, F16, F32};

    fn t(values: &[f32], shape: &[usize]) -> Tensor<F32> {
        Tensor::<F32>::from_f32(values, shape).unwrap()
    }

    #[test]
    fn styles_match_pytorch() {
        // The strings PyTorch 2.x prints for the same values (dtype suffix aside).
        assert_eq!(
            t(&[1.0, 2.0, 3.0], &[3]).to_string(),
            "tensor([1., 2., 3.], shape=[3], dtype=f32, device=cpu)"
        );
        assert_eq!(
            t(&[1.5, -0.25], &[2]).to_string(),
            "tensor([ 1.5000, -0.2500], shape=[2], dtype=f32, device=cpu)"
        );
        assert_eq!(
            t(&[1e-5, 1000.0], &[2]).to_string(),
            "tensor([1.0000e-05, 1.0000e+03], shape=[2], dtype=f32, device=cpu)"
        );
        assert_eq!(
            t(&[f32::NAN, f32::NEG_INFINITY, 0.5, -0.0], &[4]).to_string(),
            "tensor([    nan,    -inf,  0.5000, -0.0000], shape=[4], dtype=f32, device=cpu)"
        );
        assert_eq!(
            t(&[2.5], &[]).to_string(),
            "tensor(2.5000, shape=[], dtype=f32, device=cpu)"
        );
        assert_eq!(
            t(&[], &[0, 3]).to_string(),
            "tensor([], shape=[0, 3], dtype=f32, device=cpu)"
        );
    }

    #[test]
    fn nested_axes_are_indented_with_blank_lines_between_matrices() {
        let x = t(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], &[2, 2, 2]);
        assert_eq!(
            x.to_string(),
            "tensor([[[0., 1.],\n         [2., 3.]],\n\n        [[4., 5.],\n         [6., 7.]]], \
             shape=[2, 2, 2], dtype=f32, device=cpu)"
        );
    }

    #[test]
    fn large_tensors_are_summarised_and_long_rows_wrap() {
        let v: Vec<f32> = (0..2000).map(|i| 1000.0 + i as f32).collect();
        let x = t(&v, &[40, 50]);
        let s = x.to_string();
        assert!(
            s.starts_with("tensor([[1000., 1001., 1002.,  ..., 1047., 1048., 1049.],\n"),
            "{s}"
        );
        assert!(
            s.contains("        ...,\n        [2850., 2851., 2852.,  ..., 2897., 2898., 2899.]"),
            "{s}"
        );
        // Integers spanning more than 1000x print in scientific notation (as PyTorch).
        let wide = t(&[1.0, 2000.0], &[2]).to_string();
        assert!(
            wide.starts_with("tensor([1.0000e+00, 2.0000e+03]"),
            "{wide}"
        );
        assert!(s.ends_with("shape=[40, 50], dtype=f32, device=cpu)"), "{s}");
        // 30 values of width 7: 8 per line, PyTorch's (80 - 8) / (7 + 2).
        let row = t(&(0..30).map(|i| i as f32 + 0.5).collect::<Vec<_>>(), &[30]).to_string();
        let first = row.lines().next().unwrap();
        assert_eq!(first.matches(',').count(), 8, "{row}");
        assert!(
            row.lines().all(|l| l.len() <= 80 || l.contains("shape")),
            "{row}"
        );
    }

    #[test]
    fn low_precisions_print_the_values_they_hold() {
        let h = Tensor::<F16>::from_f32(&[0.1], &[1]).unwrap();
        assert_eq!(
            h.to_string(),
            "tensor([0.1000], shape=[1], dtype=f16, device=cpu)"
        );
        let q = Tensor::<F32>::from_f32(&[100.0], &[1])
            .unwrap()
            .cast::<E4M3>();
        // 100 scaled by 4 rounds to 384 in E4M3 (a tie, to even): 96 after unscaling.
        assert_eq!(
            q.to_string(),
            "tensor([96.], shape=[1], dtype=e4m3, device=cpu, scale=4)"
        );
    }
}
