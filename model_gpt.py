"""
A GPT language model in one file, compatible with OpenAI's GPT-2, and a lab for the ideas that
came after it. Read top to bottom: the config, then the modules in the order data flows through
them (position encodings, norms, attention, MLP, the block that combines them), then the model.

The defaults are exactly GPT-2. Each GPTConfig option swaps one piece for a later idea, so two
runs that differ in one flag compare that idea alone:
    pos_encoding  learned (GPT-2) | sinusoidal (Vaswani et al. 2017) | rope (Su et al. 2021) | none
    norm          layernorm (GPT-2) | rmsnorm (Zhang & Sennrich 2019)
    norm_placement pre (GPT-2) | post (the original Transformer)
    qk_norm       normalise queries and keys per head before attention (Dehghani et al. 2023)
    mlp           gelu (GPT-2) | relu | relu2 (So et al. 2021) | swiglu (Shazeer 2020)
    bias, tie_weights

References: GPT-2 (Radford et al. 2019), nanoGPT's model.py, "Attention Is All You Need".
"""

import json
import math
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

POS_ENCODINGS = ("learned", "sinusoidal", "rope", "none")
NORMS = ("layernorm", "rmsnorm")
NORM_PLACEMENTS = ("pre", "post")
# In bf16 on a CPU, attention is written out over at most this many keys and goes through SDPA over
# more: bench/bench_gpt.py's "long context" shape (1,024) runs faster with SDPA (docs/speed-bf16.md)
WRITTEN_OUT_MAX_KEYS = 256
MLPS = ("gelu", "relu", "relu2", "swiglu")
GPT2_NAMES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")


@dataclass
class GPTConfig:
    block_size: int = 1024   # longest context the model can see (number of position embeddings)
    vocab_size: int = 50304  # rows of the token embedding and output head: train_gpt.py pads the
                             # tokenizer's vocabulary up to a multiple of 64 for faster matmuls (50257 -> 50304)
    tokenizer_vocab_size: int = 0  # ids the tokenizer has (0 = vocab_size); the ids above are padding, never sampled
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True        # biases in Linears and LayerNorms, as in GPT-2
    flash: bool = True       # F.scaled_dot_product_attention (fused kernels) vs the explicit math
    pos_encoding: str = "learned"   # how the model knows where a token is: one of POS_ENCODINGS
    rope_theta: float = 10000.0     # RoPE's base: the slowest pair of dimensions turns once per ~2*pi*theta tokens
    norm: str = "layernorm"         # layernorm or rmsnorm, everywhere (blocks, final, qk_norm)
    norm_eps: float = 1e-5          # added to the variance before the square root (GPT-2: 1e-5)
    norm_placement: str = "pre"     # pre: x + f(norm(x)) (GPT-2); post: norm(x + f(x)) (2017 Transformer)
    qk_norm: bool = False           # normalise each head's queries and keys before the dot product
    mlp: str = "gelu"               # the feed-forward nonlinearity: one of MLPS
    mlp_hidden: int = 0             # MLP width; 0 = 4 * n_embd, or for swiglu 2/3 of that rounded up to 64
    tie_weights: bool = True        # the output head reuses the token embedding matrix

    def __post_init__(self):
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        for field, choices in (("pos_encoding", POS_ENCODINGS), ("norm", NORMS),
                               ("norm_placement", NORM_PLACEMENTS), ("mlp", MLPS)):
            if getattr(self, field) not in choices:
                raise ValueError(f"{field}={getattr(self, field)!r} is not one of {', '.join(choices)}")
        if self.pos_encoding == "rope" and (self.n_embd // self.n_head) % 2 != 0:
            raise ValueError(f"rope rotates pairs of dimensions: the head size n_embd/n_head="
                             f"{self.n_embd // self.n_head} must be even")
        if self.pos_encoding == "sinusoidal" and self.n_embd % 2 != 0:
            raise ValueError(f"sinusoidal encodings come in sin/cos pairs: n_embd={self.n_embd} must be even")
        if self.rope_theta <= 0 or self.norm_eps <= 0:
            raise ValueError(f"rope_theta ({self.rope_theta}) and norm_eps ({self.norm_eps}) must be > 0")
        if self.mlp_hidden < 0:
            raise ValueError(f"mlp_hidden={self.mlp_hidden} must be >= 0 (0 = the default width)")
        if not 0 <= self.tokenizer_vocab_size <= self.vocab_size:
            raise ValueError(f"tokenizer_vocab_size={self.tokenizer_vocab_size} must be in [0, vocab_size={self.vocab_size}]")
        self.tokenizer_vocab_size = self.tokenizer_vocab_size or self.vocab_size


# -----------------------------------------------------------------------------
# position encodings: added to the token embeddings (learned, sinusoidal) or rotating q and k (rope)

def sinusoidal_table(n_pos, dim):
    """(n_pos, dim) fixed encodings of "Attention Is All You Need", section 3.5:
    PE[pos, 2i] = sin(pos / 10000^(2i/dim)), PE[pos, 2i+1] = cos(pos / 10000^(2i/dim)).
    Wavelengths grow geometrically from 2*pi to 10000*2*pi, so every position gets a distinct code."""
    inv_freq = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)   # (dim/2,)
    angles = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv_freq        # (n_pos, dim/2)
    table = torch.empty(n_pos, dim, dtype=torch.float64)
    table[:, 0::2] = angles.sin()
    table[:, 1::2] = angles.cos()
    return table.float()


