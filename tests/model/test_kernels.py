"""Liger kernels (model.kernels): chosen only where they run, refused with a fix where asked for and impossible, and
on CUDA the same loss and gradients as transformers' modules with less saved for backward."""

import pytest
import torch

from lightning_review.data.packing import collate_rows
from lightning_review.model.kernels import liger_available, resolve_kernels, with_globals
from lightning_review.training.module import LongQLoRAModule
from tests.model.test_loss import with_prompt

cuda_liger = pytest.mark.skipif(not (torch.cuda.is_available() and liger_available()),
                                reason="Liger's Triton kernels need CUDA and liger-kernel (the GPU machine runs this)")


def test_auto_falls_back_on_cpu_and_liger_is_refused_there(tiny_llama_dir):
    from tests.training.test_module import make_module

    assert resolve_kernels("auto", torch.device("cpu")) == "none"
    assert resolve_kernels("none", torch.device("cuda")) == "none"
    module = make_module(tiny_llama_dir, quantize=False, kernels="auto")
    assert not any("Liger" in type(m).__name__ for m in module.model.modules())
    with pytest.raises(RuntimeError, match="model.kernels=liger: it runs on CUDA only.*set model.kernels to auto"):
        make_module(tiny_llama_dir, quantize=False, kernels="liger")
    with pytest.raises(ValueError, match="model.kernels must be"):
        resolve_kernels("triton", torch.device("cpu"))


def test_a_forward_copied_with_another_rope_changes_only_the_modules_switched_to_it(tiny_llama_dir):
    """The mechanism behind Liger's RoPE (with_globals), on CPU with a recording RoPE: the switched model calls it
    in every layer through transformers' own forward (its deprecated-argument decorator included) and computes the
    same; an unswitched model of the same process does not call it."""
    from transformers.models.llama import modeling_llama
    from transformers.models.llama.modeling_llama import LlamaAttention

    from tests.training.test_module import make_module

    calls = []

    def recording_rope(q, k, cos, sin, *args, **kwargs):
        calls.append(q.shape)
        return modeling_llama.apply_rotary_pos_emb(q, k, cos, sin, *args, **kwargs)

    class RecordingAttention(LlamaAttention):
        forward = with_globals(LlamaAttention.forward, apply_rotary_pos_emb=recording_rope)

    batch = collate_rows([[with_prompt(60, 45, 1), with_prompt(40, 30, 2)]], pad_id=0, row_length=128)
    torch.manual_seed(0)
    plain = make_module(tiny_llama_dir, quantize=False, lora_dropout=0.0, kernels="none")
    torch.manual_seed(0)
    switched = make_module(tiny_llama_dir, quantize=False, lora_dropout=0.0, kernels="none")
    layers = [m for m in switched.model.modules() if isinstance(m, LlamaAttention)]
    for module in layers:
        module.__class__ = RecordingAttention
    expected = plain(batch)
    assert not calls
    torch.testing.assert_close(switched(batch), expected)
    assert len(calls) == len(layers) > 0
    if hasattr(LlamaAttention.forward, "__wrapped__"):  # 5.24 decorates it for a renamed argument; 5.17 does not
        assert RecordingAttention.forward.__wrapped__ is not LlamaAttention.forward.__wrapped__
    assert modeling_llama.apply_rotary_pos_emb is not recording_rope  # nothing changed for the rest of the process


def cuda_loss_and_grads(tiny_llama_dir, batch, kernels):
    torch.manual_seed(0)
    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=8, max_seq_length=128, s2_group_size=16,
                             quantize=True, lora_dropout=0.0, kernels=kernels, gradient_checkpointing=False)
    module.build("cuda")
    with torch.no_grad():
        for name, param in module.model.named_parameters():
            gen = torch.Generator().manual_seed(len(name))
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.02)
            if "norm" in name and param.requires_grad:  # trained norms are not all ones
                param.copy_(torch.rand(param.shape, generator=gen) + 0.5)
    batch = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    saved = []
    with torch.autocast("cuda", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t.untyped_storage()) or t, lambda t: t):
        loss = module(batch)
    saved_bytes = sum({s.data_ptr(): s.nbytes() for s in saved}.values())
    loss.backward()
    grads = {n: p.grad.float().clone() for n, p in module.model.named_parameters() if p.requires_grad}
    return module, loss.detach().float(), grads, saved_bytes


@cuda_liger
def test_liger_kernels_match_transformers_modules_on_cuda(tiny_llama_dir):
    batch = collate_rows([[with_prompt(60, 45, 1), with_prompt(40, 30, 2)]], pad_id=0, row_length=128)
    _, reference, ref_grads, ref_saved = cuda_loss_and_grads(tiny_llama_dir, batch, "none")
    module, loss, grads, saved = cuda_loss_and_grads(tiny_llama_dir, batch, "liger")
    kinds = {type(m).__name__ for m in module.model.modules()}
    assert {"LigerLlamaRMSNorm", "LigerLlamaMLP", "LigerLlamaAttention"} <= kinds
    assert not kinds & {"LlamaRMSNorm", "LlamaMLP", "LlamaAttention"}
    torch.testing.assert_close(loss, reference, rtol=1e-2, atol=1e-2)
    for name, grad in ref_grads.items():  # bf16 activations: compare each gradient's direction and size
        cosine = torch.nn.functional.cosine_similarity(grads[name].flatten(), grad.flatten(), dim=0)
        assert cosine > 0.99, (name, float(cosine))
        assert float(grads[name].norm()) == pytest.approx(float(grad.norm()), rel=0.05), name
    assert any("norm" in n and g.abs().sum() > 0 for n, g in grads.items())  # the norms' weights still learn
    assert saved < 0.9 * ref_saved, (saved, ref_saved)
    # the adapter written with Liger modules loads into a plain model: same keys, no Liger names
    assert not any("liger" in k.lower() for k in module.trainable_state_dict())
