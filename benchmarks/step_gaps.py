"""Where one training step of ours leaves the GPU idle, and why.

A step's wall time minus the time the GPU spends in kernels and copies is time no faster kernel can win back:
host synchronisations (``.item()``, ``nonzero``, a copy to the host) stall the CPU until the GPU drains, and then
the GPU waits for the CPU to queue work again. This runs ours on one row, and on ``--probe_steps`` steps after the
warm-up records:
- wall time, and the union of the device's kernel and copy intervals (torch.profiler), so ``idle = wall - busy``;
- every synchronising call, with the Python stack that made it (``torch.cuda.set_sync_debug_mode("warn")``);
- the device-to-host copies and their CPU-side callers (the profiler's stacks).

    python benchmarks/step_gaps.py --shape 13b --tokens 8192 \\
        --variant "ours:width=fit;lora_dropout_kernel=triton" --out step_gaps_13b_8192_h200.json

``--documents 6202,9644`` probes a packed row of documents of those lengths instead (a row of the length mix, at
``--row`` tokens' budget, as train_step.py's mix rows), to compare with one document of the same tokens.

The profiler's own overhead is in the probed steps' wall time; the unprofiled steps before them are reported too.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_clocks import ClockSampler, add_interval_option  # noqa: E402  (benchmarks/ on the path)

SYNC_OPS = ("aten::_local_scalar_dense", "aten::item", "aten::nonzero", "aten::_to_copy", "cudaStreamSynchronize",
            "cudaDeviceSynchronize", "cudaMemcpyAsync")
OUR_FRAMES = ("lightning_review", "transformers", "peft", "bitsandbytes", "liger", "lightning", "benchmarks")


def device_events(events) -> list:
    """The kernels, copies and sets of a profiler's events; not the device-side ranges of ``record_function``
    annotations (Lightning's ``Optimizer.step#...`` spans the whole step, its closure included)."""
    return [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA
            and not getattr(e, "is_user_annotation", False) and "#" not in e.name
            and e.time_range.end > e.time_range.start]


def busy_seconds(events) -> float:
    """The union of the device activity intervals (kernels, copies, sets) of a profiler's events, in seconds."""
    spans = sorted((e.time_range.start, e.time_range.end) for e in device_events(events))
    total, current_start, current_end = 0, None, None
    for start, end in spans:
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total / 1e6  # microseconds


KERNEL_KINDS = (  # (kind, substrings of a kernel's name), first match wins
    ("dropout kernels (ours)", ("_down_kernel", "_a_grad_kernel", "_input_grad_kernel")),
    ("attention", ("flash", "fmha", "attention", "attn", "sdpa")),
    ("4-bit dequantize", ("dequant", "kDequantize")),
    ("matmul", ("gemm", "sm90_xmma", "cutlass", "nvjet", "ampere_", "sm80_", "Kernel2")),
    ("loss, norms, rope (Triton)", ("triton",)),
    ("copies, casts, elementwise", ("elementwise", "copy", "fill", "vectorized", "unrolled", "Memcpy", "Memset")),
    ("reductions", ("reduce", "sum", "norm")),
)


def kernel_kind(name: str) -> str:
    """The kind of a CUDA kernel, by its name (KERNEL_KINDS); ``other`` where none matches."""
    lowered = name.lower()
    for kind, parts in KERNEL_KINDS:
        if any(part.lower() in lowered for part in parts):
            return kind
    return "other"


def kernel_breakdown(events, steps: int, top: int = 25) -> dict:
    """Device milliseconds a step by kernel kind and by kernel name (the ``top`` largest), from a profiler's events:
    where the busy time goes, whatever the idle share."""
    by_name: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    for e in device_events(events):
        by_name[e.name] += e.time_range.elapsed_us()
        calls[e.name] += 1
    by_kind: collections.Counter = collections.Counter()
    for name, us in by_name.items():
        by_kind[kernel_kind(name)] += us
    per_step = lambda us: round(us / 1e3 / steps, 2)  # noqa: E731
    return {"by_kind_ms": {kind: per_step(us) for kind, us in by_kind.most_common()},
            "kernels_per_step": sum(calls.values()) // steps,
            "top_kernels": [{"kernel": name[:160], "kind": kernel_kind(name), "ms": per_step(us),
                             "calls": calls[name] // steps} for name, us in by_name.most_common(top)]}


def idle_gaps(trace: dict, steps: int, min_us: float = 5.0, top: int = 25) -> dict:
    """Where the device waits, from a chrome trace (``export_chrome_trace``): each gap of more than ``min_us``
    between device activity, charged to what the host was doing when it launched the next kernel (the innermost
    frames of ours and our libraries around that launch, and the operator). A gap whose next kernel was launched
    before the gap began is ``queued`` (the device waited on something else: an event, a stream, a copy)."""
    import bisect

    events = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X"]
    device = sorted((e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")),
                    key=lambda e: e["ts"])
    # Triton launches through the driver API (cuLaunchKernel): without them every Triton kernel looked ``queued``
    launches = {e["args"].get("correlation"): e["ts"] for e in events
                if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}
    frames = sorted(((e["ts"], e["ts"] + e["dur"], e["name"], e.get("cat")) for e in events
                     if e.get("cat") in ("python_function", "cpu_op")), key=lambda f: f[0])
    starts = [f[0] for f in frames]

    def host_at(ts: float) -> tuple[str, str]:
        """(python frames of ours, innermost operator) running on the host at ``ts``."""
        enclosing = [f for f in frames[max(0, bisect.bisect_right(starts, ts) - 2000):bisect.bisect_right(starts, ts)]
                     if f[1] >= ts]
        python = [f[2] for f in enclosing if f[3] == "python_function" and any(n in f[2] for n in OUR_FRAMES)
                  and "step_gaps" not in f[2]]
        ops = [f[2] for f in enclosing if f[3] == "cpu_op"]
        return " <- ".join(reversed(python[-4:])), (ops[-1] if ops else "")

    by_place: collections.Counter = collections.Counter()
    counts: collections.Counter = collections.Counter()
    total, end = 0.0, None
    for e in device:
        if end is not None and e["ts"] - end > min_us:
            gap = e["ts"] - end
            launched = launches.get(e.get("args", {}).get("correlation"))
            if launched is None or launched <= end:
                place = ("queued", e["name"][:60])
            else:
                place = host_at(launched)
            by_place[place] += gap
            counts[place] += 1
            total += gap
        end = e["ts"] + e["dur"] if end is None else max(end, e["ts"] + e["dur"])
    return {"idle_ms_per_step": round(total / 1e3 / steps, 2), "min_gap_us": min_us,
            "places": [{"ms_per_step": round(us / 1e3 / steps, 2), "gaps": counts[place], "host": place[0],
                        "op": place[1]} for place, us in by_place.most_common(top)]}


def package_path(filename: str) -> str:
    """``.../site-packages/peft/x.py`` -> ``peft/x.py``; ``/repo/lightning_review/model/loss.py`` ->
    ``lightning_review/model/loss.py``: short, and still matched by OUR_FRAMES."""
    for marker in ("site-packages/", "/lightning_review/", "/benchmarks/"):
        if marker in filename:
            head = "" if marker == "site-packages/" else marker.strip("/") + "/"
            return head + filename.split(marker)[-1]
    return filename


def short_stack(frames: list[str], depth: int = 6) -> str:
    """The innermost ``depth`` frames of ours and the libraries we call, innermost last."""
    kept = [f for f in frames if any(name in f for name in OUR_FRAMES) and "step_gaps.py" not in f]
    return " <- ".join(reversed(kept[-depth:]))


def runtime_sync_callers(events, names: tuple = ("cudaDeviceSynchronize", "cudaStreamSynchronize",
                                                 "cudaMemcpyAsync")) -> list[dict]:
    """Each CUDA runtime synchronisation (which set_sync_debug_mode does not flag) counted by the nearest enclosing
    operator that has a Python stack: what asked for it."""
    counts: collections.Counter = collections.Counter()
    for event in events:
        if event.name not in names:
            continue
        parent, chain = event.cpu_parent, []
        while parent is not None:  # with_stack, the Python frames are events too: "path.py(line): function"
            chain.append(parent.name)
            parent = parent.cpu_parent
        python = [name for name in chain if any(part in name for part in OUR_FRAMES) and "step_gaps" not in name]
        ops = [name for name in chain if name.startswith(("aten::", "bitsandbytes::", "triton"))]
        where = " <- ".join(python[:6]) or "(no Python caller)"
        chain = ops
        counts[(event.name, " < ".join(chain[:3]), where)] += 1
    return [{"call": name, "ops": ops, "stack": where, "count": n} for (name, ops, where), n in counts.most_common(25)]


def queue_lead(points: list[tuple[str, float, float]]) -> dict:
    """How far the host runs ahead of the device, from (phase, host ms, device ms) at the same marks of a step,
    both from the step's start: a mark the device reaches only just after the host queued it (lead near 0) is a
    place where the device waited for the host. Per phase: the least and the median lead, and the host's and the
    device's ms between the first and the last mark (a host slower than the device there starves it)."""
    phases: dict[str, list[tuple[float, float]]] = {}
    for phase, host, device in points:
        phases.setdefault(phase, []).append((host, device))
    out = {}
    for phase, marks in phases.items():
        leads = sorted(device - host for host, device in marks)
        out[phase] = {"marks": len(marks), "least_lead_ms": round(leads[0], 3),
                      "median_lead_ms": round(leads[len(leads) // 2], 3),
                      "marks_under_1ms": sum(lead < 1.0 for lead in leads),
                      "host_ms": round(marks[-1][0] - marks[0][0], 2),
                      "device_ms": round(marks[-1][1] - marks[0][1], 2)}
    return out


def make_lead_probe(step: int, record: dict):
    """A Lightning callback that marks, on unprofiled step ``step``, the start of every decoder layer's forward
    and of its recomputation in backward with a host clock and a CUDA event: queue_lead's input, without the
    profiler's host overhead."""
    import lightning as L

    from lightning_review.model.loading import decoder_layers

    class LeadProbe(L.Callback):
        def __init__(self):
            self.handles, self.marks, self.start = [], [], None

        def _mark(self, phase: str):
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append((phase, time.perf_counter(), event))

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx != step:
                return
            torch.cuda.synchronize()
            self.start = (time.perf_counter(), torch.cuda.Event(enable_timing=True))
            self.start[1].record()

            def hook(module, args):
                self._mark("recompute" if torch._C._current_graph_task_id() != -1 else "forward")

            self.handles = [layer.register_forward_pre_hook(hook) for layer in decoder_layers(pl_module.model)]

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            if self.start is not None and self.handles:
                self._mark("optimizer")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx != step or self.start is None:
                return
            self._mark("end")
            torch.cuda.synchronize()
            for handle in self.handles:
                handle.remove()
            self.handles = []
            host0, event0 = self.start
            points = [(phase, 1e3 * (host - host0), event0.elapsed_time(event)) for phase, host, event in self.marks]
            record["queue_lead"] = queue_lead(points)
            record["queue_lead_step"] = step
            record["queue_lead_window"] = [host0, time.perf_counter()]

    return LeadProbe()


def make_probe(first: int, count: int, record: dict):
    """A Lightning callback that profiles steps ``first`` .. ``first + count - 1`` and records their syncs."""
    import lightning as L

    class Probe(L.Callback):
        def __init__(self):
            self.profiler, self.start, self.syncs = None, 0.0, collections.Counter()
            self._show = None

        def _on_warning(self, message, category, filename, lineno, file=None, line=None):
            if "synchronizing" in str(message).lower():
                frames = [f"{package_path(fs.filename)}:{fs.lineno} {fs.name}" for fs in traceback.extract_stack()[:-1]]
                self.syncs[short_stack(frames)] += 1
            else:
                self._show(message, category, filename, lineno, file, line)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx != first:
                return
            torch.cuda.synchronize()
            self.profiler = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA],
                with_stack=True)
            self.profiler.__enter__()
            self._show, warnings.showwarning = warnings.showwarning, self._on_warning
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx != first + count - 1 or self.profiler is None:
                return
            torch.cuda.synchronize()
            wall = time.perf_counter() - self.start
            record["profiled_window"] = [self.start, self.start + wall]
            torch.cuda.set_sync_debug_mode(0)
            warnings.showwarning = self._show
            self.profiler.__exit__(None, None, None)
            events = self.profiler.events()
            busy = busy_seconds(events)
            copies = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA and "Memcpy DtoH" in e.name]
            callers = self.profiler.key_averages(group_by_stack_n=8)
            sync_ops = sorted(((e.key, e.count, round(e.cpu_time_total / 1e3, 2),
                                short_stack(list(e.stack), depth=8)) for e in callers if e.key in SYNC_OPS),
                              key=lambda row: -row[2])
            record["runtime_syncs"] = runtime_sync_callers(events)
            record["kernels_per_step"] = kernel_breakdown(events, count)
            trace_file = Path(tempfile.mkdtemp()) / "trace.json"
            self.profiler.export_chrome_trace(str(trace_file))
            record["idle_gaps"] = idle_gaps(json.loads(trace_file.read_text()), count)
            trace_file.unlink()
            record.update(
                probe_steps=count, wall_s=round(wall, 4), device_busy_s=round(busy, 4),
                idle_fraction=round(1 - busy / wall, 4),
                dtoh_copies={"count": len(copies),
                             "device_ms": round(sum(e.time_range.elapsed_us() for e in copies) / 1e3, 2)},
                synchronisations=[{"count": n, "stack": stack} for stack, n in self.syncs.most_common(40)],
                sync_ops=[{"op": key, "count": n, "cpu_ms": ms, "stack": stack}
                          for key, n, ms, stack in sync_ops[:40]])

    return Probe()


def document_lengths(args) -> list[int]:
    """``--documents`` read, refused (before anything loads) unless they are positive lengths that fit ``--row``."""
    try:
        lengths = [int(n) for n in args.documents.split(",")]
    except ValueError:
        lengths = []
    if not lengths or min(lengths) < 1:
        raise SystemExit(f"--documents {args.documents!r}: comma-separated positive token counts, e.g. 6202,9644")
    if sum(lengths) > args.row:
        raise SystemExit(f"--documents {args.documents}: {sum(lengths)} tokens do not fit a row of --row {args.row}")
    return lengths


def probe_rows(args, vocab_size: int) -> tuple[list[list[dict]], int]:
    """Each step's row (one document of ``--tokens``, or the ``--documents`` packed into one row) and the row's
    token budget (the S2 group size is a quarter of it, as in training)."""
    import train_step as ts

    steps = args.warmup + args.probe_steps
    if not args.documents:
        return [[d] for d in ts.documents([args.tokens] * steps, 0.1, vocab_size, seed=steps)], args.tokens
    lengths = document_lengths(args)
    docs = ts.documents(lengths, 0.1, vocab_size, seed=len(lengths))
    return [docs] * steps, args.row


def main(argv: list[str] | None = None) -> None:
    import train_step as ts
    from shapes import random_llama_checkpoint

    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="13b", choices=["7b", "13b"])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--documents", help="comma-separated document lengths packed into each step's one row "
                        "(instead of one document of --tokens)")
    parser.add_argument("--row", type=int, default=16384, help="--documents: the row's token budget")
    parser.add_argument("--variant", default="ours:width=fit")
    parser.add_argument("--warmup", type=int, default=2, help="unprofiled steps first (timed, reported)")
    parser.add_argument("--probe_steps", type=int, default=2)
    parser.add_argument("--work", default="/tmp/train_step")
    add_interval_option(parser, 100, "100 ms gives a 1.3 s step a dozen samples")
    parser.add_argument("--optimizer", default="adamw",
                        help="ours' optimizer; adamw (torch fused) as train_step.py times it. paged_adamw_32bit "
                             "synchronises the device once per parameter tensor")
    parser.add_argument("--out", default="step_gaps.json")
    args = parser.parse_args(argv)
    if args.documents:
        document_lengths(args)
    if not torch.cuda.is_available():
        raise SystemExit("step_gaps.py measures a CUDA device's idle time; no CUDA device here")
    name, hparams, _, bench = ts.parse_variant(args.variant)
    if name != "ours":
        raise SystemExit(f"--variant {args.variant!r}: step_gaps.py probes ours (ours or ours:key=value;...)")
    checkpoint = random_llama_checkpoint(args.shape, Path(args.work) / f"llama-{args.shape}-random", device="cuda")
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(checkpoint)
    rows, row_length = probe_rows(args, config.vocab_size)
    context = max(row_length, config.max_position_embeddings)
    module = ts.load_ours(checkpoint, context, "cuda", True, optimizer=args.optimizer, **hparams)
    module.build("cuda")
    record: dict = {"shape": args.shape, "tokens": args.tokens, "documents": args.documents, "row": row_length,
                    "variant": args.variant, "torch": torch.__version__,
                    "device_name": torch.cuda.get_device_name(), "date": time.strftime("%Y-%m-%d"),
                    "command": " ".join(sys.argv)}
    probe = make_probe(args.warmup, args.probe_steps, record)
    lead = make_lead_probe(args.warmup - 1, record)  # the last unprofiled step
    with ClockSampler(args.clock_interval_ms) as clocks:
        times = ts.our_steps(module, rows, row_length, "cuda", 0, None, "probe",
                             bench.get("fit_width", False), callbacks=(probe, lead))
    record["gpu_clocks"] = {"unprofiled_step": clocks.summary(*record.get("queue_lead_window", [0, -1])),
                            "profiled_steps": clocks.summary(*record.get("profiled_window", [0, -1]))}
    record["unprofiled_step_s"] = [round(t, 4) for t in times[1:args.warmup]]  # the first step compiles
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(f"wall {record['wall_s']} s over {args.probe_steps} profiled steps, device busy {record['device_busy_s']} s, "
          f"idle {100 * record['idle_fraction']:.1f}%; unprofiled steps {record['unprofiled_step_s']} s")
    print(f"device-to-host copies: {record['dtoh_copies']}")
    for window, clock in record["gpu_clocks"].items():
        print(f"GPU clocks, {window}: {clock}")
    print(f"host lead over the device on unprofiled step {record.get('queue_lead_step')}:")
    for phase, row in record.get("queue_lead", {}).items():
        print(f"  {phase:<10} {row}")
    gaps = record["idle_gaps"]
    print(f"device idle {gaps['idle_ms_per_step']} ms a step in gaps over {gaps['min_gap_us']} us; largest places:")
    for row in gaps["places"][:15]:
        print(f"  {row['ms_per_step']:>8.2f} ms {row['gaps']:>6} gaps  {row['op'][:40]:<40} {row['host'][:150]}")
    print("device ms a step by kernel kind:", record["kernels_per_step"]["by_kind_ms"])
    for row in record["kernels_per_step"]["top_kernels"]:
        print(f"  {row['ms']:>9.2f} ms x{row['calls']:<5} {row['kind']:<28} {row['kernel'][:90]}")
    for row in record["synchronisations"][:15]:
        print(f"  sync x{row['count']}: {row['stack']}")
    for row in record["runtime_syncs"][:12]:
        print(f"  {row['call']} x{row['count']} in [{row['ops']}]: {row['stack']}")
    for row in record["sync_ops"][:15]:
        print(f"  {row['op']} x{row['count']} {row['cpu_ms']} ms: {row['stack']}")


if __name__ == "__main__":
    main()
