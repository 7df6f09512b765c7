"""benchmarks/gpu_clocks.py: nvidia-smi's lines parsed and summarised per window; nothing sampled without it."""

import stat
import sys
import time

import gpu_clocks


def test_a_line_is_parsed_and_others_are_not():
    assert gpu_clocks.parse_line("1755, 1980, 688.12, 700.00, 61, 0x0000000000000004\n") == {
        "sm_mhz": 1755.0, "sm_max_mhz": 1980.0, "power_w": 688.12, "power_limit_w": 700.0, "temperature_c": 61.0,
        "throttle_reasons": 4}
    assert gpu_clocks.parse_line("clocks.current.sm [MHz], ...") is None
    assert gpu_clocks.parse_line("1755, 1980, [N/A], 700.00, 61, 0x0") is None


def test_summary_names_the_least_clock_and_every_throttle_reason():
    samples = [gpu_clocks.parse_line(f"{mhz}, 1980, {w}, 700, {t}, {r}")
               for mhz, w, t, r in ((1980, 400, 50, "0x0"), (1755, 690, 60, "0x4"), (1800, 680, 62, "0x4"))]
    assert gpu_clocks.summarize(samples) == {
        "samples": 3, "sm_mhz_median": 1800.0, "sm_mhz_min": 1755.0, "sm_max_mhz": 1980.0, "power_w_median": 680.0,
        "power_limit_w": 700.0, "temperature_c_max": 62.0, "throttle_reasons": ["0x0", "0x4"]}
    assert gpu_clocks.summarize([]) == {"samples": 0}


def test_without_nvidia_smi_nothing_is_sampled():
    with gpu_clocks.ClockSampler(command="no-such-nvidia-smi") as clocks:
        pass
    assert clocks.summary() == {"samples": 0}


def test_samples_of_a_running_command_are_stamped_and_windowed(tmp_path):
    """A stand-in nvidia-smi printing one line every 20 ms: samples arrive while the block runs, and a window
    before the block holds none."""
    fake = tmp_path / "fake-smi"
    fake.write_text(f"#!{sys.executable}\nimport sys, time\nwhile True:\n"
                    "    print('1500, 1980, 650.0, 700.0, 55, 0x4', flush=True)\n    time.sleep(0.02)\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    before = time.perf_counter()
    with gpu_clocks.ClockSampler(command=str(fake)) as clocks:
        time.sleep(1.0)
    summary = clocks.summary()
    assert summary["samples"] >= 3 and summary["sm_mhz_median"] == 1500.0 and summary["throttle_reasons"] == ["0x4"]
    assert clocks.summary(before - 10, before - 5) == {"samples": 0}
