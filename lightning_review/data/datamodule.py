"""ReviewDataModule: paper->review JSONL -> Llama-2 chat prompts -> (packed) rows -> batches with document boundaries."""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path
from typing import Literal, Sequence

import lightning as L
import numpy as np
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader

from ..artifacts.checkpoint_files import load_tokenizer
from ..artifacts.model_limits import MAX_SEQ_LENGTH, ROPE_POSITIONS
from ..artifacts.model_sources import BUILTIN, DEMO_REVIEWS, TINY_LLAMA, model_path, resolve
from ..artifacts.settings_check import config_differences, parameter_defaults, refuse_config_change
from ..errors import UserError
from ..safe_paths import refuse_output_over_input, refuse_unwritable_output, same_file
from .packing import collate_rows, pack_best_fit_decreasing, packing_efficiency
from .papers import first_of_each_paper, paper_groups
from .prompt import DEFAULT_SYSTEM_PROMPT, ReviewPromptTokenizer
from .rating_line import resolve_rating_line, training_target
from .readers import (READ_SETTINGS, Task, check_column_mapping, read_records, refuse_other_system_messages,
                      rejects_file_problem)
from .records import Record, read_papers, text_key
from .token_cache import load_or_build
from .resumable import ResumableLoader, ResumableSampler, loader_generator

# Settings that may change when a run is resumed: they do not change what is trained on.
RESUMABLE_DATA_SETTINGS = ("num_workers", "predict_file", "rejects_file", "tokenize_cache")
# setting -> (its test, the allowed values in words): checked when the DataModule is built, the field named, as the
# model's settings are (lightning_review.training.module.SETTING_RANGES); a bad one would otherwise fail in torch's
# DataLoader or the collate function, after the data was read and tokenized.
DATA_SETTING_RANGES = {
    "max_seq_length": (lambda v: v >= 64, "at least 64"),
    "val_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "batch_size": (lambda v: v > 0, "> 0"),
    "num_workers": (lambda v: v >= 0, ">= 0 (0: load in the main process)"),
    "pad_to_multiple_of": (lambda v: v > 0, "> 0 (1: no rounding)"),
    "min_review_chars": (lambda v: v >= 0, ">= 0"),
}


def max_seq_length_problem(length) -> str | None:
    """``data.max_seq_length`` beyond MAX_SEQ_LENGTH, with why; its lower bound is DATA_SETTING_RANGES'."""
    if isinstance(length, (int, float)) and not isinstance(length, bool) and length > MAX_SEQ_LENGTH:
        return (f"data.max_seq_length must be at most {MAX_SEQ_LENGTH:,} (2**24) tokens a row, got {length}: "
                f"{ROPE_POSITIONS}, so further tokens would share a position's rotation; give the row length to "
                f"train on (e.g. 8192, 32768 or 262144)")
    return None


