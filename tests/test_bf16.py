"""bf16 on CPUs: what dtype=auto chooses (from the CPU's flags, faked here), and the GPT's attention
under bf16 autocast on a CPU (written out, not SDPA) against the fp32 model."""

import builtins

import pytest
import torch
from torch.nn import functional as F

import training
from model_gpt import GPT, GPTConfig


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}, "bfloat16"),  # Intel Sapphire Rapids and later
    ({"avx2", "avx512f", "avx512_bf16"}, "bfloat16"),                         # AMD Zen 4, Intel Cooper Lake
    ({"avx2", "avx512f"}, "float32"),                                         # bf16 only emulated
    (set(), "float32"),                                                       # no /proc/cpuinfo (macOS)
])
def test_auto_picks_bf16_on_cpus_that_multiply_bf16_in_hardware(monkeypatch, flags, expected):
    monkeypatch.setattr(training, "cpu_flags", lambda: flags)
    assert training.resolve_dtype("auto", "cpu") == expected


def test_the_cpus_flags_decide_only_for_the_cpu(monkeypatch):
    monkeypatch.setattr(training, "cpu_flags", lambda: {"avx512_bf16", "amx_bf16"})
    assert training.resolve_dtype("auto", "mps") == "float32"
    assert training.resolve_dtype("float32", "cpu") == "float32"  # an explicit choice is obeyed


def test_cpu_flags_come_from_proc_cpuinfo_or_are_empty(monkeypatch):
    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if path != "/proc/cpuinfo":
            return real_open(path, *args, **kwargs)
        raise FileNotFoundError(path)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert training.cpu_flags() == set()


def tiny_gpt(**overrides):
    torch.manual_seed(0)
    return GPT(GPTConfig(block_size=32, vocab_size=64, n_layer=2, n_head=2, n_embd=64, **overrides))


def test_bf16_on_cpu_writes_short_attention_out_and_fp32_keeps_sdpa(monkeypatch):
    sdpa, calls = F.scaled_dot_product_attention, []
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or sdpa(*a, **k))
    model, idx = tiny_gpt(), torch.randint(0, 64, (2, 32))
    model(idx, idx)
    assert len(calls) == 2  # one per layer
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(idx, idx)
    assert len(calls) == 2
    # over a long context SDPA stays: the written-out (T, T) matrices cost more than they save
    long_model, long_idx = GPT(GPTConfig(block_size=512, vocab_size=64, n_layer=2, n_head=2, n_embd=64)), torch.randint(0, 64, (1, 512))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        long_model(long_idx, long_idx)
    assert len(calls) == 4


@pytest.mark.parametrize("overrides", [dict(), dict(pos_encoding="rope", qk_norm=True)])
def test_bf16_loss_and_gradients_follow_fp32(overrides):
    """The written-out bf16 attention gives the fp32 model's loss and gradients up to bf16's rounding,
    as SDPA in bf16 does."""
    idx, targets = torch.randint(0, 64, (4, 32)), torch.randint(0, 64, (4, 32))

    def loss_and_grads(dtype, force_sdpa=False):
        model = tiny_gpt(**overrides)
        if force_sdpa:
            for block in model.transformer.h:
                block.attn.fused = lambda q, k: True
        with training.autocast("cpu", dtype):
            _, loss = model(idx, targets)
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])

    loss32, grads32 = loss_and_grads("float32")
    for force_sdpa in (False, True):
        loss16, grads16 = loss_and_grads("bfloat16", force_sdpa)
        assert abs(loss16 - loss32) < 0.02 * loss32
        assert F.cosine_similarity(grads16, grads32, dim=0) > 0.99
