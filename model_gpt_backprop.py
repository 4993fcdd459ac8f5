"""
GPT-2 with its backward pass written by hand: model_gpt.GPT's twin, without autograd.

Every layer is a small class whose forward computes its output and keeps what the backward pass will
need, and whose backward turns the gradient of the loss with respect to its output into the gradient
with respect to its input (and, into a dict, its parameters'). The chain rule does the rest: the
model calls the backwards in the reverse order of the forwards. Each backward carries its derivation.
Nothing here records a graph: it all runs under torch.no_grad() on tensors that do not require grad,
and tests/test_gpt_backprop.py checks every gradient against autograd's.

The architecture is GPT-2's, exactly as model_gpt.py builds it with its defaults: token + learned
position embeddings, pre-norm blocks of causal multi-head attention and a GELU (tanh) MLP, a final
LayerNorm, and an output head tied to the token embeddings. Weights have GPT's names and shapes, so a
state_dict moves between the two models either way.

    m = GPTBackprop(GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65))
    loss = m.forward(idx, targets)   # a float
    grads = m.backward()             # {state_dict name: gradient}

Run as a script, it trains on a prepared dataset with AdamW fed these gradients (see train() below):

    python model_gpt_backprop.py --dataset=shakespeare_char --max_iters=500
"""

import math
import os
import sys
import time
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import torch

import training
from model_gpt import GPT, GPTConfig, mlp_hidden_size

# the GPTConfig options this file implements; anything else is refused rather than silently ignored
SUPPORTED = dict(pos_encoding="learned", norm="layernorm", norm_placement="pre", qk_norm=False, mlp="gelu",
                 tie_weights=True)


def check_supported(config):
    for field, value in SUPPORTED.items():
        if getattr(config, field) != value:
            raise ValueError(f"GPTBackprop implements only GPT-2's {field}={value!r}, got "
                             f"{getattr(config, field)!r}: use model_gpt.GPT for the other options")
    if config.dropout > 0:
        raise ValueError(f"GPTBackprop has no dropout: dropout must be 0, got {config.dropout}")


# -----------------------------------------------------------------------------
# embeddings in, and the same token matrix as the output head

class Embedding:
    """x = wte[idx] + wpe[position] at the input; logits = x @ wte^T at the output (tied weights)."""

    def __init__(self, params):
        self.wte = params["transformer.wte.weight"]  # (vocab, C)
        self.wpe = params["transformer.wpe.weight"]  # (block_size, C)

    def forward(self, idx):
        self.idx = idx                                         # (B, T)
        return self.wte[idx] + self.wpe[:idx.size(1)]          # (B, T, C)

    def logits(self, x):
        self.x = x                                             # (B, T, C)
        return x @ self.wte.t()                                # (B, T, vocab)

    def logits_backward(self, dlogits):
        # logits = x wte^T, one matmul shared by all B*T positions:
        #   dx = dlogits wte  (B, T, C);   d wte = dlogits^T x summed over positions  (vocab, C)
        C = self.wte.size(1)
        self.dwte_head = dlogits.reshape(-1, dlogits.size(-1)).t() @ self.x.reshape(-1, C)
        return dlogits @ self.wte

    def backward(self, dx, grads):
        # A lookup copies row idx[b, t] of wte into position (b, t), so each row's gradient is the sum
        # of dx over every position that holds its token (index_add); rows of tokens absent from the
        # batch get 0. wpe's row t is added at position t of every sequence: sum dx over the batch.
        # wte is used twice, here and in the head, and the gradient of a weight used twice is the sum
        # of the two uses' gradients. The head comes last in forward, so its backward (logits_backward)
        # has already run.
        B, T, C = dx.shape
        dwte = torch.zeros_like(self.wte).index_add_(0, self.idx.reshape(-1), dx.reshape(-1, C))
        grads["transformer.wte.weight"] = dwte + self.dwte_head          # (vocab, C)
        # GPT's state_dict lists the tied matrix twice, as one tensor: so do the gradients
        grads["lm_head.weight"] = grads["transformer.wte.weight"]
        dwpe = torch.zeros_like(self.wpe)
        dwpe[:T] = dx.sum(dim=0)                                         # (block_size, C)
        grads["transformer.wpe.weight"] = dwpe


