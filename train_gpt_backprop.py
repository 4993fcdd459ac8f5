"""
Train model_gpt_backprop.GPTBackprop, the GPT whose gradients are written by hand: train_gpt.py's
data, batches, schedule, AdamW, evaluation, log and checkpoints, on gradients that no autograd made.
Its defaults are train_gpt.py's, so the two runs compare (analysis/compare.py out-shakespeare-char
out-backprop); its best.pt loads into model_gpt.GPT, so sample.py reads it.

    python train_gpt_backprop.py                                   # tiny Shakespeare, the baby CPU GPT
    python train_gpt_backprop.py --dataset=shakespeare_char --max_iters=500

No autocast, compile or DDP: the point is the backward pass, in float32 on one device.
"""

import math
import os
import sys
import time
from dataclasses import asdict

import torch

import configurator
import data
import training
from model_gpt import GPT, GPTConfig
from model_gpt_backprop import GPTBackprop

# -----------------------------------------------------------------------------
# I/O
out_dir = "out-backprop"
eval_interval = 250
log_interval = 10             # a progress line every this many iterations (0: none)
eval_iters = 100
# data
data_dir = "data"
dataset = "shakespeare_char"  # data_dir/dataset/{train.bin, val.bin, meta.json}
batch_size = 12               # train_gpt.py's CPU-sized defaults, so the two runs compare
block_size = 64
# model: GPT-2's architecture, the only one model_gpt_backprop.py implements
n_layer = 4
n_head = 4
n_embd = 128
bias = False
# optimizer
learning_rate = 2e-3
max_iters = 2000
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.99
grad_clip = 1.0               # clip the gradient norm at this (0 = off)
# learning rate schedule
decay_lr = True
warmup_iters = 100
lr_decay_iters = 0            # where the cosine reaches min_lr; 0 = at max_iters
min_lr = 2e-4                 # ~ learning_rate / 10
# system
device = "cpu"                # 'cpu', 'cuda', 'auto'
seed = 1337
# -----------------------------------------------------------------------------
config = configurator.configure(globals(), sys.argv[1:])
globals().update(config)
configurator.check_settings(
    config, at_least_1="batch_size block_size n_layer n_head n_embd eval_interval eval_iters",
    at_least_0="max_iters warmup_iters lr_decay_iters min_lr weight_decay grad_clip log_interval",
    positive="learning_rate", below_1="beta1 beta2")
device = training.pick_device(device)
data_path = os.path.join(data_dir, dataset)
prepare_hint = f"python prepare/{dataset}.py (or another prepare/ script with --out_dir {data_path})"
meta = data.read_meta(data_path, prepare_hint)
data.check_token_bins(data_path, meta, block_size, prepare_hint)
torch.manual_seed(seed)
try:
    model_config = GPTConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size,
                             vocab_size=meta["vocab_size"], bias=bias)
    model = GPTBackprop(model_config, device=device)
except ValueError as e:
    training.fail(str(e))
named = model.named_parameters()
optim = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2))
with torch.device("meta"):  # model_gpt.GPT's parameter and FLOP counts, for the log (meta: no memory)
    twin = GPT(model_config)
print(f"{twin.get_num_params() / 1e6:.2f}M parameters, device {device}")
flops_per_token = twin.estimate_flops_per_token()


def get_batch(split, generator):
    """batch_size random windows, drawn as train_gpt.py draws them (same seed, same batches)."""
    x, y = data.random_windows(data_path, split, block_size, batch_size, generator)
    largest = max(int(x.max()), int(y.max()))
    if largest >= model_config.vocab_size:  # the embedding lookup would fail cryptically
        training.fail(f"{split}.bin holds token id {largest} but meta.json says vocab_size="
                      f"{model_config.vocab_size}; prepare it again: {prepare_hint}")
    return x.to(device), y.to(device)   # (B, T) inputs, (B, T) targets


def estimate_loss():
    """Mean loss over eval_iters batches of each split, the same batches at every eval."""
    out = {}
    for split in ("train", "val"):
        generator = torch.Generator().manual_seed(seed + 1)
        out[split] = sum(model.forward(*get_batch(split, generator)) for _ in range(eval_iters)) / eval_iters
    return out


training.make_dir(out_dir)
metrics = training.MetricsLog(out_dir, True, config)
timer = training.Timer()
batch_generator = torch.Generator().manual_seed(seed)
best_val_loss = float("inf")
step_seconds, tokens_at_eval, eval_seconds = 0.0, 0, 0.0
for iter_num in range(max_iters + 1):
    lr = (training.learning_rate_at(iter_num, learning_rate, warmup_iters, lr_decay_iters or max_iters, min_lr)
          if decay_lr else learning_rate)
    for group in optim.param_groups:
        group["lr"] = lr
    tokens_seen = iter_num * batch_size * block_size
    if iter_num % eval_interval == 0 or iter_num == max_iters:
        losses = estimate_loss()
        print(f"iter {iter_num}/{max_iters}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        metrics.log({"iter": iter_num, "train_loss": losses["train"], "val_loss": losses["val"], "lr": lr,
                     "tokens_seen": tokens_seen, "flops": tokens_seen * flops_per_token,
                     "tokens_per_s": round((tokens_seen - tokens_at_eval) / eval_seconds, 1) if eval_seconds else None,
                     "elapsed_s": round(timer.elapsed(), 3)})
        eval_seconds, tokens_at_eval = 0.0, tokens_seen
        if iter_num > 0 and math.isfinite(losses["val"]):
            improved = losses["val"] < best_val_loss
            best_val_loss = min(best_val_loss, losses["val"])
            # ckpt.pt: the latest, with the optimizer; best.pt (if improved): the weights, for sample.py
            training.save_run_checkpoints({
                "kind": "gpt", "model": model.state_dict(), "optimizer": optim.state_dict(),
                "model_args": asdict(model_config), "config": config, "iter_num": iter_num,
                "best_val_loss": best_val_loss}, out_dir, last=True, best=improved)
    if iter_num == max_iters:
        break

    step_start = time.time()
    loss = model.forward(*get_batch("train", batch_generator))
    grads = model.backward()
    for name, p in named:
        p.grad = grads[name]  # torch.optim reads .grad; we put there what autograd would have
    grad_norm = torch.nn.utils.clip_grad_norm_([p for _, p in named], grad_clip if grad_clip > 0 else float("inf"))
    if not torch.isfinite(grad_norm):
        training.fail(f"non-finite loss/gradient at iter {iter_num}; lower learning_rate")
    optim.step()
    dt = time.time() - step_start
    step_seconds += dt
    eval_seconds += dt
    if log_interval and (iter_num + 1) % log_interval == 0:
        print(f"iter {iter_num + 1}/{max_iters}: loss {loss:.4f}, {step_seconds / log_interval * 1000:.1f} ms/iter")
        step_seconds = 0.0
