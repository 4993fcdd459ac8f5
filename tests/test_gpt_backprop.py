"""model_gpt_backprop.py: every hand-written gradient checked against autograd's, layer by layer and for
the whole model against model_gpt.GPT; then training, and the training script end to end."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

import optimizers
import model_gpt
from model_gpt import GPT, GPTConfig
from model_gpt_backprop import GELU, MLP, CausalSelfAttention, CrossEntropy, Embedding, GPTBackprop, LayerNorm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = "".join(f"To be, or not to be: that is question {i % 7}. Whether 'tis nobler in the mind\n"
               for i in range(120))


def rel_err(ours, reference):
    """Largest absolute difference relative to the reference's largest entry."""
    return ((ours - reference).abs().max() / reference.abs().max()).item()


def leaf(t):
    """An autograd copy of t, for the reference computation."""
    return t.detach().clone().requires_grad_(True)


def tiny_config(**overrides):
    return GPTConfig(**{**dict(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=32), **overrides})


# -----------------------------------------------------------------------------
# each layer against autograd, float64

def test_embedding_with_tied_head_gradients_equal_autograd():
    torch.manual_seed(0)
    V, C, block, B, T = 11, 8, 16, 3, 12   # few tokens, so each appears many times; T < block
    params = {"transformer.wte.weight": torch.randn(V, C, dtype=torch.float64),
              "transformer.wpe.weight": torch.randn(block, C, dtype=torch.float64)}
    idx = torch.randint(0, V, (B, T))
    dlogits = torch.randn(B, T, V, dtype=torch.float64)

    wte, wpe = leaf(params["transformer.wte.weight"]), leaf(params["transformer.wpe.weight"])
    h = torch.tanh(F.embedding(idx, wte) + wpe[:T])   # something between the two uses of wte
    (h @ wte.t()).backward(dlogits)

    emb, grads = Embedding(params), {}
    h_ours = torch.tanh(emb.forward(idx))
    logits = emb.logits(h_ours)
    dh = emb.logits_backward(dlogits)
    emb.backward(dh * (1 - h_ours ** 2), grads)
    torch.testing.assert_close(logits, h @ wte.t(), rtol=0, atol=1e-12)
    assert rel_err(grads["transformer.wte.weight"], wte.grad) < 1e-10   # both paths, summed
    assert rel_err(grads["transformer.wpe.weight"], wpe.grad) < 1e-10
    assert torch.equal(grads["transformer.wpe.weight"][T:], torch.zeros(block - T, C, dtype=torch.float64))
    assert grads["lm_head.weight"] is grads["transformer.wte.weight"]


@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_gradients_equal_autograd(bias):
    torch.manual_seed(0)
    C = 16
    params = {"ln.weight": torch.randn(C, dtype=torch.float64)}
    if bias:
        params["ln.bias"] = torch.randn(C, dtype=torch.float64)
    x = torch.randn(3, 5, C, dtype=torch.float64) * 2 + 1
    dy = torch.randn(3, 5, C, dtype=torch.float64)

    xr, w, b = leaf(x), leaf(params["ln.weight"]), leaf(params["ln.bias"]) if bias else None
    y = F.layer_norm(xr, (C,), w, b, eps=1e-5)
    y.backward(dy)

    ln, grads = LayerNorm(params, "ln", 1e-5), {}
    assert rel_err(ln.forward(x), y) < 1e-12
    assert rel_err(ln.backward(dy, grads), xr.grad) < 1e-10
    assert rel_err(grads["ln.weight"], w.grad) < 1e-10
    if bias:
        assert rel_err(grads["ln.bias"], b.grad) < 1e-10
    assert set(grads) == set(params)


