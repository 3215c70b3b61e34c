#!/usr/bin/env python3
"""Side by side, one run: a training step of the two larger models of issue 17's peer
table in mixprec (`examples/large_step.rs`), JAX (jit) and PyTorch (eager), F32 and BF16
(F32 parameters, BF16 GEMMs), median ms per step, ratios against mixprec.

- mlp: 784-1024-1024-10, ReLU, batch 256, cross-entropy, plain SGD (lr 0.01), no clipping,
  fixed random inputs;
- gpt: the sorting GPT of train_jax.py / train_torch.py at width 512, 8 heads, 6 blocks,
  256 positions, batch 8, AdamW, clipping at 1.0.

    python3 -m pip install -r benches/compare/requirements.txt
    python3 benches/compare/train_large.py [--rounds 2] [--mlp-steps 20] [--gpt-steps 5]

A framework that is not installed is skipped with a message.
"""
import argparse
import importlib
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
SIZES, MLP_BATCH, LR = [784, 1024, 1024, 10], 256, 0.01
GPT = dict(BATCH=8, N_SORT=128, T=256, DIM=512, HEADS=8, LAYERS=6)


def mlp_data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((MLP_BATCH, SIZES[0])).astype(np.float32)
    y = (np.arange(MLP_BATCH) * 7 + 3) % 10
    return x, y


def timed(step, steps, warmup, sync=lambda r: r):
    for _ in range(warmup):
        sync(step())
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        sync(step())
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


# ---- JAX -----------------------------------------------------------------------------
def jax_mlp_ms(policy, steps):
    import jax
    import jax.numpy as jnp

    dt = jnp.bfloat16 if policy == "bf16" else jnp.float32
    rng = np.random.default_rng(0)
    params = [(jnp.asarray(rng.uniform(-1, 1, (o, i)).astype(np.float32) / np.sqrt(i)),
               jnp.zeros((o,), jnp.float32)) for i, o in zip(SIZES, SIZES[1:])]
    x, y = (jnp.asarray(a) for a in mlp_data())

    def loss_fn(params):
        h = x.astype(dt)
        for i, (w, b) in enumerate(params):
            h = h @ w.astype(dt).T + b.astype(dt)
            if i + 1 < len(params):
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h.astype(jnp.float32), axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def step(params):
        loss, g = jax.value_and_grad(loss_fn)(params)
        return jax.tree_util.tree_map(lambda p, g: p - LR * g, params, g), loss

    state = [params]

    def run():
        state[0], loss = step(state[0])
        return loss

    return timed(run, steps, 5, jax.block_until_ready)


def resized(script):
    """The comparison script `script` (train_jax / train_torch) with GPT-large's sizes."""
    module = importlib.import_module(script)
    for k, v in GPT.items():
        setattr(module, k, v)
    return module


def jax_gpt_ms(policy, steps):
    return resized("train_jax").jax_ms("sort-gpt", policy, steps=steps)


# ---- PyTorch -------------------------------------------------------------------------
def torch_mlp_ms(policy, steps):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                        nn.Linear(1024, 10))
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    x, y = (torch.tensor(a) for a in mlp_data())

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=policy == "bf16"):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()
        return loss

    return timed(step, steps, 5)


def torch_gpt_ms(policy, steps):
    return resized("train_torch").torch_ms("sort-gpt", policy, steps=steps)


# ---- mixprec -------------------------------------------------------------------------
def ours(models, steps):
    out = subprocess.run(
        ["cargo", "run", "--quiet", "--release", "--example", "large_step", "--",
         "--models", models, "--steps", str(steps)],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    print(out.splitlines()[0])
    return {(m, p): float(ms) for m, p, ms in re.findall(r"^(\w+)\s+(\w+)\s+([\d.]+) ms", out, re.M)}


def available(module):
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        print(f"{module} is not installed: its columns are skipped")
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--mlp-steps", type=int, default=20)
    ap.add_argument("--gpt-steps", type=int, default=5)
    args = ap.parse_args()
    peers = {name: fns for name, fns in
             [("jax", (jax_mlp_ms, jax_gpt_ms)), ("torch", (torch_mlp_ms, torch_gpt_ms))]
             if available(name)}
    if "torch" in peers:
        import torch
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if "jax" in peers:
        import jax
        print(f"jax {jax.__version__}")
    results = {}
    for r in range(args.rounds):
        for model, steps in [("mlp", args.mlp_steps), ("gpt", args.gpt_steps)]:
            for (m, p), ms in ours(model, steps).items():
                results.setdefault((m, p, "mixprec"), []).append(ms)
            for name, (mlp_fn, gpt_fn) in peers.items():
                for p in ["fp32", "bf16"]:
                    fn = mlp_fn if model == "mlp" else gpt_fn
                    results.setdefault((model, p, name), []).append(fn(p, steps))
        print(f"round {r + 1} done", flush=True)
    print("\nmodel policy  mixprec ms  " + "  ".join(f"{n:>8} ms (ratio)" for n in peers))
    for model in ["mlp", "gpt"]:
        for p in ["fp32", "bf16"]:
            ours_ms = statistics.median(results[(model, p, "mixprec")])
            cells = []
            for n in peers:
                ms = statistics.median(results[(model, p, n)])
                cells.append(f"{ms:11.1f} ({ms / ours_ms:.2f}x)")
            print(f"{model:<5} {p:<6} {ours_ms:10.1f}  " + "  ".join(cells))
    print("ratio: the peer's ms over mixprec's (above 1: mixprec is faster)")


if __name__ == "__main__":
    main()