# -----------------------------------------------------------------------------
# the pieces of a block

class LayerNorm:
    """y = (x - mean) / sqrt(var + eps) * weight + bias, over the last dimension."""

    def __init__(self, params, name, eps):
        self.name, self.eps = name, eps
        self.weight = params[f"{name}.weight"]        # (C,)
        self.bias = params.get(f"{name}.bias")        # (C,) or None (bias=False)

    def forward(self, x):
        centred = x - x.mean(dim=-1, keepdim=True)                                  # (B, T, C)
        self.rstd = torch.rsqrt((centred * centred).mean(dim=-1, keepdim=True) + self.eps)  # (B, T, 1)
        self.xhat = centred * self.rstd                                             # (B, T, C)
        y = self.xhat * self.weight
        return y if self.bias is None else y + self.bias

    def backward(self, dy, grads):
        # The affine part: d weight = sum over positions of dy * xhat, d bias = sum of dy.
        # Then xhat_i = (x_i - mean) * rstd with dg = dy * weight: x_i moves xhat_i directly, and every
        # xhat_j through the mean and the variance. Differentiating,
        #   d xhat_j / d x_i = rstd * (delta_ij - 1/C - xhat_i xhat_j / C),
        # so dx is rstd times three terms: dg itself, minus its mean (the mean's share), minus xhat
        # times mean(dg * xhat) (the variance's share).
        C = dy.size(-1)
        grads[f"{self.name}.weight"] = (dy * self.xhat).reshape(-1, C).sum(dim=0)
        if self.bias is not None:
            grads[f"{self.name}.bias"] = dy.reshape(-1, C).sum(dim=0)
        dg = dy * self.weight                                                       # (B, T, C)
        return self.rstd * (dg - dg.mean(dim=-1, keepdim=True)
                            - self.xhat * (dg * self.xhat).mean(dim=-1, keepdim=True))


class Linear:
    """y = x W^T + b, W of shape (out, in) as in nn.Linear."""

    def __init__(self, params, name):
        self.name = name
        self.weight = params[f"{name}.weight"]        # (out, in)
        self.bias = params.get(f"{name}.bias")        # (out,) or None

    def forward(self, x):
        self.x = x                                    # (B, T, in)
        y = x @ self.weight.t()                       # (B, T, out)
        return y if self.bias is None else y + self.bias

    def backward(self, dy, grads):
        # y_n = W x_n + b at each of the N = B*T positions, with the same W and b: their gradients
        # are sums over positions, dW = sum_n dy_n x_n^T = dy^T x as one (out, N) @ (N, in) matmul,
        # db = sum_n dy_n. And dx_n = W^T dy_n, i.e. dx = dy W.
        dy2 = dy.reshape(-1, dy.size(-1))                                    # (N, out)
        grads[f"{self.name}.weight"] = dy2.t() @ self.x.reshape(-1, self.x.size(-1))  # (out, in)
        if self.bias is not None:
            grads[f"{self.name}.bias"] = dy2.sum(dim=0)                      # (out,)
        return dy @ self.weight                                              # (B, T, in)


