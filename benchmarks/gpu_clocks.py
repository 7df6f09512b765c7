"""The GPU's SM clock, power draw, temperature and throttle reasons, sampled by nvidia-smi while timed steps run.

Why: a GPU at full load for seconds may lower its SM clock to stay within its power limit, where a short
benchmark (lora_parts.py's pieces, the first steps) runs at the boost clock. Session 11 found a 13B 8K step about
11% longer than the sum of its kernels' durations measured under the profiler, with the host ahead of the device the
whole step (benchmarks/RESULTS.md): a lower clock in the unprofiled, fully loaded steps would explain it, gaps
between kernels would not be needed. Two variants compared in one run should also be seen to run at the same clock.

nvidia-smi rather than NVML bindings (pynvml, which ``torch.cuda.clock_rate`` needs): it is on every machine with
the driver, the GPU image included, and nothing has to be installed. Each sample is stamped with the host's
``time.perf_counter()`` when its line arrives, so a run can summarise any window of it (``summary(start, end)``).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import threading
import time

QUERY = "clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu,clocks_throttle_reasons.active"


def parse_line(line: str) -> dict | None:
    """One line of ``nvidia-smi --query-gpu=QUERY --format=csv,noheader,nounits`` (first GPU), or None when it is
    not one (a header, a message, "[N/A]" fields)."""
    fields = [f.strip() for f in line.split(",")]
    if len(fields) != 6:
        return None
    try:
        sm, sm_max, power, limit, temperature = (float(f) for f in fields[:5])
        reasons = int(fields[5], 16)
    except ValueError:
        return None
    return {"sm_mhz": sm, "sm_max_mhz": sm_max, "power_w": power, "power_limit_w": limit,
            "temperature_c": temperature, "throttle_reasons": reasons}


def summarize(samples: list[dict]) -> dict:
    """Median and least SM clock, median power against its limit, hottest temperature, and every throttle-reason
    bitmask seen (nvidia-smi's clocks_throttle_reasons: 0x4 software power cap, 0x20 software thermal slowdown,
    0x40 hardware thermal, 0x80 hardware power brake, 0x1 idle)."""
    if not samples:
        return {"samples": 0}
    clocks = [s["sm_mhz"] for s in samples]
    return {"samples": len(samples), "sm_mhz_median": statistics.median(clocks), "sm_mhz_min": min(clocks),
            "sm_max_mhz": samples[-1]["sm_max_mhz"],
            "power_w_median": round(statistics.median(s["power_w"] for s in samples), 1),
            "power_limit_w": samples[-1]["power_limit_w"],
            "temperature_c_max": max(s["temperature_c"] for s in samples),
            "throttle_reasons": sorted({hex(s["throttle_reasons"]) for s in samples})}


# what sampling cost, in every script's help for the interval
SAMPLING_COST = ("sampling is not free: at 100 ms the host's lead over the device fell from 85 to 3 ms in "
                 "step_gaps.py and a 13B step slowed by ~5%% (session 12)")


def add_interval_option(parser, default_ms: int, why: str) -> None:
    """``--clock_interval_ms``: nvidia-smi's sampling interval (0: none); ``why`` this script's default."""
    parser.add_argument("--clock_interval_ms", type=int, default=default_ms,
                        help=f"nvidia-smi's sampling interval in ms (0: none); {why}; {SAMPLING_COST}")


class ClockSampler:
    """``with ClockSampler() as clocks: ...`` samples every ``interval_ms`` while the block runs;
    ``clocks.summary()`` (or of a window, ``summary(start, end)`` in perf_counter seconds). Where nvidia-smi is not
    on the PATH (this CPU machine), or ``interval_ms`` is 0, it samples nothing and says so: ``{"samples": 0}``.
    Sampling is not free (SAMPLING_COST; benchmarks/RESULTS.md, session 12)."""

    def __init__(self, interval_ms: int = 100, command: str = "nvidia-smi"):
        self.interval_ms, self.command = interval_ms, command
        self.samples: list[tuple[float, dict]] = []
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> ClockSampler:
        if self.interval_ms <= 0 or shutil.which(self.command) is None:
            return self
        self._process = subprocess.Popen(
            [self.command, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits", "-i", "0",
             f"-lms={self.interval_ms}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for line in self._process.stdout:
            sample = parse_line(line)
            if sample is not None:
                self.samples.append((time.perf_counter(), sample))

    def __exit__(self, *exc) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._reader.join(timeout=10)
            self._process = None

    def summary(self, start: float = float("-inf"), end: float = float("inf")) -> dict:
        return summarize([sample for stamp, sample in self.samples if start <= stamp <= end])
