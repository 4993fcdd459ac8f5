"""
Training speed of model_vit.ViT next to timm's VisionTransformer of the same shape (the seed model:
8 layers, 6 heads, 192 wide, 4x4 patches on 32x32 images, 10 classes), fp32 and bf16 autocast,
eager and torch.compile'd, all measured in one run. The machine's load changes from minute to
minute, so the variants take turns in rounds and the ratios between them are what count.
A training step is what train_vit.py does: forward, cross-entropy, backward, clip, AdamW step.

    python bench/bench_vit.py                     # CPU (or the GPU if there is one), all 8 variants
    python bench/bench_vit.py --compile=False     # eager only: no compile time
    python bench/bench_vit.py --batch_size=512 --device=cuda

It also times the attention alone, the two ways model_vit.py can compute it, to show why it
writes attention out by hand for bf16 on CPU instead of calling scaled_dot_product_attention.
"""

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import optimizers  # noqa: E402
import training  # noqa: E402
from bench import rounds  # noqa: E402
from model_vit import ViT, ViTConfig  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--batch_size", type=int, default=128)
rounds.add_timing_args(parser, warmup=3, steps=2, rounds=5, compile=True)
args = parser.parse_args()
device = training.pick_device(args.device)
device_type = "cuda" if device.startswith("cuda") else "cpu"
config = ViTConfig(img_size=32, patch_size=4, n_classes=10, n_layer=8, n_head=6, n_embd=192, drop_path=0.1)


def sync():
    if device_type == "cuda":
        torch.cuda.synchronize()


def build(impl):
    torch.manual_seed(0)
    if impl == "ours":
        model = ViT(config)
    else:  # timm's ViT with the same shape, CLS-token pooling and stochastic depth
        model = VisionTransformer(img_size=32, patch_size=4, num_classes=10, embed_dim=192, depth=8,
                                  num_heads=6, mlp_ratio=4.0, drop_path_rate=0.1, global_pool="token")
    model = model.to(device)
    # the same optimizer for both, so only the models differ
    optimizer = optimizers.configure(model, "adamw", 0.05, 1e-3, (0.9, 0.999), device_type) if impl == "ours" \
        else torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, fused=(device_type == "cuda"))
    return model, optimizer


class Variant:
    def __init__(self, impl, dtype, compiled):
        self.impl, self.dtype, self.compiled = impl, dtype, compiled
        self.name = f"{impl:5s} {dtype:9s} {'compiled' if compiled else 'eager'}"
        self.raw_model, self.optimizer = build(impl)
        self.model = torch.compile(self.raw_model) if compiled else self.raw_model
        self.times = []

    def step(self):
        with training.autocast(device, self.dtype):
            out = self.model(images)
            logits = out[0] if isinstance(out, tuple) else out
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def images_per_second(self):
        return args.batch_size / statistics.median(self.times)


torch.manual_seed(0)
images = torch.randn(args.batch_size, 3, 32, 32, device=device)
labels = torch.randint(0, 10, (args.batch_size,), device=device)
dtypes = ["float32", "bfloat16"]
variants = [Variant(impl, dtype, compiled) for compiled in ([False, True] if args.compile else [False])
            for dtype in dtypes for impl in ("timm", "ours")]
print(f"device {device}, {torch.get_num_threads()} threads, batch {args.batch_size}; "
      f"{ViT(config).estimate_flops_per_image() / 1e9:.2f} GFLOP per training image")
rounds.time_in_rounds(variants, args, sync)

flops_per_image = ViT(config).estimate_flops_per_image()
timm_fp32_eager = variants[0].images_per_second()
print(f"\n{'variant':30s} {'img/s':>8s} {'GFLOP/s':>8s} {'x timm (same)':>14s} {'x timm fp32 eager':>18s}")
for variant in variants:
    speed = variant.images_per_second()
    line = f"{variant.name:30s} {speed:8.1f} {speed * flops_per_image / 1e9:8.1f}"
    if variant.impl == "ours":
        twin = next(v for v in variants if v.impl == "timm" and v.dtype == variant.dtype
                    and v.compiled == variant.compiled)
        line += f" {speed / twin.images_per_second():13.2f}x {speed / timm_fp32_eager:17.2f}x"
    print(line)

# -----------------------------------------------------------------------------
# the attention alone, at the seed model's shape: (B, heads, 65 tokens, 32 per head), forward + backward


def attention_time(fn, dtype):
    q, k, v = (torch.randn(args.batch_size, 6, 65, 32, device=device, requires_grad=True) for _ in range(3))
    times = []
    for i in range(args.warmup + args.rounds * args.steps):
        start = time.perf_counter()
        with training.autocast(device, dtype):
            # the Linear before attention hands it bf16 tensors under autocast; so do we here
            y = fn(*(t.to(torch.bfloat16) if dtype == "bfloat16" else t for t in (q, k, v)))
        y.float().sum().backward()
        sync()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def written_out(q, k, v):  # what model_vit.SelfAttention does for bf16 on CPU
    att = F.softmax((q @ k.transpose(-2, -1) * (1.0 / 32 ** 0.5)).float(), dim=-1).type_as(v)
    return att @ v


print(f"\nattention forward + backward, batch {args.batch_size} (ms, median):")
for dtype in dtypes:
    sdpa_ms = attention_time(F.scaled_dot_product_attention, dtype)
    manual_ms = attention_time(written_out, dtype)
    print(f"  {dtype:9s} scaled_dot_product_attention {sdpa_ms:7.1f}   written out {manual_ms:7.1f}   "
          f"({sdpa_ms / manual_ms:.1f}x)")