class CausalSelfAttention:
    """Each position attends to itself and the positions before it, in n_head independent heads:
    per head, y = softmax(q k^T / sqrt(hs) with future positions masked) v, then c_proj."""

    def __init__(self, params, name, config):
        self.c_attn = Linear(params, f"{name}.c_attn")     # C -> 3C: queries, keys, values of all heads
        self.c_proj = Linear(params, f"{name}.c_proj")
        self.n_head = config.n_head
        device = params[f"{name}.c_attn.weight"].device
        # True where position t may not look: the strict upper triangle, the future
        self.future = torch.ones(config.block_size, config.block_size, dtype=torch.bool,
                                 device=device).triu(diagonal=1)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn.forward(x).split(C, dim=2)                      # 3 x (B, T, C)
        q, k, v = (t.reshape(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        self.scale = 1.0 / math.sqrt(hs)
        scores = (q @ k.transpose(-2, -1)) * self.scale                      # (B, nh, T, T)
        scores = scores.masked_fill(self.future[:T, :T], float("-inf"))
        self.att = torch.softmax(scores, dim=-1)                             # (B, nh, T, T)
        self.q, self.k, self.v = q, k, v
        y = (self.att @ v).transpose(1, 2).reshape(B, T, C)                  # heads side by side
        return self.c_proj.forward(y)

    def backward(self, dy, grads):
        B, T, C = dy.shape
        hs = C // self.n_head
        dy = self.c_proj.backward(dy, grads)
        dy = dy.reshape(B, T, self.n_head, hs).transpose(1, 2)               # (B, nh, T, hs)
        # y = att v, per head: dv = att^T dy, d att = dy v^T
        dv = self.att.transpose(-2, -1) @ dy                                 # (B, nh, T, hs)
        datt = dy @ self.v.transpose(-2, -1)                                 # (B, nh, T, T)
        # Softmax along each row, p = softmax(s): d p_j / d s_i = p_j (delta_ij - p_i). Its
        # Jacobian-vector product needs no T x T Jacobian: ds_i = p_i (dp_i - sum_j dp_j p_j).
        # The causal mask: a future score was set to -inf, a constant, so its p is exactly 0 and so is
        # its ds; no gradient reaches future keys and values, and the mask needs no backward of its own.
        dscores = self.att * (datt - (datt * self.att).sum(dim=-1, keepdim=True))  # (B, nh, T, T)
        # scores = q k^T * scale: dq = dscores k * scale, dk = dscores^T q * scale
        dq = (dscores @ self.k) * self.scale                                 # (B, nh, T, hs)
        dk = (dscores.transpose(-2, -1) @ self.q) * self.scale               # (B, nh, T, hs)
        # the split into q, k, v and heads was only a view: put the three back side by side
        dqkv = torch.cat([t.transpose(1, 2).reshape(B, T, C) for t in (dq, dk, dv)], dim=2)  # (B, T, 3C)
        return self.c_attn.backward(dqkv, grads)                             # (B, T, C)


class GELU:
    """GPT-2's tanh approximation: gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)."""

    def forward(self, x):
        self.x = x
        self.tanh = torch.tanh(math.sqrt(2 / math.pi) * x * (1 + 0.044715 * x * x))
        return 0.5 * x * (1 + self.tanh)

    def backward(self, dy):
        # product rule on 0.5 x (1 + tanh(u)), with tanh' = 1 - tanh^2 and du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2):
        #   d gelu / dx = 0.5 (1 + tanh) + 0.5 x (1 - tanh^2) sqrt(2/pi) (1 + 0.134145 x^2)
        x, t = self.x, self.tanh
        du = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)


class MLP:
    """c_proj(gelu(c_fc(x))): widen to 4C, nonlinearity, project back."""

    def __init__(self, params, name):
        self.c_fc = Linear(params, f"{name}.c_fc")
        self.gelu = GELU()
        self.c_proj = Linear(params, f"{name}.c_proj")

    def forward(self, x):
        return self.c_proj.forward(self.gelu.forward(self.c_fc.forward(x)))

    def backward(self, dy, grads):
        return self.c_fc.backward(self.gelu.backward(self.c_proj.backward(dy, grads)), grads)


class Block:
    """Pre-norm: x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x))."""

    def __init__(self, params, name, config):
        self.ln_1 = LayerNorm(params, f"{name}.ln_1", config.norm_eps)
        self.attn = CausalSelfAttention(params, f"{name}.attn", config)
        self.ln_2 = LayerNorm(params, f"{name}.ln_2", config.norm_eps)
        self.mlp = MLP(params, f"{name}.mlp")

    def forward(self, x):
        x = x + self.attn.forward(self.ln_1.forward(x))
        return x + self.mlp.forward(self.ln_2.forward(x))

    def backward(self, dy, grads):
        # a residual x + f(x) passes its gradient on twice: unchanged along the identity, and through
        # f; the two add. Last sublayer first.
        dy = dy + self.ln_2.backward(self.mlp.backward(dy, grads), grads)
        return dy + self.ln_1.backward(self.attn.backward(dy, grads), grads)


# -----------------------------------------------------------------------------
# the loss

class CrossEntropy:
    """loss = mean over the N = B*T positions of -log softmax(logits_n)[target_n]."""

    def forward(self, logits, targets):
        log_probs = torch.log_softmax(logits.reshape(-1, logits.size(-1)), dim=-1)   # (N, vocab)
        self.shape, self.targets = logits.shape, targets.reshape(-1)
        self.probs = log_probs.exp()
        return -log_probs.gather(1, self.targets[:, None]).mean()

    def backward(self):
        # -log softmax(z)[y] = logsumexp(z) - z_y, whose gradient is softmax(z) - onehot(y): the
        # predicted distribution minus the true one. The mean divides every position's share by N.
        dlogits = self.probs.clone()
        dlogits[torch.arange(len(self.targets), device=dlogits.device), self.targets] -= 1
        return (dlogits / len(self.targets)).reshape(self.shape)                    # (B, T, vocab)


# -----------------------------------------------------------------------------
# the model

class GPTBackprop:
    """The layers above, chained: forward() runs them in order and returns the loss; backward() runs
    their backwards in reverse and returns every weight's gradient. The weights live in one dict,
    self.params, under GPT's state_dict names; the layers hold references to its tensors."""

    def __init__(self, config, dtype=torch.float32, device="cpu"):
        check_supported(config)
        self.config = config
        C, L = config.n_embd, config.n_layer
        hidden = mlp_hidden_size(config)

        # the weights, under model_gpt.GPT's names and initialised as it does: N(0, 0.02) matrices,
        # zero biases, unit norm gains, and the residual projections (c_proj) scaled by 1/sqrt(2L)
        def normal(*shape, std=0.02):
            return torch.randn(*shape, dtype=dtype, device=device) * std

        def zeros(n):
            return torch.zeros(n, dtype=dtype, device=device)

        params = {"transformer.wte.weight": normal(config.vocab_size, C)}

        def add_linear(name, n_out, n_in, std=0.02):
            params[f"{name}.weight"] = normal(n_out, n_in, std=std)
            if config.bias:
                params[f"{name}.bias"] = zeros(n_out)

        def add_norm(name):
            params[f"{name}.weight"] = torch.ones(C, dtype=dtype, device=device)
            if config.bias:
                params[f"{name}.bias"] = zeros(C)

        for i in range(L):
            h = f"transformer.h.{i}"
            add_norm(f"{h}.ln_1")
            add_linear(f"{h}.attn.c_attn", 3 * C, C)
            add_linear(f"{h}.attn.c_proj", C, C, std=0.02 / math.sqrt(2 * L))
            add_norm(f"{h}.ln_2")
            add_linear(f"{h}.mlp.c_fc", hidden, C)
            add_linear(f"{h}.mlp.c_proj", C, hidden, std=0.02 / math.sqrt(2 * L))
        add_norm("transformer.ln_f")
        params["transformer.wpe.weight"] = normal(config.block_size, C)
        params["lm_head.weight"] = params["transformer.wte.weight"]  # tied: one tensor, two names
        self.params = params

        self.embedding = Embedding(params)
        self.blocks = [Block(params, f"transformer.h.{i}", config) for i in range(L)]
        self.ln_f = LayerNorm(params, "transformer.ln_f", config.norm_eps)
        self.loss = CrossEntropy()

    def state_dict(self):
        """The weights under GPT's names (the tied matrix under both of its names, as one tensor)."""
        return dict(self.params)

    def load_state_dict(self, state_dict):
        """Copy in weights from GPT.state_dict() (or ours): the same names and shapes, or ValueError."""
        missing, unexpected = self.params.keys() - state_dict.keys(), state_dict.keys() - self.params.keys()
        if missing or unexpected:
            raise ValueError(f"state_dict does not match this model: missing {sorted(missing)}, "
                             f"unexpected {sorted(unexpected)}")
        for name, tensor in state_dict.items():
            if tensor.shape != self.params[name].shape:
                raise ValueError(f"{name}: shape {tuple(tensor.shape)}, expected {tuple(self.params[name].shape)}")
            self.params[name].copy_(tensor)  # in place: the layers hold these very tensors

    def named_parameters(self):
        """Each distinct weight once, under its first name (lm_head.weight is transformer.wte.weight),
        as GPT.named_parameters() lists them."""
        return [(name, p) for name, p in self.params.items() if name != "lm_head.weight"]

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        """torch.optim.AdamW over our plain tensors, grouped as GPT.configure_optimizers does: weight
        decay on matrices only. Before each step set p.grad = grads[name] for named_parameters()."""
        named = self.named_parameters()
        groups = [{"params": [p for _, p in named if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)

    @torch.no_grad()
    def forward(self, idx, targets):
        """idx, targets: (B, T) token ids. Returns the mean cross-entropy loss as a float, and keeps
        everything backward() needs."""
        if idx.size(1) > self.config.block_size:
            raise ValueError(f"sequence of length {idx.size(1)} is longer than block_size {self.config.block_size}")
        x = self.embedding.forward(idx)                    # (B, T, C)
        for block in self.blocks:
            x = block.forward(x)
        x = self.ln_f.forward(x)
        logits = self.embedding.logits(x)                  # (B, T, vocab)
        return self.loss.forward(logits, targets).item()

    @torch.no_grad()
    def backward(self):
        """The gradient of the last forward()'s loss with respect to every weight: a dict keyed like
        state_dict(). With tied weights, grads["lm_head.weight"] is grads["transformer.wte.weight"]:
        one tensor holding the sum of both uses' gradients, just as autograd leaves one .grad on the
        one shared Parameter."""
        grads = {}
        dx = self.embedding.logits_backward(self.loss.backward())   # (B, T, C)
        dx = self.ln_f.backward(dx, grads)
        for block in reversed(self.blocks):
            dx = block.backward(dx, grads)
        self.embedding.backward(dx, grads)
        return grads


# -----------------------------------------------------------------------------
# training: the same data, schedule, optimizer, evaluation and log as train_gpt.py, on our gradients

DEFAULTS = dict(
    out_dir="out-backprop",
    eval_interval=250,
    log_interval=10,
    eval_iters=100,
    data_dir="data",
    dataset="shakespeare_char",   # data_dir/dataset/{train.bin, val.bin, meta.json}
    batch_size=12,                # train_gpt.py's CPU-sized defaults, so the two runs compare
    block_size=64,
    n_layer=4,
    n_head=4,
    n_embd=128,
    bias=False,
    learning_rate=2e-3,
    max_iters=2000,
    weight_decay=1e-1,
    beta1=0.9,
    beta2=0.99,
    grad_clip=1.0,                # clip the gradient norm at this (0 = off)
    decay_lr=True,
    warmup_iters=100,
    lr_decay_iters=2000,
    min_lr=2e-4,
    device="cpu",                 # 'cpu', 'cuda', 'auto'
    seed=1337,
)


def train(argv):
    config = training.configure(DEFAULTS, argv)
    cfg = SimpleNamespace(**config)
    device = training.pick_device(cfg.device)
    data_path = os.path.join(cfg.data_dir, cfg.dataset)
    prepare_hint = f"python prepare/{cfg.dataset}.py (or another prepare/ script with --out_dir {data_path})"
    meta = training.read_meta(data_path, prepare_hint)
    training.check_token_bins(data_path, meta, cfg.block_size, prepare_hint)
    torch.manual_seed(cfg.seed)
    try:
        model_config = GPTConfig(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                                 block_size=cfg.block_size, vocab_size=meta["vocab_size"], bias=cfg.bias)
        model = GPTBackprop(model_config, device=device)
    except ValueError as e:
        training.fail(str(e))
    optimizer = model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2))
    print(f"{sum(p.numel() for _, p in model.named_parameters()):,} parameters, device {device}")
    with torch.device("meta"):  # model_gpt.GPT's FLOP count, for the log (meta: no memory)
        flops_per_token = GPT(model_config).estimate_flops_per_token()

    def get_batch(split, generator):
        """batch_size random windows, drawn as train_gpt.py draws them (same seed, same batches)."""
        data = np.memmap(os.path.join(data_path, f"{split}.bin"), dtype=np.uint16, mode="r")
        ix = torch.randint(len(data) - cfg.block_size, (cfg.batch_size,), generator=generator).tolist()
        windows = torch.from_numpy(np.stack([data[i: i + cfg.block_size + 1] for i in ix]).astype(np.int64))
        if int(windows.max()) >= model_config.vocab_size:  # the embedding lookup would fail cryptically
            training.fail(f"{split}.bin holds token id {int(windows.max())} but meta.json says vocab_size="
                          f"{model_config.vocab_size}; prepare it again: {prepare_hint}")
        return windows[:, :-1].to(device), windows[:, 1:].to(device)

    def estimate_loss():
        """Mean loss over eval_iters batches of each split, the same batches at every eval."""
        out = {}
        for split in ("train", "val"):
            generator = torch.Generator().manual_seed(cfg.seed + 1)
            losses = [model.forward(*get_batch(split, generator)) for _ in range(cfg.eval_iters)]
            out[split] = sum(losses) / cfg.eval_iters
        return out

    os.makedirs(cfg.out_dir, exist_ok=True)
    metrics = training.MetricsLog(cfg.out_dir, True, config)
    timer = training.Timer()
    batch_generator = torch.Generator().manual_seed(cfg.seed)
    best_val_loss = float("inf")
    step_seconds = 0.0
    for iter_num in range(cfg.max_iters + 1):
        lr = (training.learning_rate_at(iter_num, cfg.learning_rate, cfg.warmup_iters, cfg.lr_decay_iters, cfg.min_lr)
              if cfg.decay_lr else cfg.learning_rate)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if iter_num % cfg.eval_interval == 0 or iter_num == cfg.max_iters:
            losses = estimate_loss()
            print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
            tokens_seen = iter_num * cfg.batch_size * cfg.block_size
            metrics.log({"iter": iter_num, "train_loss": losses["train"], "val_loss": losses["val"], "lr": lr,
                         "tokens_seen": tokens_seen, "flops": tokens_seen * flops_per_token,
                         "elapsed_s": round(timer.elapsed(), 3)})
            if iter_num > 0 and math.isfinite(losses["val"]):
                improved = losses["val"] < best_val_loss
                best_val_loss = min(best_val_loss, losses["val"])
                # ckpt.pt: the latest, with the optimizer; best.pt (if improved): the weights, for sample.py
                training.save_run_checkpoints({
                    "kind": "gpt", "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "model_args": asdict(model_config), "config": config, "iter_num": iter_num,
                    "best_val_loss": best_val_loss}, cfg.out_dir, last=True, best=improved)
        if iter_num == cfg.max_iters:
            break

        step_start = time.time()
        loss = model.forward(*get_batch("train", batch_generator))
        grads = model.backward()
        for name, p in model.named_parameters():
            p.grad = grads[name]  # torch.optim reads .grad; we put there what autograd would have
        grad_norm = torch.nn.utils.clip_grad_norm_([p for _, p in model.named_parameters()],
                                                   cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        if not torch.isfinite(grad_norm):
            training.fail(f"non-finite loss/gradient at iter {iter_num}; lower learning_rate")
        optimizer.step()
        step_seconds += time.time() - step_start
        if (iter_num + 1) % cfg.log_interval == 0:
            print(f"iter {iter_num + 1}: loss {loss:.4f}, {step_seconds / cfg.log_interval * 1000:.1f} ms/iter")
            step_seconds = 0.0


if __name__ == "__main__":
    train(sys.argv[1:])
