"""The dense bf16 matmul peak of this GPU, the denominator of MFU (lightning_review.training.telemetry)."""

from __future__ import annotations

import json
import sys

import torch
from triton.testing import do_bench


def measure(n: int = 8192) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    ms = do_bench(lambda: a @ b, warmup=200, rep=2000)
    return 2 * n**3 / (ms * 1e-3) / 1e12


if __name__ == "__main__":
    result = {"device": torch.cuda.get_device_name(), "bf16_tflops": measure(), "n": 8192}
    print(json.dumps(result))
    if len(sys.argv) > 1:
        open(sys.argv[1], "w").write(json.dumps(result, indent=1))
