//! [`Storage`] and [`Device`]: where a tensor's elements live.

use mixprec_dtype::Dtype;

/// The device that holds a tensor's storage. CPU today; the CUDA layer adds a variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    /// Host memory.
    Cpu,
}

/// Elements at `D`'s own width (a `Bf16` element is 2 bytes), on one device.
#[derive(Debug)]
pub(crate) enum Storage<D: Dtype> {
    Cpu(Vec<D>),
}

impl<D: Dtype> Drop for Storage<D> {
    fn drop(&mut self) {
        match self {
            Storage::Cpu(v) => crate::alloc::recycle(std::mem::take(v)),
        }
    }
}

impl<D: Dtype> Storage<D> {
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
        }
    }

    /// The host elements.
    pub fn as_slice(&self) -> &[D] {
        match self {
            Storage::Cpu(v) => v,
        }
    }

    /// Bytes held: elements times `D::BYTES`.
    pub fn bytes(&self) -> usize {
        self.as_slice().len() * D::BYTES
    }
}
