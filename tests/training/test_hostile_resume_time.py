"""spent_time_problem against the shapes LightningCLI gives trainer.callbacks: its type is a list of callbacks *or one
callback* (``Optional[Union[list[Callback], Callback]]``), so a config may hold a single callback, a jsonargparse
Namespace that cannot be iterated as a list (it raised NSKeyError 'Key must be a string, got: 0' on every resume)."""

from jsonargparse import Namespace

from lightning_review.training.trainer_checks import spent_time_problem


def checkpoint_with_timer(seconds: float) -> dict:
    return {"callbacks": {"Timer": {"time_elapsed": {"train": seconds, "validate": 0}}}}


def test_one_callback_not_in_a_list_is_read_not_crashed_on():
    """A single non-Timer callback: trainer.max_time is the limit, as without callbacks."""
    trainer = Namespace(max_time="00:00:01:00", callbacks=Namespace(
        class_path="lightning.pytorch.callbacks.LearningRateMonitor", init_args=Namespace(logging_interval="step")))
    problem = spent_time_problem(trainer, checkpoint_with_timer(3600.0), "last.ckpt")
    assert problem is not None and "trainer.max_time=00:00:01:00 is no more than that" in problem
    assert spent_time_problem(trainer, checkpoint_with_timer(10.0), "last.ckpt") is None


def test_one_timer_not_in_a_list_is_the_limit():
    trainer = Namespace(max_time=None, callbacks=Namespace(
        class_path="lightning.pytorch.callbacks.Timer", init_args=Namespace(duration="00:01:00:00")))
    problem = spent_time_problem(trainer, checkpoint_with_timer(3600.0), "last.ckpt")
    assert problem is not None and "the Timer callback's duration=00:01:00:00 is no more than that" in problem


def test_a_damaged_timer_state_is_named_not_a_traceback():
    """A Timer state of inf or NaN seconds (a damaged checkpoint) crashed the check in math.ceil."""
    for spent in (float("inf"), float("nan")):
        problem = spent_time_problem({"max_time": "00:01:00:00"}, checkpoint_with_timer(spent), "last.ckpt")
        assert problem is not None and problem.startswith("--ckpt_path last.ckpt: its Timer state (callbacks.Timer."
                                                          f"time_elapsed.train) holds {spent} seconds"), problem