def rope_tables(n_pos, head_size, theta):
    """cos and sin, each (n_pos, head_size/2), of the angles pos * theta^(-2i/head_size) by which
    RoPE turns the i-th pair of dimensions of a query or key at position pos."""
    inv_freq = theta ** (-torch.arange(0, head_size, 2, dtype=torch.float64) / head_size)
    angles = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv_freq  # (n_pos, hs/2)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x, cos, sin):
    """Rotary position embedding (RoFormer, Su et al. 2021): rotate each pair of dimensions
    (x[..., i], x[..., i + hs/2]) of x (B, nh, T, hs) by its angle; cos, sin broadcast as (.., T, hs/2).
    A query at position m and a key at position n are turned by m and n times the same angle, so
    their dot product depends only on m - n: attention sees relative positions.
    (Pairing i with i + hs/2, as GPT-NeoX and LLaMA in Hugging Face do, rather than neighbours 2i, 2i+1,
    is the same thing up to a fixed reordering of the dimensions, and easier to write.)"""
    x1, x2 = x.chunk(2, dim=-1)                                        # 2 x (B, nh, T, hs/2)
    rotated = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return rotated.type_as(x)  # the tables are fp32; keep x's dtype (bf16 under autocast)


# -----------------------------------------------------------------------------
# normalisation

