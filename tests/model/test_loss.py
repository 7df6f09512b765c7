"""The review-token loss (no full logits) equals transformers' loss, value and gradients, on packed rows."""

import pytest
import torch

from lightning_review.data.packing import collate_rows
from lightning_review.model.loss import review_token_loss
from tests.model.test_module import doc, make_module


def with_prompt(n, prompt, seed):
    example = doc(n, seed)
    return {"input_ids": example["input_ids"], "labels": [-100] * prompt + example["input_ids"][prompt:]}


@pytest.mark.parametrize("chunk", [7, 4096])
def test_review_token_loss_matches_the_full_logits_loss(tiny_llama_dir, chunk):
    batch = collate_rows([[with_prompt(60, 45, 1), with_prompt(40, 30, 2)], [with_prompt(90, 70, 3)]], pad_id=0,
                         row_length=128)
    results = []
    for chunk_tokens in (None, chunk):
        torch.manual_seed(0)
        module = make_module(tiny_llama_dir, quantize=False, lora_dropout=0.0, loss_chunk_tokens=chunk_tokens)
        with torch.no_grad():  # LoRA B starts at zero: move it so LoRA A gets a gradient too
            for name, param in module.model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.02, generator=torch.Generator().manual_seed(len(name)))
        module.train()
        loss = module(batch)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in module.model.named_parameters() if p.requires_grad}
        results.append((loss.detach(), grads))
    (reference, ref_grads), (ours, our_grads) = results
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    assert set(our_grads) == set(ref_grads) and any("embed_tokens" in n for n in our_grads)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(our_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_no_labelled_token_gives_a_zero_loss_that_backpropagates():
    hidden = torch.randn(1, 5, 8, requires_grad=True)
    loss = review_token_loss(hidden, torch.full((1, 5), -100), torch.nn.Linear(8, 11))
    loss.backward()
    assert loss.item() == 0.0 and hidden.grad is not None
