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

train_gpt_backprop.py trains it on a prepared dataset, with AdamW fed these gradients:

    python train_gpt_backprop.py --dataset=shakespeare_char --max_iters=500
"""

import math

import torch

from model_gpt import mlp_hidden_size

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
        """torch.optim.AdamW over our plain tensors, grouped as optimizers.configure does: weight
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
