//! [`Storage`] and [`Device`]: where a tensor's elements live.
//!
//! The CPU holds `Vec<D>`. The CUDA variant holds [`CudaStorage`]; in a build without the
//! CUDA backend that is a stand-in that cannot be constructed (it holds an uninhabited
//! value): moving a tensor to a GPU is an error ("built without CUDA support"), and every
//! CUDA arm in op code is statically unreachable, so op code carries no `#[cfg]`.

use crate::error::{Error, ErrorKind, Result};
use mixprec_dtype::Dtype;
use std::marker::PhantomData;

/// The device that holds a tensor's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    /// Host memory.
    Cpu,
    /// An NVIDIA GPU, by CUDA ordinal.
    Cuda(usize),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// Errors unless `a` and `b` are the same device: one op never mixes devices.
pub(crate) fn same_device(op: &'static str, a: Device, b: Device) -> Result<()> {
    if a == b {
        return Ok(());
    }
    Err(Error::new(op, ErrorKind::DeviceMismatch { lhs: a, rhs: b }))
}

/// The device of every one of `devices` (at least one), or an error naming `op` and the
/// first two that differ: an op's front picks its backend with it.
pub(crate) fn one_device(
    op: &'static str,
    devices: impl IntoIterator<Item = Device>,
) -> Result<Device> {
    let mut devices = devices.into_iter();
    let first = devices
        .next()
        .ok_or_else(|| Error::invalid(op, "no tensor operand"))?;
    devices.try_for_each(|d| same_device(op, first, d))?;
    Ok(first)
}

/// Elements on a CUDA device. This build has no CUDA backend: the stand-in cannot be
/// made ([`CudaStorage::from_host`] errors), and its methods are unreachable by type.
#[derive(Debug)]
pub(crate) struct CudaStorage<D> {
    never: std::convert::Infallible,
    _elements: PhantomData<D>,
}

impl<D> CudaStorage<D> {
    /// A copy of `host` on GPU `ordinal`: here "built without CUDA support".
    pub(crate) fn from_host(op: &'static str, ordinal: usize, _host: &[D]) -> Result<Self> {
        Err(Error::new(
            op,
            ErrorKind::Unsupported {
                device: Device::Cuda(ordinal),
                what: "built without CUDA support (enable the `cuda` feature)".into(),
            },
        ))
    }

    fn ordinal(&self) -> usize {
        match self.never {}
    }

    fn len(&self) -> usize {
        match self.never {}
    }
}

/// Elements at `D`'s own width (a `Bf16` element is 2 bytes), on one device.
#[derive(Debug)]
pub(crate) enum Storage<D: Dtype> {
    Cpu(Vec<D>),
    Cuda(CudaStorage<D>),
}

impl<D: Dtype> Drop for Storage<D> {
    fn drop(&mut self) {
        match self {
            Storage::Cpu(v) => crate::cpu::alloc::recycle(std::mem::take(v)),
            Storage::Cuda(_) => {}
        }
    }
}

impl<D: Dtype> Storage<D> {
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Cuda(c) => Device::Cuda(c.ordinal()),
        }
    }

    /// The host elements (the CPU engine's view).
    pub fn as_slice(&self) -> &[D] {
        match self {
            Storage::Cpu(v) => v,
            Storage::Cuda(c) => match c.never {},
        }
    }

    /// The host elements, writable.
    pub fn as_mut_slice(&mut self) -> &mut [D] {
        match self {
            Storage::Cpu(v) => v.as_mut_slice(),
            Storage::Cuda(c) => match c.never {},
        }
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(v) => v.len(),
            Storage::Cuda(c) => c.len(),
        }
    }

    /// Bytes held: elements times `D::BYTES`.
    pub fn bytes(&self) -> usize {
        self.len() * D::BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;
    use mixprec_dtype::{Bf16, F32};

    #[test]
    fn devices_print_like_pytorch() {
        assert_eq!(Device::Cpu.to_string(), "cpu");
        assert_eq!(Device::Cuda(1).to_string(), "cuda:1");
    }

    #[test]
    fn mixing_devices_is_an_error_naming_the_op_and_both() {
        assert!(same_device("add", Device::Cpu, Device::Cpu).is_ok());
        let e = same_device("add", Device::Cpu, Device::Cuda(0)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add: tensors on different devices: cpu and cuda:0"
        );
    }

    #[test]
    fn moving_to_a_gpu_without_the_backend_is_an_error() {
        let x = Tensor::<Bf16>::ones(&[2, 3]);
        let e = x.to_device(Device::Cuda(0)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "to_device: cuda:0: built without CUDA support (enable the `cuda` feature)"
        );
        let same = x.to_device(Device::Cpu).unwrap();
        assert!(same.shares_storage_with(&x), "to its own device: no copy");
        assert_eq!(Tensor::<F32>::zeros(&[1]).device(), Device::Cpu);
    }
}