def test_causal_attention_gradients_equal_autograd():
    torch.manual_seed(0)
    config = tiny_config(flash=False)
    reference = model_gpt.CausalSelfAttention(config, 0).double()
    params = {f"attn.{k}": v.detach().clone() for k, v in reference.state_dict().items()}
    T = config.block_size - 3
    x = torch.randn(2, T, config.n_embd, dtype=torch.float64)
    dy = torch.randn(2, T, config.n_embd, dtype=torch.float64)

    xr = leaf(x)
    y = reference(xr)
    y.backward(dy)

    attn, grads = CausalSelfAttention(params, "attn", config), {}
    assert rel_err(attn.forward(x), y) < 1e-12
    assert rel_err(attn.backward(dy, grads), xr.grad) < 1e-10
    for name, p in reference.named_parameters():
        assert rel_err(grads[f"attn.{name}"], p.grad) < 1e-10, name
    assert set(grads) == set(params)

    # the mask in the backward direction: a loss on position t reaches no input after t
    t = 5
    attn.forward(x)
    only_t = torch.zeros_like(dy)
    only_t[:, t] = dy[:, t]
    dx = attn.backward(only_t, {})
    assert torch.equal(dx[:, t + 1:], torch.zeros_like(dx[:, t + 1:]))
    assert dx[:, : t + 1].abs().min(dim=-1).values.gt(0).all()


def test_gelu_gradient_equals_autograd():
    torch.manual_seed(0)
    x = torch.randn(4, 7, 32, dtype=torch.float64) * 3   # well into both tails
    dy = torch.randn(4, 7, 32, dtype=torch.float64)
    xr = leaf(x)
    y = F.gelu(xr, approximate="tanh")
    y.backward(dy)
    gelu = GELU()
    assert rel_err(gelu.forward(x), y) < 1e-12
    assert rel_err(gelu.backward(dy), xr.grad) < 1e-10


@pytest.mark.parametrize("bias", [True, False])
def test_mlp_gradients_equal_autograd(bias):
    torch.manual_seed(0)
    reference = model_gpt.MLP(tiny_config(bias=bias)).double()
    params = {f"mlp.{k}": v.detach().clone() for k, v in reference.state_dict().items()}
    x = torch.randn(3, 6, 32, dtype=torch.float64)
    dy = torch.randn(3, 6, 32, dtype=torch.float64)
    xr = leaf(x)
    y = reference(xr)
    y.backward(dy)

    mlp, grads = MLP(params, "mlp"), {}
    assert rel_err(mlp.forward(x), y) < 1e-12
    assert rel_err(mlp.backward(dy, grads), xr.grad) < 1e-10
    for name, p in reference.named_parameters():
        assert rel_err(grads[f"mlp.{name}"], p.grad) < 1e-10, name
    assert set(grads) == set(params)


def test_cross_entropy_gradient_equals_autograd():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 20, dtype=torch.float64) * 4
    targets = torch.randint(0, 20, (3, 5))
    lr = leaf(logits)
    loss = F.cross_entropy(lr.view(-1, 20), targets.view(-1))
    loss.backward()
    ce = CrossEntropy()
    assert abs(ce.forward(logits, targets).item() - loss.item()) < 1e-12
    assert rel_err(ce.backward(), lr.grad) < 1e-10


# -----------------------------------------------------------------------------
# the whole model against model_gpt.GPT

def gpt_and_twin(config, dtype):
    torch.manual_seed(0)
    gpt = GPT(config).to(dtype)
    twin = GPTBackprop(config, dtype=dtype)
    twin.load_state_dict(gpt.state_dict())
    return gpt, twin


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("flash", [True, False])
def test_loss_and_every_gradient_equal_gpt(bias, flash):
    gpt, twin = gpt_and_twin(tiny_config(bias=bias, flash=flash), torch.float64)
    idx, targets = torch.randint(0, 50, (3, 16)), torch.randint(0, 50, (3, 16))
    loss = gpt(idx, targets)[1]
    loss.backward()

    assert abs(twin.forward(idx, targets) - loss.item()) / loss.item() < 1e-9
    grads = twin.backward()
    assert set(grads) == set(gpt.state_dict())
    for name, p in gpt.state_dict(keep_vars=True).items():   # lm_head.weight is wte's Parameter
        assert rel_err(grads[name], p.grad) < 1e-9, name
    assert grads["lm_head.weight"] is grads["transformer.wte.weight"]


