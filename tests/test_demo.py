"""Built-in assets: building them leaves the run's random state alone, so a cold cache changes nothing."""

import random

import numpy as np
import torch
from safetensors.torch import load_file

from lightning_review.demo import write_tiny_llama


def test_building_the_tiny_llama_leaves_the_global_random_state_alone(tmp_path):
    torch.manual_seed(42)  # as seed_everything does before the first run builds the asset
    random.seed(42)
    np.random.seed(42)
    before = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    write_tiny_llama(tmp_path / "a")
    after = torch.get_rng_state(), random.getstate(), np.random.get_state()[1]
    assert torch.equal(before[0], after[0]) and before[1] == after[1] and np.array_equal(before[2], after[2])

    write_tiny_llama(tmp_path / "b")  # the seed alone decides the weights
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert 0.015 < a["model.layers.0.mlp.up_proj.weight"].std() < 0.025  # transformers' init: normal(0, 0.02)
