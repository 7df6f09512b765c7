"""step_gaps.py's kernel breakdown: device time per step by kind, from profiler events."""

from types import SimpleNamespace

import torch

import step_gaps


def _event(name: str, start: int, end: int, device: bool = True):
    kind = torch.autograd.DeviceType.CUDA if device else torch.autograd.DeviceType.CPU
    span = SimpleNamespace(start=start, end=end, elapsed_us=lambda: end - start)
    return SimpleNamespace(name=name, device_type=kind, time_range=span)


def test_kernels_are_summed_by_kind_and_divided_by_steps():
    events = [_event("sm90_xmma_gemm_bf16bf16_bf16f32", 0, 4000), _event("sm90_xmma_gemm_bf16bf16_bf16f32", 0, 2000),
              _event("_a_grad_kernel", 0, 1000), _event("flash_bwd_kernel", 0, 3000),
              _event("kDequantizeBlockwise", 0, 500), _event("aten::mm", 0, 99000, device=False)]
    table = step_gaps.kernel_breakdown(events, steps=2)
    assert table["by_kind_ms"] == {"matmul": 3.0, "attention": 1.5, "dropout kernels (ours)": 0.5,
                                   "4-bit dequantize": 0.25}
    assert table["top_kernels"][0] == {"kernel": "sm90_xmma_gemm_bf16bf16_bf16f32", "kind": "matmul", "ms": 3.0,
                                       "calls": 1}


def test_an_unknown_kernel_is_other_not_dropped():
    assert step_gaps.kernel_kind("some_new_kernel") == "other"
    assert step_gaps.kernel_breakdown([_event("some_new_kernel", 0, 10)], steps=1)["by_kind_ms"] == {"other": 0.01}
