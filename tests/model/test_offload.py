"""Activation offload: the same loss and gradients as transformers' checkpointing, LoRA dropout included, with the
checkpointed layer inputs held as host copies instead of by the autograd graph."""

import weakref
from dataclasses import dataclass, field

import pytest
import torch

from lightning_review.data.packing import collate_rows
from lightning_review.model import offload
from lightning_review.model.loading import decoder_layers
from tests.model.test_loss import with_prompt
from tests.training.test_module import make_module


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


@dataclass
class SavedForBackward:
    """What one training forward keeps for backward: the storages of the non-parameter tensors the autograd graph
    saved (ptr -> bytes), and each decoder layer's input."""

    activations: dict[int, int] = field(default_factory=dict)
    layer_inputs: list[torch.Tensor] = field(default_factory=list)  # kept alive: no storage of theirs is reused

    @property
    def bytes(self) -> int:
        return sum(self.activations.values())

    def inputs_saved(self) -> list[bool]:
        return [x.untyped_storage().data_ptr() in self.activations for x in self.layer_inputs]


def forward_saving(module, batch) -> tuple[torch.Tensor, SavedForBackward]:
    """The loss of ``batch``, recording every tensor saved for backward (saved_tensors_hooks) and the layer inputs."""
    saved = SavedForBackward()
    parameters = {p.untyped_storage().data_ptr() for p in module.parameters()}

    def record_input(layer, args, kwargs):
        saved.layer_inputs.append(args[0] if args else kwargs["hidden_states"])

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            saved.activations[storage.data_ptr()] = storage.nbytes()
        return tensor

    hooks = [layer.register_forward_pre_hook(record_input, with_kwargs=True) for layer in decoder_layers(module.model)]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = module(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return loss, saved


def test_offloaded_layer_inputs_are_host_copies_not_kept_by_the_graph(tiny_llama_dir, monkeypatch):
    """The memory claim: a checkpointed layer's input leaves the autograd graph (on CUDA: pinned host memory instead
    of GPU memory) and its host copy is freed once backward has used it."""
    copies = []

    class RecordedHostCopy(offload.HostCopy):
        def __init__(self, tensor, previous=None):
            super().__init__(tensor, previous)
            copies.append(weakref.ref(self))
            self.device_type = tensor.device.type

    monkeypatch.setattr(offload, "HostCopy", RecordedHostCopy)
    batch = collate_rows([[with_prompt(60, 45, 1), with_prompt(40, 30, 2)]], pad_id=0, row_length=128)
    plain = make_module(tiny_llama_dir, quantize=False, gradient_checkpointing=True)
    plain.train()
    assert forward_saving(plain, batch)[1].inputs_saved() == [True, True]  # what offload removes
    assert not copies

    module = make_module(tiny_llama_dir, quantize=False, gradient_checkpointing=True, activation_offload=True)
    module.train()
    loss, saved = forward_saving(module, batch)
    assert saved.inputs_saved() == [False, False]
    assert len(copies) == len(saved.layer_inputs) == 2
    for ref, layer_input in zip(copies, saved.layer_inputs):
        copy = ref()
        assert copy.nbytes == layer_input.numel() * layer_input.element_size()
        assert all(piece.device.type == "cpu" and piece.is_pinned() == (copy.device_type == "cuda")
                   for piece in copy.pieces)
        torch.testing.assert_close(copy.to(layer_input.device), layer_input.detach(), rtol=0, atol=0)
    del copy
    loss.backward()
    assert all(ref() is None for ref in copies)  # released after use: host memory does not pile up over steps


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


def test_backward_takes_each_copy_once_and_starts_the_previous_layers_copy_back_first(tiny_llama_dir, monkeypatch):
    """The overlap: when backward takes layer i's input, layer i-1's copy back starts (``prefetch``), so that it runs
    during layer i's recomputation and backward; a layer's copies never reach into another step's."""
    events = []

    class RecordedHostCopy(offload.HostCopy):
        def __init__(self, tensor, previous=None):
            super().__init__(tensor, previous)
            self.index = len([e for e in events if e[0] == "made"])
            events.append(("made", self.index, previous.index if previous is not None else None))

        def prefetch(self):
            if self._back is None and self.pieces is not None:
                events.append(("prefetch", self.index))
            super().prefetch()

        def take(self):
            events.append(("take", self.index))
            return super().take()

    monkeypatch.setattr(offload, "HostCopy", RecordedHostCopy)
    batch = collate_rows([[with_prompt(60, 45, 1), with_prompt(40, 30, 2)]], pad_id=0, row_length=128)
    module = make_module(tiny_llama_dir, quantize=False, gradient_checkpointing=True, activation_offload=True)
    module.train()
    module(batch).backward()
    assert events == [("made", 0, None), ("made", 1, 0),
                      ("take", 1), ("prefetch", 1), ("prefetch", 0), ("take", 0)]
    events.clear()
    module(batch).backward()  # the next step: its first layer's copy has no previous (the last step's were taken)
    assert events[0] == ("made", 0, None) and events[1] == ("made", 1, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned host memory needs CUDA (the GPU machine runs this)")
def test_cuda_copies_on_the_side_stream_survive_their_sources_memory_being_reused():
    """Copies out and back run on the copy stream. With that stream held busy, a source freed right after its copy
    was queued is not handed to the compute stream's next allocation of its size before the copy ran; each layer's
    input comes back exact, its copy back started before its own take."""
    from lightning_review.model.offload import HostCopy, _copy_stream

    torch.manual_seed(0)
    # the host allocator's first pinned blocks of these sizes are made now: made inside the loop, cudaHostAlloc took
    # longer than the held copy stream's sleep, and the freed block was reused legitimately (the H200, session 16)
    warm = [HostCopy(torch.empty(1, 4096, 5120, device="cuda", dtype=torch.bfloat16)) for _ in range(3)]
    for copy in warm:
        copy.take()
    del warm
    torch.cuda.synchronize()
    copies, expected = [], []
    for i in range(3):
        tensor = torch.randn(1, 4096, 5120, device="cuda", dtype=torch.bfloat16)
        expected.append(tensor.cpu())
        with torch.cuda.stream(_copy_stream(tensor.device)):
            torch.cuda._sleep(500_000_000)  # the copy waits behind this (~0.25 s)
        copies.append(HostCopy(tensor, previous=copies[-1] if copies else None))
        freed = tensor.data_ptr()
        del tensor
        filler = torch.full((1, 4096, 5120), float(i + 7), device="cuda", dtype=torch.bfloat16)
        assert filler.data_ptr() != freed  # record_stream kept the block from the compute stream
    for i in reversed(range(3)):
        got = copies[i].take()
        torch.testing.assert_close(got.cpu(), expected[i], rtol=0, atol=0)
        if i:
            assert copies[i - 1]._back is not None  # its copy back started before its own take
    assert all(copy.pieces is None for copy in copies)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned host memory needs CUDA (the GPU machine runs this)")
def test_cuda_non_contiguous_input_is_copied_after_its_flat_copy_is_made():
    from lightning_review.model.offload import HostCopy

    base = torch.randn(2, 4096, 640, device="cuda", dtype=torch.bfloat16)
    tensor = base.transpose(0, 1)  # not contiguous: reshape copies it on the compute stream
    torch.testing.assert_close(HostCopy(tensor).take(), tensor, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned host memory needs CUDA (the GPU machine runs this)")
def test_pinned_host_copy_round_trips_at_exact_size_on_cuda():
    from lightning_review.model.offload import MIN_CHUNK_ELEMENTS, HostCopy

    tensor = torch.randn(1, 3 * MIN_CHUNK_ELEMENTS // 128 + 7, 128, device="cuda", dtype=torch.bfloat16)
    pinned_before = torch.cuda.host_memory_stats().get("active_bytes.current", 0)
    copy = HostCopy(tensor)
    pinned = torch.cuda.host_memory_stats().get("active_bytes.current", 0) - pinned_before
    assert all(piece.is_pinned() for piece in copy.pieces)
    assert copy.nbytes == tensor.numel() * tensor.element_size()
    assert copy.nbytes <= pinned <= copy.nbytes + (2 << 20)  # the blocks handed out (cached ones too): none rounded up
    torch.testing.assert_close(copy.to(torch.device("cuda")), tensor, rtol=0, atol=0)
