//! Buckets: gradients grouped into messages of bounded size, in a fixed order.

use std::ops::Range;

/// PyTorch DDP's default bucket size, 25 MiB (of F32 gradients).
pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

/// Groups tensors of `numels` elements into buckets of at most `bucket_bytes` bytes of
/// F32 gradients, walking the parameters from last to first (the order backward makes
/// them final, as DDP does) and keeping each bucket a contiguous range of parameter
/// indices. A tensor larger than a bucket gets a bucket of its own; a bucket is never
/// empty. The plan depends only on the sizes, so every rank makes the same one.
pub fn plan_buckets(numels: &[usize], bucket_bytes: usize) -> Vec<Range<usize>> {
    let mut buckets = Vec::new();
    let mut end = numels.len();
    let mut bytes = 0usize;
    for i in (0..numels.len()).rev() {
        let b = numels[i].saturating_mul(4);
        if end > i + 1 && bytes.saturating_add(b) > bucket_bytes {
            buckets.push(i + 1..end);
            end = i + 1;
            bytes = 0;
        }
        bytes = bytes.saturating_add(b);
    }
    if end > 0 {
        buckets.push(0..end);
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_tensor_once_from_the_last() {
        // 4 bytes per element: a 40-byte bucket holds 10 elements; the 20-element
        // tensor travels alone.
        let b = plan_buckets(&[3, 4, 5, 20, 2, 2], 40);
        assert_eq!(b, vec![4..6, 3..4, 1..3, 0..1]);
        let mut seen: Vec<usize> = b.iter().flat_map(|r| r.clone()).collect();
        seen.sort();
        assert_eq!(seen, (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn one_bucket_when_everything_fits_and_none_for_nothing() {
        assert_eq!(plan_buckets(&[1, 2, 3], DEFAULT_BUCKET_BYTES), vec![0..3]);
        assert!(plan_buckets(&[], 40).is_empty());
        assert_eq!(plan_buckets(&[100], 4), vec![0..1]);
    }
}
