"""Activation offload: the same loss and gradients as transformers' checkpointing, LoRA dropout included."""

import pytest
import torch

from lightning_review.data.packing import collate_rows
from tests.model.test_loss import with_prompt
from tests.model.test_module import make_module


def loss_and_grads(tiny_llama_dir, batch, **kw):
    torch.manual_seed(0)
    module = make_module(tiny_llama_dir, quantize=False, lora_dropout=0.3, gradient_checkpointing=True, **kw)
    with torch.no_grad():
        for name, param in module.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02, generator=torch.Generator().manual_seed(len(name)))
    module.train()
    torch.manual_seed(1)  # the same dropout masks in both runs, if the replay restores the RNG
    loss = module(batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in module.model.named_parameters() if p.requires_grad}


def test_offloaded_checkpointing_matches_transformers_checkpointing(tiny_llama_dir):
    batch = collate_rows([[with_prompt(60, 45, 1), with_prompt(40, 30, 2)], [with_prompt(90, 70, 3)]], pad_id=0,
                         row_length=128)
    reference, ref_grads = loss_and_grads(tiny_llama_dir, batch)
    loss, grads = loss_and_grads(tiny_llama_dir, batch, activation_offload=True)
    torch.testing.assert_close(loss, reference)
    assert set(grads) == set(ref_grads)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "lora_A" in n)


def test_offload_without_checkpointing_is_refused(tiny_llama_dir):
    with pytest.raises(ValueError, match="needs gradient_checkpointing"):
        make_module(tiny_llama_dir, quantize=False, gradient_checkpointing=False, activation_offload=True)


def test_host_copies_are_power_of_two_pieces_of_exactly_the_tensors_size():
    from lightning_review.model.offload import MIN_CHUNK_ELEMENTS, HostCopy, power_of_two_chunks

    numel = 5 * MIN_CHUNK_ELEMENTS + 12345
    chunks = power_of_two_chunks(numel)
    assert sum(chunks) == numel and chunks == sorted(chunks, reverse=True)
    assert all(c & (c - 1) == 0 for c in chunks[:-1]) and chunks[-1] == 12345
    assert power_of_two_chunks(7) == [7] and power_of_two_chunks(MIN_CHUNK_ELEMENTS) == [MIN_CHUNK_ELEMENTS]
    tensor = torch.randn(1, numel // 64 + 1, 64).to(torch.bfloat16)
    copy = HostCopy(tensor)
    assert len(copy.pieces) > 1
    assert copy.nbytes == tensor.numel() * tensor.element_size()  # nothing rounded up
    torch.testing.assert_close(copy.to(torch.device("cpu")), tensor, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned host memory needs CUDA (the GPU machine runs this)")
def test_pinned_host_copy_round_trips_at_exact_size_on_cuda():
    from lightning_review.model.offload import MIN_CHUNK_ELEMENTS, HostCopy

    tensor = torch.randn(1, 3 * MIN_CHUNK_ELEMENTS // 128 + 7, 128, device="cuda", dtype=torch.bfloat16)
    copy = HostCopy(tensor)
    assert all(piece.is_pinned() for piece in copy.pieces)
    assert copy.nbytes == tensor.numel() * tensor.element_size()
    tensor_before = tensor.clone()
    tensor.zero_()  # the copy was taken before: the stream orders the overwrite after it
    torch.testing.assert_close(copy.to(torch.device("cuda")), tensor_before, rtol=0, atol=0)
