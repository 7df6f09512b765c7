"""predict and the validation reviews leave max_new_tokens of the model's context for the review, cutting the paper as
the generate command does: their prompts come from the DataModule cut to data.max_seq_length, which may be the
whole context (the tiny Llama's 256 positions here), and the review was generated past it."""

import lightning as L
import pytest

from lightning_review import LongQLoRAModule, ReviewDataModule
from lightning_review.demo import demo_records
from lightning_review.errors import UserError
from lightning_review.training.validation_reviews import ValidationReviews
from tests.conftest import write_jsonl

CONTEXT = 256  # the tiny Llama's max_position_embeddings; no RoPE interpolation asked


@pytest.fixture(scope="module")
def long_papers(tmp_path_factory):
    """A paper many times the context, and a short one that needs no cut."""
    paper = demo_records(1, seed=5)[0]["paper"]
    return write_jsonl(tmp_path_factory.mktemp("papers") / "papers.jsonl",
                       [{"id": "long", "paper": " ".join([paper] * 6)}, {"id": "short", "paper": "Graph diffusion."}])


def trainer() -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                     enable_model_summary=False)


def test_predict_leaves_max_new_tokens_of_the_context_for_the_review(tiny_llama_dir, long_papers):
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=CONTEXT, predict_file=str(long_papers))
    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), quantize=False, lora_r=4, max_seq_length=CONTEXT,
                             max_new_tokens=16, gradient_checkpointing=False, kernels="none")
    rows = {row["id"]: row for row in trainer().predict(module, datamodule=data)}
    long, short = rows["long"], rows["short"]
    assert long["truncated"] and 0 < long["generated_tokens"] <= 16
    # the prompt was cut to exactly the context less the review's room (it was 255 tokens, plus 16 past 256)
    assert long["prompt_tokens"] + 16 == CONTEXT
    assert long["prompt_tokens"] + long["generated_tokens"] <= CONTEXT
    data.setup("predict")
    assert short["prompt_tokens"] == len(data.predict_items[1]["input_ids"]) and not short["truncated"]


def test_validation_reviews_leave_max_new_tokens_of_the_context(tiny_llama_dir, monkeypatch):
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=CONTEXT, val_fraction=0.2)
    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), quantize=False, lora_r=4, max_seq_length=CONTEXT,
                             max_new_tokens=16, gradient_checkpointing=False, kernels="none")
    module.build("cpu")
    module.model.eval()
    generate_review = module.generate_review
    seen = []

    def spy(prompt_ids):
        new = generate_review(prompt_ids)
        seen.append((len(prompt_ids), len(new)))
        return new

    monkeypatch.setattr(module, "generate_review", spy)
    callback = ValidationReviews(3)
    callback._metric = NoJudgeMetric()  # the offline judge is tested elsewhere; here only the prompts matter
    fake_trainer = type("T", (), dict(datamodule=data, sanity_checking=False, global_rank=0, world_size=1))()
    monkeypatch.setattr(module, "log", lambda *a, **k: None)
    callback.on_validation_epoch_end(fake_trainer, module)
    samples = data.review_samples(3)
    assert len(seen) == len(samples) == 3
    assert any(len(s["input_ids"]) + 16 > CONTEXT for s in samples)  # a sample that used to run past the context
    assert all(prompt + 16 <= CONTEXT and 0 < new <= 16 for prompt, new in seen)


class NoJudgeMetric:
    """ReviewHitRate's interface without a judge: nothing to score with."""

    judge = None

    def to(self, device):
        return self

    def reset(self):
        pass

    def update(self, generated, reviews, papers=None):
        pass

    def compute(self):
        return {}


@pytest.mark.parametrize("stage", ["predict", "validate"])
def test_a_max_new_tokens_that_fills_the_context_is_refused_before_the_model_loads(tiny_llama_dir, long_papers,
                                                                                   stage):
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=CONTEXT, predict_file=str(long_papers),
                            val_fraction=0.2)
    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), quantize=False, lora_r=4, max_seq_length=CONTEXT,
                             max_new_tokens=CONTEXT, review_samples=2, gradient_checkpointing=False, kernels="none")
    expected = (f"model.max_new_tokens=256 leaves no room for a paper in the model's context of 256 tokens "
                f"({tiny_llama_dir}'s 256 positions and model.model_max_length=null, no RoPE interpolation): lower "
                f"model.max_new_tokens below 256, or raise model.model_max_length (RoPE interpolation) to make the "
                f"context longer")
    run = trainer().predict if stage == "predict" else trainer().validate
    with pytest.raises(UserError) as caught:
        run(module, datamodule=data)
    assert str(caught.value) == expected
    assert module.model is None  # refused in setup, before the weights load


def test_the_room_follows_the_rope_interpolated_context(tiny_llama_dir):
    """model.model_max_length=512 doubles the tiny model's 256 positions: 512 is the context the review shares."""
    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), model_max_length=512, max_seq_length=512,
                             max_new_tokens=300)
    room = module.review_room()
    assert (room.context, room.max_new_tokens) == (512, 300)


@pytest.mark.parametrize("stage", ["predict", "validate"])
def test_a_max_new_tokens_that_leaves_too_little_for_the_template_is_refused_before_the_model_loads(
        tiny_llama_dir, long_papers, stage):
    """Between context - template and context - 1 the refusal came only at the first review: after the model loaded
    for predict, and after a whole training epoch for fit with review_samples."""
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=CONTEXT, predict_file=str(long_papers),
                            val_fraction=0.2)
    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), quantize=False, lora_r=4, max_seq_length=CONTEXT,
                             max_new_tokens=CONTEXT - 1, review_samples=2, gradient_checkpointing=False,
                             kernels="none")
    run = trainer().predict if stage == "predict" else trainer().validate
    with pytest.raises(UserError, match=r"^model.max_new_tokens=255 and the prompt template \(\d+ tokens\) do not fit "
                                        r"the model's context of 256 tokens .*: lower model.max_new_tokens to at most"):
        run(module, datamodule=data)
    assert module.model is None
