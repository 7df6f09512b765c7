"""LoRA dropout drawn inside Triton kernels (model.lora_kernels, ``lora_dropout_kernel=triton``): each kernel against
torch with the mask it draws, the masks' distribution, and on the whole model the loss and every gradient of peft's
forward run with those same masks, with and without checkpointing. On a machine without CUDA the kernels run under
Triton's interpreter (float32 and float16: it cannot load bfloat16)."""

import pytest
import torch

from lightning_review.errors import UserError

pytest.importorskip("triton")
CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16] + ([torch.bfloat16] if CUDA else []))
@pytest.mark.parametrize("rows,cols,rank", [(150, 96, 8), (70, 200, 12)])
def test_each_kernel_is_torch_under_the_mask_it_draws(kernels, dtype, rows, cols, rank):
    """Shapes that are no multiple of the tiles; a rank that is no power of two."""
    torch.manual_seed(0)
    p = 0.3
    x = torch.randn(rows, cols, device=DEVICE).to(dtype)
    a = torch.randn(rank, cols, device=DEVICE).to(dtype)
    grad_down = torch.randn(rows, rank, device=DEVICE).to(dtype)
    grad_x = torch.randn(rows, cols, device=DEVICE).to(dtype)
    seed = kernels.new_seed(x.device)
    mask = kernels.dropout_mask(seed, (rows, cols), p)
    scale = kernels.threshold_and_scale(p)[1]
    dropped = x.float() * mask * scale
    tolerance = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=2e-2, atol=5e-2)

    torch.testing.assert_close(kernels.dropout_lora_down(x, a, seed, p).float(), dropped @ a.float().T, **tolerance)
    torch.testing.assert_close(kernels.dropout_lora_a_grad(grad_down, x, seed, p), grad_down.float().T @ dropped,
                               **tolerance)
    expected = grad_x.float() + mask * scale * (grad_down.float() @ a.float())
    joint_grad_x = grad_x.clone()
    out = kernels.add_dropout_lora_input_grad_(grad_x, grad_down, a, seed, p)
    assert out.data_ptr() == grad_x.data_ptr()  # in place, into the base's input gradient
    torch.testing.assert_close(grad_x.float(), expected, **tolerance)

    # both backward gradients from one draw of the mask: the same as the two kernels
    grad_a = kernels.add_dropout_lora_grads_(joint_grad_x, grad_down, x, a, seed, p)
    torch.testing.assert_close(grad_a, grad_down.float().T @ dropped, **tolerance)
    torch.testing.assert_close(joint_grad_x, grad_x, **tolerance)


def test_lora_a_gradient_sums_every_split_of_the_rows(kernels, monkeypatch):
    """The rows of one column block split across programs: their partial sums all arrive."""
    monkeypatch.setattr(kernels, "_splits", lambda rows, col_blocks, device, per_sm, block_rows: 3)
    x = torch.randn(300, 64, device=DEVICE)
    grad_down = torch.randn(300, 8, device=DEVICE)
    seed = kernels.new_seed(x.device)
    dropped = x * kernels.dropout_mask(seed, (300, 64), 0.2) * kernels.threshold_and_scale(0.2)[1]
    torch.testing.assert_close(kernels.dropout_lora_a_grad(grad_down, x, seed, 0.2), grad_down.T @ dropped,
                               rtol=1e-4, atol=1e-4)


