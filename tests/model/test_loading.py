import json
import re
import shutil

import bitsandbytes as bnb
import pytest

from lightning_review.artifacts.checkpoint_files import CheckpointError, load_tokenizer, read_llama_config
from lightning_review.model.loading import add_lora, load_llama, rope_scaling_factor


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


@pytest.mark.parametrize("content, reason", [(bytes(range(256)) * 4, "not UTF-8 text"),
                                             (b'{"model_type": "llama",', "not JSON"),
                                             (b'["llama"]', "a JSON list, not an object")])
def test_corrupt_config_json_is_named_as_not_valid(tmp_path, content, reason):
    (tmp_path / "config.json").write_bytes(content)
    expected = f"{tmp_path / 'config.json'}: not a valid config.json ({reason}"
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        read_llama_config(tmp_path)


def llama_without_tokenizer(tiny_llama_dir, directory, *keep):
    directory.mkdir()
    for name in ("config.json", *keep):
        shutil.copy(tiny_llama_dir / name, directory / name)
    return directory


@pytest.mark.parametrize("keep", [(), ("tokenizer_config.json",)])
def test_missing_tokenizer_files_are_named_not_a_missing_package(tiny_llama_dir, tmp_path, keep):
    model_dir = llama_without_tokenizer(tiny_llama_dir, tmp_path / "model", *keep)
    read_llama_config(model_dir)  # the model itself is fine
    with pytest.raises(CheckpointError) as error:
        load_tokenizer(model_dir)
    message = str(error.value)
    assert f"{model_dir}: no tokenizer files" in message and "tokenizer.json or tokenizer.model" in message
    assert "copy them" in message and "sentencepiece" not in message
    assert len(load_tokenizer(tiny_llama_dir)) > 100  # a complete directory loads


def test_a_truncated_base_is_named_by_every_loader_not_deep_inside_transformers(tiny_llama_dir, tmp_path):
    """fit and generate load through load_llama: a weights file cut short (an interrupted copy) is one error naming
    it, not safetensors' bare error from inside from_pretrained."""
    model = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=re.escape(f"{weights}: corrupt weights")):
        load_llama(model, quantize=False)
