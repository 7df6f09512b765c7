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
