"""``python -m lightning_review perplexity``: held-out perplexity at several context lengths, of a base checkpoint
(optionally with linear RoPE interpolation, untrained), an adapter (its RoPE scaling from its record) or a merged
export; JSON, a Markdown table and a plot of perplexity against length."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

from ..artifacts.model_limits import MAX_SEQ_LENGTH, ROPE_POSITIONS
from ..errors import UserError
from ..safe_paths import refuse_output_over_input, refuse_unwritable_output, write_text_atomic
from .perplexity import as_dicts, perplexity_at_lengths, results_table

OUTPUTS = ("perplexity.json", "perplexity.md", "perplexity.png")


def parse_lengths(lengths: str | int | list[int] | tuple[int, ...]) -> list[int]:
    """``2048,4096,8192`` (or a list) -> sorted distinct lengths, each at least 2 and at most MAX_SEQ_LENGTH (2**24,
    RoPE's float32 positions)."""
    items = str(lengths).strip("[]() ").split(",") if not isinstance(lengths, (list, tuple)) else lengths
    try:
        values = sorted({int(str(item).strip()) for item in items if str(item).strip()})
    except ValueError:
        raise UserError(f"--lengths {lengths!r}: give token counts separated by commas, e.g. 2048,4096,8192") from None
    if not values or values[0] < 2:
        raise UserError(f"--lengths {lengths!r}: give at least one length of 2 tokens or more")
    if values[-1] > MAX_SEQ_LENGTH:
        raise UserError(f"--lengths {lengths!r}: give lengths of at most {MAX_SEQ_LENGTH:,} (2**24) tokens: "
                        f"{ROPE_POSITIONS}, so a longer window's tokens would share a position's rotation (the "
                        f"longest given is {values[-1]:,})")
    return values


def check_numbers(max_windows: int | None, model_max_length: int | None) -> None:
    """Each count flag at least 1: a 0 would otherwise mean "no cap" / "no scaling" and a negative cap would drop
    the last windows, both silently; --model_max_length at most MAX_SEQ_LENGTH (2**24, RoPE's float32 positions)."""
    for flag, value in (("--max_windows", max_windows), ("--model_max_length", model_max_length)):
        if value is not None and value < 1:
            raise UserError(f"{flag} {value}: give a whole number of 1 or more, or leave {flag} out "
                            f"({'every window is scored' if flag == '--max_windows' else 'no RoPE interpolation'})")
    if model_max_length is not None and model_max_length > MAX_SEQ_LENGTH:
        raise UserError(f"--model_max_length {model_max_length}: give at most {MAX_SEQ_LENGTH:,} (2**24): "
                        f"{ROPE_POSITIONS}, so further tokens would share a position's rotation")


def check_device(device: str | None) -> str:
    """``--device`` made concrete (cuda when available) and checked before anything loads: an unknown name or
    cuda without a GPU is one line, not torch's traceback after the data is read."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise UserError(f"--device {device!r}: not a device; give cuda, cuda:<index> or cpu") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA GPU is available here; give --device cpu or leave it out")
    if kind not in ("cuda", "cpu"):
        raise UserError(f"--device {device!r}: perplexity runs on cuda or cpu")
    return device


def held_out_documents(data_file: str | Path) -> list[tuple[str, str]]:
    """(id, text) of each distinct paper in ``data_file``: a papers JSONL (``id``, ``paper`` a line), long documents
    without reviews (``text`` or ``paper`` a line, as the text task reads them) or any record format the training
    reader takes (papers with several reviews count once)."""
    from ..data.papers import first_of_each_paper
    from ..data.readers import read_records
    from ..data.records import iter_json_objects, read_papers

    path = Path(data_file)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such data file")
    first = next(iter_json_objects(path), (None, {}))[1] if path.is_file() and path.suffix == ".jsonl" else {}
    if "paper" in first and not {"review", "reviews", "messages"} & set(first):
        documents = list(dict(read_papers(path)).items())
    else:  # one document per paper, not per review: a paper scored three times would flatter long windows
        records = read_records(path, need_review=False).records  # perplexity reads the paper alone
        documents = [(r.paper_id or r.id, r.paper) for r in first_of_each_paper(records)]
    if not documents:
        raise UserError(f"{path}: no paper to evaluate")
    return documents


def load_model(checkpoint_dir: str | None, adapter_dir: str | None, model_dir: str | None,
               model_max_length: int | None, quantize: bool, dtype: str, device: str):
    """(model, tokenizer, description) for one of the three sources."""
    import torch

    from ..generation.local import load_generation_model
    from ..artifacts.checkpoint_files import load_tokenizer, read_llama_config
    from ..model.loading import load_llama

    given = [name for name, value in (("checkpoint_dir", checkpoint_dir), ("adapter_dir", adapter_dir),
                                      ("model_dir", model_dir)) if value]
    if len(given) != 1 and not (given == ["checkpoint_dir", "adapter_dir"]):
        raise UserError("give one model: --checkpoint_dir (a base, with --model_max_length for untrained RoPE "
                        "interpolation), --adapter_dir (an adapter of lightning_review; --checkpoint_dir if its "
                        "base moved) or --model_dir (a merged export)")
    if model_dir and model_max_length:
        raise UserError("--model_max_length does not go with --model_dir: a merged export is loaded as it is, with "
                        "the RoPE scaling in its config.json; give the base as --checkpoint_dir for untrained "
                        "interpolation")
    if adapter_dir:
        if model_max_length:
            raise UserError("--model_max_length does not go with --adapter_dir: an adapter is evaluated with the "
                            "RoPE scaling it was trained with")
        model, tokenizer = load_generation_model(adapter_dir=adapter_dir, checkpoint_dir=checkpoint_dir,
                                                 quantize=quantize, dtype=dtype, device=device)
        return model, tokenizer, {"adapter_dir": adapter_dir}
    directory = checkpoint_dir or model_dir
    if model_max_length:
        native = read_llama_config(directory).max_position_embeddings
        if model_max_length <= native:
            raise UserError(f"--model_max_length {model_max_length} is not above the context of {directory} "
                            f"({native:,} positions): there is nothing to interpolate; give more than {native:,}, "
                            "or leave --model_max_length out to score the base as it is")
    model = load_llama(directory, quantize=quantize, model_max_length=model_max_length, device=device,
                       dtype=getattr(torch, dtype), attn_implementation="sdpa")
    model.eval()
    return model, load_tokenizer(directory), {"model": directory,
                                                                      "model_max_length": model_max_length}


def perplexity(data_file: str, lengths: str = "2048,4096,8192,16384,32768", checkpoint_dir: str | None = None,
               adapter_dir: str | None = None, model_dir: str | None = None, model_max_length: int | None = None,
               join: bool = False, max_windows: int | None = None, output_dir: str = "perplexity",
               quantize: bool = False, dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto",
               device: str | None = None, plot: bool = True) -> dict:
    """Perplexity of held-out documents at several context lengths (non-overlapping windows, full attention).

    Args:
        data_file: held-out papers: a papers JSONL (id, paper) or any training data format.
        lengths: context lengths, comma separated.
        checkpoint_dir: a base checkpoint (a directory, builtin:smollm2-135m, a .gguf file or a Hub id).
        adapter_dir: an adapter written by lightning_review (its RoPE scaling is used).
        model_dir: a merged export or any Llama checkpoint, loaded as it is.
        model_max_length: with checkpoint_dir: linear RoPE interpolation to this context, untrained.
        join: join the documents into one stream (end-of-sequence token between them) before windowing;
            otherwise documents shorter than a length are skipped there (and counted).
        max_windows: score at most this many windows per length (the first ones).
        output_dir: where perplexity.json, perplexity.md and perplexity.png go.
        quantize: a 4-bit NF4 base (CUDA).
        dtype: auto is bfloat16 on a GPU and float32 on the CPU.
        device: cuda or cpu (default: cuda when available).
        plot: write perplexity.png.
    """
    from ..model.loading import dtype_name

    lengths_list = parse_lengths(lengths)
    check_numbers(max_windows, model_max_length)
    out = Path(output_dir)
    refuse_unwritable_output(out, "--output_dir", directory=True, files=OUTPUTS)  # before the model loads and scores
    for name in OUTPUTS:
        refuse_output_over_input(out / name, [data_file], "--output_dir")
    device = check_device(device)
    dtype = dtype_name(dtype, device)
    documents = held_out_documents(data_file)
    started = time.perf_counter()
    model, tokenizer, source = load_model(checkpoint_dir, adapter_dir, model_dir, model_max_length, quantize, dtype,
                                          device)
    encoded = tokenizer([text for _, text in documents], add_special_tokens=False)["input_ids"]
    results = perplexity_at_lengths(model, encoded, lengths_list, join=join, separator=tokenizer.eos_token_id,
                                    max_windows=max_windows, progress=True)
    config = model.config
    summary = {"source": source, "data_file": str(data_file), "documents": len(documents),
               "document_tokens": {paper_id: len(ids) for (paper_id, _), ids in zip(documents, encoded)},
               "joined": join, "separator": tokenizer.eos_token if join else None, "max_windows": max_windows,
               "dtype": dtype, "device": device, "quantize": quantize,
               "rope_parameters": getattr(config, "rope_parameters", None),
               "max_position_embeddings": config.max_position_embeddings,
               "results": as_dicts(results), "seconds": round(time.perf_counter() - started, 1)}
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "perplexity.json", json.dumps(summary, indent=1))
    how = "documents joined into one stream" if join else "each document on its own"
    write_text_atomic(out / "perplexity.md", f"Perplexity of {len(documents)} documents ({how}), "
                                             f"{json.dumps(source)}\n\n{results_table(results)}\n")
    print(results_table(results))
    if not plot and (out / "perplexity.png").exists():  # an earlier run's plot would stand beside these results
        (out / "perplexity.png").unlink()
        print(f"{out / 'perplexity.png'} of an earlier run removed (--plot false: it would not show these results)")
    if plot and not plot_perplexity(results, out / "perplexity.png", title=json.dumps(source)):
        separators = len(encoded) - 1 if tokenizer.eos_token_id is not None else 0
        longest = sum(map(len, encoded)) + separators if join else max(map(len, encoded))
        print(f"no plot: no length had a window to score (lengths {', '.join(f'{n:,}' for n in lengths_list)}; "
              f"{'the joined stream' if join else 'the longest document'} is {longest:,} tokens), so "
              f"{out / 'perplexity.png'} is not written; give --lengths of at most {longest:,} to plot")
    return summary


def plot_perplexity(results, path: Path, title: str) -> bool:
    """Perplexity against length, of the lengths that had a window; with none there is nothing to draw: False,
    and no file (a plot left from an earlier run is removed, so none stands beside results it does not show)."""
    measured = [r for r in results if r.perplexity is not None]
    if not measured:
        path.unlink(missing_ok=True)
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r.length for r in measured], [r.perplexity for r in measured], marker="o")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("perplexity")
    ax.set_title(title[:80], fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return True
