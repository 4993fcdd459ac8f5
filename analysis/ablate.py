"""
Ablations in one command: train every variant of an ablation config with several seeds, one run
after another, then write a table of the results: the mean and std over seeds, and the difference
of each mean to the baseline variant's.

    python analysis/ablate.py config/ablations/positions.py                  # 4 variants x 3 seeds
    python analysis/ablate.py config/ablations/positions.py --max_iters=300  # a quick look: every run shorter
    python analysis/ablate.py config/ablations/heads.py --dry_run=True       # print the commands, run nothing

An ablation config is plain Python (see config/ablations/): `script` (train_gpt.py, train_vit.py or train_rl.py),
`base_config` (a config file, or ""), `base_overrides` (a dict), `variants` (name -> dict of
overrides) and `baseline` (the variant the others are compared with); paths are relative to the
repository's root. Each run is
    python SCRIPT BASE_CONFIG --base_overrides --command_line_overrides --variant_overrides
        --seed=S --out_dir=OUT_ROOT/VARIANT-seedS --init_from=auto
The variant's overrides come after the command line's, so a variant always differs from the base in
exactly what it names. A run with the same settings as a finished run of another ablation beside
OUT_ROOT is copied from there, not trained again (the shipped GPT ablations share one baseline: the
recipe). Ctrl-C or SIGTERM stops the run in progress at its next step (it saves
ckpt.pt) and ablate with it; the same command again skips the finished runs and resumes the stopped one.

Writes OUT_ROOT/results.md (the table and the command), results.json (every run's numbers, and each
variant's learning curve: the mean and range over seeds), results.png (those curves) and
OUT_ROOT/compare.html through analysis/compare.py.
"""

import functools
import glob
import json
import math
import os
import re
import runpy
import shlex
import shutil
import signal
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo's modules

import matplotlib
matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt
import torch

import configurator
import training
from analysis import common
from model_gpt import GPT, GPTConfig
from model_vit import ViT, ViTConfig

# -----------------------------------------------------------------------------
seeds = 3            # runs per variant
first_seed = 1337    # the seeds are first_seed, first_seed + 1, ...
dry_run = False      # print every run's command (shell-quoted, one per line) and run nothing
out_root = ""        # where the runs and the table go; "" = out-ablate-NAME for an ablation config NAME.py
# -----------------------------------------------------------------------------
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USAGE = "usage: python analysis/ablate.py config/ablations/NAME.py [--seeds=3] [--dry_run=True] [--key=value ...]"
ABLATION_KEYS = {"script": None, "base_config": "", "base_overrides": {}, "baseline": None, "variants": None}
OWN_KEYS = ("seeds", "first_seed", "dry_run", "out_root")  # ablate's settings; every other --key=value goes to the runs
SET_BY_ABLATE = ("seed", "out_dir", "init_from")  # every run gets its own; --first_seed and --out_root move them
MARKER = "ablate.json"  # in each run's out_dir: the run's command, and whether it finished

own_settings = {"__file__": __file__, "__doc__": __doc__, **{k: globals()[k] for k in OWN_KEYS}}
if "-h" in sys.argv or "--help" in sys.argv:
    configurator.configure(own_settings, ["--help"])
if len(sys.argv) < 2 or not sys.argv[1].endswith(".py"):
    training.fail(f"no ablation config; {USAGE}")
ablation_path, own_args, passed_args = sys.argv[1], [], []
for arg in sys.argv[2:]:
    if not arg.startswith("--") or "=" not in arg:
        training.fail(f"'{arg}': after the ablation config only --key=value may follow; {USAGE}")
    key = arg[2:].partition("=")[0]
    if key in SET_BY_ABLATE:
        training.fail(f"ablate sets --{key} for every run itself (seeds: --seeds, --first_seed; out_dir: --out_root)")
    (own_args if key in OWN_KEYS else passed_args).append(arg)
globals().update(configurator.configure(own_settings, own_args))
if seeds < 1:
    training.fail(f"seeds must be at least 1, got {seeds}")
if not os.path.isfile(ablation_path):
    training.fail(f"ablation config '{ablation_path}' does not exist (they are in config/ablations/)")
name = os.path.basename(ablation_path)[:-len(".py")]
out_root = out_root or f"out-ablate-{name}"

