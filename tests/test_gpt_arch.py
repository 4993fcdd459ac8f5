"""model_gpt.py's architecture options, KV cache, padding, GPT-2 loading and Muon:
each behaviour checked against an independent reference (a formula, the uncached path, Hugging Face)."""

import io
import math

import pytest
import torch
from torch.nn import functional as F
from torch import nn

import optimizers
from model_gpt import GPT, GPTConfig, KVCache, RMSNorm, MLP, apply_rope, rope_tables, sinusoidal_table

OPTIONS = [  # one change from GPT-2 each
    dict(),
    dict(pos_encoding="sinusoidal"), dict(pos_encoding="rope"), dict(pos_encoding="none"),
    dict(norm="rmsnorm"), dict(norm_placement="post"), dict(qk_norm=True),
    dict(mlp="relu"), dict(mlp="relu2"), dict(mlp="swiglu"),
    dict(bias=False), dict(tie_weights=False),
]


def tiny_config(**overrides):
    return GPTConfig(**{**dict(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=32), **overrides})


def pattern_batch(batch_size=4, T=16, period=5):
    """A repeated pattern (0 1 2 3 4 0 1 ...) from random starting phases: easy to learn."""
    starts = torch.randint(0, period, (batch_size, 1))
    seq = (starts + torch.arange(T + 1)) % period + 3
    return seq[:, :-1].contiguous(), seq[:, 1:].contiguous()


# ----------------------------------------------------------------------------- config

@pytest.mark.parametrize("field, value, choices", [
    ("pos_encoding", "alibi", "learned, sinusoidal, rope, none"),
    ("norm", "batchnorm", "layernorm, rmsnorm"),
    ("norm_placement", "sandwich", "pre, post"),
    ("mlp", "geglu", "gelu, relu, relu2, swiglu"),
])
def test_unknown_choices_are_rejected_with_the_valid_ones_listed(field, value, choices):
    with pytest.raises(ValueError, match=f"{field}='{value}' is not one of {choices}"):
        GPTConfig(**{field: value})


def test_rope_needs_an_even_head_size():
    with pytest.raises(ValueError, match="must be even"):
        GPTConfig(n_embd=12, n_head=4, pos_encoding="rope")


def test_defaults_are_gpt2():
    cfg = GPTConfig()
    assert (cfg.pos_encoding, cfg.norm, cfg.norm_eps, cfg.norm_placement, cfg.qk_norm, cfg.mlp,
            cfg.mlp_hidden, cfg.bias, cfg.tie_weights) == ("learned", "layernorm", 1e-5, "pre", False,
                                                          "gelu", 0, True, True)


# ----------------------------------------------------------------------------- every option trains

@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "gpt2")
def test_every_option_learns_a_repeated_pattern(options):
    torch.manual_seed(0)
    model = GPT(tiny_config(**options))
    optimizer = optimizers.configure(model, "adamw", 0.0, 3e-3, (0.9, 0.95), "cpu")
    x, y = pattern_batch()
    logits, first = model(x, y)
    assert logits.shape == (4, 16, 50)
    for _ in range(40):
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first.item()


def count(model):
    return model.get_num_params(non_embedding=False)


