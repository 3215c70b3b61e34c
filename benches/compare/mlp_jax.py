#!/usr/bin/env python3
"""Side by side: one forward + backward of an MLP (64-256-256-10, batch 256,
cross-entropy) in mixprec (tape autograd) and in JAX on CPU (jit of value_and_grad),
in F32 and in BF16 mixed precision (F32 parameters cast to BF16 inside the step, loss
in F32), same run, interleaved rounds, medians.

    python3 -m pip install -r benches/compare/requirements.txt   # includes jax[cpu]
    python3 benches/compare/mlp_jax.py
"""
import re
import statistics
import subprocess
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SIZES = [64, 256, 256, 10]
BATCH = 256


def make_step(dtype):
    def loss_fn(params, x, labels):
        h = x.astype(dtype)
        for i, (w, b) in enumerate(params):
            h = h @ w.astype(dtype) + b.astype(dtype)
            if i + 1 < len(params):
                h = jax.nn.relu(h)
        logits = h.astype(jnp.float32)
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))
    return jax.jit(jax.value_and_grad(loss_fn))


def jax_ms(dtype):
    rng = np.random.default_rng(0)
    params = [(jnp.asarray(rng.standard_normal((a, b), dtype=np.float32) * np.sqrt(2.0 / a)), jnp.zeros((b,), jnp.float32))
              for a, b in zip(SIZES[:-1], SIZES[1:])]
    x = jnp.asarray(rng.standard_normal((BATCH, SIZES[0]), dtype=np.float32))
    labels = jnp.asarray(np.arange(BATCH) * 7 % 10)
    step = make_step(dtype)
    for _ in range(5):
        jax.block_until_ready(step(params, x, labels))
    times = []
    for _ in range(31):
        t = time.perf_counter()
        jax.block_until_ready(step(params, x, labels))
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def ours_ms():
    out = subprocess.run(["cargo", "run", "--quiet", "--release", "--example", "mlp_step"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    m = re.search(r"f32 ([0-9.]+) ms/step, bf16 ([0-9.]+) ms/step", out)
    return float(m.group(1)), float(m.group(2))


def main():
    rounds = 3
    rows = []
    for _ in range(rounds):
        f32, bf16 = ours_ms()
        rows.append((f32, bf16, jax_ms(jnp.float32), jax_ms(jnp.bfloat16)))
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; ms per forward+backward step, medians of {rounds} interleaved rounds")
    for i, name in enumerate(["f32", "bf16"]):
        ours = statistics.median(r[i] for r in rows)
        theirs = statistics.median(r[i + 2] for r in rows)
        ratio = statistics.median(r[i + 2] / r[i] for r in rows)
        print(f"{name:<5} mixprec {ours:7.3f} ms   jax {theirs:7.3f} ms   mixprec speed vs jax {ratio:.2f}x")


if __name__ == "__main__":
    main()