class RMSNorm(nn.Module):
    """LayerNorm without the mean subtraction and the bias (Zhang & Sennrich 2019): rescale each
    token to unit RMS, then by a learned gain: x * rsqrt(mean(x^2) + eps) * weight."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # at least fp32 even under bf16 autocast: the mean of squares of bf16 values loses precision
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        normed = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (normed * self.weight).type_as(x)


def make_norm(config, dim):
    if config.norm == "rmsnorm":
        return RMSNorm(dim, config.norm_eps)
    return nn.LayerNorm(dim, eps=config.norm_eps, bias=config.bias)


# -----------------------------------------------------------------------------
# the transformer block

class CausalSelfAttention(nn.Module):
    """Each position attends to itself and the positions before it, in n_head independent heads."""

    def __init__(self, config, layer_idx):
        super().__init__()
        # one matmul makes the queries, keys and values of all heads at once
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.flash = config.flash
        self.layer_idx = layer_idx  # which layer's slot of a KVCache is ours
        self.qk_norm = config.qk_norm
        if config.qk_norm:
            # bounds the attention logits: q.k can no longer grow just because q and k grow
            self.q_norm = make_norm(config, config.n_embd // config.n_head)
            self.k_norm = make_norm(config, config.n_embd // config.n_head)
        # lower-triangular mask for the math path: position t may look at positions <= t
        mask = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
        self.register_buffer("causal_mask", mask.view(1, 1, config.block_size, config.block_size),
                             persistent=False)

    def fused(self, q, k):
        """SDPA (flash=True), except in bf16 on a CPU over short contexts: there PyTorch's fused
        kernel is several times slower than in fp32 (its backward most of all), while the written-out
        attention's two batched matmuls run at the CPU's bf16 speed. Over long contexts the written-out
        (T, T) matrices cost more memory traffic than they save, and SDPA wins again
        (bench/bench_gpt.py measures all three shapes)."""
        short = k.size(-2) <= WRITTEN_OUT_MAX_KEYS
        return self.flash and not (q.device.type == "cpu" and q.dtype == torch.bfloat16 and short)

    def forward(self, x, rope=None, mask=None, kv_cache=None):
        """x (B, T, C). rope: (cos, sin) for these positions, or None. mask: None for plain causal
        attention over x alone, else a boolean mask broadcastable to (B, nh, T, T_keys), True = may
        attend. kv_cache: a KVCache holding earlier tokens' keys and values, or None."""
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)             # 3 x (B, T, C)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)              # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer_idx, k, v)               # (B, nh, T_keys, hs), all tokens so far
        if self.fused(q, k):
            # the same computation as below, fused (flash attention on GPUs): never materialises
            # the (T, T) attention matrix
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None,
                                               dropout_p=self.dropout if self.training else 0.0)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)            # (B, nh, T, T_keys)
            allowed = self.causal_mask[:, :, :T, :T] if mask is None else mask
            att = att.masked_fill(~allowed, float("-inf"))
            # bf16 under autocast on a CPU (CUDA's autocast makes it fp32): the CPU kernel sums in fp32
            # and rounds once, giving an fp32 softmax's weights rounded to bf16 without casting (T, T)
            att = F.softmax(att, dim=-1)
            att = self.attn_dropout(att)
            y = att @ v                                                # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)               # re-assemble the heads
        return self.resid_dropout(self.c_proj(y))


def mlp_hidden_size(config):
    """GPT-2 widens 4x. SwiGLU has a third matrix, so LLaMA shrinks its width to 2/3 of 4x (rounded
    up to a multiple of 64 for fast matmuls), keeping parameters and FLOPs about the same."""
    if config.mlp_hidden > 0:
        return config.mlp_hidden
    if config.mlp == "swiglu":
        return 64 * math.ceil(2 * 4 * config.n_embd / 3 / 64)
    return 4 * config.n_embd


class MLP(nn.Module):
    """Position-wise feed-forward network: widen, nonlinearity, project back.
    swiglu multiplies a second projection in: c_proj(silu(c_gate(x)) * c_fc(x))."""

    def __init__(self, config):
        super().__init__()
        hidden = mlp_hidden_size(config)
        self.kind = config.mlp
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        if config.mlp == "swiglu":
            self.c_gate = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        h = self.c_fc(x)                                  # (B, T, hidden)
        if self.kind == "gelu":
            h = F.gelu(h, approximate="tanh")             # GPT-2 used the tanh approximation
        elif self.kind == "relu":
            h = F.relu(h)
        elif self.kind == "relu2":
            h = F.relu(h).square()                        # squared ReLU (Primer, So et al. 2021)
        else:
            h = F.silu(self.c_gate(x)) * h                # SwiGLU: a learned, smooth gate per unit
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    """Pre-norm (GPT-2): x + attn(ln(x)), then x + mlp(ln(x)); the residual stream stays clean.
    Post-norm (2017): ln(x + attn(x)), then ln(x + mlp(x)); every block's output is normalised."""

    def __init__(self, config, layer_idx):
        super().__init__()
        self.post_norm = config.norm_placement == "post"
        self.ln_1 = make_norm(config, config.n_embd)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = make_norm(config, config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x, rope=None, mask=None, kv_cache=None):
        if self.post_norm:
            x = self.ln_1(x + self.attn(x, rope, mask, kv_cache))
            x = self.ln_2(x + self.mlp(x))
        else:
            x = x + self.attn(self.ln_1(x), rope, mask, kv_cache)
            x = x + self.mlp(self.ln_2(x))
        return x


