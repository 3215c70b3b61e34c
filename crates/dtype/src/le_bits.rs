//! [`LeBits`]: a precision type's bit pattern as little-endian bytes, the byte order of
//! file formats (safetensors, NumPy's `<` dtypes) on every machine.

/// An unsigned integer holding a precision type's bits ([`crate::Dtype::Bits`]), written
/// and read as little-endian bytes.
pub trait LeBits: Copy {
    /// Bytes per value.
    const SIZE: usize;
    /// Appends the value's little-endian bytes to `out`.
    fn push_le_bytes(self, out: &mut Vec<u8>);
    /// The value of `bytes`, which holds exactly [`LeBits::SIZE`] little-endian bytes
    /// (`None` for any other length).
    fn from_le_slice(bytes: &[u8]) -> Option<Self>;
}

macro_rules! le_bits {
    ($($t:ty),*) => {$(
        impl LeBits for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline]
            fn push_le_bytes(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn from_le_slice(bytes: &[u8]) -> Option<Self> {
                Some(<$t>::from_le_bytes(bytes.try_into().ok()?))
            }
        }
    )*};
}

le_bits!(u8, u16, u32, u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_little_endian_and_round_trip() {
        let mut out = Vec::new();
        0x1234u16.push_le_bytes(&mut out);
        0xdead_beefu32.push_le_bytes(&mut out);
        assert_eq!(out, [0x34, 0x12, 0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(u16::from_le_slice(&out[..2]), Some(0x1234));
        assert_eq!(u32::from_le_slice(&out[2..]), Some(0xdead_beef));
        assert_eq!(u32::from_le_slice(&out[..3]), None, "wrong length");
        assert_eq!(u64::from_le_slice(&u64::MAX.to_le_bytes()), Some(u64::MAX));
        assert_eq!(u8::from_le_slice(&[7]), Some(7));
    }
}
