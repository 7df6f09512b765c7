"""A checkpoint with tied input/output embeddings (SmolLM2's) and trainable embeddings and norms: the trained
embedding is the output head too, in training, in the adapter, in the merged export and in plain transformers."""

import shutil

import torch

from lightning_review.export import export_merged
from lightning_review.training.module import LongQLoRAModule


def _tied_tiny_llama(tmp_path, tiny_llama_dir):
    from transformers import AutoConfig, LlamaForCausalLM

    config = AutoConfig.from_pretrained(tiny_llama_dir)
    config.tie_word_embeddings = True
    torch.manual_seed(0)
    directory = tmp_path / "tied"
    LlamaForCausalLM(config).save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_llama_dir / name).is_file():
            shutil.copy(tiny_llama_dir / name, directory / name)
    return directory


def test_trained_tied_embeddings_agree_in_training_adapter_and_merged_export(tmp_path, tiny_llama_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from lightning_review.model.loading import load_llama

    base_dir = _tied_tiny_llama(tmp_path, tiny_llama_dir)
    module = LongQLoRAModule(checkpoint_dir=str(base_dir), quantize=False, lora_r=4, max_seq_length=64,
                             gradient_checkpointing=False)
    module.build("cpu")
    model = module.model
    with torch.no_grad():  # what training does to the trainable embedding copy (and to a LoRA matrix)
        model.get_input_embeddings().weight.add_(torch.randn_like(model.get_input_embeddings().weight) * 0.5)
        next(p for n, p in model.named_parameters() if "lora_B" in n).add_(0.1)
    # one tensor: the trained embedding is the output head as well
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    ids = torch.arange(3, 40)[None]
    model.eval()
    with torch.no_grad():
        trained = model(ids).logits.float()  # float32 on the CPU, as the reloads below
    adapter = module.save_adapter(tmp_path / "adapter")

    reloaded = PeftModel.from_pretrained(load_llama(base_dir, quantize=False, dtype=torch.float32,
                                                    attn_implementation="sdpa"), str(adapter)).eval()
    merged_dir = export_merged(str(adapter), str(tmp_path / "merged"), dtype="float32")
    plain = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        # the same logits to float32 rounding; the perturbation moved them by far more than that
        moved = (load_llama(base_dir, quantize=False, dtype=torch.float32)(ids).logits - trained).abs().max()
        assert moved > 2.0, moved
        for got in (reloaded(ids).logits, plain(ids).logits):
            torch.testing.assert_close(got, trained, atol=1e-4, rtol=1e-4)