# -----------------------------------------------------------------------------
# the ablation config, checked whole before the first run: a typo found after an hour of training
# costs the hour

ablation = {k: v for k, v in runpy.run_path(ablation_path).items()
            if not k.startswith("_") and not callable(v) and not hasattr(v, "__spec__")}
for key in ablation:
    if key not in ABLATION_KEYS:
        training.fail(f"{ablation_path}: unknown key '{key}'; an ablation config sets {', '.join(ABLATION_KEYS)}")
for key, default in ABLATION_KEYS.items():
    if default is None and key not in ablation:
        training.fail(f"{ablation_path} sets no '{key}'; an ablation config needs script, baseline and variants")
    ablation.setdefault(key, default)
variants, baseline = ablation["variants"], ablation["baseline"]
if not isinstance(variants, dict) or not variants or not all(isinstance(v, dict) for v in variants.values()):
    training.fail(f"{ablation_path}: variants must be a non-empty dict of name -> dict of overrides")
if not isinstance(ablation["base_overrides"], dict):
    training.fail(f"{ablation_path}: base_overrides must be a dict of overrides")
if baseline not in variants:
    training.fail(f"{ablation_path}: baseline {baseline!r} is not a variant ({', '.join(variants)})")
for variant, overrides in [("base_overrides", ablation["base_overrides"]), *variants.items()]:
    if not re.fullmatch(r"[\w.-]+", variant):
        training.fail(f"{ablation_path}: variant name {variant!r} must be letters, digits, '_', '.' or '-' (it names a directory)")
    for key in set(overrides) & set(SET_BY_ABLATE):
        training.fail(f"{ablation_path}: {variant} sets '{key}', which ablate sets for every run itself")

script_path = os.path.join(REPO, ablation["script"])
if not os.path.isfile(script_path):
    training.fail(f"{ablation_path}: training script '{ablation['script']}' does not exist")
base_config = os.path.join(REPO, ablation["base_config"]) if ablation["base_config"] else ""
if base_config and not os.path.isfile(base_config):
    training.fail(f"{ablation_path}: base_config '{ablation['base_config']}' does not exist")


script_settings = functools.cache(configurator.script_settings)  # finished_twin asks again for every marker


def as_arg(key, value):
    """--key=value in the form configurator.configure reads back: strings bare (--mlp=relu), the rest as
    Python literals (--dropout=0.1, --bias=False)."""
    return f"--{key}={value}" if isinstance(value, str) else f"--{key}={value!r}"


def run_dir(variant, seed):
    return os.path.join(out_root, f"{variant}-seed{seed}")


def run_args(variant, seed):
    """The training command, without the Python interpreter."""
    overrides = [as_arg(k, v) for k, v in ablation["base_overrides"].items()]
    overrides += passed_args + [as_arg(k, v) for k, v in variants[variant].items()]
    return ([os.path.relpath(script_path)] + ([os.path.relpath(base_config)] if base_config else [])
            + overrides + [f"--seed={seed}", f"--out_dir={run_dir(variant, seed)}", "--init_from=auto"])


seed_list = [first_seed + i for i in range(seeds)]
defaults = script_settings(script_path)
for variant in variants:
    try:  # the script's own check of its settings (unknown keys with the nearest valid ones, types)
        configurator.configure(defaults, run_args(variant, first_seed)[1:])
    except SystemExit as e:
        training.fail(f"variant '{variant}': {str(e).removeprefix('error: ')}")

# seeds outermost: stopped halfway, the finished runs still compare every variant on the same seeds
runs = [(variant, seed) for seed in seed_list for variant in variants]
if dry_run:
    for variant, seed in runs:
        print(shlex.join(["python", *run_args(variant, seed)]))
    sys.exit(0)

# -----------------------------------------------------------------------------
# the runs, one at a time

stop_signal, child = None, None


def request_stop(signum, frame):
    """Ctrl-C reaches the whole foreground process group, the running child included; a SIGTERM to
    ablate alone does not, so pass it on: either way the child saves ckpt.pt at its next step."""
    global stop_signal
    stop_signal = signum
    if child is not None and child.poll() is None:
        child.send_signal(signal.SIGTERM)


