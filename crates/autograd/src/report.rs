//! [`TapeReport`]: which op ran in which precision, every cast point with its counts,
//! and the bytes saved for backward by precision — the precision report of a step.

use crate::tape::{NodeId, Tape};
use mixprec_dtype::DType;
use mixprec_tensor::CastReport;
use std::fmt;

/// How many times an op ran in one precision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpCount {
    /// Op name (`"matmul"`, `"cast"`, ...).
    pub op: &'static str,
    /// Output precision.
    pub dtype: DType,
    /// Number of nodes.
    pub count: usize,
}

/// One cast on the tape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CastPoint {
    /// The cast's node.
    pub node: NodeId,
    /// What the cast did.
    pub report: CastReport,
    /// What the backward cast of the gradient (back to the source precision) did; `None`
    /// until backward has run through this node.
    pub grad: Option<CastReport>,
    /// The [`Tape::scope`] the cast was recorded in (the layer), if any.
    pub scope: Option<std::sync::Arc<str>>,
}

/// A snapshot of a tape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapeReport {
    /// Ops by name and output precision, in order of first appearance (leaves and
    /// constants excluded).
    pub ops: Vec<OpCount>,
    /// Every cast, in order.
    pub casts: Vec<CastPoint>,
    /// Bytes currently saved for backward, by precision.
    pub saved_bytes: Vec<(DType, usize)>,
    /// The most bytes saved at once, by precision.
    pub peak_saved_bytes: Vec<(DType, usize)>,
}

impl Tape {
    /// The precision report of everything recorded so far.
    pub fn report(&self) -> TapeReport {
        let inner = self.lock();
        let mut ops: Vec<OpCount> = Vec::new();
        let mut casts = Vec::new();
        for (id, node) in inner.nodes.iter().enumerate() {
            if node.is_leaf {
                continue;
            }
            match ops
                .iter_mut()
                .find(|o| o.op == node.op && o.dtype == node.dtype)
            {
                Some(o) => o.count += 1,
                None => ops.push(OpCount {
                    op: node.op,
                    dtype: node.dtype,
                    count: 1,
                }),
            }
            if let Some(site) = &node.cast {
                casts.push(CastPoint {
                    node: id,
                    report: site.forward,
                    grad: *site.backward.lock().unwrap_or_else(|e| e.into_inner()),
                    scope: node.scope.clone(),
                });
            }
        }
        let by_dtype = |bytes: &[usize; DType::COUNT]| {
            DType::ALL
                .iter()
                .zip(bytes)
                .filter(|(_, b)| **b > 0)
                .map(|(&d, &b)| (d, b))
                .collect()
        };
        TapeReport {
            ops,
            casts,
            saved_bytes: by_dtype(&inner.saved_bytes),
            peak_saved_bytes: by_dtype(&inner.peak_saved_bytes),
        }
    }
}

impl fmt::Display for TapeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<16} {:<6} {:>6}", "op", "dtype", "count")?;
        for o in &self.ops {
            writeln!(f, "{:<16} {:<6} {:>6}", o.op, o.dtype.name(), o.count)?;
        }
        writeln!(f, "\ncast points ({}):", self.casts.len())?;
        writeln!(
            f,
            "{:>6} {:<13} {:>10} {:>11} {:>10} {:>10}  scope",
            "node", "cast", "elements", "underflow", "overflow", "saturated"
        )?;
        // Backward casts (gradients) are the node number with a prime.
        let row = |f: &mut fmt::Formatter<'_>, node: String, r: &CastReport, scope: &str| {
            writeln!(
                f,
                "{:>6} {:<13} {:>10} {:>11} {:>10} {:>10}  {}",
                node,
                format!("{}->{}", r.from, r.to),
                r.elements,
                r.underflowed,
                r.overflowed,
                r.saturated,
                scope
            )
        };
        for c in &self.casts {
            let scope = c.scope.as_deref().unwrap_or("");
            row(f, c.node.to_string(), &c.report, scope)?;
            if let Some(g) = &c.grad {
                row(f, format!("{}'", c.node), g, scope)?;
            }
        }
        writeln!(f, "\nsaved for backward (now / peak):")?;
        for (d, peak) in &self.peak_saved_bytes {
            let now = self
                .saved_bytes
                .iter()
                .find(|(x, _)| x == d)
                .map_or(0, |(_, b)| *b);
            writeln!(f, "  {:<5} {:>12} / {:>12} bytes", d.name(), now, peak)?;
        }
        Ok(())
    }
}
