"""
The CPU speedrun against nanoGPT's CPU recipe, back to back in one run. Each run is train_gpt.py in
its own process, timed from its start to its exit (data loading, evaluations and the final
checkpoint included); then analysis/evaluate.py scores the final checkpoint on the whole val split
of tiny Shakespeare characters (not timed). Goal: config/speedrun_cpu.py reaches a val loss of at
most 1.886 (what nanoGPT's recipe reaches) in at most 0.33x the recipe's wall time.

    python bench/bench_speedrun.py               # one seed each
    python bench/bench_speedrun.py --seeds=3     # seeds 1337, 1338, 1339, alternating the two runs

The baseline is nanoGPT's README command for a CPU (config/train_shakespeare_char.py with
--device=cpu --compile=False --eval_iters=20 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4
--n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0), in train_gpt.py's settings:
its defaults are that shape, so what remains is the learning rate and the eval and checkpoint
schedule. Its time is the whole run: it reaches its loss at the end.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 1.886
RUNS = {
    "nanoGPT recipe": ["--learning_rate=1e-3", "--min_lr=1e-4", "--eval_iters=20", "--always_save_checkpoint=False",
                       "--device=cpu", "--dtype=float32", "--compile=False"],
    "speedrun_cpu": ["config/speedrun_cpu.py"],
}

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--seeds", type=int, default=1)
parser.add_argument("--data_dir", default="data", help="holds shakespeare_char/ (train_gpt.py prepares it if missing)")
parser.add_argument("--out_root", default="out-bench-speedrun")
args = parser.parse_args()


def python(*command):
    result = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


results = {name: [] for name in RUNS}  # name -> [(seconds, whole-val loss)]
for seed in range(1337, 1337 + args.seeds):
    for name, settings in RUNS.items():
        out_dir = os.path.join(args.out_root, f"{name.split()[0]}-seed{seed}")
        start = time.perf_counter()
        python("train_gpt.py", *settings, f"--data_dir={args.data_dir}", f"--out_dir={out_dir}", f"--seed={seed}",
               "--overwrite=True", "--wandb_log=False")
        seconds = time.perf_counter() - start
        python("analysis/evaluate.py", f"--out_dir={out_dir}", "--ckpt=last", "--eval_tokens=1000000000",
               f"--data_dir={args.data_dir}", "--device=cpu")
        with open(os.path.join(REPO, out_dir, "eval.json")) as f:
            loss = json.load(f)["loss"]
        results[name].append((seconds, loss))
        print(f"seed {seed} {name:>15}: {seconds:6.1f} s, whole-val loss {loss:.4f}", flush=True)

print(f"\n{'run':>15} {'seeds':>5} {'wall time (s)':>14} {'whole-val loss':>15} {'<= ' + str(TARGET):>8}")
mean = {}
for name, runs in results.items():
    seconds, losses = [s for s, _ in runs], [loss for _, loss in runs]
    mean[name] = statistics.mean(seconds)
    spread = lambda xs, digits: f" ± {statistics.stdev(xs):.{digits}f}" if len(xs) > 1 else ""
    print(f"{name:>15} {len(runs):>5} {mean[name]:>8.1f}{spread(seconds, 1):>6} {statistics.mean(losses):>9.4f}"
          f"{spread(losses, 3):>6} {'yes' if max(losses) <= TARGET else 'no':>8}")
print(f"speedrun / recipe wall time: {mean['speedrun_cpu'] / mean['nanoGPT recipe']:.2f}x (goal <= 0.33x)")