def split_by_paper(records: Sequence[Record], val_fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Train/val split over papers, never over reviews: all reviews of one paper (one id, or one text up to
    whitespace: lightning_review.data.papers) land on the same side, and at least one paper stays for training."""
    groups = sorted(paper_groups(records), key=lambda g: min(records[i].paper_key for i in g))
    random.Random(seed).shuffle(groups)
    n_val = round(len(groups) * val_fraction)
    if val_fraction > 0 and n_val == 0 and len(groups) > 1:
        n_val = 1
    n_val = max(0, min(n_val, len(groups) - 1))
    train = [records[i] for g in groups[n_val:] for i in g]
    val = [records[i] for g in groups[:n_val] for i in g]
    return train, val


class ReviewDataModule(L.LightningDataModule):
    """Paper->review pairs for LongQLoRA fine-tuning.

    Args:
        train_file: JSONL, one ``{"paper": ..., "review": ...}`` a line (optional ``id``, ``title``, ``rating``);
            for ``task="text"``, documents: ``{"text": ...}`` or ``{"paper": ...}`` a line, reviews optional.
        val_file: a separate validation JSONL; when absent, ``val_fraction`` of the papers of ``train_file``.
        tokenizer_dir: where the tokenizer lives (the CLI links it to ``model.checkpoint_dir``).
        system_prompt: the Llama-2 chat system prompt, the same for training and generation (``generate
            --system_prompt``), one for every example: chat data whose lines carry another system message is
            refused, naming the line (lightning_review.data.readers.refuse_other_system_messages).
        max_seq_length: tokens per row; papers are truncated to fit, reviews never.
        packing: several examples per row (each isolated by its own positions and attention), up to
            ``max_seq_length`` tokens a row; without it, one example per row padded to the batch's longest.
        packed_width: the width of a packed row: ``max_seq_length`` (every row padded to it: one shape, the
            choice for FlexAttention, which compiles once per shape) or ``documents`` (as wide as its documents,
            rounded up to ``pad_to_multiple_of``): no compute on padding, the same loss and gradients per document
            (tested). On the 13B length mix (benchmarks/train_step.py ``width=fit``, one H200) 99.7% real tokens
            against 87.0%, 5,169 against 4,559 tokens/s. ``model.attention_backend auto`` suits both: it takes
            no backend that compiles per width (``flex`` would, for each new width under 8K tokens).
        predict_file: papers to review in ``predict`` (JSONL with ``paper`` and optional ``id``).
        data_format: ``auto`` or one of lightning_review.data.readers' formats (jsonl, chat, paper_reviews,
            peerread, json, csv).
        on_bad_record: ``strict`` stops at the first bad record; ``skip`` counts it by reason and writes it to
            ``rejects_file``. A paper id given to different paper texts is a bad record too (under ``skip``, all
            records of that id are left out).
        rejects_file: where ``skip`` lists what it left out (``<rejects_file>.val`` for ``val_file``); never one
            of the data files. Refused without ``on_bad_record="skip"`` (``strict`` lists nothing).
        min_review_chars: shorter reviews are bad records.
        column_mapping: for JSON/CSV data, {our field: your column} (fields: id, paper, review, title, rating).
        task: ``review`` (paper -> review examples, the loss on the review) or ``text``: the papers' text alone,
            joined into one stream (end-of-sequence between papers) and cut into rows of exactly
            ``max_seq_length`` with the loss on every token, positions running over the whole row: the
            context-extension stage of LongLoRA / LongQLoRA, before review fine-tuning (lightning_review.data.
            text_stream). The stream's tail shorter than a row is left out (logged). The text task needs no
            reviews: each line's document is its ``paper`` or ``text`` field (``{"text": "..."}`` a line, as plain
            long-text corpora come; reviews, ratings and ``min_review_chars`` are not read), each paper once
            however many reviews it has.
        rating_line: end every training target with one line stating the review's rating (``Rating: 7``;
            lightning_review.data.rating_line), which ``generate`` reads back and ``evaluate`` scores against the
            human ratings. None (default): on when every record has a rating, off when none has; data where only
            some have one is refused (choose true or false).
        tokenize_cache: keep tokenized examples on disk ($LIGHTNING_REVIEW_CACHE/tokenized), built once on the
            first process of each machine and read by the others and by later runs.
    """

    def __init__(self, train_file: str = DEMO_REVIEWS, val_file: str | None = None, tokenizer_dir: str = TINY_LLAMA,
                 system_prompt: str = DEFAULT_SYSTEM_PROMPT, max_seq_length: int = 8192, val_fraction: float = 0.05,
                 packing: bool = True, batch_size: int = 1, num_workers: int = 0, seed: int = 42,
                 predict_file: str | None = None, pad_to_multiple_of: int = 64, data_format: str = "auto",
                 on_bad_record: Literal["strict", "skip"] = "strict", rejects_file: str | None = None,
                 min_review_chars: int = 20, tokenize_cache: bool = True,
                 column_mapping: dict[str, str] | None = None, task: Task = "review",
                 rating_line: bool | None = None,
                 packed_width: Literal["max_seq_length", "documents"] = "max_seq_length"):
        super().__init__()
        refuse_outputs_over_inputs(train_file, val_file, predict_file, rejects_file)
        self.save_hyperparameters()
        check_data_settings(self.hparams)  # fail at once, before any file is read
        check_column_mapping(column_mapping)
        # before the Trainer and the model are built
        refuse_missing_data_files(train_file, val_file, predict_file)
        refuse_training_file_as_validation(train_file, val_file)
        self.train_rows: list[list[dict]] = []
        self.val_rows: list[list[dict]] = []
        self.predict_items: list[dict] = []
        self.stats: dict = {}
        self._tokenizer = None
        self._train_loader: ResumableLoader | None = None
        self._splits: dict[str, list[Record]] | None = None
        self._tokenized: dict = {}  # split -> TokenizedRecords (for statistics)
        # splits whose tokenize-cache entry prepare_data built in this process: setup then reads that entry back,
        # but the records were tokenized now, not found in the cache (the message and the statistics say so)
        self._tokenized_in_prepare: set[str] = set()
        self._document_tokens: dict[str, np.ndarray] = {}  # split -> tokens of each text-task document
        self._pending_train_position: dict | None = None
        self._rating_line: bool | None = None
        # How the messages of reading and splitting name the settings: fit's config keys (data.val_file); a tool
        # that builds the DataModule from its flags sets "--" (prepare). Not an argument: fit would offer it.
        self.prefix = "data."

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.hparams.tokenizer_dir)
        return self._tokenizer

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def prompt_tokenizer(self) -> ReviewPromptTokenizer:
        return ReviewPromptTokenizer(self.tokenizer, self.hparams.system_prompt, self.hparams.max_seq_length)

    def prepare_data(self) -> None:
        """On one process per machine (Lightning's contract): built-in assets, and the tokenize cache, which the
        other processes then read in ``setup``."""
        for name in ("train_file", "val_file", "predict_file"):
            if getattr(self.hparams, name):
                resolve(getattr(self.hparams, name))
        model_path(self.hparams.tokenizer_dir)  # a Hub id is downloaded here, once per machine
        if self.hparams.tokenize_cache and self.hparams.task == "review":
            for split, records in self.split_records().items():
                _, hit = load_or_build(self.prompt_tokenizer(), records, self._cache_dir(),
                                       rating_line=self.rating_line)
                if not hit:
                    self._tokenized_in_prepare.add(split)

    def _cache_dir(self) -> Path | None:
        from ..artifacts.cache import cache_dir

        return cache_dir() / "tokenized" if self.hparams.tokenize_cache else None

    def read(self, name: str) -> list[Record]:
        """The records of ``train_file`` or ``val_file``; a file with none to use is refused, saying why."""
        hp = self.hparams
        rejects = _rejects_file(hp.rejects_file, name)
        rejects_existed = rejects is not None and Path(rejects).exists()
        report = read_records(resolve(getattr(hp, name)), format=hp.data_format, policy=hp.on_bad_record,
                              rejects_file=rejects, min_review_chars=hp.min_review_chars,
                              mapping=hp.column_mapping, need_review=hp.task == "review", prefix=self.prefix,
                              settings=READ_SETTINGS)
        if hp.task == "review":  # the text task trains on documents alone: no prompt, no system message
            try:
                refuse_other_system_messages(report.records, hp.system_prompt, getattr(hp, name), self.prefix)
            except UserError:  # a refused run leaves nothing behind: not the rejects file this read began
                if rejects is not None and not rejects_existed:
                    Path(rejects).unlink(missing_ok=True)
                raise
        summary = report.summary()
        self.stats.setdefault("read", {})[name] = summary
        if report.rejected:
            rank_zero_warn(f"{getattr(hp, name)}: {sum(report.rejected.values())} records not used: "
                           f"{dict(report.rejected)}" + (f"; listed in {rejects}" if rejects else ""))
        for warning in report.warnings:
            rank_zero_warn(warning)
        if not report.records:
            if report.rejected:
                raise UserError(f"{getattr(hp, name)}: no record can be used, all {sum(report.rejected.values())} "
                                f"were rejected ({dict(report.rejected)})"
                                + (f", listed in {rejects}" if rejects else "") + f"; fix the data ({self.prefix}"
                                "on_bad_record=strict stops at the first bad record and names it)")
            wanted = ("paper->review records (one {\"paper\": ..., \"review\": ...} a line)" if hp.task == "review"
                      else "documents (one {\"text\": ...} or {\"paper\": ...} a line)")
            raise UserError(f"{getattr(hp, name)}: no records found (an empty file?); give a data file of {wanted}")
        return report.records

    def split_records(self) -> dict[str, list[Record]]:
        """Train and validation records ("train", "val"), read and split by paper once per DataModule."""
        if self._splits is None:
            hp = self.hparams
            records = self.read("train_file")
            if hp.val_file:
                self._splits = {"train": records, "val": self.read("val_file")}
                self._warn_val_papers_in_train()
            else:
                train, val = split_by_paper(records, hp.val_fraction, hp.seed)
                self._splits = {"train": train, "val": val}
                if hp.val_fraction > 0 and not val:
                    rank_zero_warn(f"{hp.train_file}: its {len(records)} records are reviews of one paper (records "
                                   "sharing an id or a paper text are one paper), and that paper stays for "
                                   f"training: {self.prefix}val_fraction {hp.val_fraction:g} leaves no validation "
                                   f"paper and no validation loss; give records of more papers, or a "
                                   f"{self.prefix}val_file")
        return self._splits

    @property
    def rating_line(self) -> bool:
        """Whether the training targets end with the rating line: ``data.rating_line`` resolved once over the
        training and validation records together (both splits follow one rule)."""
        if self._rating_line is None:
            splits = self.split_records()
            self._rating_line = resolve_rating_line(self.hparams.rating_line, [*splits["train"], *splits["val"]],
                                                    self.hparams.train_file, self.prefix)
        return self._rating_line

    def _warn_val_papers_in_train(self) -> None:
        """A separate val_file holding papers of the training file measures memory, not reviewing: say so."""
        train, val = self._splits["train"], self._splits["val"]
        ids = {r.paper_id for r in train if r.paper_id is not None}
        texts = {text_key(r.paper) for r in train}
        shared = [r for r in val if r.paper_id in ids or text_key(r.paper) in texts]
        if shared:
            self.stats["val_records_of_training_papers"] = len(shared)
            rank_zero_warn(f"{self.hparams.val_file}: {len(shared)} of {len(val)} validation records are reviews of "
                           f"papers in {self.hparams.train_file} (same id or text), e.g. {shared[0].where}: the "
                           "validation loss then flatters the model; remove those papers from one of the files")

    def token_lengths(self, split: str) -> dict[str, np.ndarray]:
        """Per example of ``split`` (after ``setup``): paper tokens before truncation, review tokens (EOS
        included) and example tokens; empty arrays for a split without examples. For the text task, per document
        (each paper once): its tokens before the documents are joined."""
        if self.hparams.task == "text":
            return {"document_tokens": self._document_tokens.get(split, np.zeros(0, dtype=np.int64))}
        tokenized = self._tokenized.get(split)
        if tokenized is None or len(tokenized) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return {"paper_tokens": empty, "review_tokens": empty, "example_tokens": empty}
        template = self.prompt_tokenizer().prompt_template_tokens()
        prompt = tokenized.prompt_lengths.astype(np.int64)
        removed = np.asarray(tokenized.meta["paper_tokens_removed"], dtype=np.int64)
        return {"paper_tokens": prompt - template + removed, "review_tokens": tokenized.lengths() - prompt,
                "example_tokens": tokenized.lengths()}

    def _examples(self, records: Sequence[Record], split: str) -> list[dict]:
        if self.hparams.task == "text":
            return self._text_examples(records, split)
        tokenized, hit = load_or_build(self.prompt_tokenizer(), records, self._cache_dir(),
                                       rating_line=self.rating_line)
        self._tokenized[split] = tokenized
        meta = tokenized.meta
        too_long = [records[i].id for i in meta["too_long"]]
        removed_counts = meta["paper_tokens_removed"]
        truncated, removed = sum(1 for n in removed_counts if n), int(sum(removed_counts))
        examples = [{"id": records[r].id, **tokenized.example(i)} for i, r in enumerate(meta["record_index"])]
        tokenized_now = not hit or split in self._tokenized_in_prepare
        self.stats[split] = {"records": len(records), "examples": len(examples), "papers_truncated": truncated,
                             "paper_tokens_removed": removed, "dropped_review_too_long": len(too_long),
                             "tokenize_cache_hit": int(not tokenized_now),
                             "records_tokenized": len(records) if tokenized_now else 0,
                             "records_from_cache": 0 if tokenized_now else len(records)}
        rank_zero_info(f"[{split}] {tokenize_summary(self.stats[split], cache=self.hparams.tokenize_cache)}: "
                       f"{len(examples)} examples; paper truncated to fit max_seq_length="
                       f"{self.hparams.max_seq_length} in {truncated} ({removed} paper tokens removed)")
        if too_long:
            rank_zero_warn(f"[{split}] {len(too_long)} examples dropped: the review alone does not fit in "
                           f"{self.prefix}max_seq_length={self.hparams.max_seq_length} (reviews are never "
                           f"truncated); ids: {too_long[:10]}{' ...' if len(too_long) > 10 else ''}. Raise it.")
        if split == "train" and not examples:
            raise UserError(self._nothing_fits(records))
        return examples

    def _text_examples(self, records: Sequence[Record], split: str) -> list[dict]:
        """Rows of the papers' text as one stream (each paper once, however many reviews it has)."""
        from .text_stream import stream_windows

        hp, tok = self.hparams, self.tokenizer
        papers = [record.paper for record in first_of_each_paper(records)]
        encoded = tok(papers, add_special_tokens=False)["input_ids"]
        lengths = self._document_tokens[split] = np.array([len(ids) for ids in encoded], dtype=np.int64)
        total = int(lengths.sum()) + max(len(encoded) - 1, 0)
        windows, _ = stream_windows(encoded, hp.max_seq_length, join=True, separator=tok.eos_token_id)
        examples = [{"id": f"{split}-text-{i}", "input_ids": np.asarray(w, dtype=np.int64),
                     "prompt_length": 0} for i, w in enumerate(windows)]
        left_out = total - len(windows) * hp.max_seq_length
        self.stats[split] = {"records": len(records), "papers": len(papers), "stream_tokens": total,
                             "examples": len(examples), "tokens_left_out": left_out}
        rank_zero_info(f"[{split}] text of {len(papers)} papers, {total} tokens joined: {len(examples)} rows of "
                       f"{hp.max_seq_length} tokens ({left_out} tokens of the tail left out)")
        if split == "train" and not examples:
            raise UserError(f"{hp.train_file}: nothing to train on: the text of its {len(papers)} training papers "
                            f"is {total} tokens, less than one row of data.max_seq_length={hp.max_seq_length}; "
                            "lower data.max_seq_length or add text")
        return examples

    def _nothing_fits(self, records: Sequence[Record]) -> str:
        encoder = self.prompt_tokenizer()
        # the shortest target, the end of the turn included
        shortest = min(len(encoder.review_ids(training_target(r, self.rating_line))) for r in records)
        needed = encoder.prompt_template_tokens() + shortest
        return (f"{self.hparams.train_file}: nothing to train on: none of its {len(records)} training records fits "
                f"data.max_seq_length={self.hparams.max_seq_length} (reviews are never cut, and the shortest needs "
                f"{needed} tokens with the prompt template); raise data.max_seq_length to at least {needed}")

    def _rows(self, examples: list[dict], split: str) -> list[list[dict]]:
        if not self.hparams.packing:
            return [[ex] for ex in examples]
        lengths = [len(ex["input_ids"]) for ex in examples]
        bins = pack_best_fit_decreasing(lengths, self.hparams.max_seq_length)
        # Rows in a seeded order: the shortest-first order of the packer would bias the start of each epoch.
        random.Random(self.hparams.seed).shuffle(bins)
        eff = packing_efficiency(lengths, bins, self.hparams.max_seq_length)
        self.stats[split]["rows"] = len(bins)
        self.stats[split]["packing_efficiency"] = eff
        rank_zero_info(f"[{split}] packed {len(examples)} examples into {len(bins)} rows of "
                       f"{self.hparams.max_seq_length} tokens: packing efficiency {eff:.1%}")
        return [[examples[i] for i in sorted(b)] for b in bins]

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in (None, "fit", "validate", "test") and not self.train_rows and not self.val_rows:
            splits = self.split_records()
            train, val = splits["train"], splits["val"]
            self.train_rows = self._rows(self._examples(train, "train"), "train")
            self.val_rows = self._rows(self._examples(val, "val"), "val") if val else []
        if stage == "predict" and not self.predict_items:
            if not hp.predict_file:
                raise UserError("predict needs data.predict_file: a JSONL of papers ({'id': ..., 'paper': ...})")
            self.predict_items = self._predict_items(Path(resolve(hp.predict_file)))

    def review_samples(self, n: int, rank: int = 0, world_size: int = 1) -> list[dict]:
        """The first ``n`` validation records as prompts with their paper, human review and rating (None without
        one), this rank's share of them (the paper: the judge leaves restatements of it out). Records without a
        review (text-task documents) are none: there is no human review to compare with."""
        records = [r for r in self.split_records()["val"] if r.review.strip()][:n]
        encode = self.prompt_tokenizer()
        return [{"id": r.id, "input_ids": encode.generation_prompt(r.paper)[0], "review": r.review,
                 "rating": r.rating, "paper": r.paper}
                for r in records[rank::world_size]]

    def _predict_items(self, path: Path) -> list[dict]:
        encode = self.prompt_tokenizer()
        items = []
        for paper_id, paper in read_papers(path):
            ids, removed = encode.generation_prompt(paper)
            items.append({"id": paper_id, "input_ids": ids, "paper_tokens_removed": removed})
        return items

    def _collate(self):
        fixed = self.hparams.packing and self.hparams.packed_width == "max_seq_length"
        width = self.hparams.max_seq_length if fixed else None
        return partial(collate_rows, pad_id=self.pad_id, row_length=width, multiple_of=self.hparams.pad_to_multiple_of)

    def train_dataloader(self) -> ResumableLoader:
        """Rows in a seeded order per epoch, sharded over ranks, resumable mid-epoch from a checkpoint."""
        if not self.train_rows:
            raise UserError(f"{self.hparams.train_file}: no training rows; call setup('fit') first, or check "
                            "data.train_file and data.max_seq_length")
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = ResumableSampler(self.train_rows, num_replicas=world, rank=rank, shuffle=True, seed=self.hparams.seed)
        if sampler.repeated_rows:
            self.stats.setdefault("train", {})["rows_repeated_to_balance_ranks"] = sampler.repeated_rows
            rank_zero_info(f"[train] {sampler.repeated_rows} rows repeated per epoch so that each of {world} "
                           f"processes gets {sampler.num_samples} rows")
        loader = ResumableLoader(self.train_rows, sampler=sampler, batches_done=self._train_batches_done,
                                 batch_size=self.hparams.batch_size, num_workers=self.hparams.num_workers,
                                 collate_fn=self._collate(), generator=loader_generator(self.hparams.seed))
        if self._pending_train_position is not None:
            loader.load_state_dict(self._pending_train_position)
            self._pending_train_position = None
        self._train_loader = loader
        return loader

    def train_batches_per_epoch(self, world_size: int) -> int:
        """Batches per epoch on each of ``world_size`` processes (the sampler gives each ceil(rows / world))."""
        per_rank = -(-len(self.train_rows) // world_size)
        return -(-per_rank // self.hparams.batch_size)

    def _train_batches_done(self) -> int:
        trainer = self.trainer
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed if trainer is not None else 0

    def state_dict(self) -> dict:
        """The data settings a checkpoint was trained with (resuming with others is refused) and the place in the
        epoch.

        The place is also in the loader's own state, but Lightning hands that back only when it builds the loader
        after the checkpoint is read. A module asking ``trainer.estimated_stepping_batches`` in configure_optimizers
        with ``max_epochs`` set makes Lightning build it before (ours does not), and the epoch would silently start
        over. This module is restored before that point (under strategies that restore after setup, such as
        DeepSpeed, before the fit loop builds its loader), so the loader it builds starts at the right row.
        """
        state = {"settings": self._settings()}
        if self._train_loader is not None:
            state["train_position"] = self._train_loader.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        if "settings" in state_dict:
            refuse_config_change(config_differences(state_dict["settings"], self._settings(), "data",
                                                    defaults=parameter_defaults(type(self))))
        self._pending_train_position = state_dict.get("train_position")

    def _settings(self) -> dict:
        return {k: v for k, v in self.hparams.items() if k not in RESUMABLE_DATA_SETTINGS}

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_rows, batch_size=self.hparams.batch_size, num_workers=self.hparams.num_workers,
                          collate_fn=self._collate(), generator=loader_generator(self.hparams.seed))

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.predict_items, batch_size=1, collate_fn=_single)


def tokenize_summary(*splits: dict, cache: bool = True) -> str:
    """What tokenizing one split or several did, from their statistics (``records_tokenized`` and
    ``records_from_cache``, summed): ``tokenized 12 records``, ``read 12 records from the tokenize cache``, or both
    counts when some were read and some tokenized (a split's cache entry is all or nothing: the training split's
    found, a new validation file's tokenized)."""
    tokenized = sum(s.get("records_tokenized", 0) for s in splits)
    cached = sum(s.get("records_from_cache", 0) for s in splits)
    written = " (written to the tokenize cache)" if cache else " (tokenize cache off)"
    if tokenized and cached:
        return f"tokenized {_count_records(tokenized)}{written}, read {cached} from the tokenize cache"
    if cached:
        return f"read {_count_records(cached)} from the tokenize cache"
    return f"tokenized {_count_records(tokenized)}{written}"


def _count_records(n: int) -> str:
    return f"{n} record" if n == 1 else f"{n} records"


def _single(batch: list[dict]) -> dict:
    return batch[0]


def _rejects_file(rejects_file: str | None, name: str) -> str | None:
    """Where the records of ``train_file`` / ``val_file`` left out under ``skip`` are listed."""
    if not rejects_file:
        return None
    return rejects_file if name == "train_file" else f"{rejects_file}.val"


def check_data_settings(hparams) -> None:
    """Every numeric setting in its range and the settings consistent with each other, each bad one named."""
    problems = [f"data.{name} must be {allowed}, got {hparams[name]!r}"
                for name, (ok, allowed) in DATA_SETTING_RANGES.items() if not ok(hparams[name])]
    if too_long := max_seq_length_problem(hparams["max_seq_length"]):
        problems.append(too_long)
    rejects = rejects_file_problem(hparams["rejects_file"], hparams["on_bad_record"])
    if rejects:
        problems.append(rejects)
    if problems:
        raise UserError("; ".join(problems))


class MissingDataFiles(UserError):
    """Data files that are not there: ``problems`` lists (setting, path, what is wrong), the setting as
    ReviewDataModule names it (``train_file``). The message names fit's settings (``data.train_file``); a command
    with other flags for them re-words it with ``message`` (prepare: ``--data_file``)."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = problems
        super().__init__(self.message())

    def message(self, flags: dict[str, str] | None = None) -> str:
        """The one line, each setting named as ``flags`` names it ({setting: flag}), or as fit's config key."""
        names = [flags.get(s, s) if flags else f"data.{s}" for s, _, _ in self.problems]
        text = "; ".join(f"{name}={path}: {why}" for name, (_, path, why) in zip(names, self.problems))
        text += "; give the path of an existing data file"
        if not flags:  # fit's settings: a flag or a config file's key
            text += (" (" + ", ".join(f"--{n}" for n in names) + " on the command line, or " + ", ".join(names)
                     + " in the config file)")
        return text


def refuse_training_file_as_validation(train_file: str | None, val_file: str | None, train_flag: str = "data.train_file",
                                      val_flag: str = "data.val_file",
                                      fraction_flag: str = "data.val_fraction") -> None:
    """A validation file that is the training file (also through a link) would validate on training papers only."""
    if val_file and train_file and same_file(val_file, train_file):
        raise UserError(f"{val_flag}={val_file} is {train_flag}: every validation paper would be a training paper; "
                        f"leave {val_flag} out ({fraction_flag} of the papers is held out) or give a separate file")


def refuse_missing_data_files(train_file: str | None, val_file: str | None, predict_file: str | None) -> None:
    """Every data file named exists (MissingDataFiles names each one that does not). ReviewDataModule checks its
    files when it is built: fit would otherwise learn of a missing one in prepare_data, after the Trainer is built, as
    a traceback. Built-in assets are made on first use and not checked; train and validation data may be a PeerRead
    directory, the papers to review (``predict_file``) are a JSONL file."""
    problems = []
    for name, path in (("train_file", train_file), ("val_file", val_file), ("predict_file", predict_file)):
        if not path or str(path).startswith(BUILTIN):
            continue
        local = Path(path).expanduser()
        if not local.exists():
            problems.append((name, str(path), "no such file or directory"))
        elif name == "predict_file" and local.is_dir():
            problems.append((name, str(path), "a directory, not a JSONL file of papers (one {\"id\": ..., "
                                              "\"paper\": ...} a line)"))
    if problems:
        raise MissingDataFiles(problems)


def refuse_outputs_over_inputs(train_file: str | None, val_file: str | None, predict_file: str | None,
                               rejects_file: str | None, prefix: str = "data.") -> None:
    """Before anything is read or written: neither rejects file may be one of the data files (built-in assets live
    in our cache and are never user data), nor a path where no file can be written (a directory). ``prefix`` spells
    the setting as the command the user ran does (as in readers.rejects_file_problem): ``data.`` for the
    DataModule's (fit's) ``data.rejects_file``, ``--`` for a tool's ``--rejects_file``."""
    inputs = [f for f in (train_file, val_file, predict_file) if f and not str(f).startswith(BUILTIN)]
    for path, setting in rejects_lists(rejects_file, val_file, prefix):
        refuse_output_over_input(path, inputs, setting)
        refuse_unwritable_output(path, setting)


def rejects_lists(rejects_file: str | None, val_file: str | None, prefix: str = "data.") -> list[tuple[str, str]]:
    """Each file a read lists its left-out records in (the training file's, and with ``val_file`` its ``.val``
    companion), with the setting that names it as the command spells it (``prefix``: ``data.`` or ``--``)."""
    lists = [(_rejects_file(rejects_file, "train_file"), f"{prefix}rejects_file")]
    if val_file:
        lists.append((_rejects_file(rejects_file, "val_file"), f"{prefix}rejects_file (+ '.val')"))
    return lists