def read_marker(directory):
    path = os.path.join(directory, MARKER)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_marker(directory, args, finished, copied_from=None):
    """The run's command, and every setting it resolved to when it started (a config file the command
    names may change later)."""
    record = {"command": args, "settings": as_json(run_settings(args)), "finished": finished}
    record |= {"copied_from": copied_from} if copied_from else {}
    with training.atomic_write(os.path.join(directory, MARKER)) as tmp_path, open(tmp_path, "w") as f:
        json.dump(record, f)


def run_settings(args):
    """The training script and every setting a command gives it but its out_dir; None for a command
    the script no longer accepts. The runs are seeded and deterministic, so two commands that agree
    here train the same model on the same batches."""
    try:
        settings = configurator.configure(script_settings(args[0]), args[1:])
    except SystemExit:
        return None
    settings.pop("out_dir")
    return os.path.basename(args[0]), settings


def as_json(value):
    """value as it reads back from JSON (tuples become lists), to compare with a marker's."""
    return json.loads(json.dumps(value))


def finished_twin(directory, args):
    """A finished run beside out_root (another ablation's, as every shipped GPT ablation's baseline is
    the same recipe) that started with the same settings as this one, or None. The settings its
    marker recorded count, not its command read again: the config file it names may have changed."""
    wanted = as_json(run_settings(args))
    if wanted is None:  # a command the script no longer accepts has no twin
        return None
    for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(out_root)), "*", "*", MARKER))):
        other = os.path.dirname(path)
        marker = read_marker(other)
        if (other != os.path.abspath(directory) and marker["finished"] and "copied_from" not in marker
                and marker.get("settings") == wanted):
            return other
    return None


signal.signal(signal.SIGINT, request_stop)
signal.signal(signal.SIGTERM, request_stop)
failed = []
for number, (variant, seed) in enumerate(runs, start=1):
    directory, args = run_dir(variant, seed), run_args(variant, seed)
    marker = read_marker(directory)
    if marker is not None and marker["command"] != args:
        training.fail(f"{directory} holds a run of another command (different settings); delete it, "
                      f"or pass --out_root=elsewhere")
    if marker is not None and marker["finished"]:
        print(f"[{number}/{len(runs)}] {variant} seed {seed}: finished before, skipped")
        continue
    if stop_signal is not None:
        break
    twin = finished_twin(directory, args) if marker is None else None
    if twin is not None:  # the same run, already trained: copy it rather than train it again
        shutil.copytree(twin, directory)
        write_marker(directory, args, finished=True, copied_from=twin)
        print(f"[{number}/{len(runs)}] {variant} seed {seed}: the same run as {os.path.relpath(twin)}, copied")
        continue
    resuming = os.path.exists(training.checkpoint_path(directory, "last"))
    print(f"[{number}/{len(runs)}] {variant} seed {seed}{' (resuming)' if resuming else ''}: {shlex.join(args)}",
          flush=True)
    write_marker(directory, args, finished=False)
    child = subprocess.Popen([sys.executable, *args])
    returncode = child.wait()
    child = None
    if stop_signal is not None:  # it exits 0 after saving, but its run is not finished
        break
    if returncode != 0:
        failed.append(f"{variant}-seed{seed} (exit code {returncode})")
    else:
        write_marker(directory, args, finished=True)
signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, Ctrl-C simply ends ablate
signal.signal(signal.SIGTERM, signal.SIG_DFL)
if stop_signal is not None:
    print(f"stopped ({signal.Signals(stop_signal).name}); run the same command again to resume: "
          f"finished runs are skipped, the stopped one continues from its ckpt.pt")
    sys.exit(128 + stop_signal)

# -----------------------------------------------------------------------------
# results: every finished run's numbers from its own files, then mean +- std over seeds per variant

def gpt_metrics(checkpoint, records):
    with torch.device("meta"):  # shapes only: no memory is allocated, no weights are drawn
        params = GPT(GPTConfig(**checkpoint["model_args"])).get_num_params(non_embedding=False)
    val_loss = min(r["val_loss"] for r in records)
    metrics = {"params": params, "val_loss": val_loss, "perplexity": math.exp(val_loss)}
    # A char dataset whose characters are all single bytes in UTF-8 (tiny Shakespeare is ASCII) has
    # one token per byte, so bits per byte = nats per token / ln 2. Any other tokenizer needs the
    # bytes of the text the val tokens spell: analysis/evaluate.py measures that, run by run.
    config = checkpoint["config"]
    meta_path = os.path.join(config["data_dir"], config["dataset"], "meta.json")
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("tokenizer") == "char" and all(len(ch.encode("utf-8")) == 1 for ch in meta["itos"]):
            metrics["bits_per_byte"] = val_loss / math.log(2)
    throughputs = [r["tokens_per_s"] for r in records if r["tokens_per_s"] is not None]
    metrics["tokens_per_s"] = statistics.median(throughputs) if throughputs else None
    metrics["wall_s"] = records[-1]["elapsed_s"]
    return metrics


