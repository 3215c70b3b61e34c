//! [`Primitive`]: the backend contract's primitives as data, each with the name of its
//! op and the device kernel that implements it.

/// Defines [`Primitive`] from one list: variant, op name, device kernel.
macro_rules! primitives {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $kernel:literal;)*) => {
        /// One primitive of the backend contract (one method of the internal `Backend`
        /// trait). For a family that takes its op as data, the kernel named here is the
        /// family's entry, and the variant's own kernel is the op enum's `kernel()`
        /// ([`UnaryOp::kernel`](crate::UnaryOp::kernel), ...).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Primitive {
            $($(#[$doc])* $variant,)*
        }

        impl Primitive {
            /// Every primitive, in the contract's order.
            pub const ALL: &'static [Primitive] = &[$(Primitive::$variant),*];

            /// The public op (or family of ops) the primitive computes.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Primitive::$variant => $name,)*
                }
            }

            /// The device kernel for the primitive (a literal per variant: the typed
            /// table a device backend looks its kernels up in; parameters are kernel
            /// arguments, the element types template arguments).
            pub const fn kernel(self) -> &'static str {
                match self {
                    $(Primitive::$variant => $kernel,)*
                }
            }
        }
    };
}

primitives! {
    /// Element-wise unary ops ([`UnaryOp`](crate::UnaryOp)).
    Unary => "unary", "unary";
    /// Their backward forms.
    UnaryBackward => "unary_backward", "unary_backward";
    /// GELU and its derivative from one evaluation (F32).
    GeluWithDerivative => "gelu_with_derivative", "gelu_with_derivative";
    /// Element-wise binary ops with broadcasting ([`BinaryOp`](crate::BinaryOp)).
    Binary => "binary", "binary";
    /// Binary ops with a scalar right operand.
    BinaryScalar => "binary_scalar", "binary_scalar";
    /// Comparisons into a mask ([`CompareOp`](crate::CompareOp)).
    Compare => "compare", "compare";
    /// Comparisons with a scalar.
    CompareScalar => "compare_scalar", "compare_scalar";
    /// `mask ? x : other`.
    WhereCond => "where_cond", "where_select";
    /// `x` with a value where the mask is set.
    MaskedFill => "masked_fill", "masked_fill";
    /// Inverted dropout with a given keep-mask.
    Dropout => "dropout_with_mask", "dropout_apply_mask";
    /// Reductions over axes ([`ReduceOp`](crate::ReduceOp)).
    Reduce => "reduce", "reduce";
    /// Index of the extreme along an axis ([`ArgReduceOp`](crate::ArgReduceOp)).
    ArgReduce => "arg_reduce", "arg_reduce";
    /// The largest magnitude (FP8 scaling's amax).
    AbsMax => "abs_max", "amax";
    /// The non-finite check of the loss scaler.
    AllFinite => "all_finite", "all_finite";
    /// The loss scaler's fused unscale and non-finite check.
    UnscaleChecked => "unscale_checked", "unscale_non_finite_check";
    /// The global L2 norm (gradient clipping).
    NormL2 => "norm_l2", "norm_l2";
    /// Precision casts with their report (counts and amax).
    Cast => "cast", "cast_with_report";
    /// Matrix products with mixed operand and output precisions (and a fused bias).
    Matmul => "matmul", "gemm";
    /// Softmax and log-softmax along an axis ([`RowOp`](crate::RowOp)).
    RowOp => "row_op", "row_op";
    /// Their backward forms.
    RowOpBackward => "row_op_backward", "row_op_backward";
    /// Layer normalisation over trailing dimensions.
    LayerNorm => "layer_norm", "layer_norm";
    /// Its backward pass (input, weight and bias gradients).
    LayerNormBackward => "layer_norm_backward", "layer_norm_backward";
    /// Mean cross-entropy of logits and labels.
    CrossEntropy => "cross_entropy", "cross_entropy";
    /// Its gradient with respect to the logits.
    CrossEntropyBackward => "cross_entropy_backward", "cross_entropy_backward";
    /// Index-select and gather ([`IndexOp`](crate::IndexOp)).
    Index => "index", "index";
    /// Their backward forms: index-add and scatter-add.
    IndexBackward => "index_backward", "index_backward";
    /// 2-D convolution.
    Conv2d => "conv2d", "conv2d";
    /// Its backward pass.
    Conv2dBackward => "conv2d_backward", "conv2d_backward";
    /// 2-D pooling ([`PoolOp`](crate::PoolOp)).
    Pool2d => "pool2d", "pool2d";
    /// Its backward pass.
    Pool2dBackward => "pool2d_backward", "pool2d_backward";
    /// The fused AdamW update, in place.
    AdamWUpdate => "adamw_update", "adamw_update";
    /// The fused SGD update, in place.
    SgdUpdate => "sgd_update", "sgd_update";
    /// A contiguous copy of a strided view.
    Contiguous => "contiguous", "strided_copy";
    /// Concatenation along an axis.
    Concat => "concat", "concat";
    /// Zero padding along an axis.
    PadAxis => "pad_axis", "pad_axis";
    /// Adding a tensor into a range of an axis.
    AddNarrow => "add_narrow", "add_narrow";
}
