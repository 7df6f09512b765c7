"""benchmarks/lora_parts.py: every piece runs on the shapes it is given, and each floor counts the bytes it says."""

import torch

import lora_parts


def test_every_piece_runs_on_ragged_shapes():
    times = lora_parts.time_pieces(tokens=24, n_in=40, n_out=56, rank=8, p=0.1, device="cpu", kernels=False)
    assert set(times) >= {"base", "down_nodrop", "down_dropout", "add_lora", "base_grad", "grad_down", "grad_b",
                          "grad_a_nodrop", "input_grad_nodrop", "base_grad_and_down"}
    assert all(ms >= 0 for ms in times.values())


def test_floors_are_bytes_over_bandwidth_and_flops_over_peak():
    floors = lora_parts.piece_floors(tokens=1000, n_in=10, n_out=30, rank=2, bandwidth=1e3, peak=1e6)
    # add_lora reads and writes the output (2 x 1000 x 30 x 2 bytes), reads down (1000 x 2 x 2) and B (30 x 2 x 2)
    assert floors["add_lora"] == 1e3 * (2 * 60000 + 4000 + 120) / 1e3
    assert floors["base"] == 1e3 * 2 * 1000 * 10 * 30 / 1e6
    assert floors["base_grad_and_down"] == floors["base_grad"] * 12 / 10


def test_projection_shapes_follow_the_model():
    shapes = lora_parts.projection_shapes("13b")
    assert shapes["gate_proj"] == (5120, 13824) and shapes["down_proj"] == (13824, 5120)
    assert len(shapes) == 7


def test_the_beta_one_pieces_run_and_have_floors():
    times = lora_parts.time_pieces(tokens=24, n_in=40, n_out=56, rank=8, p=0.1, device="cpu", kernels=False)
    assert {"lora_out", "base_beta1", "base_grad_beta1"} <= set(times)
    floors = lora_parts.piece_floors(tokens=1000, n_in=10, n_out=30, rank=2, bandwidth=1e3, peak=1e6)
    assert floors["base_beta1"] == floors["base"] and floors["lora_out"] < floors["add_lora"]


def test_the_sweep_tries_the_library_s_launch_shapes_first():
    from lightning_review.model.lora_kernels import TILES

    candidates = lora_parts.candidate_tiles()
    assert {name: shapes[0] for name, shapes in candidates.items()} == TILES
    assert all(len(set(shapes)) == len(shapes) for shapes in candidates.values())


def test_each_swept_kernel_call_runs_on_its_inputs():
    """The sweep's and the rounds' timings call the kernels through kernel_call: each runs (Triton's interpreter
    here) on kernel_inputs' tensors, with the library's launch shapes and with a candidate's."""
    from lightning_review.model.lora_kernels import Tiles

    inputs = lora_parts.kernel_inputs(tokens=32, widths={64: 2}, rank=16, device="cpu", dtype=torch.float32)
    x, a, grad_down, _, grad_x = inputs[64]
    assert x.shape == grad_x.shape == (32, 64) and a.shape == (16, 64) and grad_down.shape == (32, 16)
    for kernel in ("down", "a_grad", "input_grad", "grads"):
        for tiles in (None, Tiles(rows=16, cols=32, splits=2)):
            out = lora_parts.kernel_call(kernel, inputs[64], 0.1, tiles)()
            assert out.shape == {"down": (32, 16), "a_grad": (16, 64), "input_grad": (32, 64), "grads": (16, 64)}[kernel]