def test_joint_gradients_sum_every_split_of_the_rows_and_write_each_row_once(kernels, monkeypatch):
    """The rows of one column block split across programs (none a whole number of tiles): lora_A's partial sums all
    arrive, and every row of the input gradient gets its addend exactly once."""
    monkeypatch.setattr(kernels, "_splits", lambda rows, col_blocks, device, per_sm, block_rows: 3)
    monkeypatch.setattr(kernels, "TILES", {**kernels.TILES, "grads": kernels.Tiles(rows=16, cols=32, splits=3)})
    torch.manual_seed(1)
    x, a = torch.randn(300, 96, device=DEVICE), torch.randn(8, 96, device=DEVICE)
    grad_down, grad_x = torch.randn(300, 8, device=DEVICE), torch.randn(300, 96, device=DEVICE)
    seed = kernels.new_seed(x.device)
    mask, scale = kernels.dropout_mask(seed, (300, 96), 0.2), kernels.threshold_and_scale(0.2)[1]
    expected_x = grad_x + mask * scale * (grad_down @ a)
    grad_a = kernels.add_dropout_lora_grads_(grad_x, grad_down, x, a, seed, 0.2)
    torch.testing.assert_close(grad_a, grad_down.T @ (x * mask * scale), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(grad_x, expected_x, rtol=1e-4, atol=1e-4)


def test_joint_gradients_refuse_an_input_gradient_they_cannot_write_in_place(kernels):
    grad_x = torch.zeros(64, 16, device=DEVICE).t()
    with pytest.raises(ValueError, match="contiguous in its last dim"):
        kernels.add_dropout_lora_grads_(grad_x, torch.zeros(16, 4, device=DEVICE), torch.zeros(16, 64, device=DEVICE),
                                        torch.zeros(4, 64, device=DEVICE), kernels.new_seed(grad_x.device), 0.1)


def uniform_tiles(kernels, rows: int, cols: int) -> dict:
    """Every kernel on tiles of ``rows`` x ``cols`` (the rest of each kernel's launch shape kept)."""
    return {name: tiles._replace(rows=rows, cols=cols) for name, tiles in kernels.TILES.items()}


def test_a_mask_depends_on_the_seed_row_and_column_only_not_the_tiles(kernels, monkeypatch):
    """Forward and backward kernels tile differently (rows split in lora_A's gradient): the mask must not move."""
    seed = torch.tensor([3], device=DEVICE)
    reference = kernels.dropout_mask(seed, (96, 160), 0.3)
    for rows, cols in ((16, 32), (32, 16), (128, 256)):
        monkeypatch.setattr(kernels, "TILES", uniform_tiles(kernels, rows, cols))
        assert torch.equal(kernels.dropout_mask(seed, (96, 160), 0.3), reference), (rows, cols)


def test_p_is_kept_to_16_bits_and_the_scale_unbiased(kernels):
    threshold, scale = kernels.threshold_and_scale(0.05)
    assert threshold == 3277 and abs(threshold / 65536 - 0.05) < 1e-5
    assert scale * (1 - threshold / 65536) == pytest.approx(1.0, abs=1e-12)
    assert kernels.fits(torch.empty(4, 64)) and not kernels.fits(torch.empty(4, 12))  # whole groups of 8 columns


@pytest.mark.parametrize("p", [0.05, 0.5])
def test_masks_keep_one_minus_p_independently_per_element_and_per_seed(kernels, p):
    shape = (128, 256)
    first = kernels.dropout_mask(torch.tensor([7], device=DEVICE), shape, p)
    again = kernels.dropout_mask(torch.tensor([7], device=DEVICE), shape, p)
    other = kernels.dropout_mask(torch.tensor([8], device=DEVICE), shape, p)
    n = first.numel()
    assert abs(first.float().mean().item() - (1 - p)) < 4 * ((p * (1 - p) / n) ** 0.5)
    assert torch.equal(first, again)
    # another seed: agreement as for independent draws, p^2 + (1-p)^2
    agreement = (first == other).float().mean().item()
    assert abs(agreement - (p * p + (1 - p) ** 2)) < 0.02
    # every row and every column its own draws (an offset that ignored the row or the column would repeat them)
    assert len({tuple(row.tolist()) for row in first}) == shape[0]
    assert len({tuple(col.tolist()) for col in first.T}) == shape[1]


def _batch():
    """One row of two documents: 64 tokens, which the interpreter runs in one tile each (``whole_tiles``)."""
    from lightning_review.data.packing import collate_rows
    from tests.model.test_loss import with_prompt

    return collate_rows([[with_prompt(40, 25, 1), with_prompt(24, 12, 2)]], pad_id=0, row_length=64)


@pytest.fixture
def whole_tiles(kernels, monkeypatch):
    """On the CPU, tiles as large as the tiny model's tensors: the interpreter's cost is per tile (the tile edges
    are tested above with the CUDA tile sizes)."""
    if not CUDA:
        monkeypatch.setattr(kernels, "TILES", uniform_tiles(kernels, 64, 256))
    return kernels


class _ReplayedMasks(torch.nn.Module):
    """A dropout that applies, in call order, the masks the kernels drew: peft's forward under the kernels' masks."""

    def __init__(self, masks: list, scale: float):
        super().__init__()
        self.masks, self.scale = masks, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.masks.pop(0).view(x.shape) * self.scale


@pytest.mark.parametrize("checkpointing,keep_lora_down", [("transformers", True), ("transformers", False),
                                                         ("offload", True)])
def test_whole_model_loss_and_gradients_are_peft_under_the_kernels_masks(whole_tiles, tiny_llama_dir, monkeypatch,
                                                                         checkpointing, keep_lora_down):
    """peft's forward, without checkpointing, given the masks the kernels drew: the same loss and every gradient.
    Checkpointing: transformers' on the first of the two layers (the second not recomputed), or activation
    offload's on both. A recomputation draws its masks again from torch's generator, which checkpointing restores:
    the same seeds (down_proj's too, whose recomputation skips its base matmul). With fused_lora.KEEP_LORA_DOWN,
    transformers' recomputation takes each ``dropout(x) A^T`` its forward computed and draws no mask in a kernel;
    offload's (reentrant: its forward runs without a graph to keep it) draws them all again."""
    from peft.tuners.lora import LoraLayer

    from lightning_review.model import fused_lora
    from lightning_review.training import module as module_file
    from tests.model.test_fused_lora import loss_and_grads

    kernels, p, drawn = whole_tiles, 0.3, []
    real_down = kernels.dropout_lora_down

    def recording_down(x, a, seed, p):
        drawn.append((seed.clone(), tuple(x.shape)))
        return real_down(x, a, seed, p)

    monkeypatch.setattr(kernels, "dropout_lora_down", recording_down)
    monkeypatch.setattr(fused_lora, "KEEP_LORA_DOWN", keep_lora_down)
    checkpointed = {"transformers": dict(gradient_checkpointing=True, checkpointed_layers=1),
                    "offload": dict(gradient_checkpointing=True, activation_offload=True)}[checkpointing]
    module, loss, grads = loss_and_grads(tiny_llama_dir, _batch(), DEVICE, quantize=True, lora_dropout=p,
                                         lora_dropout_kernel="triton", **checkpointed)
    assert sum(type(m).__name__.startswith("Fused") and m.dropout_kernel for m in module.model.modules()) == 7 * 2
    forward, recomputed = drawn[:14], drawn[14:]  # every LoRA layer drew its mask in its kernel, in layer order
    # backward recomputes the checkpointed layers, the last first
    layers_again = [1, 0] if checkpointing == "offload" else [0] if not keep_lora_down else []
    assert [(int(s), shape) for s, shape in recomputed] == [
        (int(s), shape) for layer in layers_again for s, shape in forward[7 * layer:7 * layer + 7]]
    assert len({int(s) for s, _ in forward}) == 14  # each its own mask

    masks = [kernels.dropout_mask(seed, shape, p).float() for seed, shape in forward]
    original_build = module_file.LongQLoRAModule.build

    def build_with_replayed_masks(self, device=None):
        original_build(self, device)
        replay = _ReplayedMasks(masks, kernels.threshold_and_scale(p)[1])
        for layer in self.model.modules():
            if isinstance(layer, LoraLayer):
                layer.lora_dropout["default"] = replay

    monkeypatch.setattr(module_file.LongQLoRAModule, "build", build_with_replayed_masks)
    _, reference, ref_grads = loss_and_grads(tiny_llama_dir, _batch(), DEVICE, quantize=True, lora_dropout=p,
                                             fused_lora=False, regenerate_lora_dropout=False,
                                             gradient_checkpointing=False)
    assert not masks  # peft's forward used every mask
    exact = not CUDA
    torch.testing.assert_close(loss, reference, rtol=1e-5 if exact else 1e-2, atol=1e-6 if exact else 1e-2)
    assert set(grads) == set(ref_grads)
    for name, grad in ref_grads.items():
        if exact:
            torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
        else:
            error = (grads[name] - grad).norm() / grad.norm().clamp_min(1e-12)
            assert error < 3e-2, (name, float(error))
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "lora_A" in n)


