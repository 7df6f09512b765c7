"""benchmarks/dequant.py on the CPU: the shapes, the floor's byte count, and one tiny timed weight (the kernel under
Triton's interpreter) equal to bitsandbytes'."""

import pytest

pytest.importorskip("bitsandbytes")
import dequant  # noqa: E402


def test_a_13b_layer_has_its_seven_weights():
    shapes = dequant.weight_shapes("13b")
    assert sorted(shapes.values()) == sorted([(5120, 5120)] * 4 + [(13824, 5120)] * 2 + [(5120, 13824)])


def test_floor_counts_packed_bytes_absmax_and_output():
    # 1024 x 64 = 65536 values: 32768 packed bytes, 1024 blocks of 64 (1024 codes, 4 scales of 256, an offset)
    assert dequant.floor_ms(1024, 64, 64, True, 2, bandwidth=1e3) == 1e3 * (32768 + 1024 + 16 + 4 + 131072) / 1e3
    assert dequant.floor_ms(1024, 64, 64, False, 4, bandwidth=1e3) == 1e3 * (32768 + 4096 + 262144) / 1e3


def test_a_tiny_weight_is_timed_and_equal_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(dequant, "weight_shapes", lambda shape: {"q_proj": (24, 40), "down_proj": (40, 72)})
    out = tmp_path / "dequant.json"
    result = dequant.main(["--device", "cpu", "--dtype", "fp32", "--out", str(out)])
    assert out.exists() and set(result["weights"]) == {"q_proj", "down_proj"}
    assert all(w["equal"] and w["triton_ms"] >= 0 for w in result["weights"].values())
    assert result["per_layer"]["floor_ms"] == pytest.approx(sum(w["floor_ms"] for w in result["weights"].values()),
                                                            abs=1e-3)
