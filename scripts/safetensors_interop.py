#!/usr/bin/env python3
"""safetensors interop between mixprec and Python.

  make OUT    Writes OUT with Python's safetensors (through PyTorch, which knows every
              precision type): for each of F64, F32, BF16, F16, F8_E4M3, F8_E5M2 a tensor
              `x_<dtype>` of hard values (signed zeros, subnormals, the largest finite
              value, ties, infinities, NaN where the format has them) and its values
              decoded by PyTorch as `x_<dtype>_as_f64`. The committed fixture
              crates/nn/tests/fixtures/python_written.safetensors was made this way;
              crates/nn/tests/checkpoint_interop.rs loads it.
  check FILE  Reads FILE (written by mixprec: same naming) with Python's safetensors,
              numpy and ml_dtypes only (no PyTorch), decodes every `x_<dtype>` with
              ml_dtypes and checks it equals `x_<dtype>_as_f64` bit for bit (NaN equals
              NaN) and that the metadata came through. CI runs this through the Rust test.
"""
import struct
import sys

import numpy as np


def make(out):
    import torch
    from safetensors.torch import save_file

    dtypes = {
        "f64": torch.float64,
        "f32": torch.float32,
        "bf16": torch.bfloat16,
        "f16": torch.float16,
        "e4m3": torch.float8_e4m3fn,
        "e5m2": torch.float8_e5m2,
    }
    tensors = {}
    for name, dt in dtypes.items():
        fi = torch.finfo(dt)
        base = [0.0, -0.0, 1.0, -1.5, 1.0 / 3.0, fi.tiny, -fi.tiny, fi.tiny / 4, fi.max, -fi.max]
        if dt not in (torch.float8_e4m3fn,):
            base += [float("inf"), float("-inf"), float("nan")]
        x = torch.tensor(base, dtype=torch.float64).to(dt)
        if dt == torch.float8_e4m3fn:  # NaN by its bit pattern (no infinity in E4M3)
            x = torch.cat([x, torch.tensor([0x7F, 0xFF], dtype=torch.uint8).view(dt)])
        n = x.numel()
        x = x.reshape(1, n) if n % 2 else x.reshape(2, n // 2)
        tensors[f"x_{name}"] = x
        tensors[f"x_{name}_as_f64"] = x.to(torch.float64).clone()
    save_file(tensors, out, metadata={"written_by": "python safetensors", "torch": torch.__version__})


def check(path):
    import ml_dtypes
    from safetensors import deserialize, safe_open

    np_dtypes = {
        "F64": np.float64,
        "F32": np.float32,
        "BF16": ml_dtypes.bfloat16,
        "F16": np.float16,
        "F8_E4M3": ml_dtypes.float8_e4m3fn,
        "F8_E5M2": ml_dtypes.float8_e5m2,
    }
    with open(path, "rb") as f:
        entries = {name: t for name, t in deserialize(f.read())}
    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata() or {}
    if metadata.get("written_by") != "mixprec":
        sys.exit(f"{path}: metadata did not come through: {metadata}")
    checked = 0
    for name, t in sorted(entries.items()):
        if name.endswith("_as_f64"):
            continue
        values = np.frombuffer(bytes(t["data"]), dtype=np_dtypes[t["dtype"]]).reshape(t["shape"])
        ref = entries.get(name + "_as_f64")
        if ref is None:
            sys.exit(f"{path}: {name} has no {name}_as_f64")
        want = np.frombuffer(bytes(ref["data"]), dtype=np.float64).reshape(ref["shape"])
        got = values.astype(np.float64)
        same = (got.view(np.uint64) == want.view(np.uint64)) | (np.isnan(got) & np.isnan(want))
        if not same.all():
            bad = np.argwhere(~same)[0]
            sys.exit(f"{path}: {name}[{tuple(bad)}] decodes to {got[tuple(bad)]!r}, mixprec says {want[tuple(bad)]!r}")
        checked += 1
    if checked == 0:
        sys.exit(f"{path}: no x_<dtype> tensors")
    print(f"python safetensors + ml_dtypes read {checked} tensors of {path} with the same values")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "check"):
        sys.exit(__doc__)
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