def test_inputs_too_large_for_the_kernels_take_torchs_dropout(kernels, tiny_llama_dir, monkeypatch):
    """Past int32 counters the same call goes through torch's dropout: peft's masks, so peft's loss."""
    from tests.model.test_fused_lora import loss_and_grads

    monkeypatch.setattr(kernels, "MAX_ELEMENTS", 10)
    monkeypatch.setattr(kernels, "dropout_lora_down", lambda *a: pytest.fail("the kernel ran on too large an input"))
    settings = dict(quantize=True, lora_dropout=0.3, gradient_checkpointing=False, regenerate_lora_dropout=False)
    _, loss, _ = loss_and_grads(tiny_llama_dir, _batch(), DEVICE, lora_dropout_kernel="triton", **settings)
    _, reference, _ = loss_and_grads(tiny_llama_dir, _batch(), DEVICE, fused_lora=False, **settings)
    torch.testing.assert_close(loss, reference)


def test_settings_that_cannot_draw_masks_in_kernels_are_named(tiny_llama_dir, monkeypatch):
    from lightning_review.training.module import LongQLoRAModule

    with pytest.raises(UserError, match=r"model\.lora_dropout_kernel=triton.*model\.fused_lora to true"):
        LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), fused_lora=False, lora_dropout_kernel="triton")
    if not CUDA:
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)
        module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), quantize=False, lora_r=4, kernels="none",
                                 lora_dropout_kernel="triton", max_seq_length=256)
        with pytest.raises(UserError, match=r"model\.lora_dropout_kernel=triton runs on CUDA only.*set "
                                            r"model\.lora_dropout_kernel to torch"):
            module.build("cpu")
