//! Layers against independent F64 references written out here (linear, layer norm,
//! causal attention, embedding, convolution), causality, whole-model directional
//! derivatives against central differences, naming, and bad-input errors.

use mixprec_amp::{Bf16Mixed, Fp32, MasterWeights};
use mixprec_dtype::{Bf16, Dtype, F32};
use mixprec_nn::data::SortTask;
use mixprec_nn::layers::{CausalSelfAttention, Conv2d, Dropout, Embedding, LayerNorm, Linear};
use mixprec_nn::models::{DigitsMlp, Gpt, GptConfig, Model};
use mixprec_nn::{Init, Step};
use mixprec_tensor::{Conv2dParams, Indices, Rng, Tensor};

fn vals(t: &Tensor<F32>) -> Vec<f64> {
    t.to_f64_vec()
}

/// F32 results of F32 inputs against F64 references: a few units of F32 epsilon relative
/// to the magnitudes involved (reductions of length <= 64).
fn close(got: &[f64], want: &[f64], scale: f64) {
    assert_eq!(got.len(), want.len());
    let tol = 64.0 * f64::from(f32::EPSILON) * scale;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "element {i}: {g} vs {w} (tol {tol})");
    }
}

#[test]
fn linear_and_layer_norm_match_f64_references() {
    let mut master = MasterWeights::new();
    let mut init = Init::new(&mut master, 3);
    let lin = Linear::<Fp32>::new(&mut init, "fc", 5, 3, true).unwrap();
    let ln = LayerNorm::<Fp32>::new(&mut init, "ln", 3).unwrap();
    let mut rng = Rng::seed(4);
    let x = Tensor::<F32>::randn(&[4, 5], 0.0, 1.0, &mut rng).unwrap();
    let step = Step::new(&master, false, 0);
    let y = lin.forward(&step, &step.input(x.clone())).unwrap();
    let z = ln.forward(&step, &y).unwrap();
    let (w, b) = (vals(master.get(0).unwrap()), vals(master.get(1).unwrap()));
    let xv = vals(&x);
    let mut want = vec![0.0; 12];
    for r in 0..4 {
        for o in 0..3 {
            want[3 * r + o] = b[o] + (0..5).map(|k| xv[5 * r + k] * w[5 * o + k]).sum::<f64>();
        }
    }
    close(&vals(y.value()), &want, 4.0);
    let mut normed = vec![0.0; 12];
    for r in 0..4 {
        let row = &want[3 * r..3 * r + 3];
        let mean = row.iter().sum::<f64>() / 3.0;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0;
        for o in 0..3 {
            normed[3 * r + o] = (row[o] - mean) / (var + 1e-5).sqrt();
        }
    }
    close(&vals(z.value()), &normed, 16.0);
}

