#!/usr/bin/env python3
"""Side by side: mixprec's slice conversions vs ml_dtypes' numpy astype (what JAX uses).

Runs `cargo run --release --example convert_throughput` and times ml_dtypes on the same
sizes and the same kind of inputs in the same run, then prints Gelem/s and the ratio.
Medians of several runs; the machines are shared and noisy.

    python3 -m pip install -r benches/compare/requirements.txt
    python3 benches/compare/dtype_convert.py [SIZE ...]
"""
import statistics
import subprocess
import sys
import time
from pathlib import Path

import ml_dtypes
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TYPES = {
    "bf16": ml_dtypes.bfloat16,
    "f16": np.float16,
    "e4m3": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
}


def inputs(n):
    rng = np.random.default_rng(0)
    unit = rng.random(n, dtype=np.float32)
    return ((unit - 0.5) * 8.0 * (1.0 + rng.integers(0, 16, n).astype(np.float32))).astype(np.float32)


def median_gelem(n, fn):
    runs = 21 if n <= 1 << 22 else 5
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n / statistics.median(times) / 1e9


def ml_dtypes_rates(sizes):
    rates = {}
    for n in sizes:
        src = inputs(n)
        for name, ty in TYPES.items():
            # `astype` is what users (and JAX's host-side casts) call; it allocates.
            dst = src.astype(ty)
            rates[("encode", name, n)] = median_gelem(n, lambda: src.astype(ty))
            rates[("decode", name, n)] = median_gelem(n, lambda: dst.astype(np.float32))
    return rates


def mixprec_rates(sizes):
    cmd = ["cargo", "run", "--quiet", "--release", "--example", "convert_throughput", "--"]
    out = subprocess.run(cmd + [str(n) for n in sizes], cwd=ROOT, check=True, capture_output=True, text=True)
    rates = {}
    for line in out.stdout.splitlines():
        direction, name, n, rate = line.split()
        rates[(direction, name, int(n))] = float(rate)
    return rates


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1 << 20, 1 << 26]
    ours = mixprec_rates(sizes)
    theirs = ml_dtypes_rates(sizes)
    print(f"numpy {np.__version__}, ml_dtypes {ml_dtypes.__version__}; Gelem/s, median of runs")
    print(f"{'direction':<8} {'type':<5} {'elements':>10} {'mixprec':>9} {'ml_dtypes':>10} {'ratio':>8}")
    for key in sorted(ours, key=lambda k: (k[2], k[0], k[1])):
        d, name, n = key
        print(f"{d:<8} {name:<5} {n:>10} {ours[key]:>9.2f} {theirs[key]:>10.3f} {ours[key] / theirs[key]:>7.1f}x")


if __name__ == "__main__":
    main()
