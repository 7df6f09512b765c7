"""Local generation: the adapter path decodes exactly as plain transformers does with the merged export, batched or
not; papers are cut by the training rule; 4-bit loads."""

import json
import subprocess
import sys

import pytest

from lightning_review.export import export_merged
from lightning_review.generation.decoding import DecodingSettings
from lightning_review.generation.local import LocalGenerator, load_generation_model
from lightning_review.data.records import read_papers
from tests.conftest import run_cli

PLAIN_GREEDY = """
import json, sys, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
assert not any(name.startswith("lightning_review") for name in sys.modules)
out = []
for prompt in json.load(open(sys.argv[2])):
    ids = torch.tensor([prompt])
    new = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=24)
    out.append(new[0, len(prompt):].tolist())
json.dump(out, open(sys.argv[3], "w"))
"""


@pytest.fixture(scope="module")
def merged_dir(adapter_dir, tmp_path_factory):
    return export_merged(str(adapter_dir), str(tmp_path_factory.mktemp("merged") / "merged"), dtype="float32")


@pytest.fixture(scope="module")
def generator(adapter_dir):
    model, tokenizer = load_generation_model(adapter_dir=str(adapter_dir), dtype="float32", device="cpu")
    return LocalGenerator(model, tokenizer, DecodingSettings(max_new_tokens=24), batch_size=3)


def test_greedy_adapter_generation_equals_plain_transformers_on_the_merged_weights(generator, merged_dir,
                                                                                  papers_file, tmp_path):
    prepared = generator.prepare(list(read_papers(papers_file)))
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([p.prompt_ids for p in prepared]))
    subprocess.run([sys.executable, "-c", PLAIN_GREEDY, str(merged_dir), str(prompts), str(tmp_path / "plain.json")],
                   check=True)
    plain = json.loads((tmp_path / "plain.json").read_text())

    ours = {}
    for batch in generator.batches(prepared):  # batches of 3 of different lengths: left padding is exercised
        assert len(batch) > 1 or len(prepared) % 3 == 1
        for record in generator.generate(batch):
            ours[record["id"]] = record
    eos = generator.tokenizer.eos_token_id
    for paper, expected in zip(prepared, plain):
        expected = expected[:expected.index(eos)] if eos in expected else expected
        record = ours[paper.id]
        assert record["review"] == generator.tokenizer.decode(expected, skip_special_tokens=True).strip()
        assert record["generated_tokens"] == len(expected)
        assert record["prompt_tokens"] == len(paper.prompt_ids)
    assert len({r["review"] for r in ours.values()}) > 1  # different papers, different reviews: a real comparison


def test_a_paper_longer_than_the_context_is_cut_by_the_training_rule(generator, papers_file):
    prepared = {p.id: p for p in generator.prepare(list(read_papers(papers_file)))}
    long = prepared["p4"]
    assert long.paper_tokens_removed > 0
    # prompt + max_new_tokens fill the context exactly: the adapter's 512 (256 x RoPE factor 2)
    assert len(long.prompt_ids) + generator.settings.max_new_tokens == 512 == generator.max_context
    assert all(p.paper_tokens_removed == 0 for k, p in prepared.items() if k != "p4")
    # the same cut as training's ReviewPromptTokenizer.fit with a review as long as max_new_tokens
    fitted, removed = generator.prompts.fit(generator.tokenizer(dict(read_papers(papers_file))["p4"],
                                                                add_special_tokens=False)["input_ids"], [0] * 24)
    assert fitted == long.prompt_ids and removed == long.paper_tokens_removed


def test_batches_run_longest_first(generator, papers_file):
    lengths = [len(p.prompt_ids) for batch in generator.batches(generator.prepare(list(read_papers(papers_file))))
               for p in batch]
    assert lengths == sorted(lengths, reverse=True)


def test_sampling_is_reproducible_and_differs_from_greedy(generator, papers_file):
    batch = next(generator.batches(generator.prepare(list(read_papers(papers_file))[:2])))
    greedy = generator.generate(batch)
    generator.settings = DecodingSettings(max_new_tokens=24, temperature=1.5, top_p=0.95, seed=7)
    try:
        sampled, again = generator.generate(batch), generator.generate(batch)
    finally:
        generator.settings = DecodingSettings(max_new_tokens=24)
    assert [r["review"] for r in sampled] == [r["review"] for r in again]
    assert [r["review"] for r in sampled] != [r["review"] for r in greedy]


def test_generate_command_with_a_4bit_base_writes_the_output_format(adapter_dir, papers_file, tmp_path):
    out = tmp_path / "reviews.jsonl"
    proc = run_cli("generate", f"--papers={papers_file}", f"--adapter_dir={adapter_dir}", f"--output_file={out}",
                   "--quantize=true", "--max_new_tokens=8", "--batch_size=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [f"p{i}" for i in range(5)]
    for row in rows:
        assert {"id", "system", "review", "prompt_tokens", "generated_tokens", "truncated", "settings"} <= set(row)
        assert row["settings"]["quantize"] is True and row["settings"]["max_new_tokens"] == 8
        assert 0 < row["generated_tokens"] <= 8
    assert [r["truncated"] for r in sorted(rows, key=lambda r: r["id"])] == [False] * 4 + [True]
    assert "written=5" in proc.stdout and "truncated=1" in proc.stdout


def test_generate_refuses_both_or_neither_model_source(tmp_path, papers_file):
    proc = run_cli("generate", f"--papers={papers_file}", cwd=tmp_path)
    assert proc.returncode != 0 and "give either --model_dir" in proc.stderr


def test_a_recorded_base_that_is_gone_is_named_as_the_adapters_in_generate_too(tmp_path):
    """generate loads through load_generation_model, as perplexity does: the adapter's record is named, not a path
    the user never typed."""
    from lightning_review.artifacts.checkpoint_files import CheckpointError
    from lightning_review.generation.local import load_generation_model
    from tests.artifacts.test_adapter_record import META, make_adapter

    adapter = make_adapter(tmp_path / "adapter", meta={**META, "checkpoint_dir": str(tmp_path / "moved")})
    with pytest.raises(CheckpointError, match="lightning_review.json records the base model .*moved', which "
                                              "cannot be used here .*give its directory as --checkpoint_dir"):
        load_generation_model(adapter_dir=str(adapter), device="cpu")
