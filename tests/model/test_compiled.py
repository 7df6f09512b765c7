"""model.compile_layers: compiled decoder layers train exactly as eager ones, and a new packing of documents into a
row (another doc_lens) does not recompile them."""

import torch

from lightning_review.data.packing import collate_rows
from tests.model.test_kernels import assert_same_gradients
from tests.model.test_loss import with_prompt
from tests.model.test_offload import loss_and_grads


def test_compiled_layers_give_the_eager_loss_and_gradients_for_any_packing(tiny_llama_dir):
    two_documents = collate_rows([[with_prompt(60, 45, 1), with_prompt(40, 30, 2)]], pad_id=0, row_length=128)
    three_documents = collate_rows([[with_prompt(30, 20, 4), with_prompt(50, 30, 5), with_prompt(40, 25, 6)]],
                                   pad_id=0, row_length=128)
    settings = dict(lora_dropout=0.0, kernels="none")  # inductor draws dropout masks with its own generator
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    for i, batch in enumerate([two_documents, three_documents]):
        reference, ref_grads = loss_and_grads(tiny_llama_dir, batch, **settings)
        with torch._dynamo.config.patch(error_on_recompile=i > 0):  # the second layout reuses the first graphs
            loss, grads = loss_and_grads(tiny_llama_dir, batch, compile_layers=True, **settings)
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # it did run compiled
        torch.testing.assert_close(loss, reference, rtol=1e-4, atol=1e-4)  # bf16: inductor rounds elsewhere
        assert_same_gradients(grads, ref_grads, min_cosine=0.999, size_rel=0.01)
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "lora_A" in n)
