"""Generation speed on one GPU: a Llama-2-7B-shaped random-weight model with a lightning_review adapter (RoPE x4 for a
16K context), a 12K-token prompt, 4-bit NF4 and bf16 bases, through the generate command's own loading path
(lightning_review.generation.local). Prompt (prefill) tokens/s, decode tokens/s and peak memory, batch 1 and 4.

    python benchmarks/generation.py --work /tmp/gen --out generation.json

Method: prefill = one forward of the prompt with the KV cache on; decode tokens/s = (new tokens - 1) / (time of
generate(max_new_tokens=N) - time of generate(max_new_tokens=1)), min_new_tokens=N so random weights cannot stop
early; each timing is the median of 3 after a warm-up; peak = torch.cuda.max_memory_allocated over the variant
(weights + cache + activations).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapes import random_llama_checkpoint  # noqa: E402


def timed(fn, repeats: int = 3) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_adapter(checkpoint: Path, directory: Path, context: int) -> Path:
    """A LoRA r=64 adapter with embeddings and norms, as LongQLoRA training writes it, moved off its initial values."""
    from lightning_review.training.module import LongQLoRAModule

    if (directory / "lightning_review.json").is_file():
        return directory
    module = LongQLoRAModule(checkpoint_dir=str(checkpoint), model_max_length=context, quantize=True,
                             max_seq_length=context, gradient_checkpointing=False)
    module.configure_model()
    with torch.no_grad():
        for name, param in module.model.named_parameters():
            if param.requires_grad and "lora_B" in name:
                param.normal_(0, 0.01)
    module.save_adapter(directory)
    del module
    torch.cuda.empty_cache()
    return directory


def measure_variant(adapter: Path, quantize: bool, prompt_tokens: int, new_tokens: int, batches: list[int]) -> dict:
    from lightning_review.generation.decoding import DecodingSettings
    from lightning_review.generation.local import LocalGenerator, load_generation_model

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model, tokenizer = load_generation_model(adapter_dir=str(adapter), quantize=quantize, device="cuda")
    result = {"base": "nf4" if quantize else "bf16", "load_s": round(time.perf_counter() - start, 1),
              "weights_gb": round(torch.cuda.memory_allocated() / 1e9, 2), "batches": {}}
    generator = LocalGenerator(model, tokenizer, DecodingSettings(max_new_tokens=new_tokens))
    # the generate command's path end to end on one synthetic paper (a check that it runs, and its own timing)
    paper = " ".join(["graph diffusion improves segmentation under label noise"] * (prompt_tokens // 7))
    (prepared,) = generator.prepare([("p0", paper)])
    record = generator.generate([prepared])[0]
    result["command_path"] = {k: record[k] for k in ("prompt_tokens", "generated_tokens", "truncated", "seconds")}
    prompt = torch.randint(100, 32000, (1, prompt_tokens), device="cuda")
    for batch in batches:
        ids = prompt.expand(batch, -1).contiguous()
        torch.cuda.reset_peak_memory_stats()

        def prefill():
            with torch.no_grad():
                model(input_ids=ids, use_cache=True, logits_to_keep=1)

        def gen(n):
            with torch.no_grad():
                model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                               min_new_tokens=n, use_cache=True, pad_token_id=0)

        t_prefill = timed(prefill)
        t_one = timed(lambda: gen(1))
        t_all = timed(lambda: gen(new_tokens))
        result["batches"][batch] = {
            "prefill_s": round(t_prefill, 3), "prompt_tokens_per_s": round(batch * prompt_tokens / t_prefill),
            "decode_ms_per_step": round(1000 * (t_all - t_one) / (new_tokens - 1), 2),
            "decode_tokens_per_s": round(batch * (new_tokens - 1) / (t_all - t_one), 1),
            "generate_s": round(t_all, 2), "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2)}
        print(result["base"], batch, result["batches"][batch], flush=True)
    model = generator = None  # free the GPU before the next variant
    torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/gen")
    parser.add_argument("--out", default="generation.json")
    parser.add_argument("--prompt_tokens", type=int, default=12_288)
    parser.add_argument("--new_tokens", type=int, default=256)
    parser.add_argument("--batches", default="1,4")
    args = parser.parse_args()
    work = Path(args.work)
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "prompt_tokens": args.prompt_tokens,
              "new_tokens": args.new_tokens, "context": 16_384, "variants": []}
    checkpoint = random_llama_checkpoint("7b", work / "llama-7b-random")
    adapter = build_adapter(checkpoint, work / "adapter", 16_384)
    batches = [int(b) for b in args.batches.split(",")]
    for quantize in (True, False):
        result["variants"].append(measure_variant(adapter, quantize, args.prompt_tokens, args.new_tokens, batches))
        Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
