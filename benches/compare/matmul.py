#!/usr/bin/env python3
"""Side by side: mixprec matmul (F32, Bf16, F16 storage; f32 accumulation) vs numpy's
OpenBLAS sgemm (float32), same shapes, same run. The machine is shared and noisy, so
the two are interleaved shape by shape for several rounds, and the table shows the
median GFLOP/s of each and the median of the per-round ratios.

    python3 -m pip install -r benches/compare/requirements.txt
    python3 benches/compare/matmul.py [--layout nn|nt|tn] [M K N ...]

`--layout` stores the operands as a training step has them (`nt`: B as `[n, k]`, used
transposed, like `x W^T`; `tn`: A as `[k, m]`, like `x^T g`); numpy gets the same
transposed views.

numpy has no bf16/f16 GEMM worth comparing (float16 matmul runs a slow non-BLAS
loop), so every mixprec row is compared with numpy's float32 sgemm.
"""
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = [(d, d, d) for d in (128, 256, 512, 1024, 2048)] + [
    (2048, 768, 2304), (2048, 768, 768), (2048, 768, 3072), (2048, 3072, 768)]


def numpy_gflops(m, k, n, layout):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((k, m) if layout == "tn" else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if layout == "nt" else (k, n), dtype=np.float32)
    a = a.T if layout == "tn" else a
    b = b.T if layout == "nt" else b
    a @ b
    times = []
    start = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < 1.0 and len(times) < 101):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2.0 * m * k * n / statistics.median(times) / 1e9


def ours_gflops(m, k, n, layout):
    cmd = ["cargo", "run", "--quiet", "--release", "--example", "matmul_throughput", "--",
           "--layout", layout, str(m), str(k), str(n)]
    out = {}
    for line in subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout.splitlines():
        dtype, _, _, _, g = line.split()
        out[dtype] = float(g)
    return out


def main():
    argv = sys.argv[1:]
    layout = "nn"
    if argv[:1] == ["--layout"]:
        layout, argv = argv[1], argv[2:]
    args = [int(a) for a in argv]
    rounds = 3
    shapes = [tuple(args[i:i + 3]) for i in range(0, len(args), 3)] or DEFAULT
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i['internal_api']} {i.get('version')} {i['num_threads']} threads" for i in threadpool_info())
    except ImportError:
        blas = "threadpoolctl not installed"
    print(f"layout {layout}; numpy {np.__version__} ({blas}); GFLOP/s medians of {rounds} interleaved rounds; ratio = median of per-round ratios")
    print(f"{'m':>5} {'k':>5} {'n':>5} {'numpy f32':>10} {'f32':>7} {'ratio':>6} {'bf16':>7} {'ratio':>6} {'f16':>7} {'ratio':>6}")
    for (m, k, n) in shapes:
        base, ours = [], []
        for _ in range(rounds):
            ours.append(ours_gflops(m, k, n, layout))
            base.append(numpy_gflops(m, k, n, layout))
        row = f"{m:>5} {k:>5} {n:>5} {statistics.median(base):>10.1f}"
        for d in ("f32", "bf16", "f16"):
            g = statistics.median(o[d] for o in ours)
            r = statistics.median(o[d] / b for o, b in zip(ours, base))
            row += f" {g:>7.1f} {r:>5.2f}x"
        print(row, flush=True)


if __name__ == "__main__":
    main()
