//! `sum x^2` of values with an f32 compute type, in f64: the L2 norm's pass (gradient
//! norms, clipping).
//!
//! Each square is exact in f64 (an f32 has 24 significant bits, its square 48 of f64's
//! 53; no f32's square overflows or underflows f64), and the sums run in eight
//! interleaved f64 lanes per block of [`BLOCK`] elements. The blocks depend on the length
//! only, never on the thread count or the CPU's instruction set (the loop has no fused
//! multiply-adds, so every build rounds alike), so the result is the same bits on every
//! machine. Large inputs run their blocks on the pool.

use mixprec_dtype::Dtype;
use std::sync::Mutex;

/// Elements per block: one block's eight lanes are summed in order, then the blocks'
/// lanes in block order.
const BLOCK: usize = 1 << 15;

crate::cpu::simd::multiversioned! {
    /// Eight lane sums of `x[i]^2` (lane `i % 8`), each in f64 and in element order.
    fn lane_sums(x: &[f32]) -> [f64; 8] {
        let mut acc = [0.0f64; 8];
        let mut chunks = x.chunks_exact(8);
        for c in &mut chunks {
            for (a, &v) in acc.iter_mut().zip(c) {
                let v = f64::from(v);
                *a += v * v;
            }
        }
        for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
            let v = f64::from(v);
            *a += v * v;
        }
        acc
    }
}

/// `sum x^2` of `x`'s values as f32 (read in place for `F32`; other types are widened
/// a block at a time), in f64 (NaN if any element is NaN, +inf if any is infinite and
/// none NaN):
/// per block eight lane sums, the blocks' lanes added in block order, then the eight
/// lanes in order. An input of at most [`BLOCK`] elements is one block: the eight-lane
/// sum the L2 norm has always used.
pub(crate) fn sum_squares_f64<D: Dtype>(x: &[D]) -> f64 {
    let blocks: Vec<&[D]> = x.chunks(BLOCK).collect();
    let partial: Vec<Mutex<[f64; 8]>> = (0..blocks.len()).map(|_| Mutex::new([0.0; 8])).collect();
    let run = |i: usize| {
        let sums = match crate::cpu::simd::f32_view(blocks[i]) {
            Some(f) => lane_sums(f),
            None => {
                // One block's widened values (at most BLOCK f32s, whatever the input).
                let mut f = vec![0.0f32; blocks[i].len()];
                mixprec_dtype::convert_slice_to_f32(blocks[i], &mut f).expect("equal lengths");
                lane_sums(&f)
            }
        };
        *partial[i].lock().unwrap_or_else(|e| e.into_inner()) = sums;
    };
    if blocks.len() > 1 {
        crate::cpu::pool::Pool::global().run(blocks.len(), &run);
    } else if blocks.len() == 1 {
        run(0);
    }
    let mut lanes = [0.0f64; 8];
    for p in partial {
        let p = p.into_inner().unwrap_or_else(|e| e.into_inner());
        lanes.iter_mut().zip(p).for_each(|(l, s)| *l += s);
    }
    lanes.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::{Bf16, F32};

    /// The definition, one element at a time, with the same blocks and lanes.
    fn reference(x: &[f32]) -> f64 {
        let mut lanes = [0.0f64; 8];
        for block in x.chunks(BLOCK) {
            let mut acc = [0.0f64; 8];
            for (i, &v) in block.iter().enumerate() {
                acc[i % 8] += f64::from(v) * f64::from(v);
            }
            lanes.iter_mut().zip(acc).for_each(|(l, s)| *l += s);
        }
        lanes.iter().sum()
    }

    fn values(n: usize) -> Vec<f32> {
        // Non-dyadic values of many magnitudes: sums that round differently in any
        // other order.
        (0..n)
            .map(|i| (i as f32 * 0.7310585).sin() * 1.1f32.powi((i % 97) as i32 - 40))
            .collect()
    }

    /// Multi-block lengths run on the pool; the reference is one thread, in order.
    #[test]
    fn matches_the_blocked_definition_bit_for_bit_at_every_length() {
        for n in [
            0,
            1,
            7,
            8,
            9,
            1000,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            5 * BLOCK + 13,
        ] {
            let x = values(n);
            let f: Vec<F32> = x.iter().map(|&v| F32(v)).collect();
            assert_eq!(
                sum_squares_f64(&f).to_bits(),
                reference(&x).to_bits(),
                "n = {n}"
            );
            // A 2-byte type is widened block by block: same sum as its f32 values.
            let b: Vec<Bf16> = x.iter().map(|&v| Bf16::from_f32(v)).collect();
            let bx: Vec<f32> = b.iter().map(|v| v.to_f32()).collect();
            assert_eq!(
                sum_squares_f64(&b).to_bits(),
                reference(&bx).to_bits(),
                "n = {n}"
            );
        }
    }

    #[test]
    fn non_finite_values_win() {
        let mut x: Vec<F32> = values(2 * BLOCK).into_iter().map(F32).collect();
        x[BLOCK + 3] = F32(f32::INFINITY);
        assert_eq!(sum_squares_f64(&x), f64::INFINITY);
        x[7] = F32(f32::NAN);
        assert!(sum_squares_f64(&x).is_nan());
        // f32::MAX squared is finite in f64.
        assert!(sum_squares_f64(&[F32(f32::MAX), F32(-f32::MAX)]).is_finite());
    }
}
