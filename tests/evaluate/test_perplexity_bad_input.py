"""perplexity's flags checked before the model loads: counts of 0 or below, --model_max_length with a merged
model, an unusable --device or --output_dir, a truncated weights file are each one line naming the flag or file;
and --plot false leaves no plot of an earlier run beside new results."""

import re
import shutil

import pytest

from lightning_review.artifacts.checkpoint_files import CheckpointError
from lightning_review.errors import UserError
from lightning_review.evaluate.perplexity_command import perplexity
from tests.conftest import run_cli, write_jsonl


@pytest.fixture
def papers(tmp_path):
    return str(write_jsonl(tmp_path / "papers.jsonl", [{"id": "a", "paper": "graphs and words " * 40}]))


@pytest.mark.parametrize("flag, value", [("max_windows", 0), ("max_windows", -1), ("model_max_length", 0),
                                         ("model_max_length", -5)])
def test_counts_below_one_are_refused_not_read_as_no_cap(tmp_path, tiny_llama_dir, papers, flag, value):
    # --max_windows 0 scored every window and -1 all but the last; --model_max_length 0 or -5 did no scaling
    with pytest.raises(UserError, match=f"--{flag} {value}: give a whole number of 1 or more"):
        perplexity(papers, lengths="64", checkpoint_dir=str(tiny_llama_dir), output_dir=str(tmp_path / "o"),
                   device="cpu", **{flag: value})
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("length", [2**24 + 1, 99999999999999])
def test_a_model_max_length_beyond_ropes_float32_positions_is_refused(tmp_path, tiny_llama_dir, papers, length):
    # it was accepted: the base loaded with RoPE interpolated by ceil(length / 256) and was scored
    with pytest.raises(UserError, match=re.escape(f"--model_max_length {length}: give at most 16,777,216 (2**24): the "
                                                  "model's RoPE takes positions as float32")):
        perplexity(papers, lengths="64", checkpoint_dir=str(tiny_llama_dir), model_max_length=length,
                   output_dir=str(tmp_path / "o"), device="cpu")
    assert not (tmp_path / "o").exists()


def test_model_max_length_with_a_merged_model_is_refused(tmp_path, tiny_llama_dir, papers):
    with pytest.raises(UserError, match="--model_max_length does not go with --model_dir"):
        perplexity(papers, lengths="64", model_dir=str(tiny_llama_dir), model_max_length=1024,
                   output_dir=str(tmp_path / "o"), device="cpu")


@pytest.mark.parametrize("device, expected", [("xyz", "--device 'xyz': not a device"),
                                              ("meta", "--device 'meta': perplexity runs on cuda or cpu")])
def test_a_bad_device_is_one_line(tmp_path, tiny_llama_dir, papers, device, expected):
    with pytest.raises(UserError, match=expected):
        perplexity(papers, lengths="64", checkpoint_dir=str(tiny_llama_dir), output_dir=str(tmp_path / "o"),
                   device=device)


def test_cuda_without_a_gpu_is_one_line(tmp_path, tiny_llama_dir, papers):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(UserError, match="--device cuda: no CUDA GPU is available here"):
        perplexity(papers, lengths="64", checkpoint_dir=str(tiny_llama_dir), output_dir=str(tmp_path / "o"),
                   device="cuda")


def test_an_output_dir_that_is_a_file_is_refused_before_the_model_runs(tmp_path, tiny_llama_dir, papers):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    proc = run_cli("perplexity", "--data_file", papers, "--checkpoint_dir", str(tiny_llama_dir), "--lengths", "64",
                   "--output_dir", str(taken / "sub"), cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr  # was a NotADirectoryError after scoring
    assert proc.stderr.strip().splitlines()[-1] == (f"error: --output_dir={taken / 'sub'} cannot be created: "
                                                    f"{taken} is a file, not a directory; give --output_dir a path "
                                                    "under a directory")


def test_an_output_file_that_is_a_directory_is_named_with_the_output_dirs_advice(tmp_path, tiny_llama_dir, papers):
    out = tmp_path / "o"
    (out / "perplexity.json").mkdir(parents=True)
    proc = run_cli("perplexity", "--data_file", papers, "--checkpoint_dir", str(tiny_llama_dir), "--lengths", "64",
                   "--output_dir", str(out), cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    # was "--output_dir=o/perplexity.json is a directory ...; give --output_dir a file path": a file for a directory
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {out / 'perplexity.json'} is a directory, but --output_dir={out} has the file perplexity.json "
        "written there; move or remove that directory, or give --output_dir another directory")


def test_a_truncated_model_is_named(tmp_path, tiny_llama_dir, papers):
    model = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=f"{weights}: corrupt weights"):
        perplexity(papers, lengths="64", model_dir=str(model), output_dir=str(tmp_path / "o"), device="cpu")


def test_plot_false_removes_an_earlier_runs_plot(tmp_path, tiny_llama_dir, papers, capsys):
    out = tmp_path / "ppl"
    out.mkdir()
    (out / "perplexity.png").write_bytes(b"an earlier run's plot")
    perplexity(papers, lengths="64", checkpoint_dir=str(tiny_llama_dir), output_dir=str(out), device="cpu",
               max_windows=1, plot=False)
    assert (out / "perplexity.json").is_file() and not (out / "perplexity.png").exists()
    assert "perplexity.png of an earlier run removed" in capsys.readouterr().out


@pytest.mark.parametrize("length", [100, 256])
def test_a_model_max_length_within_the_models_context_is_refused(tmp_path, tiny_llama_dir, papers, length):
    # it loaded the base unscaled and recorded "model_max_length": 100 beside its results
    with pytest.raises(UserError, match=f"--model_max_length {length} is not above the context of .* \\(256 "
                                        "positions\\): there is nothing to interpolate"):
        perplexity(papers, lengths="64", checkpoint_dir=str(tiny_llama_dir), model_max_length=length,
                   output_dir=str(tmp_path / "o"), device="cpu")
    assert not (tmp_path / "o").exists()


def test_a_recorded_base_that_is_gone_is_named_as_the_adapters(tmp_path, papers):
    from tests.artifacts.test_adapter_record import META, make_adapter

    adapter = make_adapter(tmp_path / "adapter", meta={**META, "checkpoint_dir": str(tmp_path / "moved")})
    with pytest.raises(CheckpointError, match="lightning_review.json records the base model .*moved', which "
                                              "cannot be used here .*give its directory as --checkpoint_dir"):
        perplexity(papers, lengths="64", adapter_dir=str(adapter), output_dir=str(tmp_path / "o"), device="cpu")
