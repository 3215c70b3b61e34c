#!/usr/bin/env python3
"""Reference runs of torch.optim.SGD and torch.optim.AdamW for crates/nn/tests/torch_optim.rs.

Each case builds named f32 parameters, runs a few steps with given gradients and
learning rates on the CPU (the default single-tensor path, foreach=False), and records
every number as its bits: f32 values as u32, hyperparameters (Python floats) as f64 bits
in hex strings, so nothing is lost to decimal printing.

AdamW takes a square root. PyTorch's CPU build computes float32 sqrt with Intel MKL's
vector math (within 0.75 ulp, not always correctly rounded; about 20% of values differ by
one ulp from the IEEE square root, and the code path MKL picks depends on the CPU). So
each AdamW case is run twice: once as shipped ("stock", for the record) and once with
Tensor.sqrt pinned to the correctly rounded IEEE square root (numpy's), which is the
reference mixprec matches bit for bit; every other operation is PyTorch's own.

Usage: python3 scripts/torch_optim_reference.py > crates/nn/tests/fixtures/torch_optim.json
"""
import json
import struct
import sys

import numpy as np
import torch

STEPS = 5


def f32_bits(t):
    return [int(x) for x in t.detach().contiguous().view(torch.int32).flatten().tolist()]


def f64_hex(x):
    return "0x%016x" % struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def param_values(gen, shape):
    """Values of order 1 with hard ones mixed in: zeros, signed zeros, tiny values."""
    n = int(np.prod(shape))
    v = torch.randn(n, generator=gen)
    v[0] = 0.0
    if n > 3:
        v[1] = -0.0
        v[2] = 1e-30
        v[3] = -3e-39  # subnormal
    return v.reshape(shape)


def grad_values(gen, shape, step):
    n = int(np.prod(shape))
    g = torch.randn(n, generator=gen) * (0.5 ** step)
    g[0] = 0.0
    if n > 4:
        g[4] = 1e-20  # its square underflows in f32
    return g.reshape(shape)


SHAPES = {"w": [5, 7], "b": [19], "s": [1]}
LRS = [0.1, 0.05, 0.0125, 0.3, 1e-3]


def run(case, make_opt, pinned_sqrt):
    gen = torch.Generator().manual_seed(case["seed"])
    params = {n: param_values(gen, s).clone().requires_grad_(True) for n, s in SHAPES.items()}
    init = {n: f32_bits(p) for n, p in params.items()}
    opt = make_opt(list(params.values()))
    grads_by_step = []
    stock_sqrt = torch.Tensor.sqrt
    if pinned_sqrt:
        torch.Tensor.sqrt = lambda self: torch.from_numpy(np.sqrt(self.detach().numpy()))
    try:
        for step in range(STEPS):
            grads = {n: grad_values(gen, s, step) for n, s in SHAPES.items()}
            for n, p in params.items():
                p.grad = grads[n].clone()
            for g in opt.param_groups:
                g["lr"] = LRS[step]
            opt.step()
            grads_by_step.append({n: f32_bits(g) for n, g in grads.items()})
    finally:
        torch.Tensor.sqrt = stock_sqrt
    state = {}
    for n, p in params.items():
        st = opt.state[p]
        state[n] = {k: (f32_bits(v) if v.dim() > 0 else float(v.item())) for k, v in st.items()}
    return init, grads_by_step, {n: f32_bits(p) for n, p in params.items()}, state


def main():
    cases = []
    sgd = [
        dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
        dict(momentum=0.9, dampening=0.1, weight_decay=0.05, nesterov=False, maximize=False),
        dict(momentum=0.9, dampening=0.0, weight_decay=1e-4, nesterov=True, maximize=False),
        dict(momentum=0.7, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=True),
        dict(momentum=0.0, dampening=0.0, weight_decay=0.3, nesterov=False, maximize=False),
    ]
    for i, h in enumerate(sgd):
        case = {"optimizer": "sgd", "seed": 100 + i, "hyper": {k: (f64_hex(v) if isinstance(v, float) else v) for k, v in h.items()}}
        init, grads, final, state = run(case, lambda ps: torch.optim.SGD(ps, lr=LRS[0], foreach=False, **h), False)
        case.update(init=init, grads=grads, final=final, state=state)
        cases.append(case)
    adamw = [
        dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False, maximize=False),
        dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=True, maximize=False),
        dict(betas=(0.3, 0.95), eps=1e-6, weight_decay=0.1, amsgrad=False, maximize=False),
        dict(betas=(0.8, 0.99), eps=1e-8, weight_decay=0.0, amsgrad=True, maximize=True),
    ]
    for i, h in enumerate(adamw):
        hyper = dict(beta1=h["betas"][0], beta2=h["betas"][1], eps=h["eps"], weight_decay=h["weight_decay"])
        case = {"optimizer": "adamw", "seed": 200 + i,
                "hyper": {**{k: f64_hex(v) for k, v in hyper.items()}, "amsgrad": h["amsgrad"], "maximize": h["maximize"]}}
        make = lambda ps: torch.optim.AdamW(ps, lr=LRS[0], foreach=False, **h)
        init, grads, final, state = run(case, make, True)
        _, _, stock, _ = run(case, make, False)
        case.update(init=init, grads=grads, final=final, state=state, final_stock_sqrt=stock)
        cases.append(case)
    out = {
        "made_by": "scripts/torch_optim_reference.py",
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "shapes": SHAPES,
        "lrs": [f64_hex(x) for x in LRS],
        "cases": cases,
    }
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