def test_parameter_counts_by_hand():
    C, V, T, L = 32, 50, 16, 2
    attn = C * 3 * C + 3 * C + C * C + C      # c_attn, c_proj with biases
    mlp = C * 4 * C + 4 * C + 4 * C * C + C   # c_fc, c_proj
    norms = 2 * 2 * C                         # two LayerNorms, weight + bias
    gpt2 = V * C + T * C + L * (attn + mlp + norms) + 2 * C
    assert count(GPT(tiny_config())) == gpt2
    # no position table to learn
    for pos in ("sinusoidal", "rope", "none"):
        assert count(GPT(tiny_config(pos_encoding=pos))) == gpt2 - T * C
    # untied: a second V x C matrix for the head
    assert count(GPT(tiny_config(tie_weights=False))) == gpt2 + V * C
    # RMSNorm: a weight and no bias, in 2 norms per block and the final one
    assert count(GPT(tiny_config(norm="rmsnorm"))) == gpt2 - (2 * L + 1) * C
    # bias=False: no Linear biases, no LayerNorm biases
    no_bias = V * C + T * C + L * (C * 3 * C + C * C + C * 4 * C + 4 * C * C + 2 * C) + C
    assert count(GPT(tiny_config(bias=False))) == no_bias
    # SwiGLU: hidden 2/3 * 4 * 32 = 85.3, rounded up to 128; three matrices
    H = 128
    swiglu_mlp = C * H + H + C * H + H + H * C + C
    assert count(GPT(tiny_config(mlp="swiglu"))) == gpt2 + L * (swiglu_mlp - mlp)
    assert count(GPT(tiny_config(mlp="swiglu", mlp_hidden=40))) == gpt2 + L * (3 * C * 40 + 2 * 40 + C - mlp)
    # qk_norm: two LayerNorms over the head size (16) per block
    assert count(GPT(tiny_config(qk_norm=True))) == gpt2 + L * 2 * 2 * (C // 2)
    # post-norm has no final norm: each block already ends in one
    assert count(GPT(tiny_config(norm_placement="post"))) == gpt2 - 2 * C


# ----------------------------------------------------------------------------- the pieces vs their formulas

def test_sinusoidal_table_is_the_papers_formula():
    d = 32
    table = sinusoidal_table(100, d)
    for pos, i in [(0, 0), (1, 0), (7, 3), (50, 10), (99, 15)]:
        angle = pos / 10000 ** (2 * i / d)
        assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
        assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_rope_rotates_each_pair_by_position_times_its_frequency():
    hs, theta = 8, 10000.0
    cos, sin = rope_tables(20, hs, theta)
    x = torch.randn(1, 1, 1, hs)
    pos = 13
    out = apply_rope(x, cos[pos], sin[pos])
    for i in range(hs // 2):  # pair (i, i + hs/2), angle pos * theta^(-2i/hs)
        a = pos * theta ** (-2 * i / hs)
        x1, x2 = x[0, 0, 0, i].item(), x[0, 0, 0, i + hs // 2].item()
        assert out[0, 0, 0, i].item() == pytest.approx(x1 * math.cos(a) - x2 * math.sin(a), abs=1e-5)
        assert out[0, 0, 0, i + hs // 2].item() == pytest.approx(x1 * math.sin(a) + x2 * math.cos(a), abs=1e-5)


def test_rope_scores_depend_only_on_relative_position():
    torch.manual_seed(0)
    hs = 16
    cos, sin = rope_tables(64, hs, 10000.0)
    q, k = torch.randn(1, 2, 8, hs), torch.randn(1, 2, 8, hs)
    pos = torch.arange(8)

    def scores(shift):
        p = pos + shift
        return apply_rope(q, cos[p], sin[p]) @ apply_rope(k, cos[p], sin[p]).transpose(-2, -1)

    torch.testing.assert_close(scores(0), scores(37), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(scores(0), q @ k.transpose(-2, -1), atol=1e-3)  # it does change them


def test_sinusoidal_positions_start_at_the_scale_of_learned_ones():
    # at GPT-2's shape the raw table's rows have norm sqrt(768 / 2) = 19.6 against 0.55 for a token
    # embedding: scaled, a position row is as large as a token row, as learned positions are
    torch.manual_seed(0)
    config = dict(n_layer=1, n_head=12, n_embd=768, block_size=1024, vocab_size=512)
    sinusoidal = GPT(GPTConfig(**config, pos_encoding="sinusoidal"))
    learned = GPT(GPTConfig(**config, pos_encoding="learned"))
    token_norm = sinusoidal.transformer.wte.weight.norm(dim=1).mean()
    ratio = sinusoidal.sinusoidal_pe.norm(dim=1).mean() / token_norm
    learned_ratio = learned.transformer.wpe.weight.norm(dim=1).mean() / learned.transformer.wte.weight.norm(dim=1).mean()
    assert abs(ratio - 1) < 0.02 and abs(learned_ratio - 1) < 0.02
    # still the paper's table, only scaled
    torch.testing.assert_close(sinusoidal.sinusoidal_pe, sinusoidal_table(1024, 768) * 0.02 * math.sqrt(2))


def test_gpt_and_vit_rmsnorm_behave_the_same_under_bf16():
    from model_vit import RMSNorm as ViTRMSNorm
    torch.manual_seed(0)
    gpt_norm, vit_norm = RMSNorm(32, eps=1e-6), ViTRMSNorm(32, eps=1e-6)
    with torch.no_grad():
        gpt_norm.weight.normal_()
        vit_norm.weight.copy_(gpt_norm.weight)
    x = torch.randn(4, 32).bfloat16()
    assert gpt_norm(x).dtype == vit_norm(x).dtype == torch.bfloat16
    torch.testing.assert_close(gpt_norm(x), vit_norm(x), atol=0, rtol=0)


def test_rmsnorm_is_the_formula_and_torchs():
    torch.manual_seed(0)
    norm = RMSNorm(32, eps=1e-6)
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(3, 5, 32)
    expected = x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), expected)
    if hasattr(F, "rms_norm"):
        torch.testing.assert_close(norm(x), F.rms_norm(x, (32,), norm.weight, eps=1e-6))


@pytest.mark.parametrize("kind, act", [
    ("gelu", lambda h: 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))),
    ("relu", lambda h: h.clamp(min=0)),
    ("relu2", lambda h: h.clamp(min=0) ** 2),
])
def test_mlp_is_its_formula(kind, act):
    torch.manual_seed(0)
    mlp = MLP(tiny_config(mlp=kind)).eval()
    x = torch.randn(2, 3, 32)
    expected = act(x @ mlp.c_fc.weight.T + mlp.c_fc.bias) @ mlp.c_proj.weight.T + mlp.c_proj.bias
    torch.testing.assert_close(mlp(x), expected, atol=1e-5, rtol=1e-5)


def test_swiglu_is_its_formula():
    torch.manual_seed(0)
    mlp = MLP(tiny_config(mlp="swiglu", bias=False)).eval()
    x = torch.randn(2, 3, 32)
    gate = x @ mlp.c_gate.weight.T
    swish = gate * torch.sigmoid(gate)  # Swish_1 = SiLU
    expected = (swish * (x @ mlp.c_fc.weight.T)) @ mlp.c_proj.weight.T
    torch.testing.assert_close(mlp(x), expected, atol=1e-5, rtol=1e-5)
    assert mlp.c_fc.weight.shape == (128, 32) and mlp.c_gate.weight.shape == (128, 32)


def reference_attention(attn, x, norm=None):
    """Causal multi-head attention written out, per head, from the module's weights."""
    B, T, C = x.shape
    nh = attn.n_head
    hs = C // nh
    q, k, v = (x @ attn.c_attn.weight.T + attn.c_attn.bias).split(C, dim=-1)
    heads = []
    for h in range(nh):
        qh, kh, vh = (t[..., h * hs:(h + 1) * hs] for t in (q, k, v))
        if norm is not None:
            qh, kh = norm(qh, attn.q_norm), norm(kh, attn.k_norm)
        scores = qh @ kh.transpose(-2, -1) / math.sqrt(hs)
        scores = scores + torch.full((T, T), float("-inf")).triu(1)
        heads.append(scores.softmax(-1) @ vh)
    return torch.cat(heads, dim=-1) @ attn.c_proj.weight.T + attn.c_proj.bias


@pytest.mark.parametrize("flash", [True, False])
def test_qk_norm_layer_normalises_each_heads_queries_and_keys(flash):
    torch.manual_seed(0)
    model = GPT(tiny_config(qk_norm=True, flash=flash)).eval()
    attn = model.transformer.h[0].attn
    with torch.no_grad():
        for p in (attn.q_norm.weight, attn.q_norm.bias, attn.k_norm.weight, attn.k_norm.bias):
            p.normal_()
    x = torch.randn(2, 10, 32)

    def layer_norm(t, ln):
        mean, var = t.mean(-1, keepdim=True), t.var(-1, unbiased=False, keepdim=True)
        return (t - mean) / torch.sqrt(var + 1e-5) * ln.weight + ln.bias

    torch.testing.assert_close(attn(x), reference_attention(attn, x, layer_norm), atol=1e-5, rtol=1e-5)
    assert attn.q_norm.weight.shape == (16,)


def test_post_norm_block_normalises_after_each_residual_add():
    torch.manual_seed(0)
    block = GPT(tiny_config(norm_placement="post")).transformer.h[0].eval()
    x = torch.randn(2, 6, 32)
    h = block.ln_1(x + reference_attention(block.attn, x))
    expected = block.ln_2(h + block.mlp(h))
    torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- KV cache

@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal", "rope", "none"])
@pytest.mark.parametrize("flash", [True, False])
def test_kv_cache_gives_the_uncached_logits_at_every_step(pos_encoding, flash):
    torch.manual_seed(0)
    model = GPT(tiny_config(pos_encoding=pos_encoding, flash=flash, qk_norm=pos_encoding == "rope")).eval()
    seq = torch.randint(0, 50, (2, 16))
    cache = KVCache(model.config)
    with torch.no_grad():
        cached, _ = model(seq[:, :5], kv_cache=cache)                  # the prompt, at once
        full, _ = model(seq[:, :5])
        torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)
        for t in range(5, 16):                                          # then one token at a time
            cached, _ = model(seq[:, t:t + 1], kv_cache=cache)
            full, _ = model(seq[:, :t + 1])
            torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)
    assert cache.length == 16


