#!/usr/bin/env python3
"""Side by side: one training step of the policy comparison's two models in mixprec and
in JAX on CPU (jit of the whole step: forward, backward, AdamW on F32 master weights),
under each precision policy, same run, interleaved rounds, medians.

Models (as in `mixprec_nn::compare`): the digits MLP 64-128-128-10 with exact GELU,
batch 64; the sorting GPT (vocab 11, 12 positions, width 64, 2 pre-norm blocks with 4
heads and a 4x GELU MLP, untied head, loss on the 6 sorted positions), batch 64.

Policies in JAX, written the way jmp / flax users do:
- fp32: everything in f32.
- bf16 / fp16: parameters cast to the compute type inside the step, GEMMs and
  activations in it, layer norm, softmax and the loss in f32; fp16 multiplies the loss by
  the scale and unscales the f32 gradients with an inf check (jmp.DynamicLossScale).
- fp8: GEMM operands quantised to float8_e4m3fn with per-tensor scales (fake
  quantisation: XLA on CPU has no FP8 dot), gradients of GEMM outputs to float8_e5m2 by a
  custom VJP, BF16 elsewhere.
- fp16-unscaled / fp8+fp32-edges are not run in JAX (same cost as fp16 / fp8).

    python3 -m pip install -r benches/compare/requirements.txt
    python3 benches/compare/train_jax.py
"""
import re
import statistics
import subprocess
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BATCH = 64
N_SORT = 6
T = 2 * N_SORT
VOCAB = 11
DIM = 64
HEADS = 4
LAYERS = 2
POLICIES = ["fp32", "bf16", "fp16-scaled", "fp8"]


# ---- precision helpers -------------------------------------------------------------
def quant(x, dtype):
    """Per-tensor scaled quantise-dequantise (current scaling, power of two)."""
    fmax = float(jnp.finfo(dtype).max)
    amax = jnp.max(jnp.abs(x)).astype(jnp.float32)
    scale = jnp.where(amax > 0, 2.0 ** jnp.floor(jnp.log2(fmax / amax)), 1.0)
    q = jnp.clip(x.astype(jnp.float32) * scale, -fmax, fmax).astype(dtype)
    return (q.astype(jnp.float32) / scale).astype(jnp.bfloat16)


@jax.custom_vjp
def grad_to_e5m2(y):
    return y


def _fwd(y):
    return y, None


def _bwd(_, g):
    return (quant(g, jnp.float8_e5m2).astype(g.dtype),)


grad_to_e5m2.defvjp(_fwd, _bwd)


def make_policy(name):
    if name == "fp32":
        return jnp.float32, lambda a, b: a @ b
    if name == "bf16":
        return jnp.bfloat16, lambda a, b: a @ b
    if name == "fp16-scaled":
        return jnp.float16, lambda a, b: a @ b
    if name == "fp8":
        def mm(a, b):
            y = quant(a, jnp.float8_e4m3fn) @ quant(b, jnp.float8_e4m3fn)
            return grad_to_e5m2(y)
        return jnp.bfloat16, mm
    raise ValueError(name)


# ---- models ------------------------------------------------------------------------
def init_mlp(rng):
    sizes = [64, 128, 128, 10]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(a)
        params.append((rng.uniform(-bound, bound, (b, a)).astype(np.float32), rng.uniform(-bound, bound, (b,)).astype(np.float32)))
    return jax.tree_util.tree_map(jnp.asarray, params)


