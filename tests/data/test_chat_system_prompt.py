"""A chat line's own system message: local training builds every prompt with data.system_prompt, as ``generate``
does with --system_prompt, so a line whose system message is another is refused (file, line, field and fix), never
dropped without a word; a line whose system message is data.system_prompt trains on exactly the prompt that
generation builds."""

from types import SimpleNamespace

import pytest

from lightning_review.data.datamodule import ReviewDataModule
from lightning_review.data.prompt import DEFAULT_SYSTEM_PROMPT
from lightning_review.errors import UserError
from tests.conftest import write_jsonl

PAPER = "We propose a graph method for molecules and test it on three benchmarks. " * 3
REVIEW = "The paper is clear; the baselines are weak and the ablation is missing."
HARSH = "You are a harsh reviewer. Find every flaw."


def chat_line(i: int, system: str | None) -> dict:
    messages = [{"role": "user", "content": f"{PAPER} Paper {i}."}, {"role": "assistant", "content": REVIEW}]
    return {"messages": ([{"role": "system", "content": system}] if system is not None else []) + messages}


def datamodule(path, tokenizer_dir, **settings) -> ReviewDataModule:
    dm = ReviewDataModule(train_file=str(path), tokenizer_dir=str(tokenizer_dir),
                          **{"max_seq_length": 512, "val_fraction": 0.0, **settings})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_a_line_with_another_system_message_is_refused_naming_line_field_and_fix(tmp_path, tiny_llama_dir):
    data = write_jsonl(tmp_path / "chat.jsonl", [chat_line(0, None), chat_line(1, DEFAULT_SYSTEM_PROMPT),
                                                 chat_line(2, HARSH), chat_line(3, "Be kind.")])
    for policy in ("strict", "skip"):  # not a bad line to skip: one setting decides the prompt of every line
        with pytest.raises(UserError) as caught:
            datamodule(data, tiny_llama_dir, on_bad_record=policy)
        message = str(caught.value)
        assert message.startswith(f"{data}:3: field 'messages' has a system message, {HARSH!r}, other than "
                                  "data.system_prompt, 'You are an expert reviewer"), message
        assert "so this line's own would not be trained on" in message
        assert "2 of the 4 lines have a system message other than data.system_prompt (2 different ones)" in message
        assert "remove the lines' system messages" in message and "set data.system_prompt to it" in message


def test_every_line_with_one_other_system_message_says_to_set_it(tmp_path, tiny_llama_dir):
    from lightning_review.cli import main

    data = write_jsonl(tmp_path / "chat.jsonl", [chat_line(i, HARSH) for i in range(3)])
    with pytest.raises(UserError, match=r"chat\.jsonl:1: .*every line has this same system message: to train with "
                                        r"it, set data\.system_prompt to it \(and generate with the same "
                                        r"--system_prompt\)"):
        datamodule(data, tiny_llama_dir)
    with pytest.raises(SystemExit) as caught:  # prepare names its own flag
        main(["prepare", f"--data_file={data}", f"--tokenizer_dir={tiny_llama_dir}", "--max_seq_length=512",
              f"--output_dir={tmp_path / 'out'}"])
    assert "chat.jsonl:1: field 'messages' has a system message" in str(caught.value)
    assert "set --system_prompt to it (and generate with the same --system_prompt)" in str(caught.value)
    assert not (tmp_path / "out").exists()
    # the text task reads each line's user message as a document: no prompt, so no system message to refuse
    text = datamodule(data, tiny_llama_dir, task="text", max_seq_length=64)
    assert text.stats["train"]["papers"] == 3 and text.train_rows


@pytest.mark.parametrize("system", [DEFAULT_SYSTEM_PROMPT, HARSH])
def test_training_and_generation_build_the_same_prompt(tmp_path, tiny_llama_dir, system):
    """Lines carrying data.system_prompt (as openai export writes them) or none train on the prompt that generate
    builds for the same paper with --system_prompt set alike."""
    from lightning_review.generation.decoding import DecodingSettings
    from lightning_review.generation.local import LocalGenerator

    data = write_jsonl(tmp_path / "chat.jsonl", [chat_line(0, system), chat_line(1, None)])
    dm = datamodule(data, tiny_llama_dir, system_prompt=system)
    assert dm.stats["train"]["records"] == 2
    examples = {ex["id"]: ex for row in dm.train_rows for ex in row}
    model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=512))
    generator = LocalGenerator(model, dm.tokenizer, DecodingSettings(max_new_tokens=64), system)
    for i, paper_id in enumerate(["chat-1", "chat-2"]):
        (prepared,) = generator.prepare([(paper_id, f"{PAPER} Paper {i}.")])
        example = examples[paper_id]
        assert prepared.paper_tokens_removed == 0
        assert example["input_ids"][:example["prompt_length"]].tolist() == prepared.prompt_ids
    assert " ".join(system.split()[:4]) in dm.tokenizer.decode(prepared.prompt_ids)


def test_a_refused_skip_run_leaves_no_rejects_file_it_began(tmp_path, tiny_llama_dir):
    data = write_jsonl(tmp_path / "chat.jsonl", [chat_line(0, None), chat_line(1, HARSH), {"messages": []}])
    rejects = tmp_path / "rejects.jsonl"
    with pytest.raises(UserError, match=r"1 of the 2 lines has a system message other than"):
        datamodule(data, tiny_llama_dir, on_bad_record="skip", rejects_file=str(rejects))
    assert not rejects.exists()
