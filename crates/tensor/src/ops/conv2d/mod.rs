//! `conv2d` (NCHW, stride, padding, dilation, groups): im2col in the input's own
//! precision, then the f32-accumulating GEMM (which widens while packing). The result
//! rounds once into `D`.

mod backward;

use crate::backend::on_device;
use crate::cpu::gemm::{MatRef, gemm_f32, gemm_f64};
use crate::error::{Error, Result};
use crate::storage::one_device;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, DType, Dtype};

/// Geometry of a 2-D convolution or pooling window. `Default` is stride 1, no padding,
/// dilation 1, one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between windows, (rows, columns).
    pub stride: (usize, usize),
    /// Zero padding added on each side, (rows, columns).
    pub padding: (usize, usize),
    /// Spacing between window taps, (rows, columns).
    pub dilation: (usize, usize),
    /// Channel groups: input and output channels split into this many independent convolutions.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

/// Output size of one spatial dimension, or `None` if the window does not fit.
pub(crate) fn out_size(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Option<usize> {
    // Checked: kernel, padding and dilation come from the user; an overflow is no fit.
    let span = dilation
        .checked_mul(kernel.checked_sub(1)?)?
        .checked_add(1)?;
    let padded = padding.checked_mul(2)?.checked_add(input)?;
    (padded >= span).then(|| (padded - span) / stride + 1)
}

/// The validated sizes of a convolution: input `[n, c, h, w]`, weight `[o, cg, kh, kw]`,
/// output `ho x wo`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvGeometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub cg: usize,
    pub kh: usize,
    pub kw: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvGeometry {
    /// Checks ranks, groups, strides, dilations and that the window fits; errors name `op`.
    pub(crate) fn new(
        op: &'static str,
        input: &[usize],
        weight: &[usize],
        p: &Conv2dParams,
    ) -> Result<Self> {
        let (&[n, c, h, w], &[o, cg, kh, kw]) = (input, weight) else {
            return Err(Error::shapes(
                op,
                input,
                weight,
                "input [N, C, H, W] and weight [O, C/groups, KH, KW] must both have rank 4",
            ));
        };
        let g = p.groups;
        if g == 0 || c % g != 0 || o % g != 0 || cg != c / g {
            return Err(Error::shapes(
                op,
                input,
                weight,
                "groups must divide input and output channels, and weight.shape[1] must be C / groups",
            ));
        }
        if p.stride.0 == 0
            || p.stride.1 == 0
            || p.dilation.0 == 0
            || p.dilation.1 == 0
            || kh == 0
            || kw == 0
        {
            return Err(Error::invalid(
                op,
                format!(
                    "stride {:?}, dilation {:?} and kernel size {kh}x{kw} must be non-zero",
                    p.stride, p.dilation
                ),
            ));
        }
        let (Some(ho), Some(wo)) = (
            out_size(h, kh, p.stride.0, p.padding.0, p.dilation.0),
            out_size(w, kw, p.stride.1, p.padding.1, p.dilation.1),
        ) else {
            return Err(Error::shapes(
                op,
                input,
                weight,
                "the (dilated) kernel is larger than the padded input",
            ));
        };
        // The output and the unfolded (im2col) input must be addressable.
        crate::layout::checked_numel(op, &[n, o, ho, wo])?;
        crate::layout::checked_numel(op, &[n, c, kh, kw, ho, wo])?;
        Ok(ConvGeometry {
            n,
            c,
            h,
            w,
            o,
            cg,
            kh,
            kw,
            ho,
            wo,
        })
    }
}

impl<D: Dtype> Tensor<D> {
    /// 2-D convolution (cross-correlation, as in PyTorch) of an `[N, C, H, W]` input with
    /// `[O, C / groups, KH, KW]` weights and an optional `[O]` bias, giving
    /// `[N, O, HO, WO]`. Errors on wrong ranks, channel counts that the groups do not
    /// divide, a zero stride or dilation, or a window larger than the padded input.
    pub fn conv2d(
        &self,
        weight: &Tensor<D>,
        bias: Option<&Tensor<D>>,
        p: Conv2dParams,
    ) -> Result<Tensor<D>> {
        let operands = [Some(self), Some(weight), bias].into_iter().flatten();
        let device = one_device("conv2d", operands.map(Tensor::device))?;
        let o = ConvGeometry::new("conv2d", self.shape(), weight.shape(), &p)?.o;
        if let Some(b) = bias
            && b.shape() != [o]
        {
            return Err(Error::shapes(
                "conv2d",
                weight.shape(),
                b.shape(),
                "bias must have shape [out_channels]",
            ));
        }
        on_device!(device, b => b.conv2d(self, weight, bias, p))
    }

    /// The CPU kernel of [`Tensor::conv2d`], after its front's checks.
    pub(crate) fn conv2d_on_cpu(
        &self,
        weight: &Tensor<D>,
        bias: Option<&Tensor<D>>,
        p: Conv2dParams,
    ) -> Result<Tensor<D>> {
        let ConvGeometry {
            n,
            c,
            h,
            w,
            o,
            cg,
            kh,
            kw,
            ho,
            wo,
        } = ConvGeometry::new("conv2d", self.shape(), weight.shape(), &p)?;
        let g = p.groups;
        let xd = self.try_elements("conv2d")?;
        let wd = weight.try_elements("conv2d")?;
        let (og, kk, hw) = (o / g, cg * kh * kw, ho * wo);
        // im2col for one image and group: rows (ci, ki, kj), columns (oy, ox).
        let im2col = |img: usize, grp: usize, cols: &mut Vec<D>| {
            cols.clear();
            cols.resize(kk * hw, D::ZERO);
            for ci in 0..cg {
                let chan = &xd[((img * c) + grp * cg + ci) * h * w..][..h * w];
                for ki in 0..kh {
                    for kj in 0..kw {
                        let row = &mut cols[((ci * kh + ki) * kw + kj) * hw..][..hw];
                        for oy in 0..ho {
                            let iy = (oy * p.stride.0 + ki * p.dilation.0) as isize
                                - p.padding.0 as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for ox in 0..wo {
                                let ix = (ox * p.stride.1 + kj * p.dilation.1) as isize
                                    - p.padding.1 as isize;
                                if ix >= 0 && ix < w as isize {
                                    row[oy * wo + ox] = chan[iy as usize * w + ix as usize];
                                }
                            }
                        }
                    }
                }
            }
        };
        let total = n * o * hw;
        // The output (o channels) and the unfolded input (kh * kw copies of a group's
        // channels) can be far larger than the input: fallible.
        let mut cols: Vec<D> =
            crate::cpu::alloc::try_with_capacity("conv2d", &[cg, kh, kw, ho, wo], kk * hw)?;
        let bias_vals = bias.map(|b| b.try_to_acc_vec("conv2d")).transpose()?;
        let mut acc: Vec<D::Acc> =
            crate::cpu::alloc::try_with_capacity("conv2d", &[n, o, ho, wo], total)?;
        let descale = f64::from(self.scale) * f64::from(weight.scale);
        // One output block per (image, group), in the precision the GEMM computes in.
        let block = if D::DTYPE == DType::F64 {
            (0, og * hw)
        } else {
            (og * hw, 0)
        };
        let mut out32 = crate::cpu::alloc::try_zeros_of::<f32>("conv2d", &[og, ho, wo], block.0)?;
        let mut out64 = crate::cpu::alloc::try_zeros_of::<f64>("conv2d", &[og, ho, wo], block.1)?;
        for img in 0..n {
            for grp in 0..g {
                im2col(img, grp, &mut cols);
                let a = MatRef {
                    data: &wd[..],
                    offset: grp * og * kk,
                    rs: kk,
                    cs: 1,
                };
                let b = MatRef {
                    data: &cols[..],
                    offset: 0,
                    rs: hw,
                    cs: 1,
                };
                if D::DTYPE == DType::F64 {
                    gemm_f64(og, hw, kk, a, b, &mut out64);
                    acc.extend(out64.iter().map(|&v| D::Acc::from_f64(v)));
                } else {
                    gemm_f32(og, hw, kk, a, b, &mut out32);
                    acc.extend(
                        out32
                            .iter()
                            .map(|&v| D::Acc::from_f64(f64::from(v) / descale)),
                    );
                }
            }
        }
        if let Some(bv) = bias_vals {
            for (i, v) in acc.iter_mut().enumerate() {
                *v += bv[(i / hw) % o];
            }
        }
        Tensor::from_acc_vec("conv2d", &acc, &[n, o, ho, wo])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};

    /// Direct F64 convolution by the definition.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f64],
        xs: [usize; 4],
        wt: &[f64],
        ws: [usize; 4],
        bias: &[f64],
        p: Conv2dParams,
        ho: usize,
        wo: usize,
    ) -> Vec<f64> {
        let [n, c, h, w] = xs;
        let [o, cg, kh, kw] = ws;
        let og = o / p.groups;
        let mut out = vec![0.0; n * o * ho * wo];
        for img in 0..n {
            for oc in 0..o {
                let grp = oc / og;
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut s = bias[oc];
                        for ci in 0..cg {
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let iy = (oy * p.stride.0 + ki * p.dilation.0) as isize
                                        - p.padding.0 as isize;
                                    let ix = (ox * p.stride.1 + kj * p.dilation.1) as isize
                                        - p.padding.1 as isize;
                                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w
                                    {
                                        let xv = x[((img * c + grp * cg + ci) * h + iy as usize)
                                            * w
                                            + ix as usize];
                                        s += xv * wt[((oc * cg + ci) * kh + ki) * kw + kj];
                                    }
                                }
                            }
                        }
                        out[((img * o + oc) * ho + oy) * wo + ox] = s;
                    }
                }
            }
        }
        out
    }

    fn conv2d_matches_f64<D: Dtype>() {
        let mut rng = TestRng::new(21);
        let cases = [
            (
                [2, 4, 9, 8],
                [6, 2, 3, 3],
                Conv2dParams {
                    stride: (2, 1),
                    padding: (1, 2),
                    dilation: (1, 2),
                    groups: 2,
                },
            ),
            ([1, 3, 7, 7], [4, 3, 1, 1], Conv2dParams::default()),
            (
                [1, 2, 6, 5],
                [2, 2, 5, 2],
                Conv2dParams {
                    padding: (2, 0),
                    ..Conv2dParams::default()
                },
            ),
        ];
        for (xs, ws, p) in cases {
            let x = Tensor::<D>::from_f64(&rng.vec(xs.iter().product(), -1.0, 1.0), &xs).unwrap();
            let w = Tensor::<D>::from_f64(&rng.vec(ws.iter().product(), -1.0, 1.0), &ws).unwrap();
            let b = Tensor::<D>::from_f64(&rng.vec(ws[0], -1.0, 1.0), &[ws[0]]).unwrap();
            let got = x.conv2d(&w, Some(&b), p).unwrap();
            let ho = out_size(xs[2], ws[2], p.stride.0, p.padding.0, p.dilation.0).unwrap();
            let wo = out_size(xs[3], ws[3], p.stride.1, p.padding.1, p.dilation.1).unwrap();
            assert_eq!(got.shape(), &[xs[0], ws[0], ho, wo]);
            let want = reference(
                &x.to_f64_vec(),
                xs,
                &w.to_f64_vec(),
                ws,
                &b.to_f64_vec(),
                p,
                ho,
                wo,
            );
            let k = ws[1] * ws[2] * ws[3] + 1;
            let tol = Tolerance::accumulated::<D>(k);
            let tol = Tolerance {
                abs_of_max: tol.abs_of_max + tol.rel,
                ..tol
            };
            assert_close(
                &format!("conv2d<{}> {xs:?} {ws:?}", D::NAME),
                &got.to_f64_vec(),
                &want,
                tol,
            );
        }
    }
    for_each_dtype!(conv2d_matches_f64);

    #[test]
    fn conv2d_errors() {
        let x = Tensor::<F32>::zeros(&[1, 4, 5, 5]);
        let w = Tensor::<F32>::zeros(&[2, 3, 3, 3]);
        let e = x.conv2d(&w, None, Conv2dParams::default()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("conv2d: shapes [1, 4, 5, 5] and [2, 3, 3, 3]"),
            "{e}"
        );
        let w = Tensor::<F32>::zeros(&[2, 4, 7, 7]);
        assert!(
            x.conv2d(&w, None, Conv2dParams::default())
                .unwrap_err()
                .to_string()
                .contains("larger than the padded input")
        );
        let w = Tensor::<F32>::zeros(&[2, 4, 3, 3]);
        assert!(
            x.conv2d(
                &w,
                None,
                Conv2dParams {
                    stride: (0, 1),
                    ..Default::default()
                }
            )
            .is_err()
        );
        assert!(
            x.conv2d(&w, Some(&Tensor::zeros(&[3])), Conv2dParams::default())
                .is_err()
        );
        assert!(
            Tensor::<F32>::zeros(&[4, 5, 5])
                .conv2d(&w, None, Conv2dParams::default())
                .is_err()
        );
    }
}
