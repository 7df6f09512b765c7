"""``python -m lightning_review prepare``: read, validate, tokenize (into the cache training reuses) and pack a
dataset, and say what it holds: records, papers, token lengths, truncations at max_seq_length, packing efficiency;
for the text task (``--task text``: documents without reviews, as fit's ``data.task text`` reads them), the
documents' token lengths and the rows their joined stream makes; as JSON, with a PNG histogram of the lengths. No
output may be one of the data files, and each is written under a temporary name and renamed, so an error never
leaves half a file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

import numpy as np

from .artifacts.checkpoint_files import check_tokenizer_files
from .data.papers import count_papers
from .data.prompt import DEFAULT_SYSTEM_PROMPT
from .data.readers import Task, rejects_file_problem
from .errors import UserError
from .safe_paths import (atomic_writer, refuse_output_over_input, refuse_unwritable_output, same_file,
                         write_text_atomic)

PERCENTILES = (50, 90, 99)
FLAG = "--"  # how prepare's messages spell its settings: as flags, --rejects_file (fit's are data.rejects_file)


def length_stats(lengths: np.ndarray) -> dict:
    if len(lengths) == 0:
        return {"count": 0}
    out = {"count": int(len(lengths)), "total": int(lengths.sum()), "mean": float(lengths.mean()),
           "min": int(lengths.min()), "max": int(lengths.max())}
    out.update({f"p{q}": float(np.percentile(lengths, q)) for q in PERCENTILES})
    return out


def prepare(data_file: str, tokenizer_dir: str, max_seq_length: int = 8192, output_dir: str = "prepared",
            val_file: str | None = None, val_fraction: float = 0.05, data_format: str = "auto",
            column_mapping: dict[str, str] | None = None, on_bad_record: Literal["strict", "skip"] = "strict",
            rejects_file: str | None = None, min_review_chars: int = 20, system_prompt: str = DEFAULT_SYSTEM_PROMPT,
            seed: int = 42, plot: bool = True, rating_line: bool | None = None, task: Task = "review") -> dict:
    """Prepare a dataset once; training with the same settings then reads the tokenize cache.

    Args:
        data_file: the data (any format lightning_review.data.readers reads); for ``task=text``, documents.
        tokenizer_dir: the model's tokenizer (its checkpoint directory).
        max_seq_length: tokens per training row.
        output_dir: where stats.json and lengths.png go (a directory, created if missing).
        val_file: a separate validation file; otherwise val_fraction of the papers.
        val_fraction: papers held out for validation.
        data_format: auto, jsonl, chat, paper_reviews, peerread, json or csv.
        column_mapping: for JSON/CSV, {our field: your column}.
        on_bad_record: strict (stop at the first) or skip (count, write to rejects_file).
        rejects_file: where skipped records are listed (with on_bad_record skip only).
        min_review_chars: shorter reviews are bad records (review task).
        system_prompt: the system prompt of the chat template (a chat line's own system message must be this one).
        seed: of the validation split.
        plot: write lengths.png.
        rating_line: end each target with its rating line (lightning_review.data.rating_line); None: when every
            record has a rating. The same setting as training's data.rating_line, so fit hits the same cache.
            Review task only.
        task: as training's data.task: ``review`` (paper -> review examples) or ``text`` (context extension on
            documents without reviews: each line's ``paper`` or ``text``, reviews not needed; the documents joined
            into one stream cut into rows of max_seq_length). For ``text`` the statistics are each document's
            tokens and the stream's rows and left-out tail; no tokenize cache (training tokenizes text itself).
    """
    from .data.datamodule import (MissingDataFiles, ReviewDataModule, refuse_training_file_as_validation,
                                  tokenize_summary)

    if task == "text" and rating_line is not None:
        raise UserError(f"--rating_line={json.dumps(rating_line)} is for the review task (it ends each review target "
                        "with its rating); the text task trains on documents without targets: leave --rating_line out")
    start = time.perf_counter()
    out = Path(output_dir)
    outputs = ("stats.json", "lengths.png") if plot else ("stats.json",)  # the files written in output_dir
    refuse_unwritable_output(out, "--output_dir", directory=True, files=outputs)  # before the data is read
    for name in outputs:
        refuse_output_over_input(out / name, [data_file, val_file], "--output_dir")
    refuse_bad_rejects_file(rejects_file, on_bad_record, data_file, val_file, out, outputs)
    refuse_training_file_as_validation(data_file, val_file, "--data_file", "--val_file", "--val_fraction")
    check_tokenizer_files(tokenizer_dir)  # named before the data is read, not after
    try:
        dm = ReviewDataModule(train_file=data_file, val_file=val_file, tokenizer_dir=tokenizer_dir,
                              system_prompt=system_prompt, max_seq_length=max_seq_length, val_fraction=val_fraction,
                              seed=seed, data_format=data_format, column_mapping=column_mapping,
                              on_bad_record=on_bad_record, rejects_file=rejects_file,
                              min_review_chars=min_review_chars, rating_line=rating_line, task=task)
    except MissingDataFiles as exc:  # named by prepare's flags, not by fit's data.train_file
        raise UserError(exc.message({"train_file": "--data_file", "val_file": "--val_file"})) from None
    dm.prefix = FLAG  # its messages and warnings (reading, splitting, the rating line) name prepare's flags
    dm.prepare_data()
    dm.setup("fit")
    stats: dict = {"data_file": data_file, "task": task, "max_seq_length": max_seq_length,
                   **({"rating_line": dm.rating_line} if task == "review" else {}), "read": dm.stats.get("read", {})}
    all_lengths = {}
    for split, records in dm.split_records().items():
        lengths = all_lengths[split] = dm.token_lengths(split)
        stats[split] = {"records": len(records), "papers": count_papers(records),
                        **dm.stats.get(split, {}), **{k: length_stats(v) for k, v in lengths.items()}}
    stats["seconds"] = time.perf_counter() - start
    write_text_atomic(out / "stats.json", json.dumps(stats, indent=1, default=float))
    if plot:
        plot_lengths(all_lengths["train"], max_seq_length, out / "lengths.png",
                     "documents" if task == "text" else "examples")
    train = stats["train"]
    if task == "text":
        print(f"{train['papers']} training documents ({train['records']} records); document tokens p50/p90/max "
              f"{_percentiles(train['document_tokens'])}; joined: {train['stream_tokens']:,} tokens, "
              f"{train['examples']} rows of {max_seq_length} ({train['tokens_left_out']:,} tokens of the tail left "
              f"out); written to {out}/stats.json")
    else:
        print(f"{train['records']} training records on {train['papers']} papers; paper tokens p50/p90/max "
              f"{_percentiles(train['paper_tokens'])}; truncated at {max_seq_length}: {train.get('papers_truncated')}; "
              f"packing efficiency {train.get('packing_efficiency', 0):.1%}; "
              f"{tokenize_summary(stats['train'], stats['val'])}; written to {out}/stats.json")
    return stats


def refuse_bad_rejects_file(rejects_file: str | None, on_bad_record: str, data_file: str, val_file: str | None,
                            out: Path, outputs: tuple[str, ...]) -> None:
    """``--rejects_file`` refused before the data is read, named as prepare's flag (the DataModule checks it too, but
    names fit's ``data.rejects_file``): given without ``--on_bad_record skip``, a data file, ``--output_dir`` itself,
    or a file prepare writes there; with ``--val_file``, its ``.val`` list too."""
    from .data.datamodule import refuse_outputs_over_inputs, rejects_lists

    if rejects_file is None:
        return
    problem = rejects_file_problem(rejects_file, on_bad_record, FLAG)
    if problem:
        raise UserError(problem)
    refuse_outputs_over_inputs(data_file, val_file, None, rejects_file, FLAG)  # a data file, or a directory
    for path, flag in rejects_lists(rejects_file, val_file, FLAG):
        if same_file(path, out):
            raise UserError(f"{flag}={path} is --output_dir, the directory prepare writes {' and '.join(outputs)} "
                            "in; give --rejects_file a path outside it")
        for name in outputs:
            if same_file(path, out / name):
                raise UserError(f"{flag}={path} is the {name} prepare writes in --output_dir: one would replace the "
                                "other; give --rejects_file another path")


def _percentiles(stats: dict) -> str:
    """p50/p90/max of a length_stats dict, 0 where it counts nothing."""
    return f"{stats.get('p50', 0):,.0f}/{stats.get('p90', 0):,.0f}/{stats.get('max', 0):,}"


def plot_lengths(lengths: dict[str, np.ndarray], max_seq_length: int, path: Path, what: str = "examples") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, values in lengths.items():
        if len(values):
            ax.hist(values, bins=60, alpha=0.5, label=name.replace("_", " "))
    ax.axvline(max_seq_length, color="black", linestyle="--", label=f"max_seq_length {max_seq_length:,}")
    ax.set_xlabel("tokens")
    ax.set_ylabel(what)
    ax.set_title(f"Token lengths of the training {what}")
    ax.legend()
    fig.tight_layout()
    with atomic_writer(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)
