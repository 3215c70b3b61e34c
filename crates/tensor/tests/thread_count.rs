//! Where the pool's thread count comes from, checked in fresh child processes (the count
//! is decided when the pool starts): `MIXPREC_NUM_THREADS`, then the CPUs the process may
//! run on (its affinity mask), then `set_num_threads` at any time; and results that depend
//! neither on it nor on the GEMM kernel the CPU runs (`MIXPREC_GEMM_KERNEL`).

use std::process::Command;

/// Runs this test binary's test `name` in a child with `env` set; true on success.
fn child(name: &str, env: &[(&str, &str)]) -> bool {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
    cmd.args([name, "--exact", "--test-threads", "1"])
        .env("MIXPREC_THREAD_COUNT_CHILD", "1")
        .env_remove("MIXPREC_NUM_THREADS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the child");
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains("1 passed")
}

fn in_child() -> bool {
    std::env::var_os("MIXPREC_THREAD_COUNT_CHILD").is_some()
}

#[test]
fn environment_variable_sets_the_count() {
    if in_child() {
        assert_eq!(mixprec_tensor::num_threads(), 3);
        return;
    }
    assert!(child(
        "environment_variable_sets_the_count",
        &[("MIXPREC_NUM_THREADS", "3")]
    ));
}

#[test]
fn an_invalid_environment_value_falls_back_to_the_cpus() {
    if in_child() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(mixprec_tensor::num_threads(), cpus);
        return;
    }
    assert!(child(
        "an_invalid_environment_value_falls_back_to_the_cpus",
        &[("MIXPREC_NUM_THREADS", "zero")]
    ));
}

#[cfg(target_os = "linux")]
#[test]
fn the_affinity_mask_limits_the_default_count() {
    if in_child() {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity writes at most
        // `size` bytes into `allowed`; CPU_ISSET/CPU_SET read and write inside the sets
        // (indices below CPU_SETSIZE); sched_setaffinity reads `size` bytes of `one`.
        let ok = unsafe {
            let mut allowed: libc::cpu_set_t = std::mem::zeroed();
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, size, &mut allowed) == 0
                && match (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &allowed)) {
                    Some(cpu) => {
                        libc::CPU_SET(cpu, &mut one);
                        libc::sched_setaffinity(0, size, &one) == 0
                    }
                    None => false,
                }
        };
        assert!(ok, "pin this process to its first allowed CPU");
        // The pool starts now, after the pin: one CPU, so no helpers.
        assert_eq!(mixprec_tensor::num_threads(), 1);
        mixprec_tensor::set_num_threads(2);
        assert_eq!(mixprec_tensor::num_threads(), 2);
        return;
    }
    assert!(child("the_affinity_mask_limits_the_default_count", &[]));
}

/// The same bits with one thread and with several: pieces of parallel sections depend on
/// the sizes only (layer norm's weight gradient sums per-piece partials).
#[test]
fn results_do_not_depend_on_the_thread_count() {
    use mixprec_dtype::{Bf16, F32};
    use mixprec_tensor::{Rng, Tensor};
    let mut rng = Rng::seed(7);
    let x = Tensor::<F32>::randn(&[512, 96], 0.0, 1.0, &mut rng).unwrap();
    let g = Tensor::<F32>::randn(&[512, 96], 0.0, 1.0, &mut rng).unwrap();
    let w = Tensor::<F32>::randn(&[96], 1.0, 0.1, &mut rng).unwrap();
    let m = Tensor::<F32>::randn(&[96, 200], 0.0, 1.0, &mut rng).unwrap();
    let bits =
        |t: &Tensor<F32>| -> Vec<u32> { t.to_f32_vec().iter().map(|v| v.to_bits()).collect() };
    let run = || {
        let (dx, dw, db) = x.layer_norm_backward(&g, 96, Some(&w), 1e-5).unwrap();
        let (dw, db) = (
            Tensor::<F32>::from_f32(&dw, &[96]).unwrap(),
            Tensor::<F32>::from_f32(&db, &[96]).unwrap(),
        );
        let y = x.matmul(&m).unwrap();
        let s = y.sum(&[0], false).unwrap();
        let sm = y.cast::<Bf16>().softmax(-1).unwrap().cast::<F32>();
        let ge = y.gelu();
        [
            bits(&dx),
            bits(&dw),
            bits(&db),
            bits(&y),
            bits(&s),
            bits(&sm),
            bits(&ge),
        ]
    };
    mixprec_tensor::set_num_threads(2);
    let two = run();
    mixprec_tensor::set_num_threads(1);
    let one = run();
    mixprec_tensor::set_num_threads(3);
    let three = run();
    mixprec_tensor::set_num_threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
    assert_eq!(one, two);
    assert_eq!(one, three);
}

/// A matmul's bits, folded into one number (FNV-1a over the f32 bit patterns).
fn matmul_fingerprint() -> u64 {
    use mixprec_dtype::{Bf16, F32};
    use mixprec_tensor::{Rng, Tensor};
    let mut rng = Rng::seed(11);
    // Sizes that span several KC blocks and leave partial tiles; random (non-dyadic)
    // values, so each product rounds and a tile without FMA would differ.
    let a = Tensor::<F32>::randn(&[203, 517], 0.0, 1.0, &mut rng).unwrap();
    let b = Tensor::<F32>::randn(&[517, 171], 0.0, 1.0, &mut rng).unwrap();
    let y = a.matmul(&b).unwrap();
    let z = a
        .cast::<Bf16>()
        .matmul(&b.cast::<Bf16>())
        .unwrap()
        .cast::<F32>();
    y.to_f32_vec()
        .iter()
        .chain(&z.to_f32_vec())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
            (h ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3)
        })
}

/// The portable GEMM kernel gives the bits of the SIMD kernel this CPU picks by default.
#[test]
fn the_portable_gemm_kernel_gives_the_same_bits() {
    if in_child() {
        let want: u64 = std::env::var("MIXPREC_TEST_FINGERPRINT")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(matmul_fingerprint(), want);
        return;
    }
    let default = matmul_fingerprint().to_string();
    assert!(child(
        "the_portable_gemm_kernel_gives_the_same_bits",
        &[
            ("MIXPREC_GEMM_KERNEL", "portable"),
            ("MIXPREC_TEST_FINGERPRINT", &default)
        ]
    ));
}