class KVCache:
    """The keys and values every layer computed for the tokens seen so far, so that generating a
    token runs only that token through the model. Preallocated to block_size tokens per layer (on
    first use, in the keys' dtype and device): appending is a copy into place."""

    def __init__(self, config):
        self.block_size = config.block_size
        self.k = [None] * config.n_layer  # per layer: (B, nh, block_size, hs)
        self.v = [None] * config.n_layer
        self.length = 0                   # tokens cached so far; GPT.forward advances it

    def update(self, layer, k, v):
        """Store the new tokens' k, v (B, nh, T, hs) after the cached ones; return the keys and values
        of all tokens so far, (B, nh, length + T, hs)."""
        if self.k[layer] is None:
            B, nh, _, hs = k.shape
            self.k[layer] = k.new_zeros(B, nh, self.block_size, hs)
            self.v[layer] = v.new_zeros(B, nh, self.block_size, hs)
        end = self.length + k.size(2)
        self.k[layer][:, :, self.length:end] = k
        self.v[layer][:, :, self.length:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


# -----------------------------------------------------------------------------
# the model

def last_real_token(attention_mask):
    """(B,) index of each sequence's last real token in a (B, T) 0/1 mask: the last position under
    left padding, the one before the padding under right padding."""
    T = attention_mask.size(1)
    return (attention_mask.bool() * torch.arange(T, device=attention_mask.device)).argmax(dim=1)


class GPT(nn.Module):
    blocks_prefix = "transformer.h."  # optimizers.configure: Muon takes the 2-D weights under it

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embeddings
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
            # post-norm blocks already end in a norm: a second one straight after would be redundant
            ln_f=make_norm(config, config.n_embd) if config.norm_placement == "pre" else nn.Identity(),
        ))
        if config.pos_encoding == "learned":
            self.transformer.wpe = nn.Embedding(config.block_size, config.n_embd)
        elif config.pos_encoding == "sinusoidal":
            # fixed, not learned: a buffer, and not saved (it is recomputed from the formula).
            # The raw table's entries have RMS 1/sqrt(2) (sin^2 + cos^2 = 1 per pair), ~35x the token
            # embeddings' init std of 0.02: added as is, the positions would drown the tokens (the 2017
            # paper instead multiplies its embeddings by sqrt(n_embd)). Scaled to RMS 0.02, the table
            # starts at the size of a learned one, so learned vs sinusoidal compares the ideas, not scales.
            table = sinusoidal_table(config.block_size, config.n_embd) * (0.02 * math.sqrt(2))
            self.register_buffer("sinusoidal_pe", table, persistent=False)
        elif config.pos_encoding == "rope":
            cos, sin = rope_tables(config.block_size, config.n_embd // config.n_head, config.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)   # (block_size, hs/2)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            # weight tying: the same matrix embeds tokens and scores them at the output
            # (fewer parameters, and it trains better: Press & Wolf 2017)
            self.transformer.wte.weight = self.lm_head.weight

        self.apply(self._init_weights)
        # GPT-2: residual projections get std 0.02/sqrt(2*n_layer), so the residual stream's variance
        # does not grow with depth (each block adds two projections to it)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def get_num_params(self, non_embedding=True):
        """Parameter count; by default without the learned position embeddings (the token embeddings
        are used by the output head, tied or not, so they count as real compute)."""
        n_params = sum(p.numel() for p in self.parameters())
        if non_embedding and self.config.pos_encoding == "learned":
            n_params -= self.transformer.wpe.weight.numel()
        return n_params

    def hidden_states(self, idx, attention_mask=None, kv_cache=None):
        """idx: (B, T) token ids. Returns the final norm's output (B, T, n_embd): every position's last
        hidden state, which the output head turns into logits (forward) and a classifier reads
        (GPTClassifier).
        attention_mask: optional (B, kv_cache.length + T), 1 for real tokens, 0 for padding (left or
        right), the cached tokens' columns first. Padding is never attended to, and positions count from
        0 at each sequence's first real token, so a padded sequence gets the same hidden states as the
        unpadded one (with a cache: prompts of different lengths, left-padded, sampled as one batch).
        kv_cache: a KVCache holding the keys and values of the kv_cache.length tokens before idx;
        idx's own are added to it (see generate)."""
        B, T = idx.size()
        device = idx.device
        offset = 0 if kv_cache is None else kv_cache.length  # tokens before idx
        if offset + T > self.config.block_size:
            raise ValueError(f"sequence of length {offset + T} is longer than block_size {self.config.block_size}")
        keys = torch.arange(offset + T, device=device)                 # (offset + T,) every token so far
        queries = keys[offset:, None]                                  # (T, 1) the new ones
        # which keys each query may attend to. None = plain causal attention over idx (SDPA's fastest path)
        mask = None if kv_cache is None else keys <= queries          # (T, offset + T)
        pos = queries.T                                                # (1, T)
        if attention_mask is not None:
            if attention_mask.shape != (B, offset + T):
                raise ValueError(f"attention_mask must be (B, cached + new tokens) = {(B, offset + T)}, "
                                 f"got {tuple(attention_mask.shape)}")
            real = attention_mask.bool()                                               # (B, offset + T)
            # query t sees key s if s <= t and s is real. Each query also sees itself, so a padding
            # query with no real key before it (left padding) gets a finite softmax instead of NaN;
            # for real queries that adds nothing, so padding never reaches them.
            mask = ((keys <= queries) & real[:, None, :]) | (keys == queries)          # (B, T, offset + T)
            mask = mask[:, None]                                                       # (B, 1, T, offset + T): all heads
            pos = (real.long().cumsum(dim=1) - 1).clamp(min=0)[:, offset:]             # (B, T)

        x = self.transformer.wte(idx)                                  # (B, T, C)
        if self.config.pos_encoding == "learned":
            x = x + self.transformer.wpe(pos)                          # (1 or B, T, C)
        elif self.config.pos_encoding == "sinusoidal":
            x = x + self.sinusoidal_pe[pos]
        x = self.transformer.drop(x)
        rope = None
        if self.config.pos_encoding == "rope":
            rope = (self.rope_cos[pos][:, None], self.rope_sin[pos][:, None])  # 2 x (1 or B, 1, T, hs/2)
        for block in self.transformer.h:
            x = block(x, rope, mask, kv_cache)
        x = self.transformer.ln_f(x)
        if kv_cache is not None:
            kv_cache.length += T
        return x

    def forward(self, idx, targets=None, attention_mask=None, kv_cache=None):
        """idx: (B, T) token ids. Returns (logits, loss): logits for every position when training
        (targets given; -1 targets are ignored), else only the last token's (B, 1, vocab), which is
        all generation needs (with an attention_mask: each sequence's last real token).
        attention_mask and kv_cache: see hidden_states."""
        x = self.hidden_states(idx, attention_mask, kv_cache)  # (B, T, C)
        B = idx.size(0)
        if targets is not None:
            logits = self.lm_head(x)                                   # (B, T, vocab)
            # at least fp32: under autocast the logits are bf16, and log-softmax in bf16 is off
            logits32 = logits.to(torch.promote_types(logits.dtype, torch.float32))
            loss = F.cross_entropy(logits32.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        elif attention_mask is not None:
            last = last_real_token(attention_mask[:, -idx.size(1):])                  # (B,) among idx's tokens
            logits = self.lm_head(x[torch.arange(B, device=idx.device), last][:, None])  # (B, 1, vocab)
            loss = None
        else:
            logits = self.lm_head(x[:, [-1], :])                       # (B, 1, vocab)
            loss = None
        return logits, loss

    def crop_block_size(self, block_size):
        """Shrink the context, e.g. to fine-tune GPT-2 (1024) on shorter sequences."""
        if block_size > self.config.block_size:
            raise ValueError(f"can only crop block_size down, not from {self.config.block_size} to {block_size}")
        self.config.block_size = block_size
        if self.config.pos_encoding == "learned":
            self.transformer.wpe.weight = nn.Parameter(self.transformer.wpe.weight[:block_size])
        elif self.config.pos_encoding == "sinusoidal":
            self.sinusoidal_pe = self.sinusoidal_pe[:block_size]
        elif self.config.pos_encoding == "rope":
            self.rope_cos, self.rope_sin = self.rope_cos[:block_size], self.rope_sin[:block_size]
        for block in self.transformer.h:
            block.attn.causal_mask = block.attn.causal_mask[:, :, :block_size, :block_size]

    @classmethod
    def from_pretrained(cls, model_type, override_args=None):
        """OpenAI's GPT-2 weights, from a Hugging Face checkpoint: model_type is one of GPT2_NAMES
        (downloaded from the hub) or a local directory holding config.json and model.safetensors.
        override_args may set only dropout."""
        override_args = override_args or {}
        if set(override_args) - {"dropout"}:
            raise ValueError(f"override_args may set only dropout, got {sorted(override_args)}")
        if os.path.isdir(model_type):
            ckpt_dir = model_type
        elif model_type in GPT2_NAMES:
            try:
                from huggingface_hub import snapshot_download
                ckpt_dir = snapshot_download(model_type, allow_patterns=["config.json", "model.safetensors"])
            except Exception as e:
                reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                raise RuntimeError(f"could not download {model_type} from the Hugging Face hub ({reason}); "
                                   f"download it elsewhere and pass its local directory instead") from e
        else:
            raise ValueError(f"{model_type!r} is neither one of {', '.join(GPT2_NAMES)} nor a local directory")
        from safetensors.torch import load_file

        with open(os.path.join(ckpt_dir, "config.json")) as f:
            hf = json.load(f)
        config = GPTConfig(n_layer=hf["n_layer"], n_head=hf["n_head"], n_embd=hf["n_embd"],
                           block_size=hf["n_positions"], vocab_size=hf["vocab_size"],
                           norm_eps=hf.get("layer_norm_epsilon", 1e-5), bias=True,
                           tie_weights=hf.get("tie_word_embeddings", True), **override_args)
        model = cls(config)
        ours = model.state_dict()
        loaded = set()
        for name, tensor in load_file(os.path.join(ckpt_dir, "model.safetensors")).items():
            # OpenAI's checkpoints name the weights "h.0.attn...", transformers' save_pretrained
            # "transformer.h.0.attn..."; attn.bias/masked_bias are causal-mask buffers, not weights
            if name.endswith((".attn.bias", ".attn.masked_bias")) or (name == "lm_head.weight" and config.tie_weights):
                continue
            if not name.startswith("lm_head."):
                name = "transformer." + name.removeprefix("transformer.")
            if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
                tensor = tensor.t()  # GPT-2's Conv1D stores (in, out); nn.Linear wants (out, in)
            if name not in ours or ours[name].shape != tensor.shape:
                raise ValueError(f"{ckpt_dir}: unexpected weight {name} {tuple(tensor.shape)}")
            with torch.no_grad():
                ours[name].copy_(tensor)
            loaded.add(name)
        missing = set(ours) - loaded - ({"lm_head.weight"} if config.tie_weights else set())
        if missing:
            raise ValueError(f"{ckpt_dir}: missing weights {sorted(missing)}")
        return model

    def estimate_flops_per_token(self):
        """Training FLOPs per token, forward + backward (PaLM paper, appendix B): 6 per weight that
        multiplies the token (2 forward, 4 backward), plus the attention scores and weighted sum,
        12 * L * C * T. Embedding lookups are not matmuls: the position table never counts, and the
        token table counts once, as the output head, whether it is tied to it or not."""
        cfg = self.config
        matmul_params = sum(p.numel() for p in self.parameters())  # a tied matrix is listed once
        if cfg.pos_encoding == "learned":
            matmul_params -= self.transformer.wpe.weight.numel()
        if not cfg.tie_weights:
            matmul_params -= self.transformer.wte.weight.numel()
        return 6 * matmul_params + 12 * cfg.n_layer * cfg.n_embd * cfg.block_size

    def estimate_mfu(self, tokens_per_iter, dt, peak_flops):
        """Model FLOPs utilisation: achieved FLOP/s as a fraction of the hardware's peak_flops
        (e.g. 989e12 for an H100's dense bf16, 312e12 for an A100's). Pass one device's peak and the
        tokens one device processed per iteration."""
        if not peak_flops or dt <= 0:
            return 0.0
        return self.estimate_flops_per_token() * tokens_per_iter / dt / peak_flops

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=0, top_p=0.0, use_cache=True, stream=None):
        """Sample max_new_tokens tokens after idx (B, T), feeding each prediction back in.
        temperature: < 1 sharpens, > 1 flattens, 0 is greedy. top_k: sample only among the k likeliest
        tokens (0: all). top_p: only among the likeliest tokens whose probabilities add up to top_p
        (nucleus sampling, Holtzman et al. 2019; 0: off). stream: called with each new token (B,) as
        soon as it is chosen.
        use_cache: run the prompt once, then only the newest token per step, its attention reading
        the earlier tokens' keys and values from a KVCache. Once the sequence is longer than
        block_size the model sees only the last block_size tokens, whose positions all shift by one
        every step, so nothing cached stays valid: from then on each step recomputes the whole
        window, exactly as without the cache (same tokens, same cost)."""
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
        if top_p and not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in [0, 1] (0: off), got {top_p}")
        block_size = self.config.block_size
        cache = KVCache(self.config) if use_cache else None
        for _ in range(max_new_tokens):
            if cache is not None and 0 < cache.length < block_size:
                idx_cond = idx[:, -1:]                                  # the cache holds all tokens before it
            else:
                idx_cond = idx[:, -block_size:]                         # the model sees at most block_size
                if cache is not None:
                    cache.length = 0                                    # (re)fill the cache with this window
            logits, _ = self(idx_cond, kv_cache=cache)
            logits = logits[:, -1, :].float()                           # (B, vocab)
            logits[:, self.config.tokenizer_vocab_size:] = -float("inf")  # padding ids are no tokens
            if temperature == 0:
                idx_next = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("inf")        # keep only the top_k
                if top_p:
                    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
                    sorted_probs = F.softmax(sorted_logits, dim=-1)
                    # drop a token if the likelier ones before it already reach top_p (the first never is)
                    sorted_logits[sorted_probs.cumsum(dim=-1) - sorted_probs >= top_p] = -float("inf")
                    logits = logits.scatter(-1, order, sorted_logits)
                probs = F.softmax(logits, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1)     # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)
            if stream is not None:
                stream(idx_next[:, 0])
        return idx


class GPTClassifier(nn.Module):
    """
    Text classification with a GPT: a linear head (n_embd -> n_classes) on the final hidden state of
    each sequence's last real token. Under causal attention the last token is the only one that has
    read the whole text. The backbone's lm_head is not used (hidden_states stops before it).
    """

    def __init__(self, gpt, n_classes):
        super().__init__()
        self.gpt = gpt
        self.head = nn.Linear(gpt.config.n_embd, n_classes)
        torch.nn.init.normal_(self.head.weight, mean=0.0, std=0.02)
        torch.nn.init.zeros_(self.head.bias)
        if not gpt.config.tie_weights:
            gpt.lm_head.weight.requires_grad_(False)  # unused: no gradient (DDP would wait for one)

    def freeze(self, trainable_blocks):
        """Train only the head, ln_f and the last trainable_blocks blocks (-1: everything). Fewer
        trainable weights: faster steps, less memory, and less forgetting of what pretraining learned."""
        if trainable_blocks < 0:
            return
        blocks = self.gpt.transformer.h
        trainable = list(blocks[len(blocks) - trainable_blocks:]) if trainable_blocks else []
        trainable.append(self.gpt.transformer.ln_f)
        for p in self.gpt.parameters():
            p.requires_grad_(False)
        for module in trainable:
            for p in module.parameters():
                p.requires_grad_(True)

    def forward(self, idx, attention_mask=None, labels=None):
        """idx, attention_mask: (B, T), as for GPT.forward. Returns (logits (B, n_classes), loss);
        loss is the mean cross-entropy when labels (B,) are given, else None."""
        x = self.gpt.hidden_states(idx, attention_mask)                    # (B, T, C)
        B, T = idx.size()
        last = last_real_token(attention_mask) if attention_mask is not None else torch.full(
            (B,), T - 1, device=idx.device)
        logits = self.head(x[torch.arange(B, device=idx.device), last])    # (B, n_classes)
        logits32 = logits.to(torch.promote_types(logits.dtype, torch.float32))  # at least fp32, as GPT's loss
        loss = F.cross_entropy(logits32, labels) if labels is not None else None
        return logits, loss
