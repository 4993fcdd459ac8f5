"""
How much the KV cache speeds up generation: the same model samples the same tokens with and
without it, in one run (the machine's load changes between runs; ratios within a run are what count).
Random weights: speed does not depend on what the weights are.

    python bench/bench_generate.py                      # shakespeare_char shape, 500 tokens; GPT-2 124M shape, 48
    python bench/bench_generate.py --gpt2_tokens=0      # only the small model
    python bench/bench_generate.py --arch               # instead: what each GPTConfig option costs to train
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import optimizers  # noqa: E402
from model_gpt import GPT, GPTConfig  # noqa: E402


def timed_generate(model, prompt, new_tokens, use_cache, seed):
    """Generate like sample.py (temperature 0.8, top_k 200); return the tokens and the time at
    which each new token arrived (via the stream callback), counted from the start."""
    times = []
    torch.manual_seed(seed)
    start = time.perf_counter()
    out = model.generate(prompt, new_tokens, temperature=0.8, top_k=200, use_cache=use_cache,
                         stream=lambda token: times.append(time.perf_counter() - start))
    return out, times


def rate(times, first, last):
    """Tokens per second for the tokens numbered first..last-1."""
    return (last - first) / (times[last - 1] - (times[first - 1] if first > 0 else 0.0))


def bench(name, config, prompt_len, new_tokens):
    torch.manual_seed(0)
    model = GPT(config).eval()
    prompt = torch.randint(0, config.vocab_size, (1, prompt_len))
    model.generate(prompt, 2)  # warm up
    print(f"\n{name}: {model.get_num_params() / 1e6:.1f}M params, block_size {config.block_size}, "
          f"prompt {prompt_len}, {new_tokens} new tokens, {torch.get_num_threads()} threads")
    cached, t_cached = timed_generate(model, prompt, new_tokens, use_cache=True, seed=1)
    uncached, t_uncached = timed_generate(model, prompt, new_tokens, use_cache=False, seed=1)
    assert torch.equal(cached, uncached), "the cache changed the sampled tokens"
    fill = min(new_tokens, config.block_size - prompt_len)  # new tokens before the context is full
    rows = [("all tokens", 0, new_tokens)]
    if new_tokens - fill >= 10:
        rows.append((f"the {fill} tokens before the context is full", 0, fill))
    if fill >= 20:
        rows.append((f"last 10% of the tokens within the context (context ~{prompt_len + int(fill * 0.9)}-"
                     f"{prompt_len + fill})", fill - fill // 10, fill))
    if new_tokens - fill >= 10:
        rows.append(("after the context is full (both recompute the window)", fill + 1, new_tokens))
    for label, first, last in rows:
        with_cache, without = rate(t_cached, first, last), rate(t_uncached, first, last)
        print(f"  {label:<62s} cache {with_cache:8.1f} tok/s   no cache {without:8.1f} tok/s   "
              f"ratio {with_cache / without:5.1f}x")


ARCH_OPTIONS = [dict(), dict(pos_encoding="sinusoidal"), dict(pos_encoding="rope"), dict(pos_encoding="none"),
                dict(norm="rmsnorm"), dict(norm_placement="post"), dict(qk_norm=True), dict(mlp="relu"),
                dict(mlp="relu2"), dict(mlp="swiglu"), dict(bias=False), dict(tie_weights=False)]


def arch_table(rounds=5, steps=5):
    """Parameters and training-step time (forward, backward, AdamW) of each option at train_gpt.py's
    default shape (4L/4H/128d, block 64, batch 12, vocab 65). The options take turns, round after
    round, so a change in the machine's load hits all of them; each gets its best round's median."""
    shape = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65)
    models = []
    for options in ARCH_OPTIONS:
        torch.manual_seed(0)
        model = GPT(GPTConfig(**shape, **options))
        models.append((options, model, optimizers.configure(model, "adamw", 0.1, 1e-3, (0.9, 0.99), "cpu")))
    x, y = torch.randint(0, 65, (12, 64)), torch.randint(0, 65, (12, 64))
    best = [float("inf")] * len(models)
    for _ in range(rounds):
        for i, (_, model, optimizer) in enumerate(models):
            times = []
            for _ in range(steps + 1):  # the first step warms up
                start = time.perf_counter()
                _, loss = model(x, y)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                times.append(time.perf_counter() - start)
            best[i] = min(best[i], sorted(times[1:])[steps // 2])
    base_params = models[0][1].get_num_params(non_embedding=False)
    print(f"\n| option | params | vs GPT-2 | step time (ms) | vs GPT-2 |\n|---|---|---|---|---|")
    for (options, model, _), t in zip(models, best):
        n = model.get_num_params(non_embedding=False)
        label = ", ".join(f"{k}={v}" for k, v in options.items()) or "GPT-2 defaults"
        print(f"| {label} | {n:,} | {n - base_params:+,} | {t * 1000:.1f} | {t / best[0]:.2f}x |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=500, help="new tokens for the shakespeare_char shape")
    parser.add_argument("--gpt2_tokens", type=int, default=48, help="new tokens for the GPT-2 124M shape (0 = skip)")
    parser.add_argument("--gpt2_prompt", type=int, default=256, help="prompt length for the GPT-2 shape")
    parser.add_argument("--arch", action="store_true", help="print the cost of each option instead")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; on a small shared machine 1 is faster and steadier than all cores")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}")
    if args.arch:
        arch_table()
        return
    bench("shakespeare_char shape (6L/6H/384d)",
          GPTConfig(n_layer=6, n_head=6, n_embd=384, block_size=256, vocab_size=65, bias=False),
          prompt_len=1, new_tokens=args.tokens)
    if args.gpt2_tokens:
        bench("GPT-2 124M shape (12L/12H/768d)",
              GPTConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50257),
              prompt_len=args.gpt2_prompt, new_tokens=args.gpt2_tokens)


if __name__ == "__main__":
    main()
