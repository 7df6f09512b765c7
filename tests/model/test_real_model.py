"""The training path on the real pretrained SmolLM2-135M (9 query / 3 key-value heads, tied embeddings, ChatML):
what our random checkpoints never had. Slow on 2 CPU cores (tens of seconds), so few and small."""

import pytest
import torch

from lightning_review.data.datamodule import ReviewDataModule
from lightning_review.training.module import LongQLoRAModule
from tests.conftest import write_jsonl

pytestmark = pytest.mark.slow

PAPER = ("Sparse attention for long documents. We propose shifted sparse attention, which splits a sequence into "
         "groups and shifts half of the heads by half a group, so that information flows between groups. ") * 12
REVIEW = "Weaknesses: the evaluation uses one dataset; the ablation of the shift is missing. Questions: why a quarter?"


def test_real_model_trains_with_s2_odd_heads_and_interpolated_rope_then_generates(tmp_path, smollm2_dir):
    data = write_jsonl(tmp_path / "pairs.jsonl", [{"id": f"p{i}", "paper": f"Paper {i}. " + PAPER, "review": REVIEW}
                                                  for i in range(2)])
    # 256 tokens, groups of 64 (4 a document, as 512 and 128 would be): half the CPU time of 512
    dm = ReviewDataModule(train_file=str(data), tokenizer_dir=str(smollm2_dir), max_seq_length=256,
                          val_fraction=0.0, batch_size=1, packing=True)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    module = LongQLoRAModule(checkpoint_dir=str(smollm2_dir), quantize=False, model_max_length=32768, lora_r=4,
                             max_seq_length=256, s2_group_size=64, attention_backend="grouped")
    module.build("cpu")
    config = module.model.get_base_model().config
    assert config.rope_parameters["factor"] == 4.0 and config.num_attention_heads == 9
    module.model.train()
    s2_loss = module(batch)  # S2-Attn over 9 heads: heads 4..8 take the shifted groups
    s2_loss.backward()
    assert torch.isfinite(s2_loss)
    lora_grads = [p.grad for n, p in module.model.named_parameters() if "lora_B" in n]
    assert lora_grads and all(g is not None and torch.isfinite(g).all() for g in lora_grads)
    assert any(g.abs().sum() > 0 for g in lora_grads)
    embed = module.model.get_input_embeddings().weight
    assert embed.grad is not None and embed.grad.abs().sum() > 0  # the tied, trainable embedding learns
    module.model.eval()
    with torch.no_grad():
        full_loss = module(batch)  # full causal attention: groups of 64 split these documents, so it differs
    assert torch.isfinite(full_loss) and abs(float(full_loss) - float(s2_loss)) > 1e-4
    prompt = dm.prompt_tokenizer().generation_prompt(PAPER)[0]
    module.hparams.max_new_tokens = 4
    assert 0 < len(module.generate_review(prompt)) <= 4  # full attention with a KV cache


def test_real_model_in_4bit_with_interpolated_rope_reloads_from_its_adapter_for_generation(tmp_path, smollm2_dir):
    """NF4 base + PI x4 + LoRA + the tied trainable embedding, saved as an adapter and loaded back the way
    ``generate`` loads it (base from the adapter's record, RoPE scaling re-applied): the same logits."""
    from lightning_review.generation.local import load_generation_model

    module = LongQLoRAModule(checkpoint_dir=str(smollm2_dir), quantize=True, model_max_length=32768, lora_r=4,
                             max_seq_length=64, gradient_checkpointing=False)
    module.build("cpu")
    assert type(module.model.get_base_model().model.layers[0].self_attn.q_proj.base_layer).__name__ == "Linear4bit"
    with torch.no_grad():  # what training does: the LoRA matrices and the tied embedding copy move
        for name, p in module.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.01)
        module.model.get_input_embeddings().weight.mul_(1.05)
    ids = torch.tensor([[1, 504, 3135, 282, 4855, 30, 378, 1517, 314, 260, 14150, 2]])
    module.model.eval()
    with torch.no_grad():
        trained = module.model(ids).logits.float()
    adapter = module.save_adapter(tmp_path / "adapter")
    model, _ = load_generation_model(adapter_dir=str(adapter), quantize=True, dtype="float32", device="cpu")
    assert model.config.rope_parameters["factor"] == 4.0
    with torch.no_grad():
        reloaded = model(ids).logits.float()
        untrained = load_generation_model(model_dir=str(smollm2_dir), dtype="float32", device="cpu")[0](ids).logits
    assert (untrained.float() - trained).abs().max() > 1.0  # the perturbation and the interpolation moved them
    torch.testing.assert_close(reloaded, trained, atol=2e-3, rtol=2e-3)
