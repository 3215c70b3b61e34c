#!/usr/bin/env python3
"""Side by side: mixprec matmul (F32, Bf16, F16 storage; f32 accumulation) vs numpy's
OpenBLAS sgemm (float32), same shapes, same run, medians of several runs.

    python3 -m pip install -r benches/compare/requirements.txt
    python3 benches/compare/matmul.py [M K N ...]

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


def numpy_gflops(m, k, n):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    a @ b
    times = []
    start = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < 1.0 and len(times) < 101):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2.0 * m * k * n / statistics.median(times) / 1e9


def main():
    args = [int(a) for a in sys.argv[1:]]
    shapes = [tuple(args[i:i + 3]) for i in range(0, len(args), 3)] or DEFAULT
    flat = [str(v) for s in shapes for v in s]
    cmd = ["cargo", "run", "--quiet", "--release", "--example", "matmul_throughput", "--"] + flat
    ours = {}
    for line in subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout.splitlines():
        dtype, m, k, n, g = line.split()
        ours[(dtype, int(m), int(k), int(n))] = float(g)
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i['internal_api']} {i.get('version')} {i['num_threads']} threads" for i in threadpool_info())
    except ImportError:
        blas = "threadpoolctl not installed"
    print(f"numpy {np.__version__} ({blas}); GFLOP/s, median of runs")
    print(f"{'m':>5} {'k':>5} {'n':>5} {'numpy f32':>10} {'f32':>7} {'ratio':>6} {'bf16':>7} {'ratio':>6} {'f16':>7} {'ratio':>6}")
    for (m, k, n) in shapes:
        base = numpy_gflops(m, k, n)
        row = f"{m:>5} {k:>5} {n:>5} {base:>10.1f}"
        for d in ("f32", "bf16", "f16"):
            g = ours[(d, m, k, n)]
            row += f" {g:>7.1f} {g / base:>5.2f}x"
        print(row)


if __name__ == "__main__":
    main()
