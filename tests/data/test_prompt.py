from lightning_review.data.prompt import IGNORE_INDEX, ReviewPromptTokenizer


def test_loss_only_on_review_and_eos(tokenizer):
    enc = ReviewPromptTokenizer(tokenizer, "Be a reviewer.", max_seq_length=512)
    ex = enc("We propose graph diffusion for robot grasping.", "The baselines are weak.")
    review_ids = tokenizer(" The baselines are weak.", add_special_tokens=False)["input_ids"]
    labelled = [t for t in ex.labels if t != IGNORE_INDEX]
    assert labelled == review_ids + [tokenizer.eos_token_id]
    n_prompt = len(ex.input_ids) - len(labelled)
    assert ex.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert ex.input_ids[n_prompt:] == labelled
    assert ex.input_ids[0] == tokenizer.bos_token_id
    text = tokenizer.decode(ex.input_ids[:n_prompt])
    assert "[INST] <<SYS>>" in text and "Be a reviewer." in text and text.rstrip().endswith("[/INST]")


def test_paper_truncated_never_review(tokenizer):
    enc = ReviewPromptTokenizer(tokenizer, "S", max_seq_length=128)
    paper = " ".join(["We evaluate sparse mixture of experts on three public corpora."] * 60)
    review = "Summary: the paper applies low-rank adaptation. Weaknesses: the baselines are weak."
    ex = enc(paper, review)
    assert len(ex.input_ids) == 128
    assert ex.paper_tokens_removed > 0
    review_ids = tokenizer(" " + review, add_special_tokens=False)["input_ids"]
    assert ex.input_ids[-len(review_ids) - 1:] == review_ids + [tokenizer.eos_token_id]
    assert "[/INST]" in tokenizer.decode(ex.input_ids)  # the template's end survives the cut


def test_review_that_cannot_fit_is_reported_not_cut(tokenizer):
    enc = ReviewPromptTokenizer(tokenizer, "S", max_seq_length=64)
    assert enc("short paper", "a very long review " * 50) is None


# Llama-2-chat's own template (meta-llama/Llama-2-7b-chat-hf, tokenizer_config.json)
LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)
CHATML_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                   "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
                   "{% endif %}")
PAPER = "We propose graph diffusion for robot grasping. " * 5
REVIEW = "Weaknesses: the baselines are weak; the ablation on grasping is missing."


def _with_template(tokenizer, template, extra_tokens=()):
    import copy

    tok = copy.deepcopy(tokenizer)
    if extra_tokens:
        tok.add_special_tokens({"additional_special_tokens": list(extra_tokens)})
    tok.chat_template = template
    return tok


def test_llama2_chat_template_gives_the_ids_of_the_built_in_format(tokenizer):
    """A Llama-2-chat checkpoint trains on exactly the ids of the format we always used (its own template)."""
    plain = ReviewPromptTokenizer(tokenizer, "Be a reviewer.", max_seq_length=512)
    templated = ReviewPromptTokenizer(_with_template(tokenizer, LLAMA2_CHAT_TEMPLATE), "Be a reviewer.", 512)
    assert (plain.pieces.name, templated.pieces.name) == ("llama-2", "chat_template")
    a, b = plain(PAPER, REVIEW), templated(PAPER, REVIEW)
    assert a.input_ids == b.input_ids and a.labels == b.labels
    assert plain.generation_prompt(PAPER) == templated.generation_prompt(PAPER)


def test_chatml_template_labels_the_review_and_its_end_of_turn(tokenizer):
    """ChatML (SmolLM2): the prompt is the template's own generation prompt; the loss covers the review and
    <|im_end|>, not the role headers."""
    tok = _with_template(tokenizer, CHATML_TEMPLATE, ["<|im_start|>", "<|im_end|>"])
    enc = ReviewPromptTokenizer(tok, "Be a reviewer.", max_seq_length=512)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert enc.end_ids == [im_end] and enc.stop_token_id == im_end
    ex = enc(PAPER, REVIEW)
    labelled = [t for t in ex.labels if t != IGNORE_INDEX]
    assert labelled[-1] == im_end
    assert tok.decode(labelled[:-1]).strip() == REVIEW
    prompt = ex.input_ids[:len(ex.input_ids) - len(labelled)]
    messages = [{"role": "system", "content": "Be a reviewer."}, {"role": "user", "content": PAPER}]
    expected = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    squeeze = lambda text: "".join(text.split())  # noqa: E731 (the tiny metaspace tokenizer decodes with spaces)
    assert squeeze(tok.decode(prompt)) == squeeze(expected)  # exact ids on the real tokenizer: tests/artifacts
    cut = enc(PAPER * 40, REVIEW)  # the paper is cut, the headers and the review are not
    assert len(cut.input_ids) == 512 and cut.paper_tokens_removed > 0
    assert squeeze(tok.decode(cut.input_ids)).endswith(squeeze("<|im_start|>assistant\n" + REVIEW + "<|im_end|>"))


def test_a_template_without_a_system_role_is_a_clear_error(tokenizer):
    import pytest

    from lightning_review.errors import UserError

    template = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
                "{% endif %}{% for m in messages %}{{ m['content'] }}{% endfor %}")
    with pytest.raises(UserError, match="system"):
        ReviewPromptTokenizer(_with_template(tokenizer, template), "S", 128)


def test_one_truncation_rule_and_one_chat_form_for_every_path():
    """The paper loses its last tokens, never below none; the OpenAI export's example is the template's messages."""
    from lightning_review.data.prompt import cut_paper, review_messages
    from lightning_review.data.records import Record
    from lightning_review.openai_ft.chat_format import to_messages

    ids = list(range(10))
    assert cut_paper(ids, 4) == ([0, 1, 2, 3], 6)
    assert cut_paper(ids, -2) == ([], 10)
    assert cut_paper(ids, 10) == (ids, 0)
    record = Record(id="p", paper="A paper.", review="A review.")
    assert to_messages(record, "S") == review_messages("A paper.", "S", "A review.") == [
        {"role": "system", "content": "S"}, {"role": "user", "content": "A paper."},
        {"role": "assistant", "content": "A review."}]