def test_twenty_adamw_steps_follow_gpt():
    gpt, twin = gpt_and_twin(tiny_config(), torch.float64)
    gpt_opt = optimizers.configure(gpt, "adamw", 0.1, 1e-2, (0.9, 0.99), "cpu")
    twin_opt = twin.configure_optimizers(0.1, 1e-2, (0.9, 0.99))
    idx, targets = torch.randint(0, 50, (4, 16)), torch.randint(0, 50, (4, 16))
    for step in range(20):   # one batch, learned by heart: the loss falls fast, so the steps matter
        loss = gpt(idx, targets)[1]
        loss.backward()
        gpt_opt.step()
        gpt_opt.zero_grad(set_to_none=True)
        twin_loss = twin.forward(idx, targets)
        grads = twin.backward()
        for name, p in twin.named_parameters():
            p.grad = grads[name]
        twin_opt.step()
        assert abs(twin_loss - loss.item()) / loss.item() < 1e-8, step
    assert loss.item() < math.log(50) - 1  # the steps did move the weights


def test_never_touches_autograd():
    _, twin = gpt_and_twin(tiny_config(), torch.float32)
    idx = torch.randint(0, 50, (2, 16))
    with torch.enable_grad():
        twin.forward(idx, idx)
        grads = twin.backward()
    assert not any(p.requires_grad for p in twin.state_dict().values())
    assert all(g.grad_fn is None and not g.requires_grad for g in grads.values())


@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_round_trips_through_gpt(bias):
    gpt, twin = gpt_and_twin(tiny_config(bias=bias), torch.float32)
    ours, theirs = twin.state_dict(), gpt.state_dict()
    assert list(ours) == list(theirs)  # the same names, in the same order
    for name, tensor in theirs.items():
        assert torch.equal(ours[name], tensor), name
    assert ours["lm_head.weight"] is ours["transformer.wte.weight"]
    fresh = GPT(tiny_config(bias=bias))
    fresh.load_state_dict(ours)
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(ours[name], tensor), name
    with pytest.raises(ValueError, match="does not match"):
        GPTBackprop(tiny_config(bias=not bias)).load_state_dict(theirs)


@pytest.mark.parametrize("option", [dict(pos_encoding="rope"), dict(pos_encoding="sinusoidal"),
                                    dict(norm="rmsnorm"), dict(norm_placement="post"), dict(qk_norm=True),
                                    dict(mlp="swiglu"), dict(mlp="relu"), dict(tie_weights=False),
                                    dict(dropout=0.1)])
def test_options_it_does_not_implement_are_refused(option):
    with pytest.raises(ValueError, match=next(iter(option))):
        GPTBackprop(tiny_config(**option))


# -----------------------------------------------------------------------------
# training

def test_trains_like_autograd_on_characters():
    """300 float32 steps on a small character corpus, from the same start on the same batches:
    the eval loss ends where GPT's does."""
    stoi = {ch: i for i, ch in enumerate(sorted(set(TEXT)))}
    data = torch.tensor([stoi[ch] for ch in TEXT])
    config = tiny_config(vocab_size=len(stoi), block_size=32, bias=False)
    gpt, twin = gpt_and_twin(config, torch.float32)
    gpt_opt = optimizers.configure(gpt, "adamw", 0.1, 3e-3, (0.9, 0.99), "cpu")
    twin_opt = twin.configure_optimizers(0.1, 3e-3, (0.9, 0.99))

    def batch(generator, size=8):
        ix = torch.randint(len(data) - 33, (size,), generator=generator)
        return torch.stack([data[i: i + 32] for i in ix]), torch.stack([data[i + 1: i + 33] for i in ix])

    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        x, y = batch(generator)
        _, loss = gpt(x, y)
        loss.backward()
        gpt_opt.step()
        gpt_opt.zero_grad(set_to_none=True)
        twin.forward(x, y)
        grads = twin.backward()
        for name, p in twin.named_parameters():
            p.grad = grads[name]
        twin_opt.step()
    x, y = batch(torch.Generator().manual_seed(1), size=64)
    with torch.no_grad():
        gpt_eval = gpt(x, y)[1].item()
    twin_eval = twin.forward(x, y)
    assert gpt_eval < 1.5 < math.log(len(stoi))   # it learned: from ~3.4 (uniform) to well below
    assert abs(twin_eval - gpt_eval) < 0.02


