"""
A Vision Transformer (ViT, Dosovitskiy et al. 2020) for small images such as CIFAR's 32x32, in one file.

Read it top to bottom, in the order an image flows through it:
  1) the image is cut into non-overlapping patches, each projected to an n_embd-vector (a strided conv),
     or, with stem="conv", a few small convolutions shrink it to the same grid of n_embd-vectors,
  2) an optional learned CLS token is prepended and learned position embeddings are added,
  3) n_layer transformer blocks mix the tokens (attention) and each token's channels (MLP),
     pre-norm (x + f(norm(x)), as ViT) or post-norm (norm(x + f(x)), as the 2017 Transformer),
  4) the tokens are pooled (the CLS token, or the mean of all tokens), normed, and a linear head
     gives one logit per class.
The attention and MLP are written the way nanoGPT writes them, without the causal mask:
every patch may look at every other patch.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

STEMS = ("patch", "conv")
NORM_PLACEMENTS = ("pre", "post")
MLPS = ("gelu", "relu", "none")


@dataclass
class ViTConfig:
    img_size: int = 32
    patch_size: int = 4
    stem: str = "patch"        # "patch": one patch_size conv (ViT); "conv": 3x3 stride-2 convs (Xiao et al. 2021)
    in_chans: int = 3
    n_classes: int = 10
    n_layer: int = 8
    n_head: int = 6
    n_embd: int = 192
    mlp_ratio: float = 4.0     # MLP hidden width = mlp_ratio * n_embd
    dropout: float = 0.0       # on the embeddings and on each residual branch's output
    attn_dropout: float = 0.0  # on the attention probabilities
    drop_path: float = 0.1     # DropPath rate of the last block; earlier blocks get linearly less
    pool: str = "cls"          # "cls": classify from a learned CLS token; "mean": average all patch tokens
    norm: str = "layernorm"    # "layernorm" or "rmsnorm"
    norm_placement: str = "pre"  # pre: x + f(norm(x)) (ViT); post: norm(x + f(x)) (2017 Transformer)
    mlp: str = "gelu"          # the MLP's nonlinearity: gelu (ViT), relu, or none (a purely linear MLP)
    bias: bool = True          # biases in Linear layers and LayerNorm
    flash: bool = True         # F.scaled_dot_product_attention where it is fast; False = the explicit math

    def __post_init__(self):
        if self.img_size % self.patch_size != 0:
            raise ValueError(f"image size {self.img_size} is not divisible by patch size {self.patch_size}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_head={self.n_head} does not divide n_embd={self.n_embd}")
        if self.pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {self.pool!r}")
        if self.norm not in ("layernorm", "rmsnorm"):
            raise ValueError(f"norm must be 'layernorm' or 'rmsnorm', got {self.norm!r}")
        if self.stem == "conv" and self.patch_size & (self.patch_size - 1):
            raise ValueError(f"stem='conv' halves the image per conv: patch_size must be a power of 2, got {self.patch_size}")
        for field, choices in (("stem", STEMS), ("norm_placement", NORM_PLACEMENTS), ("mlp", MLPS)):
            if getattr(self, field) not in choices:
                raise ValueError(f"{field}={getattr(self, field)!r} is not one of {', '.join(choices)}")
        if not 0.0 <= self.drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {self.drop_path}")

    @property
    def n_patches(self):
        return (self.img_size // self.patch_size) ** 2


class PatchEmbed(nn.Module):
    """
    Cut the image into patch_size x patch_size patches and project each to n_embd channels.
    A conv with kernel = stride = patch_size is exactly "flatten each patch, apply one shared Linear",
    done in one fast op without materializing the patches.
    """

    def __init__(self, config):
        super().__init__()
        self.proj = nn.Conv2d(config.in_chans, config.n_embd, kernel_size=config.patch_size,
                              stride=config.patch_size, bias=config.bias)

    def forward(self, images):                 # (B, 3, H, W)
        x = self.proj(images)                  # (B, C, H/p, W/p)
        return x.flatten(2).transpose(1, 2)    # (B, N, C), N = (H/p) * (W/p) patches in row-major order


class ConvStem(nn.Module):
    """
    Early convolutions (Xiao et al. 2021, "Early Convolutions Help Transformers See Better"): instead
    of one big linear map per patch, log2(patch_size) 3x3 convs of stride 2, each with BatchNorm and
    ReLU, halve the image and double the channels until the patch grid with n_embd channels remains,
    and a 1x1 conv mixes them. The overlapping 3x3 windows see the edges between patches that a
    patchify stem cuts through; the ViT trains faster and is less sensitive to its learning rate.
    Same output as PatchEmbed, (B, N, C).
    """

    def __init__(self, config):
        super().__init__()
        n_convs = int(math.log2(config.patch_size))
        layers, channels = [], config.in_chans
        for i in range(n_convs):
            out = config.n_embd >> (n_convs - 1 - i)  # ..., C/4, C/2, C
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            channels = out
        layers.append(nn.Conv2d(channels, config.n_embd, 1, bias=config.bias))
        self.convs = nn.Sequential(*layers)

    def forward(self, images):                 # (B, 3, H, W)
        x = self.convs(images)                 # (B, C, H/p, W/p)
        return x.flatten(2).transpose(1, 2)    # (B, N, C)


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


def make_norm(config):
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd, 1e-6)
    return nn.LayerNorm(config.n_embd, eps=1e-6, bias=config.bias)


class DropPath(nn.Module):
    """
    Stochastic depth (Huang et al. 2016): during training, skip a residual branch for a random subset
    of the images in the batch, and scale the kept ones by 1/keep so the expected output is unchanged.
    Deep ViTs trained on small datasets overfit without it; it acts like training an ensemble of
    shallower networks.
    """

    def __init__(self, drop_prob):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):                      # (B, N, C)
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        # one coin per image, broadcast over its tokens and channels
        mask = x.new_empty(x.shape[0], 1, 1).bernoulli_(keep)
        return x * mask / keep


class SelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        # query, key and value projections for all heads in one matmul
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.attn_dropout)  # on the attention probabilities
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.flash = config.flash

    def forward(self, x):
        B, N, C = x.size()  # batch, tokens (patches, + CLS), channels (n_embd)
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, N, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, N, hs)
        k = k.view(B, N, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, N, hs)
        v = v.view(B, N, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, N, hs)
        # softmax(q k^T / sqrt(hs)) v with no mask: an image has no "future" to hide
        if self.flash and not (x.device.type == "cpu" and q.dtype == torch.bfloat16):
            # a fused kernel (flash / memory-efficient) that never materializes the (N, N) scores
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_dropout.p if self.training else 0.0)
        else:
            # the same computation written out. Also the fast path for bf16 on CPU: SDPA's CPU flash
            # kernel is slow in bf16 (its backward most of all), while with ~65 tokens the (N, N)
            # scores are small and two bf16 batched matmuls are several times faster (bench/bench_vit.py)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))  # (B, nh, N, N)
            att = F.softmax(att.float(), dim=-1).type_as(v)  # softmax in fp32 even under bf16 autocast
            att = self.attn_dropout(att)
            y = att @ v                                                       # (B, nh, N, hs)
        y = y.transpose(1, 2).contiguous().view(B, N, C)  # (B, N, C): heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):

    def __init__(self, config):
        super().__init__()
        hidden = int(config.mlp_ratio * config.n_embd)
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        # "none" keeps both matrices (the same parameters), but with nothing between them their product
        # is one linear map: what the nonlinearity buys is then measured at equal size
        self.act = {"gelu": nn.GELU(), "relu": nn.ReLU(), "none": nn.Identity()}[config.mlp]
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):                      # (B, N, C) -> (B, N, hidden) -> (B, N, C)
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    """
    Pre-norm residual block: x + f(norm(x)). The residual stream itself is never normalized, so the
    gradient reaches early layers undamped, which is what lets deep transformers train without
    a long warmup dance. Post-norm (norm_placement="post"): norm(x + f(x)), every block's output
    normalized, as in the 2017 Transformer; its gradient passes a norm per block on the way down.
    """

    def __init__(self, config, drop_path):
        super().__init__()
        self.ln_1 = make_norm(config)
        self.attn = SelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config)
        self.drop_path = DropPath(drop_path)
        self.post_norm = config.norm_placement == "post"

    def forward(self, x):                      # (B, N, C)
        if self.post_norm:
            x = self.ln_1(x + self.drop_path(self.attn(x)))
            return self.ln_2(x + self.drop_path(self.mlp(x)))
        x = x + self.drop_path(self.attn(self.ln_1(x)))  # tokens exchange information
        x = x + self.drop_path(self.mlp(self.ln_2(x)))   # each token is transformed on its own
        return x


class ViT(nn.Module):
    blocks_prefix = "blocks."  # optimizers.configure: Muon takes the 2-D weights under it
    # >= 2-D, but embeddings, not weights: not decayed (as timm's no_weight_decay())
    no_weight_decay = {"pos_embed", "cls_token"}

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.patch_embed = ConvStem(config) if config.stem == "conv" else PatchEmbed(config)
        n_tokens = config.n_patches
        if config.pool == "cls":
            # a learned token that holds no patch; after the blocks it has attended to all of them
            self.cls_token = nn.Parameter(torch.zeros(1, 1, config.n_embd))
            n_tokens += 1
        # attention is permutation-invariant, so without position embeddings the model would see
        # a bag of patches; learned ones (one vector per token slot) are what ViT uses
        self.pos_embed = nn.Parameter(torch.zeros(1, n_tokens, config.n_embd))
        self.drop = nn.Dropout(config.dropout)
        # stochastic depth grows linearly with depth: early blocks compute features every later one
        # needs, so they are dropped least (0 for the first block, drop_path for the last)
        rates = [config.drop_path * i / max(1, config.n_layer - 1) for i in range(config.n_layer)]
        self.blocks = nn.ModuleList([Block(config, rate) for rate in rates])
        # post-norm blocks already end in a norm: a second one straight after would be redundant (with
        # mean pooling, the average of normalized tokens, at most unit RMS, is what the head reads)
        self.ln_f = make_norm(config) if config.norm_placement == "pre" else nn.Identity()
        self.head = nn.Linear(config.n_embd, config.n_classes, bias=config.bias)
        self.apply(self._init_weights)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if config.pool == "cls":
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    def _init_weights(self, module):
        # timm-style: small truncated-normal weights (std 0.02, cut at +-2 std), zero biases, so every
        # block starts close to the identity map around its residual connection
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, images, targets=None, label_smoothing=0.0):
        """
        images: (B, in_chans, img_size, img_size) float. targets: (B,) class indices, or (B, n_classes)
        class probabilities (as MixUp/CutMix make them). Returns (logits (B, n_classes), loss or None).
        """
        x = self.patch_embed(images)                              # (B, N, C)
        if self.config.pool == "cls":
            cls = self.cls_token.expand(x.size(0), -1, -1)        # (B, 1, C)
            x = torch.cat([cls, x], dim=1)                        # (B, 1 + N, C)
        x = self.drop(x + self.pos_embed)
        for block in self.blocks:
            x = block(x)
        if self.config.pool == "cls":
            x = x[:, 0]                                           # (B, C): the CLS token
        else:
            x = x.mean(dim=1)                                     # (B, C): average over patches
        logits = self.head(self.ln_f(x))                          # (B, n_classes)
        loss = None
        if targets is not None:
            # at least fp32: under autocast the logits are bf16, and log-softmax in bf16 is noticeably off
            loss = F.cross_entropy(logits.to(torch.promote_types(logits.dtype, torch.float32)), targets,
                                   label_smoothing=label_smoothing)
        return logits, loss

    def estimate_flops_per_image(self):
        """
        Training FLOPs (forward + backward) per image. A matmul with P weights applied to T tokens
        costs 2*P*T forward and 4*P*T backward, so 6*P*T in all. The head runs once per image, not per
        token. Attention adds q@k^T and att@v: 2 matmuls of 2*T*T*C each forward, times 3 with backward.
        Norms, GELU, softmax and adds are left out (a few percent).
        """
        cfg = self.config
        T = cfg.n_patches + (1 if cfg.pool == "cls" else 0)
        stem_flops, side = 0, cfg.img_size
        for conv in (m for m in self.patch_embed.modules() if isinstance(m, nn.Conv2d)):
            side //= conv.stride[0]
            stem_flops += 6 * conv.weight.numel() * side * side  # each output pixel is one matmul row
        n_token_params = sum(p.numel() for p in self.blocks.parameters())
        n_head_params = sum(p.numel() for p in self.head.parameters())
        matmul_flops = stem_flops + 6 * n_token_params * T + 6 * n_head_params
        attention_flops = 12 * cfg.n_layer * T * T * cfg.n_embd
        return matmul_flops + attention_flops

    def estimate_mfu(self, batch_per_iter, dt, peak_flops):
        """Model FLOPs utilization: achieved training FLOP/s as a fraction of the device's peak_flops."""
        return self.estimate_flops_per_image() * batch_per_iter / dt / peak_flops

    def get_num_params(self):
        """Every parameter, embeddings included (a ViT's embeddings are a patch projection, not a lookup)."""
        return sum(p.numel() for p in self.parameters())
