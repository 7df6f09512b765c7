"""An adapter directory's files checked before peft reads them: a missing directory, a model directory given as an
adapter, an adapter_config.json or lightning_review.json without the keys they need are each named, with the fix."""

import json
import re

import pytest
import torch
from safetensors.torch import save_file

from lightning_review.artifacts.adapter_record import check_adapter_files, read_adapter_meta
from lightning_review.artifacts.checkpoint_files import CheckpointError

CONFIG = {"peft_type": "LORA", "r": 4, "lora_alpha": 16, "target_modules": ["q_proj"]}
META = {"checkpoint_dir": "builtin:tiny-llama", "model_max_length": 512}


def make_adapter(directory, config=CONFIG, meta=META):
    directory.mkdir()
    (directory / "adapter_config.json").write_text(json.dumps(config))
    (directory / "lightning_review.json").write_text(json.dumps(meta))
    save_file({"w": torch.zeros(2)}, str(directory / "adapter_model.safetensors"))
    return directory


def test_an_intact_adapter_reads(tmp_path):
    assert read_adapter_meta(make_adapter(tmp_path / "adapter ü"))["model_max_length"] == 512


def test_a_missing_adapter_directory_is_named_as_missing(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'nope'}: no such directory"):
        read_adapter_meta(tmp_path / "nope")


def test_a_model_directory_given_as_an_adapter_names_the_flag_to_use(tiny_llama_dir):
    for check in (read_adapter_meta, check_adapter_files):
        with pytest.raises(CheckpointError, match="a model checkpoint directory .* not an adapter; give it as "
                                                  "--model_dir"):
            check(tiny_llama_dir)


@pytest.mark.parametrize("config, expected", [({"foo": 1}, "no 'peft_type', 'r', 'lora_alpha', 'target_modules'"),
                                              ({**CONFIG, "peft_type": "IA3"}, "peft_type is 'IA3'")])
def test_an_adapter_config_without_peft_keys_is_named(tmp_path, config, expected):
    adapter = make_adapter(tmp_path / "adapter", config=config)
    with pytest.raises(CheckpointError, match=expected) as error:
        read_adapter_meta(adapter)
    assert str(adapter / "adapter_config.json") in str(error.value)


@pytest.mark.parametrize("meta, expected", [({}, "'checkpoint_dir', the base model, is None"),
                                            ({"checkpoint_dir": 5}, "'checkpoint_dir', the base model, is 5"),
                                            ({**META, "model_max_length": "512"}, "'model_max_length' is '512'"),
                                            ({**META, "model_max_length": 0}, "'model_max_length' is 0")])
def test_a_record_without_a_base_or_with_a_bad_length_is_named(tmp_path, meta, expected):
    adapter = make_adapter(tmp_path / "adapter", meta=meta)
    with pytest.raises(CheckpointError, match=expected) as error:
        read_adapter_meta(adapter)
    assert str(adapter / "lightning_review.json") in str(error.value)


@pytest.mark.parametrize("length", [2**24 + 1, 99999999999999])
def test_a_record_with_a_model_max_length_beyond_ropes_float32_positions_is_named(tmp_path, length):
    # a hand-edited record with 99999999999999 loaded through generate, export and perplexity --adapter_dir: the base
    # was loaded with RoPE interpolated by ceil(length / its context), which training would never have written
    adapter = make_adapter(tmp_path / "adapter", meta={**META, "model_max_length": length})
    with pytest.raises(CheckpointError, match=re.escape(f"{adapter / 'lightning_review.json'}: not a valid "
                                                        f"lightning_review.json (its 'model_max_length' is {length}, "
                                                        "more than 16,777,216 (2**24)")) as error:
        read_adapter_meta(adapter)
    assert "float32" in str(error.value) and "export-adapter" in str(error.value)  # why, and the fix


def test_a_record_at_the_limit_reads(tmp_path):
    adapter = make_adapter(tmp_path / "adapter", meta={**META, "model_max_length": 2**24})
    assert read_adapter_meta(adapter)["model_max_length"] == 2**24
