"""
What the training-speed benches share: their timing options, and timing variants in rounds. Each
variant is warmed up (compilation happens there), then all take turns, a few steps each per
round, so a change in the machine's load while the bench runs falls on every variant alike and the
ratios between them hold. A variant has .name, .step() and a list .times that this fills.
"""

import time


def add_timing_args(parser, warmup, steps, rounds, compile):
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps per variant (compilation happens here)")
    parser.add_argument("--steps", type=int, default=steps, help="timed steps per variant per round")
    parser.add_argument("--rounds", type=int, default=rounds, help="rounds in which the variants take turns")
    parser.add_argument("--compile", type=lambda s: s.lower() in ("1", "true", "yes"), default=compile)
    parser.add_argument("--device", default="auto")


def time_in_rounds(variants, args, sync):
    """sync: waits for the device (CUDA runs asynchronously), so a step's time is its real time."""
    for variant in variants:
        start = time.perf_counter()
        for _ in range(args.warmup):
            variant.step()
        sync()
        print(f"  warmed up {variant.name} in {time.perf_counter() - start:.0f}s", flush=True)
    for _ in range(args.rounds):
        for variant in variants:
            for _ in range(args.steps):
                start = time.perf_counter()
                variant.step()
                sync()
                variant.times.append(time.perf_counter() - start)