/// Causal attention written out in f64: softmax over positions <= t of q.k / sqrt(hd).
#[test]
fn causal_attention_matches_an_f64_reference_and_ignores_the_future() {
    let (b, t, d, h) = (2, 5, 8, 2);
    let hd = d / h;
    let mut master = MasterWeights::new();
    let attn =
        CausalSelfAttention::<Fp32>::new(&mut Init::new(&mut master, 8), "attn", d, h).unwrap();
    let mut rng = Rng::seed(9);
    let x = Tensor::<F32>::randn(&[b, t, d], 0.0, 1.0, &mut rng).unwrap();
    let step = Step::new(&master, false, 0);
    let y = attn.forward(&step, &step.input(x.clone())).unwrap();
    assert_eq!(y.shape(), &[b, t, d]);

    let p: Vec<Vec<f64>> = (0..4).map(|i| vals(master.get(i).unwrap())).collect();
    let (wqkv, bqkv, wo, bo) = (&p[0], &p[1], &p[2], &p[3]);
    let xv = vals(&x);
    let linear = |inp: &[f64], w: &[f64], bias: &[f64], n_in: usize, n_out: usize| -> Vec<f64> {
        (0..n_out)
            .map(|o| bias[o] + (0..n_in).map(|k| inp[k] * w[n_in * o + k]).sum::<f64>())
            .collect()
    };
    let mut want = Vec::new();
    for bi in 0..b {
        let qkv: Vec<Vec<f64>> = (0..t)
            .map(|ti| linear(&xv[(bi * t + ti) * d..][..d], wqkv, bqkv, d, 3 * d))
            .collect();
        let mut out = vec![vec![0.0; d]; t];
        for head in 0..h {
            for ti in 0..t {
                let q = &qkv[ti][head * hd..][..hd];
                let scores: Vec<f64> = (0..=ti)
                    .map(|s| {
                        let k = &qkv[s][d + head * hd..][..hd];
                        q.iter().zip(k).map(|(a, c)| a * c).sum::<f64>() / (hd as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for (s, es) in e.iter().enumerate() {
                    let v = &qkv[s][2 * d + head * hd..][..hd];
                    for j in 0..hd {
                        out[ti][head * hd + j] += es / z * v[j];
                    }
                }
            }
        }
        for row in out {
            want.extend(linear(&row, wo, bo, d, d));
        }
    }
    close(&vals(y.value()), &want, 8.0);

    // Changing the last position of the input leaves every earlier output bit-identical.
    let mut xs = x.to_f32_vec();
    for v in &mut xs[(t - 1) * d..t * d] {
        *v += 3.0;
    }
    let x2 = Tensor::<F32>::from_f32(&xs, &[b, t, d]).unwrap();
    let y2 = attn.forward(&step, &step.input(x2)).unwrap();
    let (a, c) = (y.value().to_f32_vec(), y2.value().to_f32_vec());
    assert_eq!(
        a[..(t - 1) * d],
        c[..(t - 1) * d],
        "first batch row, positions < t-1"
    );
    assert_ne!(a[(t - 1) * d..t * d], c[(t - 1) * d..t * d]);
}

#[test]
fn embedding_conv_and_dropout() {
    let mut master = MasterWeights::new();
    let mut init = Init::new(&mut master, 5);
    let emb = Embedding::<Bf16Mixed>::new(&mut init, "tok", 7, 4, 1.0).unwrap();
    let conv =
        Conv2d::<Fp32>::new(&mut init, "conv", 2, 3, 3, Conv2dParams::default(), true).unwrap();
    let step = Step::new(&master, true, 11);
    let rows = emb
        .forward(&step, &Indices::from_slice(&[6, 0, 6]))
        .unwrap();
    let table = master.get(0).unwrap().to_f32_vec();
    let want: Vec<f32> = [6, 0, 6]
        .iter()
        .flat_map(|&i| {
            table[4 * i..4 * i + 4]
                .iter()
                .map(|&v| Bf16::from_f32(v).to_f32())
        })
        .collect();
    assert_eq!(
        rows.value().to_f32_vec(),
        want,
        "gathered in F32, rounded once to BF16"
    );
    let e = emb.forward(&step, &Indices::from_slice(&[7])).unwrap_err();
    assert!(
        e.to_string().contains("Embedding") && e.to_string().contains("id 7"),
        "{e}"
    );

    let mut rng = Rng::seed(1);
    let x = Tensor::<F32>::randn(&[1, 2, 5, 5], 0.0, 1.0, &mut rng).unwrap();
    let y = conv.forward(&step, &step.input(x.clone())).unwrap();
    let direct = x
        .conv2d(
            master.get(1).unwrap(),
            master.get(2),
            Conv2dParams::default(),
        )
        .unwrap();
    assert_eq!(y.value().to_f32_vec(), direct.to_f32_vec());
    let e = conv
        .forward(&step, &step.input(Tensor::<F32>::zeros(&[1, 3, 5, 5])))
        .unwrap_err();
    assert!(e.to_string().contains("Conv2d"), "{e}");

    // Dropout: identity in evaluation, inverted scaling in training, seeded.
    let d = Dropout::new(0.5).unwrap();
    let ones = step.input(Tensor::<F32>::ones(&[1000]));
    let a = d.forward(&step, &ones).unwrap().value().to_f32_vec();
    assert!(a.iter().all(|&v| v == 0.0 || v == 2.0));
    let kept = a.iter().filter(|&&v| v == 2.0).count();
    assert!((400..600).contains(&kept), "{kept} of 1000 kept at p = 0.5");
    let eval = Step::new(&master, false, 11);
    let ones = eval.input(Tensor::<F32>::ones(&[10]));
    assert_eq!(
        d.forward(&eval, &ones).unwrap().value().to_f32_vec(),
        vec![1.0; 10]
    );
    assert!(Dropout::new(1.0).is_err());
}

#[test]
fn bad_inputs_name_the_layer() {
    let mut master = MasterWeights::new();
    let mut init = Init::new(&mut master, 1);
    let lin = Linear::<Fp32>::new(&mut init, "fc1", 4, 2, false).unwrap();
    let step_master = master.clone();
    let step = Step::new(&step_master, false, 0);
    let e = lin
        .forward(&step, &step.input(Tensor::<F32>::zeros(&[3, 5])))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Linear: fc1: expected input [.., 4], got [3, 5]"
    );
    let mut init = Init::new(&mut master, 1);
    let Err(e) = CausalSelfAttention::<Fp32>::new(&mut init, "attn", 10, 3) else {
        panic!("3 heads cannot split width 10");
    };
    assert!(
        e.to_string().contains("3 heads do not divide width 10"),
        "{e}"
    );
}

/// Sum over all parameters of gradient times a random direction, against the central
/// difference of the loss along that direction, for a whole model in F32.
fn directional_check<M: Model>(model: &M, master: &MasterWeights, batch: &M::Batch) {
    let mut rng = Rng::seed(77);
    let dirs: Vec<Tensor<F32>> = master
        .iter()
        .map(|(_, p)| Tensor::randn(p.shape(), 0.0, 1.0, &mut rng).unwrap())
        .collect();
    let step = Step::new(master, false, 0);
    let loss = model.loss(&step, batch).unwrap();
    let grads = loss.backward().unwrap();
    let analytic: f64 = step
        .params()
        .iter()
        .zip(&dirs)
        .map(|(p, d)| {
            let g = grads.get(*p).map(|g| g.to_f64_vec()).unwrap_or_default();
            g.iter()
                .zip(d.to_f64_vec())
                .map(|(a, b)| a * b)
                .sum::<f64>()
        })
        .sum();
    let eps = 1e-3;
    let shifted = |sign: f64| -> f64 {
        let mut m = master.clone();
        m.apply_with(
            &mixprec_amp::UnscaledGrads::from_gradients(&grads, &step.params()),
            |i, p, _| Ok(p.add(&dirs[i].mul_scalar(sign * eps))?),
        )
        .unwrap();
        let s = Step::new(&m, false, 0);
        f64::from(model.loss(&s, batch).unwrap().value().to_f32_vec()[0])
    };
    let numeric = (shifted(1.0) - shifted(-1.0)) / (2.0 * eps);
    // F32 loss noise ~1e-7 relative over 2 eps, plus O(eps^2) truncation (measured
    // agreement: 1e-5 relative on the GPT, 4e-4 on the MLP); 1% of the derivative (or
    // 1e-3 absolute) separates a correct backward from a wrong one.
    let tol = 1e-2 * analytic.abs().max(numeric.abs()) + 1e-3;
    assert!(
        (analytic - numeric).abs() <= tol,
        "analytic {analytic} vs numeric {numeric}"
    );
    eprintln!("directional derivative: analytic {analytic}, numeric {numeric}");
}

#[test]
fn whole_models_backward_matches_central_differences() {
    let mut master = MasterWeights::new();
    let task = SortTask { n: 3 };
    let cfg = GptConfig {
        vocab: SortTask::VOCAB,
        context: task.context(),
        dim: 16,
        heads: 2,
        layers: 2,
        dropout: 0.0,
    };
    let gpt = Gpt::<Fp32>::new(&mut Init::new(&mut master, 21), cfg).unwrap();
    let names: Vec<&str> = master.iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"block1.attn.qkv.weight") && names.contains(&"head.weight"));
    assert_eq!(
        names.len(),
        2 * 12 + 2 + 2 + 1,
        "per block 12 tensors; tok, pos, ln_f x2, head"
    );
    directional_check(&gpt, &master, &task.batch(8, 3));

    let mut master = MasterWeights::new();
    let mlp = DigitsMlp::<Fp32>::new(&mut Init::new(&mut master, 22), 16).unwrap();
    let mut rng = Rng::seed(2);
    let x = Tensor::<F32>::rand(&[12, 64], 0.0, 1.0, &mut rng).unwrap();
    let y = Indices::from_slice(&(0..12).map(|i| i % 10).collect::<Vec<_>>());
    directional_check(&mlp, &master, &(x, y));
}
