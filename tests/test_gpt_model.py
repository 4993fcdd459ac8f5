"""model_gpt.py: each behaviour checked against an independent reference."""

import math

import pytest
import torch

import optimizers
from model_gpt import GPT, GPTConfig


def tiny_config(**overrides):
    return GPTConfig(**{**dict(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=32), **overrides})


def test_fused_attention_equals_explicit_math():
    torch.manual_seed(0)
    fused = GPT(tiny_config(flash=True)).eval()
    math_path = GPT(tiny_config(flash=False)).eval()
    math_path.load_state_dict(fused.state_dict())
    idx = torch.randint(0, 50, (3, 16))
    targets = torch.randint(0, 50, (3, 16))
    logits_fused, loss_fused = fused(idx, targets)
    logits_math, loss_math = math_path(idx, targets)
    torch.testing.assert_close(logits_fused, logits_math, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss_fused, loss_math, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("flash", [True, False])
def test_changing_a_future_token_never_changes_earlier_logits(flash):
    torch.manual_seed(0)
    model = GPT(tiny_config(flash=flash)).eval()
    idx = torch.randint(0, 50, (1, 16))
    changed = idx.clone()
    changed[0, 10] = (idx[0, 10] + 1) % 50
    targets = torch.zeros_like(idx)
    before, _ = model(idx, targets)
    after, _ = model(changed, targets)
    torch.testing.assert_close(before[:, :10], after[:, :10], atol=0, rtol=0)
    assert not torch.allclose(before[:, 10:], after[:, 10:])


def test_initial_loss_is_that_of_a_uniform_guess():
    torch.manual_seed(0)
    model = GPT(tiny_config())
    idx, targets = torch.randint(0, 50, (8, 16)), torch.randint(0, 50, (8, 16))
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(50)) < 0.1  # small init: near-uniform predictions


def test_loss_is_cross_entropy_of_the_logits():
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    idx, targets = torch.randint(0, 50, (2, 16)), torch.randint(0, 50, (2, 16))
    logits, loss = model(idx, targets)
    log_probs = logits.log_softmax(-1)
    expected = -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
    torch.testing.assert_close(loss, expected)


def test_without_targets_only_the_last_position_is_scored():
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    idx = torch.randint(0, 50, (2, 7))
    all_logits, _ = model(idx, torch.zeros_like(idx))
    last_logits, loss = model(idx)
    assert loss is None and last_logits.shape == (2, 1, 50)
    torch.testing.assert_close(last_logits[:, 0], all_logits[:, -1])


def test_parameter_count_by_hand():
    cfg = tiny_config(bias=True)
    C, V, T, L = cfg.n_embd, cfg.vocab_size, cfg.block_size, cfg.n_layer
    per_block = (2 * 2 * C                # two LayerNorms (weight + bias)
                 + C * 3 * C + 3 * C      # c_attn
                 + C * C + C              # attention c_proj
                 + C * 4 * C + 4 * C      # c_fc
                 + 4 * C * C + C)         # mlp c_proj
    total = V * C + T * C + L * per_block + 2 * C  # tied wte/lm_head, wpe, blocks, ln_f
    model = GPT(cfg)
    assert model.get_num_params(non_embedding=False) == total
    assert model.get_num_params() == total - T * C
    assert model.lm_head.weight is model.transformer.wte.weight


def test_residual_projections_get_the_scaled_init():
    torch.manual_seed(0)
    model = GPT(tiny_config(n_layer=8, n_embd=64, block_size=8))
    std = model.transformer.h[0].mlp.c_proj.weight.std().item()
    assert abs(std - 0.02 / math.sqrt(2 * 8)) < 0.001
    assert abs(model.transformer.h[0].mlp.c_fc.weight.std().item() - 0.02) < 0.001