def run(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("backprop")
    (root / "input.txt").write_text(TEXT)
    result = run("prepare/shakespeare_char.py", "--input", str(root / "input.txt"),
                 "--out_dir", str(root / "data" / "tiny"))
    assert result.returncode == 0, result.stderr
    return root


TINY_RUN = ["train_gpt_backprop.py", "--dataset=tiny", "--n_layer=2", "--n_head=2", "--n_embd=32",
            "--block_size=32", "--batch_size=4", "--eval_iters=3", "--warmup_iters=2", "--lr_decay_iters=30"]


def test_training_script_writes_a_log_and_a_best_checkpoint_gpt_loads(dataset):
    out = dataset / "out"
    result = run(*TINY_RUN, f"--data_dir={dataset / 'data'}", f"--out_dir={out}", "--max_iters=30",
                 "--eval_interval=10", "--log_interval=10")
    assert result.returncode == 0, result.stdout + result.stderr
    with open(out / "log.jsonl") as f:
        log = [json.loads(line) for line in f]
    assert [r["iter"] for r in log] == [0, 10, 20, 30]
    assert all(set(r) == {"iter", "train_loss", "val_loss", "lr", "tokens_seen", "flops", "tokens_per_s", "elapsed_s"}
               for r in log)
    assert log[-1]["val_loss"] < log[0]["val_loss"] - 0.2 and log[-1]["tokens_seen"] == 30 * 4 * 32

    best = torch.load(out / "best.pt", weights_only=True)
    best_eval = min(log[1:], key=lambda r: r["val_loss"])
    assert best["kind"] == "gpt" and best["iter_num"] == best_eval["iter"]
    assert best["best_val_loss"] == best_eval["val_loss"] and "optimizer" not in best
    assert best["config"]["data_dir"] == str(dataset / "data") and best["config"]["dataset"] == "tiny"
    model = GPT(GPTConfig(**best["model_args"]))
    model.load_state_dict(best["model"])
    model.eval()
    with open(dataset / "data" / "tiny" / "meta.json") as f:
        vocab_size = json.load(f)["vocab_size"]
    tokens = model.generate(torch.zeros(1, 1, dtype=torch.long), 20, top_k=5)
    assert tokens.shape == (1, 21) and int(tokens.max()) < vocab_size

    latest = torch.load(out / "ckpt.pt", weights_only=True)
    assert latest["iter_num"] == 30 and "optimizer" in latest

    # its log and its parameter count read as train_gpt.py's do: analysis/compare.py has no note on them
    n_params = model.get_num_params()
    assert f"{n_params / 1e6:.2f}M parameters" in result.stdout
    compared = run("analysis/compare.py", str(out), f"--out={dataset / 'compare' / 'c.html'}")
    assert compared.returncode == 0 and "predates" not in compared.stdout + compared.stderr, compared.stdout
    row = next(line for line in compared.stdout.splitlines() if line.split()[:2] == [out.name, "GPT"])
    assert row.split()[2] == f"{n_params / 1e3:.1f}k"  # compare's 3 significant digits


def test_a_missing_dataset_is_a_one_line_error(dataset):
    result = run(*TINY_RUN, f"--data_dir={dataset / 'nowhere'}", f"--out_dir={dataset / 'out2'}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error:") and "meta.json is missing" in result.stderr
    assert not (dataset / "out2").exists()
