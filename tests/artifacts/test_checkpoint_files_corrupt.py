"""Corrupt tokenizer and weight files of a checkpoint directory are named, file and fix, before transformers reads
them (it would raise a bare JSONDecodeError, tokenizers error or SafetensorError without the path)."""

import json
import shutil

import pytest

from lightning_review.artifacts.checkpoint_files import CheckpointError, check_weight_files, load_tokenizer


def copy_model(tiny_llama_dir, directory):
    shutil.copytree(tiny_llama_dir, directory)
    return directory


@pytest.mark.parametrize("name, content, expected", [
    ("tokenizer.json", "{bad", "tokenizer.json: not a valid tokenizer.json (not JSON"),
    ("tokenizer_config.json", "[1]", "tokenizer_config.json: not a valid tokenizer_config.json (a JSON list"),
    ("tokenizer.json", json.dumps({"version": "1.0", "model": {"type": "Nope"}}), "its tokenizer files cannot be "
                                                                                  "loaded (KeyError"),
])
def test_a_corrupt_tokenizer_file_is_named(tiny_llama_dir, tmp_path, name, content, expected):
    model = copy_model(tiny_llama_dir, tmp_path / "model ü")
    (model / name).write_text(content)
    with pytest.raises(CheckpointError, match="copy the tokenizer files again") as error:
        load_tokenizer(model)
    assert expected in str(error.value) and str(model) in str(error.value)


def test_a_truncated_weights_file_is_named(tiny_llama_dir, tmp_path):
    model = copy_model(tiny_llama_dir, tmp_path / "model")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=f"{weights}: corrupt weights, not a readable safetensors file"):
        check_weight_files(model)
    check_weight_files(tiny_llama_dir)  # an intact one passes


def test_missing_weights_and_missing_shards_are_named(tiny_llama_dir, tmp_path):
    model = copy_model(tiny_llama_dir, tmp_path / "model")
    (model / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights"):
        check_weight_files(model)
    (model / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(CheckpointError, match="lists 2 weight file.s. that are missing"):
        check_weight_files(model)
