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
    assert table["kernels_per_step"] == 2  # five device events over two steps
    assert table["top_kernels"][0] == {"kernel": "sm90_xmma_gemm_bf16bf16_bf16f32", "kind": "matmul", "ms": 3.0,
                                       "calls": 1}


def test_an_unknown_kernel_is_other_not_dropped():
    assert step_gaps.kernel_kind("some_new_kernel") == "other"
    assert step_gaps.kernel_breakdown([_event("some_new_kernel", 0, 10)], steps=1)["by_kind_ms"] == {"other": 0.01}


def _trace(*events):
    return {"traceEvents": [{"ph": "X", **e} for e in events]}


def test_an_idle_gap_is_charged_to_the_host_frames_that_launched_the_next_kernel():
    trace = _trace(
        {"cat": "kernel", "name": "gemm", "ts": 0, "dur": 100, "args": {"correlation": 1}},
        {"cat": "kernel", "name": "_down_kernel", "ts": 400, "dur": 50, "args": {"correlation": 2}},
        {"cat": "kernel", "name": "gemm", "ts": 460, "dur": 50, "args": {"correlation": 3}},
        {"cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 5, "dur": 5, "args": {"correlation": 1}},
        {"cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 390, "dur": 5, "args": {"correlation": 2}},
        {"cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 20, "dur": 5, "args": {"correlation": 3}},
        {"cat": "python_function", "name": "lightning_review/model/fused_lora.py(80): forward", "ts": 150,
         "dur": 300},
        {"cat": "python_function", "name": "torch/nn/functional.py(10): linear", "ts": 380, "dur": 20},
        {"cat": "cpu_op", "name": "aten::randint", "ts": 385, "dur": 10},
    )
    gaps = step_gaps.idle_gaps(trace, steps=1)
    # 100 -> 400 waited on the host; 450 -> 460 (10 us) waited on nothing the host did: kernel 3 was queued at 20
    assert gaps["idle_ms_per_step"] == 0.31
    first, second = gaps["places"]
    assert first == {"ms_per_step": 0.3, "gaps": 1, "host": "lightning_review/model/fused_lora.py(80): forward",
                     "op": "aten::randint"}
    assert second["host"] == "queued" and second["ms_per_step"] == 0.01


def test_gaps_shorter_than_the_threshold_are_not_counted():
    trace = _trace({"cat": "kernel", "name": "a", "ts": 0, "dur": 10, "args": {"correlation": 1}},
                   {"cat": "kernel", "name": "b", "ts": 13, "dur": 10, "args": {"correlation": 2}})
    assert step_gaps.idle_gaps(trace, steps=1, min_us=5.0) == {"idle_ms_per_step": 0.0, "min_gap_us": 5.0,
                                                                "places": []}


def test_queue_lead_finds_where_the_device_caught_up_with_the_host():
    points = [("forward", 0.0, 5.0), ("forward", 1.0, 15.0), ("forward", 2.0, 25.0),  # host far ahead
              ("recompute", 30.0, 30.2), ("recompute", 40.0, 40.1), ("recompute", 50.0, 50.3)]  # device waits
    lead = step_gaps.queue_lead(points)
    assert lead["forward"] == {"marks": 3, "least_lead_ms": 5.0, "median_lead_ms": 14.0, "marks_under_1ms": 0,
                               "host_ms": 2.0, "device_ms": 20.0}
    assert lead["recompute"]["marks_under_1ms"] == 3 and lead["recompute"]["least_lead_ms"] == 0.1
    assert lead["recompute"]["host_ms"] == 20.0


def test_a_triton_kernel_launched_through_the_driver_is_charged_to_its_host_frames():
    trace = _trace(
        {"cat": "kernel", "name": "gemm", "ts": 0, "dur": 100, "args": {"correlation": 1}},
        {"cat": "kernel", "name": "_a_grad_kernel", "ts": 300, "dur": 50, "args": {"correlation": 2}},
        {"cat": "cuda_driver", "name": "cuLaunchKernelEx", "ts": 290, "dur": 5, "args": {"correlation": 2}},
        {"cat": "python_function", "name": "lightning_review/model/lora_kernels.py(300): dropout_lora_a_grad",
         "ts": 200, "dur": 100},
    )
    (place,) = step_gaps.idle_gaps(trace, steps=1)["places"]
    assert place["host"] == "lightning_review/model/lora_kernels.py(300): dropout_lora_a_grad"