@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal", "rope", "none"])
def test_cached_greedy_generation_equals_uncached_across_block_size(pos_encoding):
    torch.manual_seed(0)
    model = GPT(tiny_config(pos_encoding=pos_encoding)).eval()
    idx = torch.randint(0, 50, (2, 5))
    cached = model.generate(idx, 30, temperature=0, use_cache=True)   # 35 tokens > block_size 16
    uncached = model.generate(idx, 30, temperature=0, use_cache=False)
    assert cached.shape == (2, 35)
    assert torch.equal(cached, uncached)
    long_prompt = torch.randint(0, 50, (1, 20))                          # longer than the context
    assert torch.equal(model.generate(long_prompt, 4, temperature=0),
                       model.generate(long_prompt, 4, temperature=0, use_cache=False))


def test_cached_sampling_draws_the_same_tokens_as_uncached():
    torch.manual_seed(0)
    model = GPT(tiny_config(pos_encoding="rope")).eval()
    idx = torch.randint(0, 50, (3, 4))
    torch.manual_seed(1)
    cached = model.generate(idx, 10, temperature=1.3, top_k=20, top_p=0.9)
    torch.manual_seed(1)
    uncached = model.generate(idx, 10, temperature=1.3, top_k=20, top_p=0.9, use_cache=False)
    assert torch.equal(cached, uncached)


