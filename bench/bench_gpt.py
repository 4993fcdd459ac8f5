"""
Training-step speed of model_gpt.GPT in fp32 and bf16 autocast, with attention through
F.scaled_dot_product_attention (SDPA, what nanoGPT does) or written out (flash=False), and the
default (dtype=auto, flash=True: what train_gpt.py runs here), eager or torch.compile'd, at three
shapes: nanoGPT's "baby GPT" (6 layers, 6 heads, 384 wide, context 256, batch 16), train_gpt.py's
CPU default (4 layers, 4 heads, 128 wide, context 64, batch 12), and a long context (4 layers, 4
heads, 256 wide, context 1024, batch 2), where model_gpt.py keeps SDPA in bf16. All variants take
turns in rounds in one run, so the ratios hold on a busy machine. A step is what train_gpt.py does: forward,
cross-entropy, backward, clip, AdamW step.

    python bench/bench_gpt.py                    # eager only
    python bench/bench_gpt.py --compile=True     # also compiled (minutes of compiling on a CPU)
    python bench/bench_gpt.py --shapes="CPU default"   # the small shape only (bf16 emulated on a CPU: slow)

bf16 pays off on CPUs only where the hardware multiplies bf16 (AMX, AVX512-BF16); elsewhere torch
converts each operand to fp32 and back, and bf16 runs slower than fp32. The first line says which
this CPU is. The "sdpa" variants call SDPA in every dtype (model_gpt.py itself writes attention out
in bf16 on a CPU over contexts up to 256, where that is faster); "default" is what dtype=auto and flash=True choose.
"""

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import optimizers  # noqa: E402
import training  # noqa: E402
from bench import rounds  # noqa: E402
from model_gpt import GPT, GPTConfig  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
rounds.add_timing_args(parser, warmup=2, steps=3, rounds=3, compile=False)
parser.add_argument("--shapes", default="baby GPT,CPU default,long context", help="which of the shapes, comma-separated")
args = parser.parse_args()
device = training.pick_device(args.device)
SHAPES = {  # name: (model settings, batch size)
    "baby GPT": (dict(n_layer=6, n_head=6, n_embd=384, block_size=256), 16),
    "CPU default": (dict(n_layer=4, n_head=4, n_embd=128, block_size=64), 12),
    "long context": (dict(n_layer=4, n_head=4, n_embd=256, block_size=1024), 2),
}
COLUMNS = [("float32", "sdpa"), ("float32", "written"), ("bfloat16", "sdpa"), ("bfloat16", "written"),
           ("auto", "default")]  # (dtype, attention) of each variant, per shape and compile setting


class Variant:
    def __init__(self, shape, dtype, attention, compiled):
        self.shape, self.attention, self.compiled = shape, attention, compiled
        self.dtype = training.resolve_dtype(dtype, device)
        self.column = (dtype, attention)
        self.name = f"{shape:11s} {self.dtype:8s} {attention:7s} {'compiled' if compiled else 'eager'}"
        settings, self.batch_size = SHAPES[shape]
        torch.manual_seed(0)
        self.raw_model = GPT(GPTConfig(vocab_size=128, bias=False, dropout=0.0, flash=attention != "written",
                                       **settings)).to(device)
        if attention == "sdpa":
            for block in self.raw_model.transformer.h:
                block.attn.fused = lambda q, k: True  # SDPA whatever the dtype and device
        self.optimizer = optimizers.configure(self.raw_model, "adamw", 0.1, 1e-3, (0.9, 0.99), device.split(":")[0])
        self.model = torch.compile(self.raw_model) if compiled else self.raw_model
        T = settings["block_size"]
        self.x, self.y = (torch.randint(0, 65, (self.batch_size, T), device=device) for _ in range(2))
        self.times = []

    def step(self):
        with training.autocast(device, self.dtype):
            _, loss = self.model(self.x, self.y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def tokens_per_second(self):
        return self.batch_size * self.x.size(1) / statistics.median(self.times)


def sync():
    if device.startswith("cuda"):
        torch.cuda.synchronize()


if set(args.shapes.split(",")) - set(SHAPES):
    parser.error(f"--shapes: choose among {', '.join(SHAPES)}")
native_bf16 = sorted(training.cpu_flags() & {"amx_bf16", "avx512_bf16"})
print(f"device {device}, {torch.get_num_threads()} threads; CPU bf16 in hardware: {', '.join(native_bf16) or 'no'}; "
      f"dtype=auto chooses {training.resolve_dtype('auto', device)}")
variants = [Variant(shape, dtype, attention, compiled) for shape in args.shapes.split(",")
            for compiled in ([False, True] if args.compile else [False]) for dtype, attention in COLUMNS]
rounds.time_in_rounds(variants, args, sync)


def reference(variant):
    """fp32 with SDPA, eager, at the variant's shape: what every ratio compares with."""
    return next(v for v in variants if v.shape == variant.shape and v.column == ("float32", "sdpa") and not v.compiled)


print(f"\n{'variant':40s} {'tokens/s':>9s} {'x fp32 sdpa eager':>18s}")
for variant in variants:
    speed = variant.tokens_per_second()
    print(f"{variant.name:40s} {speed:9,.0f} {speed / reference(variant).tokens_per_second():17.2f}x")

print("\n| shape | " + " | ".join(f"{dtype} {attention}" for dtype, attention in COLUMNS) + " |")
print("|---|" + "---:|" * len(COLUMNS))
for shape in args.shapes.split(","):
    for compiled in [False, True] if args.compile else [False]:
        row = [v for v in variants if v.shape == shape and v.compiled == compiled]
        cells = [f"{v.tokens_per_second():,.0f} ({v.tokens_per_second() / reference(v).tokens_per_second():.2f}x)"
                 for v in row]
        print(f"| {shape}{', compiled' if compiled else ''} | " + " | ".join(cells) + " |")
