"""
Training-step time of model_gpt_backprop.GPTBackprop (backward written by hand) against
model_gpt.GPT (autograd, eager), same shape, same weights, same batch, float32. A step is forward,
backward and an AdamW step. The two take turns, round after round, so a change in the machine's load
hits both; each gets the median of its steps.

    python bench/bench_backprop.py                 # train_gpt.py's CPU shape, then the baby GPT
    python bench/bench_backprop.py --baby=False    # the CPU shape only
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import optimizers  # noqa: E402
import training  # noqa: E402
from model_gpt import GPT, GPTConfig  # noqa: E402
from model_gpt_backprop import GPTBackprop  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--warmup", type=int, default=3, help="untimed steps per model")
parser.add_argument("--steps", type=int, default=5, help="timed steps per model per round")
parser.add_argument("--rounds", type=int, default=5, help="rounds in which the two take turns")
parser.add_argument("--baby", type=lambda s: s.lower() in ("1", "true", "yes"), default=True,
                    help="also the baby GPT (6L/6H/384d, block 256, batch 8)")
parser.add_argument("--device", default="cpu")
args = parser.parse_args()
device = training.pick_device(args.device)

SHAPES = [("train_gpt.py CPU default", dict(n_layer=4, n_head=4, n_embd=128, block_size=64, bias=False), 12),
          ("baby GPT", dict(n_layer=6, n_head=6, n_embd=384, block_size=256, bias=False), 8)]


def sync():
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def autograd_step(model, optimizer, x, y):
    _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def by_hand_step(model, optimizer, x, y):
    model.forward(x, y)
    grads = model.backward()
    for name, p in model.named_parameters():
        p.grad = grads[name]
    optimizer.step()


def bench(name, shape, batch_size):
    config = GPTConfig(**shape, vocab_size=65)
    torch.manual_seed(0)
    gpt = GPT(config).to(device)
    by_hand = GPTBackprop(config, device=device)
    by_hand.load_state_dict(gpt.state_dict())
    contenders = [("autograd (model_gpt.GPT)", autograd_step, gpt,
                   optimizers.configure(gpt, "adamw", 0.1, 1e-3, (0.9, 0.99), device.split(":")[0])),
                  ("by hand (GPTBackprop)", by_hand_step, by_hand,
                   by_hand.configure_optimizers(0.1, 1e-3, (0.9, 0.99)))]
    x = torch.randint(0, 65, (batch_size, config.block_size), device=device)
    y = torch.randint(0, 65, (batch_size, config.block_size), device=device)
    for _, step, model, optimizer in contenders:
        for _ in range(args.warmup):
            step(model, optimizer, x, y)
    times = {label: [] for label, *_ in contenders}
    for _ in range(args.rounds):
        for label, step, model, optimizer in contenders:
            for _ in range(args.steps):
                start = time.perf_counter()
                step(model, optimizer, x, y)
                sync()
                times[label].append(time.perf_counter() - start)
    print(f"\n{name}: {shape['n_layer']}L/{shape['n_head']}H/{shape['n_embd']}d, block {config.block_size}, "
          f"batch {batch_size}, vocab 65, float32, {torch.get_num_threads()} threads, device {device}")
    medians = {label: statistics.median(t) * 1000 for label, t in times.items()}
    reference = medians[contenders[0][0]]
    for label, ms in medians.items():
        print(f"  {label:26s} {ms:8.1f} ms/step   {ms / reference:5.2f}x autograd")


for name, shape, batch_size in SHAPES[:2 if args.baby else 1]:
    bench(name, shape, batch_size)
