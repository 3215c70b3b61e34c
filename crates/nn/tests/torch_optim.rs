//! `Sgd` and `AdamW` replay PyTorch's own runs bit for bit: the reference vectors in
//! `fixtures/torch_optim.json` were made by `scripts/torch_optim_reference.py` with
//! `torch.optim.SGD` / `torch.optim.AdamW` on the CPU (single-tensor path). Every case
//! starts from the same f32 parameters, takes the same gradients and learning rates for
//! five steps, and must end with the same parameter and state bits.
//!
//! AdamW's reference pins `Tensor.sqrt` to the correctly rounded square root (PyTorch's
//! CPU build takes Intel MKL's, within 0.75 ulp; see the script's docstring); against the
//! stock run the parameters are compared within a few ulp, with the count reported.

use mixprec_amp::{MasterWeights, UnscaledGrads};
use mixprec_dtype::F32;
use mixprec_nn::optim::{AdamW, AdamWConfig, Optimizer, Sgd, SgdConfig};
use mixprec_tensor::Tensor;
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/torch_optim.json");

fn f64_of(v: &Value) -> f64 {
    let hex = v.as_str().expect("f64 bits as a hex string");
    f64::from_bits(u64::from_str_radix(hex.trim_start_matches("0x"), 16).expect("hex"))
}

fn bits_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an array of f32 bits")
        .iter()
        .map(|x| x.as_i64().expect("an integer") as u32)
        .collect()
}

fn tensor_of(v: &Value, shape: &[usize]) -> Tensor<F32> {
    let values: Vec<f32> = bits_of(v).into_iter().map(f32::from_bits).collect();
    Tensor::from_f32(&values, shape).unwrap()
}

fn bits(t: &Tensor<F32>) -> Vec<u32> {
    t.to_f32_vec().into_iter().map(f32::to_bits).collect()
}

/// The parameters in the fixture's order, with their shapes.
fn shapes(root: &Value) -> Vec<(String, Vec<usize>)> {
    root["shapes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, s)| {
            let dims = s.as_array().unwrap().iter();
            (
                n.clone(),
                dims.map(|d| d.as_u64().unwrap() as usize).collect(),
            )
        })
        .collect()
}

/// Runs one case with `opt`, returning the master weights after the last step.
fn replay(root: &Value, case: &Value, opt: &mut dyn Optimizer) -> MasterWeights {
    let shapes = shapes(root);
    let mut master = MasterWeights::new();
    for (name, shape) in &shapes {
        master.add(name.clone(), tensor_of(&case["init"][name], shape));
    }
    let lrs: Vec<f64> = root["lrs"].as_array().unwrap().iter().map(f64_of).collect();
    for (step, grads) in case["grads"].as_array().unwrap().iter().enumerate() {
        let pairs = shapes
            .iter()
            .map(|(n, s)| (n.as_str(), tensor_of(&grads[n], s)));
        let grads = UnscaledGrads::from_named(&master, pairs).unwrap();
        opt.step(&mut master, &grads, lrs[step]).unwrap();
    }
    master
}

/// Asserts that `got` has exactly the bits of `want`, naming the first element that
/// differs.
fn same_bits(what: &str, got: &[u32], want: &[u32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(j) = (0..got.len()).find(|&j| got[j] != want[j]) {
        panic!(
            "{what}[{j}]: got {} ({:#010x}), PyTorch {} ({:#010x})",
            f32::from_bits(got[j]),
            got[j],
            f32::from_bits(want[j]),
            want[j]
        );
    }
}

fn cases(kind: &str) -> (Value, Vec<Value>) {
    let root: Value = serde_json::from_str(FIXTURE).unwrap();
    let cases: Vec<Value> = root["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["optimizer"] == kind)
        .cloned()
        .collect();
    assert!(!cases.is_empty(), "the fixture holds {kind} cases");
    (root, cases)
}

#[test]
fn sgd_matches_pytorch_bit_for_bit() {
    let (root, cases) = cases("sgd");
    for case in &cases {
        let h = &case["hyper"];
        let cfg = SgdConfig {
            momentum: f64_of(&h["momentum"]),
            dampening: f64_of(&h["dampening"]),
            weight_decay: f64_of(&h["weight_decay"]),
            nesterov: h["nesterov"].as_bool().unwrap(),
            maximize: h["maximize"].as_bool().unwrap(),
        };
        let mut opt = Sgd::new(cfg).unwrap();
        let master = replay(&root, case, &mut opt);
        for (name, p) in master.iter() {
            let what = format!("{cfg:?} {name}");
            same_bits(&what, &bits(p), &bits_of(&case["final"][name]));
            let state = &case["state"][name]["momentum_buffer"];
            match opt.momentum_buffer_of(&master, name).unwrap() {
                Some(buf) => same_bits(&format!("{what} buffer"), &bits(buf), &bits_of(state)),
                None => assert!(state.is_null(), "{what}: PyTorch keeps a buffer"),
            }
        }
    }
}

#[test]
fn adamw_matches_pytorch_bit_for_bit() {
    let (root, cases) = cases("adamw");
    let (mut differing, mut total, mut worst_ulps) = (0, 0, 0);
    for case in &cases {
        let h = &case["hyper"];
        let cfg = AdamWConfig {
            beta1: f64_of(&h["beta1"]),
            beta2: f64_of(&h["beta2"]),
            eps: f64_of(&h["eps"]),
            weight_decay: f64_of(&h["weight_decay"]),
            amsgrad: h["amsgrad"].as_bool().unwrap(),
            maximize: h["maximize"].as_bool().unwrap(),
        };
        let mut opt = AdamW::new(cfg).unwrap();
        let master = replay(&root, case, &mut opt);
        for (name, p) in master.iter() {
            let what = format!("{cfg:?} {name}");
            let got = bits(p);
            same_bits(&what, &got, &bits_of(&case["final"][name]));
            let want = &case["state"][name];
            let s = opt
                .state_of(&master, name)
                .unwrap()
                .expect("state after steps");
            assert_eq!(s.step as f64, want["step"].as_f64().unwrap(), "{what} step");
            same_bits(
                &format!("{what} exp_avg"),
                &bits(&s.exp_avg),
                &bits_of(&want["exp_avg"]),
            );
            let sq = bits(&s.exp_avg_sq);
            same_bits(
                &format!("{what} exp_avg_sq"),
                &sq,
                &bits_of(&want["exp_avg_sq"]),
            );
            match &s.max_exp_avg_sq {
                Some(t) => same_bits(
                    &format!("{what} max_exp_avg_sq"),
                    &bits(t),
                    &bits_of(&want["max_exp_avg_sq"]),
                ),
                None => assert!(want["max_exp_avg_sq"].is_null(), "{what}: AMSGrad state"),
            }
            // Against PyTorch as shipped (MKL's square root): the same values within a few
            // ulp (same-sign values; their bit patterns' distance is the ulp count).
            for (a, b) in got.iter().zip(bits_of(&case["final_stock_sqrt"][name])) {
                total += 1;
                if *a != b {
                    differing += 1;
                    assert_eq!(a >> 31, b >> 31, "{what}: sign");
                    worst_ulps = worst_ulps.max(a.abs_diff(b));
                }
            }
        }
    }
    eprintln!(
        "AdamW vs stock PyTorch (MKL sqrt): {differing} of {total} parameters differ, \
         at most {worst_ulps} ulp"
    );
    // Five steps, each a one-ulp square root difference amplified through the division:
    // a loose bound that still catches a wrong update.
    assert!(worst_ulps <= 64, "{worst_ulps} ulp from stock PyTorch");
}
