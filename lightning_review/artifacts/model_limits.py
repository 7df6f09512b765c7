"""The model's limits that every layer holds settings and records to: here, in the bottom layer, so that the
adapter record (artifacts), the data (data.max_seq_length), the model's settings (training) and the commands can
all import the one definition."""

from __future__ import annotations

# The longest row a run can train on correctly, and the longest context a model can be given: transformers' Llama
# RoPE multiplies the position ids (data.packing.collate_rows' position_ids) as float32, which holds whole numbers
# exactly only up to 2**24 (16,777,217 is read as 16,777,216), so beyond it neighbouring tokens would share one
# rotation, silently. data.max_seq_length / prepare --max_seq_length, model.model_max_length, an adapter record's
# model_max_length (artifacts.adapter_record) and perplexity's --model_max_length and --lengths are held to it. The
# other limits in this code are higher: the tokenize cache's int32 prompt lengths and the varlen attention's int32
# offsets (2**31 - 1); the fused LoRA kernels' int32 offsets (model.lora_kernels.MAX_ELEMENTS, rows * features)
# only make a layer fall back to torch's path. 32K-256K rows (the benchmarks' longest) are well within.
MAX_SEQ_LENGTH = 2**24
# Why, as every message refusing a length beyond MAX_SEQ_LENGTH says it.
ROPE_POSITIONS = "the model's RoPE takes positions as float32, which holds whole numbers exactly only up to 2**24"