def mlp_loss(params, batch, policy):
    dt, mm = make_policy(policy)
    x, labels = batch
    h = x.astype(dt)
    for i, (w, b) in enumerate(params):
        h = mm(h, w.astype(dt).T) + b.astype(dt)
        if i + 1 < len(params):
            h = jax.nn.gelu(h, approximate=False)
    logp = jax.nn.log_softmax(h.astype(jnp.float32), axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def init_gpt(rng):
    def lin(i, o, bias=True):
        bound = 1 / np.sqrt(i)
        w = rng.uniform(-bound, bound, (o, i)).astype(np.float32)
        return (w, rng.uniform(-bound, bound, (o,)).astype(np.float32)) if bias else (w,)

    blocks = []
    for _ in range(LAYERS):
        blocks.append({
            "ln1": (np.ones(DIM, np.float32), np.zeros(DIM, np.float32)),
            "qkv": lin(DIM, 3 * DIM), "proj": lin(DIM, DIM),
            "ln2": (np.ones(DIM, np.float32), np.zeros(DIM, np.float32)),
            "fc1": lin(DIM, 4 * DIM), "fc2": lin(4 * DIM, DIM),
        })
    params = {
        "tok": (rng.standard_normal((VOCAB, DIM)) * 0.02).astype(np.float32),
        "pos": (rng.standard_normal((T, DIM)) * 0.02).astype(np.float32),
        "blocks": blocks,
        "ln_f": (np.ones(DIM, np.float32), np.zeros(DIM, np.float32)),
        "head": lin(DIM, VOCAB, bias=False),
    }
    return jax.tree_util.tree_map(jnp.asarray, params)


def layer_norm(x, p):
    x = x.astype(jnp.float32)
    mu = jnp.mean(x, -1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, -1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + 1e-5) * p[0] + p[1]


def gpt_loss(params, batch, policy):
    dt, mm = make_policy(policy)
    tokens, targets = batch
    b, t = tokens.shape

    def linear(x, p):
        y = mm(x.astype(dt), p[0].astype(dt).T)
        return y + p[1].astype(dt) if len(p) > 1 else y

    x = params["tok"][tokens] + params["pos"][None, :t]
    mask = jnp.tril(jnp.ones((t, t), bool))
    hd = DIM // HEADS
    for blk in params["blocks"]:
        qkv = linear(layer_norm(x, blk["ln1"]), blk["qkv"])
        q, k, v = [qkv[..., i * DIM:(i + 1) * DIM].reshape(b, t, HEADS, hd).transpose(0, 2, 1, 3) for i in range(3)]
        act = jnp.bfloat16 if policy == "fp8" else dt
        s = (q.astype(act) @ k.astype(act).transpose(0, 1, 3, 2)).astype(jnp.float32) / np.sqrt(hd)
        p = jax.nn.softmax(jnp.where(mask, s, -jnp.inf), axis=-1)
        y = (p.astype(act) @ v.astype(act)).transpose(0, 2, 1, 3).reshape(b, t, DIM)
        x = x + linear(y, blk["proj"]).astype(jnp.float32)
        h = jax.nn.gelu(linear(layer_norm(x, blk["ln2"]), blk["fc1"]), approximate=False)
        x = x + linear(h, blk["fc2"]).astype(jnp.float32)
    logits = linear(layer_norm(x, params["ln_f"]), params["head"]).astype(jnp.float32)
    logits = logits[:, N_SORT:].reshape(-1, VOCAB)
    logp = jax.nn.log_softmax(logits, -1)
    return -jnp.mean(jnp.take_along_axis(logp, targets[:, None], axis=1))


# ---- the training step -------------------------------------------------------------
def make_step(loss_fn, policy):
    b1, b2, eps, wd, lr = 0.9, 0.999, 1e-8, 0.01, 3e-3
    scaled = policy == "fp16-scaled"

    @jax.jit
    def step(params, m, v, t, scale, batch):
        def scaled_loss(p):
            loss = loss_fn(p, batch, policy)
            return (loss * scale if scaled else loss), loss

        grads, loss = jax.grad(scaled_loss, has_aux=True)(params)
        if scaled:
            grads = jax.tree_util.tree_map(lambda g: g.astype(jnp.float32) / scale, grads)
        leaves = jax.tree_util.tree_leaves(grads)
        finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(g)) for g in leaves]))
        norm = jnp.sqrt(sum(jnp.sum(g.astype(jnp.float32) ** 2) for g in leaves))
        coef = jnp.minimum(1.0, 1.0 / (norm + 1e-6))
        grads = jax.tree_util.tree_map(lambda g: g * coef, grads)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t

        def upd(p, m, v):
            new = p * (1 - lr * wd) - lr / bc1 * m / (jnp.sqrt(v) / jnp.sqrt(bc2) + eps)
            return jnp.where(finite, new, p)

        params = jax.tree_util.tree_map(upd, params, m, v)
        scale = jnp.where(finite, scale, scale * 0.5)
        return params, m, v, t, scale, loss

    return step


def jax_ms(model, policy, steps=40):
    rng = np.random.default_rng(0)
    if model == "digits-mlp":
        params = init_mlp(rng)
        batch = (jnp.asarray(rng.uniform(0, 1, (BATCH, 64)).astype(np.float32)), jnp.asarray(rng.integers(0, 10, BATCH)))
        loss_fn = mlp_loss
    else:
        params = init_gpt(rng)
        digits = rng.integers(0, 10, (BATCH, N_SORT))
        srt = np.sort(digits, axis=1)
        tokens = np.concatenate([digits, np.full((BATCH, 1), 10), srt[:, :-1]], axis=1)
        batch = (jnp.asarray(tokens), jnp.asarray(srt.reshape(-1)))
        loss_fn = gpt_loss
    step = make_step(loss_fn, policy)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = (params, zeros, zeros, jnp.float32(0), jnp.float32(65536.0))
    for _ in range(5):
        out = step(*state, batch)
        state = out[:5]
    jax.block_until_ready(state)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = step(*state, batch)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) * 1e3)
        state = out[:5]
    return statistics.median(times)


def ours():
    out = subprocess.run(
        ["cargo", "run", "--quiet", "--release", "--example", "train_step", "--", "--policies", ",".join(POLICIES)],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return {(m, p): float(ms) for m, p, ms in re.findall(r"^(\S+)\s+(\S+)\s+([0-9.]+) ms", out, re.M)}


def main():
    rounds = 3
    rows = []
    for _ in range(rounds):
        mine = ours()
        theirs = {(m, p): jax_ms(m, p) for m in ["digits-mlp", "sort-gpt"] for p in POLICIES}
        rows.append((mine, theirs))
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; ms per training step, medians of {rounds} interleaved rounds")
    print(f"{'model':<11} {'policy':<12} {'mixprec':>9} {'jax':>9} {'mixprec speed vs jax':>21}")
    for m in ["digits-mlp", "sort-gpt"]:
        for p in POLICIES:
            a = statistics.median(r[0][(m, p)] for r in rows)
            b = statistics.median(r[1][(m, p)] for r in rows)
            ratio = statistics.median(r[1][(m, p)] / r[0][(m, p)] for r in rows)
            print(f"{m:<11} {p:<12} {a:9.3f} {b:9.3f} {ratio:20.2f}x")


if __name__ == "__main__":
    main()
