"""The review-token loss (no full logits) equals transformers' loss, value and gradients, on packed rows, and never
holds the logits of more than one chunk of tokens (the memory it exists to save)."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from lightning_review.data.packing import collate_rows
from lightning_review.model.loss import review_token_loss
from tests.training.test_module import doc, make_module


def with_prompt(n, prompt, seed):
    example = doc(n, seed)
    return {"input_ids": example["input_ids"], "prompt_length": prompt}


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


class LogitRows(TorchDispatchMode):
    """Records the largest number of rows of any tensor an operation creates whose last dimension is the vocabulary
    (logits, their log-softmax and gradients), in forward and backward."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size, self.most = vocab_size, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and tensor.dim() and tensor.shape[-1] == self.vocab_size:
                self.most = max(self.most, tensor.numel() // self.vocab_size)
        return out


def test_review_token_loss_holds_the_logits_of_one_chunk_at_a_time():
    # hidden (8) < chunk (16): the LM head's weight, also V wide, has fewer rows than a chunk of logits.
    hidden = torch.randn(2, 64, 8, requires_grad=True)
    labels = torch.full((2, 64), -100)
    labels[0, 20:50], labels[1, 10:41] = 5, 7  # 60 labelled next tokens out of 126 positions
    lm_head = torch.nn.Linear(8, 97)
    with LogitRows(97) as seen:
        review_token_loss(hidden, labels, lm_head, chunk_tokens=16).backward()
    assert seen.most == 16  # never 60 (every review token at once) nor 128 (every position)


def test_training_forward_builds_no_logits_beyond_one_chunk(tiny_llama_dir):
    """Through the module: its forward must take the chunked loss, not the model's full-logits loss."""
    batch = collate_rows([[with_prompt(120, 20, 1), with_prompt(100, 30, 2)], [with_prompt(200, 50, 3)]], pad_id=0,
                         row_length=256)
    module = make_module(tiny_llama_dir, quantize=False, loss_chunk_tokens=100)
    vocab_size = module.model.config.vocab_size
    assert vocab_size > 256 and module.model.config.hidden_size < 100  # no other dimension is mistaken for logits
    module.train()
    with LogitRows(vocab_size) as seen:
        module(batch).backward()
    assert seen.most == 100  # 320 review tokens, 512 positions