def test_weight_decay_only_on_matrices():
    model = GPT(tiny_config(bias=True))
    optimizer = optimizers.configure(model, "adamw", 0.1, 1e-3, (0.9, 0.95), "cpu")
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_greedy_generation_picks_the_argmax_each_step():
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    idx = torch.randint(0, 50, (1, 4))
    out = model.generate(idx, 5, temperature=0)
    expected = idx
    for _ in range(5):
        logits, _ = model(expected)
        expected = torch.cat([expected, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, expected)


def test_top_k_one_is_greedy_and_generation_crops_to_the_context():
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    idx = torch.randint(0, 50, (2, 20))  # longer than block_size=16
    out = model.generate(idx, 3, temperature=1.0, top_k=1)
    assert out.shape == (2, 23)
    assert torch.equal(out, model.generate(idx, 3, temperature=0))


def test_flops_per_token_by_hand_count_the_token_matrix_once_tied_or_not():
    # an embedding lookup is not a matmul: what multiplies each token is the output head (V x C) and
    # the blocks' weights, whether or not the head shares its matrix with the input embedding
    tied, untied = GPT(tiny_config(bias=True)), GPT(tiny_config(bias=True, tie_weights=False))
    cfg = tied.config
    C, V, T, L = cfg.n_embd, cfg.vocab_size, cfg.block_size, cfg.n_layer
    per_block = 2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    expected = 6 * (V * C + L * per_block + 2 * C) + 12 * L * C * T
    assert tied.estimate_flops_per_token() == expected
    assert untied.estimate_flops_per_token() == expected


def test_mfu_uses_the_peak_you_pass():
    model = GPT(tiny_config())
    flops = model.estimate_flops_per_token() * 1000
    assert model.estimate_mfu(1000, 1.0, peak_flops=flops) == pytest.approx(1.0)
    assert model.estimate_mfu(1000, 1.0, peak_flops=0) == 0.0


def test_generation_never_samples_the_padding_ids_of_a_padded_vocabulary():
    torch.manual_seed(0)
    model = GPT(tiny_config(vocab_size=64, tokenizer_vocab_size=50)).eval()
    with torch.no_grad():  # make the 14 padding ids by far the likeliest: logit = sum(ln_f output) ~ 32
        model.transformer.ln_f.bias.fill_(1.0)
        model.lm_head.weight[50:] = 1.0
    idx = torch.randint(0, 50, (4, 3))
    assert model(idx)[0][0, -1].argmax() >= 50  # the raw logits would pick padding
    for kwargs in (dict(temperature=1.0), dict(temperature=0), dict(temperature=1.0, top_k=5, top_p=0.9)):
        out = model.generate(idx, 8, **kwargs)
        assert out.max() < 50, kwargs


def test_vocab_size_defaults_to_the_tokenizers_and_cannot_be_smaller():
    assert tiny_config().tokenizer_vocab_size == 50
    with pytest.raises(ValueError, match="tokenizer_vocab_size=70 must be in"):
        tiny_config(tokenizer_vocab_size=70)


@pytest.mark.parametrize("side", ["left", "right"])
def test_without_targets_a_padded_sequence_gets_its_last_real_tokens_logits(side):
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    a, b = torch.randint(0, 50, (1, 9)), torch.randint(0, 50, (1, 5))
    pad = torch.full((1, 4), 7)
    padded_b = torch.cat([b, pad], 1) if side == "right" else torch.cat([pad, b], 1)
    mask_b = (torch.arange(9) < 5) if side == "right" else (torch.arange(9) >= 4)
    mask = torch.stack([torch.ones(9, dtype=torch.bool), mask_b]).long()
    logits, _ = model(torch.cat([a, padded_b]), attention_mask=mask)
    assert logits.shape == (2, 1, 50)
    torch.testing.assert_close(logits[0], model(a)[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits[1], model(b)[0][0], atol=1e-5, rtol=1e-5)


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="divisible by n_head"):
        GPTConfig(n_embd=30, n_head=4)
