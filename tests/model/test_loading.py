import json

import bitsandbytes as bnb
import pytest

from lightning_review.model.loading import (CheckpointError, add_lora, load_llama, read_llama_config,
                                            rope_scaling_factor)


def test_quantized_layers_are_bitsandbytes_4bit_and_only_adapters_train(tiny_llama_dir):
    model = add_lora(load_llama(tiny_llama_dir, quantize=True), r=4)
    layer = model.base_model.model.model.layers[0]
    for proj in (layer.self_attn.q_proj, layer.self_attn.o_proj, layer.mlp.down_proj):
        assert isinstance(proj.base_layer, bnb.nn.Linear4bit)
        assert proj.base_layer.weight.quant_type == "nf4"
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "modules_to_save" in n for n in trainable)
    kinds = {n.split(".modules_to_save")[0].split(".")[-1] for n in trainable if "modules_to_save" in n}
    assert kinds == {"embed_tokens", "input_layernorm", "post_attention_layernorm", "norm"}


def test_embeddings_and_norms_can_be_frozen(tiny_llama_dir):
    model = add_lora(load_llama(tiny_llama_dir, quantize=True), r=4, train_embeddings_and_norms=False)
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)


def test_rope_interpolation_factor_is_ceil_of_ratio(tiny_llama_dir):
    assert rope_scaling_factor(8192, 4096) == 2.0
    assert rope_scaling_factor(10000, 4096) == 3.0
    assert rope_scaling_factor(4096, 4096) == 1.0
    model = load_llama(tiny_llama_dir, quantize=False, model_max_length=1000)  # tiny context is 256
    assert model.config.rope_parameters["rope_type"] == "linear"
    assert model.config.rope_parameters["factor"] == 4.0


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        read_llama_config(tmp_path)


def test_non_llama_checkpoint_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match="model_type is 'gpt2'"):
        read_llama_config(tmp_path)
