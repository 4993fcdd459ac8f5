"""
GPU self-check: is this GPU as fast as it should be with our models? Times training steps (forward,
backward, clip, AdamW) of GPT-2 small (124M, context 1024, random tokens) and of the CIFAR ViT of
config/vit_cifar10.py (MixUp/CutMix on the device, random images), in bf16 (fp16
where the GPU has no bf16) with torch.compile, and prints tokens/s, images/s and the model FLOPs
utilisation (MFU) against the GPU's peak.

    python bench/gpu_check.py                      # the peak is looked up from the GPU's name
    python bench/gpu_check.py --peak_flops=312e12  # or given: one device's dense bf16 FLOP/s

The ViT figure leaves out the per-image augmentation on the CPU (the DataLoader workers): if a real
run is slower, the workers are the limit (train_vit.py's img/s shows it).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo's modules

import torch
from torchvision.transforms import v2

import optimizers
import training
from model_gpt import GPT, GPTConfig
from model_vit import ViT, ViTConfig

# -----------------------------------------------------------------------------
device = "cuda"
dtype = "auto"           # bf16 where the GPU has it, else fp16
compile = True
steps = 20               # timed steps per model, after the warm-up ones
warmup = 5               # untimed steps first: compilation, autotuning, the allocator settling
peak_flops = 0.0         # one device's dense peak for dtype; 0 = look it up from the GPU's name
gpt_batch_size = 8       # sequences of 1024 tokens per step
vit_batch_size = 512     # images per step (config/vit_cifar10.py's batch)
# -----------------------------------------------------------------------------
config = training.configure(globals(), sys.argv[1:])
globals().update(config)

# dense tensor-core peaks (no sparsity) from NVIDIA's data sheets, bf16/fp16 with fp32 accumulation
PEAKS = [("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12), ("L40S", 362e12),
         ("L4", 121e12), ("V100", 125e12), ("T4", 65e12)]

if device.startswith("cuda") and not torch.cuda.is_available():
    training.fail("no CUDA GPU here: this check is for a GPU (--device=cpu runs it, slowly, on the CPU)")
precision = training.resolve_dtype(dtype, device)
name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
peak = peak_flops or next((flops for key, flops in PEAKS if key in name), 0.0)
print(f"{name}, {precision}, compile {compile}; peak {peak / 1e12:.0f} TFLOP/s" if peak else
      f"{name}, {precision}, compile {compile}; peak unknown: pass --peak_flops for MFU")
if device.startswith("cuda"):
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
amp = training.autocast(device, precision)
guard = training.NonFiniteGuard("stop", device, "step", "(none: nothing is saved)")


def seconds_per_step(model, optim, scaler, make_batch):
    """Mean wall seconds of a training step, over `steps` steps after `warmup` untimed ones."""
    fast_model = torch.compile(model) if compile else model
    for i in range(warmup + steps):
        if i == warmup:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
        inputs, targets = make_batch()
        with amp:
            _, loss = fast_model(inputs, targets)
        scaler.scale(loss).backward()
        training.optimizer_step(model, optim, scaler, 1.0, guard, i, False)  # the training scripts' step
    loss.item()  # waits for the device
    guard.check()
    return (time.perf_counter() - start) / steps


torch.manual_seed(0)
gpt = GPT(GPTConfig()).to(device)  # GPT-2 small, its vocabulary padded to 50304
optim = optimizers.configure(gpt, "adamw", 0.1, 6e-4, (0.9, 0.95), device.split(":")[0])
tokens = gpt_batch_size * gpt.config.block_size


def gpt_batch():
    idx = torch.randint(0, 50257, (gpt_batch_size, gpt.config.block_size + 1), device=device)
    return idx[:, :-1], idx[:, 1:]


dt = seconds_per_step(gpt, optim, training.grad_scaler(device, precision), gpt_batch)
print(f"GPT-2 small: {dt * 1000:.1f} ms/step, {tokens / dt:,.0f} tokens/s"
      + (f", MFU {gpt.estimate_mfu(tokens, dt, peak):.1%}" if peak else ""))
del gpt, optim

vit = ViT(ViTConfig(n_layer=8, n_head=6, n_embd=192, patch_size=4, drop_path=0.1)).to(device)
optim = optimizers.configure(vit, "adamw", 0.05, 1e-3, (0.9, 0.999), device.split(":")[0])
mix = v2.RandomChoice([v2.MixUp(alpha=0.8, num_classes=10), v2.CutMix(alpha=1.0, num_classes=10)])


def vit_batch():
    images = torch.randn(vit_batch_size, 3, 32, 32, device=device)
    return mix(images, torch.randint(0, 10, (vit_batch_size,), device=device))  # labels -> (B, 10) mixed


dt = seconds_per_step(vit, optim, training.grad_scaler(device, precision), vit_batch)
print(f"ViT (CIFAR seed model): {dt * 1000:.1f} ms/step, {vit_batch_size / dt:,.0f} images/s"
      + (f", MFU {vit.estimate_mfu(vit_batch_size, dt, peak):.1%}" if peak else ""))
