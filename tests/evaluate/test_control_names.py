"""A system named like a control is refused before anything runs: it would replace the control's row (or be taken
for the control) in the report."""

import asyncio

import pytest

from lightning_review.errors import UserError
from lightning_review.evaluate.command import evaluate
from lightning_review.evaluate.evaluator import EvaluationInput, evaluate as run_evaluation
from tests.conftest import write_jsonl


@pytest.mark.parametrize("name", ["human (control)", "Generic  Review (control)"])
def test_a_system_named_like_a_control_is_refused_naming_it(tmp_path, name):
    human = write_jsonl(tmp_path / "human.jsonl", [{"id": "p0", "paper": "A paper.", "reviews": ["One.", "Two."]}])
    ours = write_jsonl(tmp_path / "ours.jsonl", [{"id": "p0", "review": "Ours."}])
    with pytest.raises(UserError, match=r"--systems: the system '.*' has the name of the control") as caught:
        evaluate(str(human), {"ours": str(ours), name: str(ours)}, output_dir=str(tmp_path / "out"))
    assert repr(name) in str(caught.value) and "Rename that system in --systems" in str(caught.value)
    assert not (tmp_path / "out" / "result.json").exists()


def test_the_library_evaluation_refuses_it_before_any_judge_call():
    class Judge:
        name = "counting"

        def extract_points(self, review):
            raise AssertionError("no judge call expected")

    data = EvaluationInput({"p0": ["One.", "Two."]}, {"paper excerpt (control)": {"p0": "Ours."}})
    with pytest.raises(UserError, match="'paper excerpt \\(control\\)' has the name of the control"):
        asyncio.run(run_evaluation(data, [Judge()], resamples=10))
