//! `cast`: a cast point on the tape. The node records the cast's report (underflow,
//! overflow, saturation counts); its backward casts the gradient back to the source type,
//! so an F32 master weight used through a BF16 copy gets an F32 gradient.

use super::grad;
use crate::error::Result;
use crate::tape::CastSite;
use crate::var::{Record, Var};
use mixprec_dtype::Dtype;
use mixprec_tensor::{CastOptions, CastReport};
use std::sync::{Arc, Mutex};

impl<D: Dtype> Var<D> {
    /// Casts to `T` with the default options (nearest even; FP8 targets get a current
    /// power-of-two scale and saturate). A cast to the same (non-FP8) precision is the
    /// value itself: nothing is recorded, as no precision changes (use
    /// [`Var::cast_with`] to record a cast point regardless).
    ///
    /// Panics (with the cast's message) only when memory cannot be had; [`Var::try_cast`]
    /// returns that as an error.
    pub fn cast<T: Dtype>(&self) -> Var<T> {
        self.try_cast::<T>().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Var::cast`], or an error when the result cannot be allocated.
    pub fn try_cast<T: Dtype>(&self) -> Result<Var<T>> {
        if D::DTYPE == T::DTYPE && !T::DTYPE.is_fp8() {
            let boxed: Box<dyn std::any::Any> = Box::new(self.clone());
            if let Ok(same) = boxed.downcast::<Var<T>>() {
                return Ok(*same);
            }
        }
        Ok(self.cast_with::<T>(CastOptions::default())?.0)
    }

    /// Casts to `T` with explicit options; returns the var and the cast's report (also
    /// recorded on the tape). The gradient is cast back to `D` with default options, and
    /// that cast's report is recorded too (the cast point's backward counts: this is where
    /// FP16 gradients underflow without loss scaling).
    pub fn cast_with<T: Dtype>(&self, opts: CastOptions) -> Result<(Var<T>, CastReport)> {
        let (y, report) = self.value.cast_with::<T>(opts)?;
        let id = self.id;
        let backward = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&backward);
        let rec = Record {
            op: "cast",
            inputs: vec![id],
            requires_grad: self.requires_grad,
            saved: vec![],
            cast: Some(CastSite {
                forward: report,
                backward,
            }),
        };
        Ok((
            self.tape.record(y, rec, move |g| {
                let (g, grad_report) = g.cast_with::<D>(CastOptions::default())?;
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(grad_report);
                Ok(vec![grad(id, g)])
            }),
            report,
        ))
    }
}
