#!/usr/bin/env python3
"""Training steps on a quiet machine and with one competing busy process, mixprec side by
side with JAX (jitted steps) and PyTorch (eager; train_torch.py), in one run: how much does a neighbour that keeps one core busy
slow each? (mixprec's pool claims work dynamically, so a helper thread that the scheduler
preempts never holds back work it has not started.)

Modes, interleaved per round: `quiet`, then `busy` (one extra process spinning in a loop
for the whole measurement). Rows: both comparison models under FP32 and BF16 (the same
models as train_jax.py), and optionally the main job (`compare_policies`, wall time).

    python3 -m pip install -r benches/compare/requirements.txt torch
    python3 benches/compare/contention.py [--rounds 2] [--main-job] [--binary PATH]

`--binary` times a prebuilt `train_step` example (a build of another commit, say) instead
of `cargo run`, for side-by-side comparisons of two versions under the same load.
"""
import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_jax  # noqa: E402  (same models and policies)
import train_torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ["fp32", "bf16"]
MODELS = ["digits-mlp", "sort-gpt"]


class Busy:
    """One process that keeps a core busy while the block runs."""

    def __enter__(self):
        self.p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.p.kill()
        self.p.wait()


def ours(binary):
    cmd = [binary] if binary else ["cargo", "run", "--quiet", "--release", "--example", "train_step", "--"]
    out = subprocess.run(cmd + ["--policies", ",".join(POLICIES)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return {(m, p): float(ms) for m, p, ms in re.findall(r"^(\S+)\s+(\S+)\s+([0-9.]+) ms", out, re.M)}


def main_job():
    subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "compare_policies"], cwd=ROOT, check=True)
    t0 = time.perf_counter()
    subprocess.run(["cargo", "run", "--quiet", "--release", "--example", "compare_policies", "--",
                    "--out", "target/contention-compare"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t0


def measure(args):
    row = {"mixprec": ours(args.binary)}
    row["jax"] = {(m, p): train_jax.jax_ms(m, p) for m in MODELS for p in POLICIES}
    row["torch"] = {(m, p): train_torch.torch_ms(m, p) for m in MODELS for p in POLICIES}
    if args.main_job:
        row["main"] = main_job()
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--main-job", action="store_true")
    ap.add_argument("--binary", default=None)
    args = ap.parse_args()
    if not args.binary:
        subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "train_step"], cwd=ROOT, check=True)
    runs = {"quiet": [], "busy": []}
    for _ in range(args.rounds):
        runs["quiet"].append(measure(args))
        with Busy():
            runs["busy"].append(measure(args))
    med = lambda mode, tool, key: statistics.median(r[tool][key] for r in runs[mode])
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"{cpu}; jax {train_jax.jax.__version__}; torch {train_torch.torch.__version__}; "
          f"ms per training step, medians of {args.rounds} interleaved rounds")
    tools = ["mixprec", "jax", "torch"]
    print(f"{'model':<11} {'policy':<6} " + " ".join(f"{t + ' quiet':>13} {'busy':>8} {'slowdown':>8}" for t in tools))
    for m in MODELS:
        for p in POLICIES:
            k = (m, p)
            cells = []
            for t in tools:
                a, b = med("quiet", t, k), med("busy", t, k)
                cells.append(f"{a:13.3f} {b:8.3f} {b / a:7.2f}x")
            print(f"{m:<11} {p:<6} " + " ".join(cells))
    if args.main_job:
        a = statistics.median(r["main"] for r in runs["quiet"])
        b = statistics.median(r["main"] for r in runs["busy"])
        print(f"main job (compare_policies) wall time: quiet {a:.1f} s, busy {b:.1f} s ({b / a:.2f}x)")


if __name__ == "__main__":
    main()
