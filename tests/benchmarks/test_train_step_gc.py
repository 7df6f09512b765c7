"""train_step.py's GcRecorder: Python's full (generation 2) garbage collections inside each timed step, filed in
each job's entry as gc_full_collections / gc_full_collection_ms beside step_s."""

import gc

import pytest

import train_step


def test_a_full_collection_inside_a_step_is_counted_with_its_time():
    recorder = train_step.GcRecorder()
    recorder.start_step()
    gc.collect()
    recorder.end_step()
    recorder.start_step()
    recorder.end_step()
    assert recorder.full_collections == [1, 0]
    assert recorder.full_collection_ms[0] > 0 and recorder.full_collection_ms[1] == 0


def test_only_full_collections_inside_kept_steps_are_counted():
    recorder = train_step.GcRecorder()
    recorder.start_step()
    gc.collect(0)  # a young generation's collection
    recorder.end_step()
    gc.collect()  # between steps: not installed
    assert recorder._on_gc not in gc.callbacks
    recorder.start_step()
    gc.collect()
    recorder.end_step(keep=False)  # an untimed warm-up step
    assert recorder.full_collections == [0] and recorder.full_collection_ms == [0.0]


def test_each_job_entry_has_the_collections_of_its_timed_steps(tiny_train_step_run):
    for label, _, _ in tiny_train_step_run.jobs:
        entry = tiny_train_step_run.result[label]["baseline"]
        assert len(entry["gc_full_collections"]) == len(entry["gc_full_collection_ms"]) == len(entry["step_s"])
        assert all(n >= 0 for n in entry["gc_full_collections"])


def test_freeze_gc_false_is_a_module_setting_of_a_variant():
    name, settings, _, _ = train_step.parse_variant("ours:freeze_gc=false")
    assert name == "ours" and settings == {"freeze_gc": False}


def test_a_step_that_raised_leaves_no_callback_and_too_few_steps_are_refused():
    recorder = train_step.GcRecorder()
    recorder.start_step()  # the step raises here: end_step is never reached
    recorder.close()
    assert recorder._on_gc not in gc.callbacks
    recorder.start_step()
    recorder.end_step()
    assert recorder.last(1) == ([0], [0.0]) and recorder.last(0) == ([], [])
    with pytest.raises(RuntimeError, match="kept 1 steps, fewer than the 2 timed"):
        recorder.last(2)
