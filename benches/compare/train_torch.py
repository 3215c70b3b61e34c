#!/usr/bin/env python3
"""One training step of the policy comparison's two models in PyTorch (eager, CPU), the way
a PyTorch user writes it: the same models as train_jax.py (digits MLP 64-128-128-10 with
exact GELU; the sorting GPT, width 64, 2 pre-norm blocks, 4 heads, 4x GELU MLP, untied
head), batch 64, AdamW (PyTorch defaults but lr 3e-3, decay 0.01), clipping at 1.0.

Policies: fp32; bf16 = `torch.autocast("cpu", dtype=torch.bfloat16)` around the forward
(GEMMs in BF16, softmax / layer norm / loss in F32 by autocast's lists), F32 parameters.

Used by contention.py (`torch_ms`); run alone it prints ms per step:

    python3 benches/compare/train_torch.py
"""
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH, N_SORT, VOCAB, DIM, HEADS, LAYERS = 64, 6, 11, 64, 4, 2
T = 2 * N_SORT


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.ModuleList([nn.Linear(64, 128), nn.Linear(128, 128), nn.Linear(128, 10)])

    def forward(self, x):
        for i, lin in enumerate(self.l):
            x = lin(x)
            if i + 1 < len(self.l):
                x = F.gelu(x)
        return x


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.qkv, self.proj = nn.Linear(DIM, 3 * DIM), nn.Linear(DIM, DIM)
        self.fc1, self.fc2 = nn.Linear(DIM, 4 * DIM), nn.Linear(4 * DIM, DIM)

    def forward(self, x, mask):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(DIM, dim=-1)
        q, k, v = [z.reshape(b, t, HEADS, DIM // HEADS).transpose(1, 2) for z in (q, k, v)]
        s = (q @ k.transpose(-1, -2)) / (DIM // HEADS) ** 0.5
        p = torch.softmax(s.float().masked_fill(~mask, float("-inf")), dim=-1)
        y = (p.to(v.dtype) @ v).transpose(1, 2).reshape(b, t, DIM)
        x = x + self.proj(y)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, DIM)
        self.pos = nn.Parameter(torch.randn(T, DIM) * 0.02)
        self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.ln_f = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))

    def forward(self, tokens):
        x = self.tok(tokens) + self.pos[: tokens.shape[1]]
        for blk in self.blocks:
            x = blk(x, self.mask)
        return self.head(self.ln_f(x))[:, N_SORT:].reshape(-1, VOCAB)


def batch_for(model):
    rng = np.random.default_rng(0)
    if model == "digits-mlp":
        x = torch.tensor(rng.uniform(0, 1, (BATCH, 64)), dtype=torch.float32)
        return x, torch.tensor(rng.integers(0, 10, BATCH))
    digits = rng.integers(0, 10, (BATCH, N_SORT))
    srt = np.sort(digits, axis=1)
    tokens = np.concatenate([digits, np.full((BATCH, 1), 10), srt[:, :-1]], axis=1)
    return torch.tensor(tokens), torch.tensor(srt.reshape(-1))


def torch_ms(model, policy, steps=40):
    torch.manual_seed(0)
    net = Mlp() if model == "digits-mlp" else Gpt()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01)
    x, y = batch_for(model)
    bf16 = policy == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        return loss

    for _ in range(5):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per training step")
    for m in ["digits-mlp", "sort-gpt"]:
        for p in ["fp32", "bf16"]:
            print(f"{m:<11} {p:<6} {torch_ms(m, p):8.3f}")