def vit_metrics(checkpoint, records, directory):
    with torch.device("meta"):
        params = ViT(ViTConfig(**checkpoint["model_args"])).get_num_params()
    metrics = {"params": params, "top1": 100 * max(r["top1"] for r in records),
               "images_per_s": statistics.median(r["images_per_s"] for r in records),
               "wall_s": records[-1]["elapsed_s"]}
    test = common.read_test_json(directory)
    if test is not None:  # --val_images: the log's top1 is the held-out images'; best.pt read the test split once
        metrics["test_top1"] = 100 * test["top1"]
        metrics["wall_s"] = test["elapsed_s"]  # the test split's read included
    return metrics


def rl_metrics(records):
    """train_rl.py's run: its last held-out evaluation (the end of the run), where forgetting and
    collapse show too (val_loss, length, kl_to_start), not only the reward."""
    last = records[-1]
    metrics = {key: last[key] for key in ("reward", "nontrivial_rate", "valid_rate", "length", "kl_to_start", "val_loss")}
    metrics["nontrivial_rate"] *= 100
    metrics["valid_rate"] *= 100
    metrics["wall_s"] = last["elapsed_s"]
    return metrics


# (key, column header, number format, whether its spread over seeds is worth a ± (params never vary))
COLUMNS = {
    "gpt": [("params", "params", ",.0f", False), ("val_loss", "best val loss", ".4f", True),
            ("perplexity", "perplexity", ".3f", True), ("bits_per_byte", "bits/byte", ".4f", True),
            ("tokens_per_s", "tokens/s", ",.0f", True), ("wall_s", "wall time (s)", ",.1f", True)],
    "vit": [("params", "params", ",.0f", False), ("top1", "best top-1 (%)", ".2f", True),
            ("test_top1", "test top-1, read once (%)", ".2f", True), ("images_per_s", "images/s", ",.1f", True),
            ("wall_s", "wall time (s)", ",.1f", True)],
    "rl": [("reward", "held-out reward", ".3f", True), ("nontrivial_rate", "non-trivial (%)", ".1f", True),
           ("valid_rate", "parses / compiles (%)", ".1f", True), ("length", "length (tokens)", ".1f", True),
           ("kl_to_start", "KL to start", ".3f", True), ("val_loss", "LM loss", ".4f", True),
           ("wall_s", "wall time (s)", ",.1f", True)],
}


