//! Saving and loading in the safetensors format (the PyTorch / Hugging Face ecosystem's):
//! named tensors of every precision type with string metadata, written atomically.
//!
//! - [`TensorFile`]: an ordered set of named tensors ([`StoredTensor`]: dtype, shape,
//!   little-endian bytes) and metadata, to and from bytes and files. Reading checks the
//!   whole file before anything is returned: a truncated file, a wrong header length, a
//!   header larger than the file, overlapping or out-of-range offsets, an unknown dtype
//!   are each an error naming the file and the fault.
//! - [`write_atomic`]: a temporary file in the same folder, fsync, rename, fsync of the
//!   folder: a kill at any moment leaves the old file or the new one, never a broken one.
//!   [`Checkpoints`] numbers files by step and keeps the last N.
//! - [`export_weights`] / [`load_weights`]: a model's weights alone, in any precision type
//!   (FP8 with its scale as a companion `<name>_scale_inv` tensor), and back into master
//!   weights of the same names and shapes, all or nothing.

mod atomic;
mod file;
mod header;
mod weights;

pub use atomic::{Checkpoints, write_atomic};
pub use file::{StoredTensor, TensorFile};
pub use weights::{
    LoadOptions, SCALE_INV_SUFFIX, export_weights, load_weights, load_weights_from, weights_file,
};