# ----------------------------------------------------------------------------- sampling options

def test_top_p_keeps_the_smallest_set_reaching_p():
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    with torch.no_grad():  # make the output distribution p = (0.5, 0.3, 0.2, ~0, ...) whatever the input
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.lm_head.weight.fill_(-1e3 / 32)
        model.lm_head.weight[:3] = torch.log(torch.tensor([0.5, 0.3, 0.2]))[:, None] / 32
    idx = torch.zeros(2000, 1, dtype=torch.long)
    seen = lambda p: set(model.generate(idx, 1, top_p=p)[:, 1].tolist())
    assert seen(0.45) == {0}             # 0.5 already reaches 0.45
    assert seen(0.75) == {0, 1}          # 0.5 + 0.3 reaches 0.75
    assert seen(0.85) == {0, 1, 2}
    assert seen(0.01) == {0}             # the likeliest token is always kept


def test_stream_receives_each_token_as_it_is_made():
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    idx = torch.randint(0, 50, (2, 3))
    got = []
    out = model.generate(idx, 6, temperature=0, stream=got.append)
    assert len(got) == 6 and all(t.shape == (2,) for t in got)
    assert torch.equal(torch.stack(got, dim=1), out[:, 3:])


def test_bad_sampling_arguments_are_rejected():
    model = GPT(tiny_config()).eval()
    idx = torch.zeros(1, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(idx, 1, temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        model.generate(idx, 1, top_p=1.5)
    assert model.generate(idx, 1, top_p=0, top_k=0).shape == (1, 2)  # 0 is off, not an error


def test_bf16_autocast_runs_every_option_cached_and_uncached():
    torch.manual_seed(0)
    model = GPT(tiny_config(pos_encoding="rope", norm="rmsnorm", qk_norm=True, mlp="swiglu")).eval()
    idx = torch.randint(0, 50, (2, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, loss = model(idx, idx)
        out = model.generate(idx, 20, temperature=0)
    assert torch.isfinite(loss) and out.shape == (2, 24)


# ----------------------------------------------------------------------------- padding

@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal", "rope"])
@pytest.mark.parametrize("flash", [True, False])
def test_padded_batches_score_real_tokens_as_unpadded_sequences(pos_encoding, flash):
    torch.manual_seed(0)
    model = GPT(tiny_config(pos_encoding=pos_encoding, flash=flash)).eval()
    a, b = torch.randint(0, 50, (1, 12)), torch.randint(0, 50, (1, 7))
    alone_a, _ = model(a, a)
    alone_b, _ = model(b, b)
    pad = torch.full((1, 5), 49)
    right = torch.cat([a, torch.cat([b, pad], dim=1)])                       # (2, 12)
    left = torch.cat([a, torch.cat([pad, b], dim=1)])
    mask_right = torch.cat([torch.ones(1, 12), torch.cat([torch.ones(1, 7), torch.zeros(1, 5)], 1)]).long()
    mask_left = torch.cat([torch.ones(1, 12), torch.cat([torch.zeros(1, 5), torch.ones(1, 7)], 1)]).long()
    targets = torch.where(mask_right.bool(), right, -1)                      # padding is not scored
    logits, loss = model(right, targets, attention_mask=mask_right)
    torch.testing.assert_close(logits[0:1], alone_a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits[1:2, :7], alone_b, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(loss)
    logits, _ = model(left, left, attention_mask=mask_left)
    assert torch.isfinite(logits).all()                                      # no NaN from all-padding rows
    torch.testing.assert_close(logits[1:2, 5:], alone_b, atol=1e-5, rtol=1e-5)
    # whatever the padding holds, the real tokens' logits do not move
    other_pad = torch.where(mask_left.bool(), left, torch.randint(0, 50, left.shape))
    logits_other, _ = model(other_pad, left, attention_mask=mask_left)
    torch.testing.assert_close(logits_other[1:2, 5:], logits[1:2, 5:], atol=0, rtol=0)


@pytest.mark.parametrize("pos_encoding", ["learned", "rope"])
@pytest.mark.parametrize("flash", [True, False])
def test_left_padded_prompts_in_one_cache_continue_as_each_prompt_alone(pos_encoding, flash):
    """Prompts of different lengths, left-padded and prefilled into one KV cache, then fed new tokens
    one at a time with the mask growing alongside: every step's logits are each prompt's own."""
    torch.manual_seed(0)
    model = GPT(tiny_config(pos_encoding=pos_encoding, flash=flash)).eval()
    a, b = torch.randint(0, 50, (1, 9)), torch.randint(0, 50, (1, 4))
    new = torch.randint(0, 50, (2, 5))                                       # the tokens each continues with
    idx = torch.cat([a, torch.cat([torch.full((1, 5), 49), b], dim=1)])     # (2, 9)
    mask = torch.cat([torch.ones(1, 9), torch.cat([torch.zeros(1, 5), torch.ones(1, 4)], 1)]).long()
    cache = KVCache(model.config)
    logits, _ = model(idx, attention_mask=mask, kv_cache=cache)
    for t in range(new.size(1) + 1):
        for row, prompt in enumerate((a, b)):
            alone, _ = model(torch.cat([prompt, new[row:row + 1, :t]], dim=1))  # uncached, unpadded
            torch.testing.assert_close(logits[row:row + 1], alone, atol=1e-5, rtol=1e-5)
        if t < new.size(1):
            mask = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], dim=1)
            logits, _ = model(new[:, t:t + 1], attention_mask=mask, kv_cache=cache)


def test_padding_tokens_get_no_gradient():
    torch.manual_seed(0)
    model = GPT(tiny_config(tie_weights=False))
    idx = torch.tensor([[48, 49, 1, 2, 3, 4], [1, 2, 3, 4, 48, 49]])   # 48, 49 appear only as padding
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    targets = torch.where(mask.bool(), idx, -1)
    _, loss = model(idx, targets, attention_mask=mask)
    loss.backward()
    grad = model.transformer.wte.weight.grad
    assert grad[48:].abs().max() == 0 and grad[1:5].abs().min() > 0


# ----------------------------------------------------------------------------- GPT-2 weights

@pytest.mark.parametrize("flash", [True, False])
def test_from_pretrained_matches_hugging_face_gpt2(tmp_path, flash):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=100)
    hf = transformers.GPT2LMHeadModel(hf_config).eval()
    hf.save_pretrained(tmp_path, safe_serialization=True)
    model = GPT.from_pretrained(str(tmp_path), dict(dropout=0.0)).eval()
    model.config.flash = flash
    for block in model.transformer.h:
        block.attn.flash = flash
    assert (model.config.n_layer, model.config.block_size, model.config.vocab_size) == (2, 64, 100)
    assert model.lm_head.weight is model.transformer.wte.weight
    idx = torch.randint(0, 100, (2, 40))
    with torch.no_grad():
        expected = hf(idx).logits
        logits, _ = model(idx, idx)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        hf_greedy = hf.generate(idx[:, :8], max_new_tokens=12, do_sample=False, min_new_tokens=12,
                                pad_token_id=0, attention_mask=torch.ones(2, 8, dtype=torch.long))
    assert torch.equal(model.generate(idx[:, :8], 12, temperature=0), hf_greedy)


def test_from_pretrained_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="only dropout"):
        GPT.from_pretrained(str(tmp_path), dict(n_layer=3))
    with pytest.raises(ValueError, match="neither"):
        GPT.from_pretrained("gpt3")


# ----------------------------------------------------------------------------- Muon

def test_muon_takes_exactly_the_blocks_matrices():
    model = GPT(tiny_config(mlp="swiglu", tie_weights=False))
    optimizer = optimizers.configure(model, "muon", 0.1, 1e-3, (0.9, 0.95), "cpu")
    muon_params = {id(p) for g in optimizer.optimizers["muon"].param_groups for p in g["params"]}
    adamw_params = {id(p) for g in optimizer.optimizers["adamw"].param_groups for p in g["params"]}
    expected = {id(p) for name, p in model.named_parameters()
                if name.startswith("transformer.h.") and name.endswith(("c_attn.weight", "c_proj.weight",
                                                                         "c_fc.weight", "c_gate.weight"))}
    assert muon_params == expected and len(expected) == 2 * 5
    assert adamw_params == {id(p) for p in model.parameters()} - expected
    assert isinstance(optimizer.optimizers["muon"], optimizers.Muon)
    assert optimizer.optimizers["muon"].ns_dtype == torch.float32  # on a CPU; bfloat16 on CUDA


def test_muon_in_bfloat16_steps_exactly_like_torch_optim_muon():
    torch.manual_seed(0)
    ours = [nn.Parameter(torch.randn(48, 16)), nn.Parameter(torch.randn(16, 64))]  # tall and wide
    theirs = [nn.Parameter(p.detach().clone()) for p in ours]
    muon = optimizers.Muon(ours, lr=0.01, weight_decay=0.1, ns_dtype=torch.bfloat16)
    reference = torch.optim.Muon(theirs, lr=0.01, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    for _ in range(5):
        for p, q in zip(ours, theirs):
            p.grad = torch.randn_like(p)
            q.grad = p.grad.clone()
        muon.step()
        reference.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, atol=0, rtol=0)


@pytest.mark.parametrize("shape", [(96, 32), (32, 128)])  # tall and wide: well-conditioned
def test_muon_orthogonalize_in_float32_approximates_u_v_transposed(shape):
    torch.manual_seed(0)
    G = torch.randn(shape)
    X = optimizers.Muon.orthogonalize(G, steps=5, dtype=torch.float32)
    singular_values = torch.linalg.svdvals(X)
    assert 0.5 < singular_values.min() and singular_values.max() < 1.3  # all near 1, not exactly 1
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    cosine = (X * (U @ Vh)).sum() / (X.norm() * (U @ Vh).norm())
    assert cosine > 0.97


def muon_run(model, optimizer, steps, x, y, scaler=None):
    scaler = scaler or torch.amp.GradScaler("cpu", enabled=False)
    losses = []
    for _ in range(steps):
        for group in optimizer.param_groups:  # what the training loop does each step
            group["lr"] = 2e-3
        _, loss = model(x, y)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def test_muon_trains_and_its_state_round_trips():
    torch.manual_seed(0)
    model = GPT(tiny_config())
    optimizer = optimizers.configure(model, "muon", 0.0, 2e-3, (0.9, 0.95), "cpu")
    x, y = pattern_batch()
    losses = muon_run(model, optimizer, 30, x, y)
    assert losses[-1] < 0.5 * losses[0]
    # a copy restored from the state dicts continues exactly like the original
    clone = GPT(tiny_config())
    clone.load_state_dict(model.state_dict())
    clone_optimizer = optimizers.configure(clone, "muon", 0.0, 2e-3, (0.9, 0.95), "cpu")
    saved = io.BytesIO()
    torch.save(optimizer.state_dict(), saved)  # through bytes, as a checkpoint is (and no shared tensors)
    saved.seek(0)
    clone_optimizer.load_state_dict(torch.load(saved))
    muon_run(model, optimizer, 2, x, y)
    muon_run(clone, clone_optimizer, 2, x, y)
    for p, q in zip(model.parameters(), clone.parameters()):
        torch.testing.assert_close(p, q, atol=0, rtol=0)
    with pytest.raises(ValueError, match="another --optimizer"):
        clone_optimizer.load_state_dict(torch.optim.AdamW(clone.parameters()).state_dict())


def test_muon_works_under_an_enabled_grad_scaler():
    torch.manual_seed(0)
    model = GPT(tiny_config())
    optimizer = optimizers.configure(model, "muon", 0.0, 2e-3, (0.9, 0.95), "cpu")
    x, y = pattern_batch()
    losses = muon_run(model, optimizer, 20, x, y, scaler=torch.amp.GradScaler("cpu", init_scale=1024.0))
    assert losses[-1] < losses[0]


def test_unknown_optimizer_is_rejected():
    with pytest.raises(ValueError, match="adamw, muon"):
        optimizers.configure(GPT(tiny_config()), "sgd", 0.0, 1e-3, (0.9, 0.95), "cpu")


@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal", "rope", "none"])
def test_crop_block_size_keeps_the_first_positions_of_every_encoding(pos_encoding):
    torch.manual_seed(0)
    model = GPT(tiny_config(pos_encoding=pos_encoding)).eval()
    idx = torch.randint(0, 50, (1, 8))
    before, _ = model(idx, idx)
    model.crop_block_size(8)
    after, _ = model(idx, idx)
    torch.testing.assert_close(before, after)
    assert torch.equal(model.generate(idx[:, :3], 10, temperature=0),
                       model.generate(idx[:, :3], 10, temperature=0, use_cache=False))
    with pytest.raises(ValueError, match="longer than block_size 8"):
        model(torch.zeros(1, 9, dtype=torch.long))