def read_log(directory):
    with open(os.path.join(directory, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def run_metrics(directory):
    # best.pt: the settings without the optimizer state; ckpt.pt where no evaluation beat the first
    best = os.path.exists(training.checkpoint_path(directory, "best"))
    checkpoint, records = training.load_trained(directory, "best" if best else "last"), read_log(directory)
    if "nontrivial_rate" in records[-1]:
        return "rl", rl_metrics(records)
    if checkpoint["kind"] == "gpt":
        return "gpt", gpt_metrics(checkpoint, records)
    return "vit", vit_metrics(checkpoint, records, directory)


CURVES = {"gpt": ("iter", "val_loss", 1, "iteration", "val loss (nats per token)"),  # x, y, y's scale, labels
          "vit": ("epoch", "top1", 100, "epoch", "test top-1 (%)"),
          "rl": ("iter", "nontrivial_rate", 100, "RL step", "held-out non-trivial rate (%)")}


def curve(variant):
    """The variant's learning curve: at each evaluation every seed reached, the mean over seeds and
    the lowest and highest seed."""
    x_key, y_key, scale, *_ = CURVES[kind]
    per_x = {}
    for seed in results[variant]["runs"]:
        for record in read_log(run_dir(variant, seed)):
            if record.get(y_key) is not None:
                per_x.setdefault(record[x_key], []).append(record[y_key] * scale)
    xs = sorted(x for x, ys in per_x.items() if len(ys) == len(results[variant]["runs"]))
    return {"x": xs, "mean": [statistics.mean(per_x[x]) for x in xs],
            "low": [min(per_x[x]) for x in xs], "high": [max(per_x[x]) for x in xs]}


results, kind = {}, None
for variant in variants:
    per_seed = {}
    for seed in seed_list:
        marker = read_marker(run_dir(variant, seed))
        if marker is not None and marker["finished"]:
            kind, per_seed[seed] = run_metrics(run_dir(variant, seed))
    results[variant] = {"overrides": variants[variant], "runs": per_seed, "mean": {}, "std": {}, "diff": {}}
if kind is None:
    training.fail(f"no run finished: {'; '.join(failed)}; see their output above")
columns = [c for c in COLUMNS[kind] if any(c[0] in m for r in results.values() for m in r["runs"].values())]
for result in results.values():
    for key, *_ in columns:
        values = [m[key] for m in result["runs"].values() if m.get(key) is not None]
        if values:
            result["mean"][key] = statistics.mean(values)
            result["std"][key] = statistics.stdev(values) if len(values) > 1 else None  # n - 1
for result in results.values():
    for key in result["mean"].keys() & results[baseline]["mean"].keys():
        result["diff"][key] = result["mean"][key] - results[baseline]["mean"][key]
for variant, result in results.items():
    result["curve"] = curve(variant)


def cell(variant, key, fmt, spread):
    """mean ± std (difference of the mean to the baseline's)"""
    result = results[variant]
    if key not in result["mean"]:
        return "-"
    text = f"{result['mean'][key]:{fmt}}"
    if spread and result["std"][key] is not None:
        text += f" ± {result['std'][key]:{fmt}}"
    if variant != baseline and key in result["diff"]:
        text += f" ({result['diff'][key]:+{fmt}})"
    return text


command = shlex.join(["python", *sys.argv])
notes = {
    "gpt": "best val loss: the lowest `val_loss` in the run's log.jsonl; perplexity: exp(best val loss); "
           + ("bits/byte: best val loss / ln 2 (each token of this dataset is one byte); "
              if any(c[0] == "bits_per_byte" for c in columns) else
              "bits/byte: left out, as this dataset's tokens are not single bytes (analysis/evaluate.py "
              "measures it run by run); ")
           + "tokens/s: the median of log.jsonl's `tokens_per_s` (a busy moment on the machine moves it less than the mean)",
    "vit": "best top-1: the highest `top1` in the run's log.jsonl, on the test split, or with `val_images` on the "
           "held-out training images; test top-1, read once (runs with `val_images`): the run's test.json, best.pt's "
           "accuracy on the test split at the end; images/s: the median of log.jsonl's `images_per_s`",
    "rl": "every column is the run's last held-out evaluation in log.jsonl (the end of the run): the mean reward, "
          "the non-trivial and parse / compile rates, the completion length, the KL to the starting model "
          "(nats per token) and the held-out LM loss",
}[kind]
lines = [
    f"# Ablation: {name}", "", "```", command, "```", "",
    f"{len(variants)} variants x {seeds} seeds ({', '.join(map(str, seed_list))}) of `{ablation['script']}"
    f"{' ' + ablation['base_config'] if base_config else ''}`, "
    f"each in `{out_root}/VARIANT-seedS/` (every run's exact command: results.json). Each cell: the mean over "
    f"seeds ± the standard deviation (n - 1; none for a single seed), and in parentheses the mean's "
    f"difference to the baseline `{baseline}`'s. {notes}; wall time: `elapsed_s` of the run's last "
    f"log record, or of its test.json (training and evaluations, summed over resumes).", "",
]
table_start = len(lines)
lines += [
    "| variant | overrides | seeds | " + " | ".join(header for _, header, _, _ in columns) + " |",
    "|---|---|---:|" + "---:|" * len(columns),
]
for variant, result in results.items():
    overrides = ", ".join(f"{k}={v!r}" for k, v in result["overrides"].items()) or "(none)"
    lines.append(f"| {variant}{' (baseline)' if variant == baseline else ''} | {overrides} | {len(result['runs'])} | "
                 + " | ".join(cell(variant, key, fmt, spread) for key, _, fmt, spread in columns) + " |")
missing = [f"{variant}-seed{seed}" for variant, seed in runs if seed not in results[variant]["runs"]]
copied = {f"{v}-seed{s}": read_marker(run_dir(v, s)).get("copied_from") for v, s in runs if s in results[v]["runs"]}
if any(copied.values()):
    lines += ["", "Copied from a finished run with the same settings (not trained again): "
              + ", ".join(f"{run} from {os.path.relpath(source)}" for run, source in copied.items() if source) + "."]
if missing:
    lines += ["", f"Not finished (run the command again to retry): {', '.join(missing)}."]
os.makedirs(out_root, exist_ok=True)
with training.atomic_write(os.path.join(out_root, "results.md")) as tmp_path, open(tmp_path, "w") as f:
    f.write("\n".join(lines) + "\n")
with training.atomic_write(os.path.join(out_root, "results.json")) as tmp_path, open(tmp_path, "w") as f:
    json.dump({"command": command, "ablation": ablation_path, "kind": kind, "baseline": baseline, "seeds": seed_list,
               "runs": {f"{v}-seed{s}": shlex.join(["python", *run_args(v, s)]) for v, s in runs},
               "variants": results}, f, indent=1)
print("\n".join(lines[table_start:]))

# results.png: every variant's mean curve over its seeds, the lowest to the highest seed shaded; a
# bar each where every run evaluated once (a one-epoch ViT)
x_key, y_key, _, x_label, y_label = CURVES[kind]
if any("test_top1" in m for result in results.values() for m in result["runs"].values()):
    y_label = "held-out top-1 (%)"  # the epochs' evaluations were of the held-out training images
shown = {variant: result["curve"] for variant, result in results.items() if result["curve"]["x"]}
bars = max(len(points["x"]) for points in shown.values()) == 1
fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
if bars:
    means = [points["mean"][0] for points in shown.values()]
    lows, highs = [points["low"][0] for points in shown.values()], [points["high"][0] for points in shown.values()]
    ax.barh(list(shown), means, xerr=[[m - lo for m, lo in zip(means, lows)], [hi - m for m, hi in zip(means, highs)]],
            color="tab:blue", alpha=0.6)
    ax.invert_yaxis()  # the baseline, first in the config, on top
    ax.set_xlim(min(lows) - 0.2 * (max(highs) - min(lows) or 1.0), None)
    ax.set_xlabel(f"{y_label} after {x_label} {next(iter(shown.values()))['x'][0]}")
else:
    for i, (variant, points) in enumerate(shown.items()):
        colour = plt.get_cmap("tab10").colors[i % 10]
        ax.plot(points["x"], points["mean"], color=colour, label=variant + (" (baseline)" if variant == baseline else ""))
        ax.fill_between(points["x"], points["low"], points["high"], color=colour, alpha=0.2, linewidth=0)
    # a language model's first evaluations (loss ~ ln(vocab)) would squash the differences that
    # matter: the y axis covers the last 70% of training
    late = [y for points in shown.values() for x, low, high in zip(points["x"], points["low"], points["high"])
            for y in (low, high) if x >= 0.3 * points["x"][-1]]
    margin = 0.05 * (max(late) - min(late) or 1.0)
    ax.set_ylim(min(late) - margin, max(late) + margin)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.legend(fontsize="small")
ax.set_title(f"Ablation: {name} (mean over seeds; {'bars' if bars else 'shaded'}: lowest to highest seed)")
ax.grid(True, alpha=0.3)
common.save_figure(fig, os.path.join(out_root, "results.png"))
print(f"wrote {os.path.join(out_root, 'results.md')}, results.json and results.png")

# the comparison page of every finished run, by analysis/compare.py (written separately)
finished_dirs = [run_dir(v, s) for v, s in runs if s in results[v]["runs"]]
page = os.path.join(out_root, "compare.html")
returncode = subprocess.run([sys.executable, os.path.join(REPO, "analysis", "compare.py"), *finished_dirs,
                             f"--out={page}"]).returncode  # it says what it wrote
if returncode != 0:
    print(f"analysis/compare.py failed (exit code {returncode}): no comparison page")
if failed:
    training.fail(f"{len(failed)} run(s) failed: {', '.join(failed)}; see their output above; "
                  f"the same command again retries them")
