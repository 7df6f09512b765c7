"""ReviewRoom, the one prompt-fitting rule of generate, predict and the validation reviews: the paper cut so that the
prompt and max_new_tokens fit the context; a prompt built for a longer context cut again the same way; a
max_new_tokens that leaves no room refused, naming the setting to lower."""

import pytest

from lightning_review.data.prompt import ReviewPromptTokenizer
from lightning_review.errors import UserError
from lightning_review.generation.decoding import DecodingSettings, ReviewRoom, paper_ids_of
from lightning_review.generation.local import LocalGenerator, load_generation_model

PAPER = "We propose graph diffusion for molecule design and evaluate it on three benchmarks. " * 40


def test_a_long_paper_is_cut_so_prompt_and_review_fill_the_context_exactly(tokenizer):
    prompts = ReviewPromptTokenizer(tokenizer, max_seq_length=200)
    paper_ids = tokenizer(PAPER, add_special_tokens=False)["input_ids"]
    prompt, removed = ReviewRoom(200, 24, "--max_new_tokens", "--max_context").fit(prompts, paper_ids)
    assert len(prompt) + 24 == 200 and removed == len(paper_ids) - (200 - 24 - prompts.prompt_template_tokens())
    assert prompt == prompts.fit(paper_ids, [0] * 24)[0]  # training's rule with a review of max_new_tokens


def test_a_prompt_built_for_the_whole_context_is_cut_again_as_its_paper_would_be(tokenizer):
    """predict's prompts: the DataModule cut the paper to data.max_seq_length (here the whole context)."""
    built, removed_before = ReviewPromptTokenizer(tokenizer, max_seq_length=200).generation_prompt(PAPER)
    room = ReviewRoom(200, 24, "model.max_new_tokens", "a test")
    prompts = ReviewPromptTokenizer(tokenizer, max_seq_length=200)
    refitted, removed = room.refit(prompts, built)
    paper_ids = tokenizer(PAPER, add_special_tokens=False)["input_ids"]
    assert len(built) + 24 > 200 and len(refitted) + 24 == 200
    assert refitted == room.fit(prompts, paper_ids)[0]  # the same prompt as from the whole paper
    assert removed_before + removed == len(paper_ids) - (200 - 24 - prompts.prompt_template_tokens())
    short, _ = prompts.prompt_ids("A short paper.")
    assert room.refit(prompts, short) == (short, 0)  # a prompt that fits stays as it is


def test_the_paper_of_a_prompt_is_found_between_the_templates_pieces(tokenizer):
    prompts = ReviewPromptTokenizer(tokenizer)
    assert paper_ids_of(prompts, prompts.prompt_from_ids([7, 8, 9])[0]) == [7, 8, 9]
    assert paper_ids_of(prompts, prompts.prompt_from_ids([])[0]) == []
    with pytest.raises(ValueError, match="not built with this prompt template"):
        paper_ids_of(prompts, [7, 8, 9])


def test_max_new_tokens_that_fills_the_context_is_refused_naming_the_setting():
    with pytest.raises(UserError) as caught:
        ReviewRoom(256, 256, "--max_new_tokens", "--max_context")
    assert str(caught.value) == ("--max_new_tokens 256 leaves no room for a paper in the model's context of 256 tokens "
                                 "(--max_context): lower --max_new_tokens below 256")


def test_max_new_tokens_that_leaves_too_little_for_the_template_is_refused_with_the_most_it_may_be(tokenizer):
    prompts = ReviewPromptTokenizer(tokenizer)
    template = prompts.prompt_template_tokens()
    room = ReviewRoom(template + 10, 11, "model.max_new_tokens", "a test", "or raise model.model_max_length")
    with pytest.raises(UserError) as caught:
        room.fit(prompts, [5, 6])
    assert str(caught.value) == (f"model.max_new_tokens=11 and the prompt template ({template} tokens) do not fit "
                                 f"the model's context of {template + 10} tokens (a test): lower "
                                 f"model.max_new_tokens to at most 10, or raise model.model_max_length")
    assert len(ReviewRoom(template + 10, 10, "model.max_new_tokens", "a test").fit(prompts, [5, 6])[0]) == template


def test_generate_refuses_a_max_new_tokens_that_fills_the_models_context(tiny_llama_dir):
    model, tokenizer = load_generation_model(model_dir=str(tiny_llama_dir), dtype="float32", device="cpu")
    with pytest.raises(UserError) as caught:
        LocalGenerator(model, tokenizer, DecodingSettings(max_new_tokens=256))
    assert str(caught.value) == ("--max_new_tokens 256 leaves no room for a paper in the model's context of 256 "
                                 "tokens (its max_position_embeddings; --max_context is left out): lower "
                                 "--max_new_tokens below 256")
