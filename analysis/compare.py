"""
Compare training runs side by side: their loss curves against iterations, tokens seen, training
FLOPs and wall time, the learning rate, throughput (and a ViT's top-1), the settings that
differ between them and a summary table, on one HTML page that opens offline (the pictures are
inside it).

    python analysis/compare.py out-a out-b
    python analysis/compare.py out-a out-b out-c --out=reports/abc.html --title="RoPE vs learned positions"

Each argument is a run's out_dir, all from train_gpt.py or all from train_vit.py. Its log.jsonl gives
the curves, its best.pt (else ckpt.pt) the settings and the model's size, and its eval.json (from
analysis/evaluate.py), when there is one, the summary's loss and perplexity / top-1; else a ViT's
test.json (train_vit.py --val_images: best.pt's one read of the test split). Writes --out and
next to it one PNG per plot, named <out without .html>-<plot>.png.
"""

import base64
import html
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo's modules

import matplotlib
matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, LogLocator, MaxNLocator, NullFormatter, PercentFormatter
import torch

import configurator
import training
from analysis import common
from model_gpt import GPT, GPTConfig
from model_vit import ViT, ViTConfig

# -----------------------------------------------------------------------------
out = "out-compare/compare.html"  # the HTML page; the PNGs go next to it
title = "tinyformers: run comparison"
# -----------------------------------------------------------------------------
# run directories are the positional arguments; --key=value (or --key value) are settings
def is_run_dir(i):
    return not sys.argv[i].startswith("-") and not (sys.argv[i - 1].startswith("--") and "=" not in sys.argv[i - 1])


config = configurator.configure(globals(), [arg for i, arg in enumerate(sys.argv) if i and not is_run_dir(i)])
globals().update(config)
run_dirs = [arg for i, arg in enumerate(sys.argv) if i and is_run_dir(i)]
if not run_dirs:
    training.fail("no run directories given; usage: python analysis/compare.py OUT_DIR [OUT_DIR ...] [--out=compare.html]")
if os.path.isdir(out):
    training.fail(f"--out={out} is a directory; name the HTML file to write, e.g. --out={os.path.join(out, 'compare.html')}")
out_stem = os.path.splitext(out)[0]

MODEL_NAMES = {"gpt": "GPT", "vit": "ViT"}
notes = []  # what the reader should know about the data: printed, and listed on the page


def note(message):
    print(f"note: {message}")
    notes.append(message)


def read_log(path):
    """
    The records of a log.jsonl and the model kind that wrote them. A record whose iteration (ViT: step)
    is not past the previous one's means the out_dir was trained again from there (from scratch, or
    resumed from an older ckpt.pt): it replaces the records from that iteration on.
    """
    records, kinds, replaced = [], set(), 0
    with open(path) as f:
        lines = f.readlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            training.fail(f"{path} line {n} is not JSON (a run killed mid-write leaves half a line); "
                          f"delete that line and run again")
        if not isinstance(record, dict) or "val_loss" not in record or not ("iter" in record or "step" in record):
            training.fail(f"{path} line {n} is not a training log record (it needs iter or step, and "
                          f"val_loss); pass the out_dir of a train_gpt.py or train_vit.py run")
        kinds.add("gpt" if "iter" in record else "vit")
        step = record.get("iter", record.get("step"))
        while records and records[-1].get("iter", records[-1].get("step")) >= step:
            records.pop()
            replaced += 1
        records.append(record)
    if not records:
        training.fail(f"{path} is empty: the run has not evaluated yet; wait for its first evaluation")
    if len(kinds) > 1:
        training.fail(f"{path} mixes GPT and ViT records; give each run its own out_dir")
    if replaced:
        note(f"{path}: {replaced} record(s) dropped, replaced by a later run in the same out_dir "
             f"(trained again from an earlier iteration)")
    return records, kinds.pop()


# -----------------------------------------------------------------------------
# read every run: its log, its settings and model from a checkpoint, its eval.json and test.json
runs = []
for run_dir in run_dirs:
    if not os.path.isdir(run_dir):
        training.fail(f"{run_dir} does not exist; pass the out_dir of a training run (e.g. out-shakespeare-char)")
    log_path = os.path.join(run_dir, "log.jsonl")
    if not os.path.isfile(log_path):
        training.fail(f"{run_dir} has no log.jsonl; pass the out_dir of a train_gpt.py or train_vit.py run "
                      f"(it writes log.jsonl at its first evaluation)")
    records, kind = read_log(log_path)
    base_name = os.path.basename(os.path.normpath(os.path.abspath(run_dir)))
    name, n = base_name, 2
    while name in [run["name"] for run in runs]:  # two out_dirs with the same basename
        name, n = f"{base_name}-{n}", n + 1
    run = {"name": name, "dir": run_dir, "kind": kind, "records": records,
           "config": None, "params": None, "eval": None, "test": None}

    # best.pt, else ckpt.pt: only the settings are read, mmap leaves the weights on disk
    paths = [training.checkpoint_path(run_dir, which) for which in ("best", "last")]
    ckpt_path = next((path for path in paths if os.path.isfile(path)), None)
    if ckpt_path is None:
        note(f"{name}: no best.pt or ckpt.pt, so its settings and size are unknown")
    else:
        try:
            checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:
            training.fail(f"{ckpt_path} is not a loadable checkpoint ({type(e).__name__}); delete it "
                          f"(or move it away) to compare the run from its log alone")
        if not isinstance(checkpoint, dict) or checkpoint.get("kind") != kind:
            training.fail(f"{ckpt_path} is not a {MODEL_NAMES[kind]} checkpoint, but {log_path} is a "
                          f"{MODEL_NAMES[kind]}'s log; is this file from another run?")
        run["config"] = checkpoint.get("config", {})
        # the model's shape only, on the meta device: no memory, however large the model
        try:
            with torch.device("meta"):
                if kind == "gpt":
                    model = GPT(GPTConfig(**checkpoint["model_args"]))
                    run["params"], flops_per_example = model.get_num_params(), model.estimate_flops_per_token()
                else:
                    model = ViT(ViTConfig(**checkpoint["model_args"]))
                    run["params"], flops_per_example = model.get_num_params(), model.estimate_flops_per_image()
        except (KeyError, TypeError, ValueError) as e:  # no model_args, or ones this code's models don't take
            training.fail(f"{ckpt_path} has no model_args that model_{kind}.py can build ({type(e).__name__}: {e}); "
                          f"move it away to compare the run from its log alone")
        del checkpoint, model
        # logs written before `flops` was logged: tokens (images) seen x training FLOPs per token (image)
        seen_key = "tokens_seen" if kind == "gpt" else "images_seen"
        for record in records:
            if "flops" not in record and seen_key in record:
                record["flops"] = record[seen_key] * flops_per_example

    eval_path = os.path.join(run_dir, "eval.json")
    if os.path.isfile(eval_path):
        try:
            with open(eval_path) as f:
                run["eval"] = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError):
            training.fail(f"{eval_path} is not JSON; write it again with python analysis/evaluate.py "
                          f"--out_dir={run_dir}, or delete it")
        if not isinstance(run["eval"], dict) or run["eval"].get("kind") != kind:
            training.fail(f"{eval_path} does not evaluate a {MODEL_NAMES[kind]}; write it again with "
                          f"python analysis/evaluate.py --out_dir={run_dir}, or delete it")
    if kind == "vit":
        run["test"] = common.read_test_json(run_dir)
    runs.append(run)

kinds = {run["kind"] for run in runs}
if len(kinds) > 1:
    gpts = ", ".join(run["name"] for run in runs if run["kind"] == "gpt")
    vits = ", ".join(run["name"] for run in runs if run["kind"] == "vit")
    training.fail(f"GPT runs ({gpts}) and ViT runs ({vits}) cannot share plots; compare each kind on its own")
kind = kinds.pop()
model_name = MODEL_NAMES[kind]
if kind == "gpt":
    step_key, step_label, seen_key, unit = "iter", "iteration", "tokens_seen", "token"
else:
    step_key, step_label, seen_key, unit = "step", "optimizer step", "images_seen", "image"
speed_key = f"{unit}s_per_s"
old_logs = [run["name"] for run in runs if any(speed_key not in record for record in run["records"])]
if old_logs:
    note(f"{', '.join(old_logs)}: log.jsonl predates {speed_key}: not in the throughput plot")

# -----------------------------------------------------------------------------
# plots: one PNG each, val solid and train dashed, one colour per run
colours = plt.get_cmap("tab10").colors
markers = "osD^v<>ph*"  # hollow, one shape per run: runs whose curves coincide still show both
plots = []  # (PNG path, title)


def plot(name, plot_title, x_key, y_keys, xlabel, ylabel, x_scale=1.0, log_x=False, x_si=False, percent=False):
    """Plot y_keys[0] (solid) and y_keys[1] (dashed) against x_key for every run, skipping records
    that lack either value, and write <out stem>-<name>.png; no PNG when no run has the values."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    handles, all_x = [], []
    for i, run in enumerate(runs):
        drawn = False
        marker = markers[i % len(markers)] if len(run["records"]) <= 40 else None  # none on a dense curve
        for y_key, style in zip(y_keys, ("-", "--")):
            points = [(record[x_key] / x_scale, record[y_key]) for record in run["records"]
                      if record.get(x_key) is not None and record.get(y_key) is not None
                      and (record[x_key] > 0 or not log_x)]
            if points:
                xs, ys = zip(*points)
                all_x += xs
                ax.plot(xs, ys, style, color=colours[i % len(colours)], marker=marker, markersize=5,
                        markerfacecolor="none", clip_on=not percent)  # a 100% accuracy sits on the top edge
                drawn = True
        if drawn:
            handles.append(Line2D([], [], color=colours[i % len(colours)], label=run["name"], marker=marker,
                                  markerfacecolor="none"))
    if not handles:
        plt.close(fig)
        note(f"no run's log has {' or '.join(y_keys)} against {x_key}: no {name} plot")
        return
    if len(y_keys) == 2:
        handles += [Line2D([], [], color="grey", linestyle="-", label="val"),
                    Line2D([], [], color="grey", linestyle="--", label="train")]
    if log_x:
        ax.set_xscale("log")
        low, high = ax.get_xlim()
        if high / low < 300:  # a short range (under 2.5 decades): label 1, 2 and 5 x 10^n, not only 10^n
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(NullFormatter())  # matplotlib's minor labels crowd each other
    elif all(float(x).is_integer() for x in all_x):  # epochs, steps: no tick at epoch 1.5
        ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))  # as matplotlib's default
    if x_si or log_x:
        ax.xaxis.set_major_formatter(EngFormatter())  # 200k, not 200000
    if percent:  # an accuracy: never an axis above 100%, even when every point is at 100%
        low, high = ax.get_ylim()
        ax.set_ylim(max(low, 0.0), min(high, 1.0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(plot_title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(handles=handles, fontsize="small")
    path = f"{out_stem}-{name}.png"
    common.save_figure(fig, path)
    plots.append((path, plot_title))


longest = max(record.get("elapsed_s") or 0 for run in runs for record in run["records"])
time_unit, time_scale = ("h", 3600) if longest > 2 * 3600 else ("min", 60) if longest > 120 else ("s", 1)
loss_label = f"cross-entropy loss (nats per {unit})"
losses = ("val_loss", "train_loss")
plot("loss-iter", f"Loss per {step_label}", step_key, losses, step_label, loss_label)
plot("loss-seen", f"Loss per {unit} seen", seen_key, losses, f"training {unit}s seen", loss_label, x_si=True)
plot("loss-flops", "Loss per training FLOP (compute-normalised)", "flops", losses,
     "training FLOPs (estimated, log scale)", loss_label, log_x=True)
plot("loss-time", "Loss against wall time", "elapsed_s", losses, f"wall time ({time_unit}, evaluations included)",
     loss_label, x_scale=time_scale)
plot("lr", f"Learning rate per {step_label}", step_key, ("lr",), step_label, "learning rate")
plot("throughput", f"Training throughput per {step_label}", step_key, (speed_key,), step_label,
     f"{unit}s per second (since the previous evaluation)")
if any("nontrivial_rate" in record for run in runs for record in run["records"]):  # train_rl.py's runs
    plot("rl-nontrivial", "Held-out non-trivial rate per RL step", "iter", ("nontrivial_rate",), "RL step",
         "non-trivial and parses / compiles", percent=True)
    plot("rl-reward", "Held-out reward per RL step", "iter", ("reward",), "RL step", "mean reward per completion")
    plot("rl-length", "Completion length per RL step", "iter", ("length",), "RL step", "tokens per completion")
    plot("rl-kl", "KL to the starting model per RL step", "iter", ("kl_to_start",), "RL step", "nats per token")
    if any("correct_rate" in record for run in runs for record in run["records"]):  # with execution_reward
        plot("rl-correct", "Held-out correct kernels per RL step", "iter", ("correct_rate",), "RL step",
             "correct on KernelBench's check", percent=True)
if kind == "vit":
    # with --val_images the epochs' evaluations were of held-out training images, not of the test split
    held_out = [bool((run["config"] or {}).get("val_images")) for run in runs]
    split = "held-out" if all(held_out) else "test" if not any(held_out) else "held-out (val_images) or test"
    plot("top1", f"{split.capitalize()} top-1 accuracy per epoch", "epoch", ("top1",), "epoch",
         f"{split} top-1 accuracy", percent=True)

# -----------------------------------------------------------------------------
# tables: the summary, and the settings that differ


def si(x):
    """1234567 -> '1.23M'."""
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"


def duration(seconds):
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


summary_header = ["run", "model", "params", "best val loss", "perplexity" if kind == "gpt" else "best top-1",
                  "loss and " + ("perplexity" if kind == "gpt" else "top-1") + " from",
                  f"{unit}s seen", "training FLOPs", "wall time"]
summary_rows = []
for run in runs:
    records, evaluation, test = run["records"], run["eval"], run["test"]
    last = records[-1]
    finite = [record["val_loss"] for record in records if record["val_loss"] is not None and math.isfinite(record["val_loss"])]
    if evaluation is not None:
        size = evaluation.get("tokens", evaluation.get("images"))
        source = f"eval.json ({evaluation.get('split')} split, {size:,} {unit}s)" if size else "eval.json"
        loss = evaluation.get("loss")
        score = evaluation.get("perplexity") if kind == "gpt" else evaluation.get("top1")
    elif test is not None:
        source = f"test.json (test split read once by best.pt, {test.get('images', 0):,} images)"
        loss, score = test["loss"], test["top1"]
    else:
        source = "log.jsonl (best evaluation)"
        loss = min(finite) if finite else None
        if kind == "gpt":
            score = math.exp(loss) if loss is not None else None
        else:
            score = max((record["top1"] for record in records if record.get("top1") is not None), default=None)
    score_text = "—" if score is None else f"{score:.2f}" if kind == "gpt" else f"{score:.2%}"
    summary_rows.append([
        run["name"], model_name, "—" if run["params"] is None else si(run["params"]),
        "—" if loss is None else f"{loss:.4f}", score_text, source,
        si(last[seen_key]) if last.get(seen_key) is not None else "—",
        f"{last['flops']:.3g}" if last.get("flops") is not None else "—",
        duration(test["elapsed_s"]) if test is not None  # the test split's read included
        else duration(last["elapsed_s"]) if last.get("elapsed_s") is not None else "—"])

configured = [run for run in runs if run["config"] is not None]
all_keys = sorted(set().union(*(run["config"] for run in configured)))
diff_rows = []
for key in all_keys:
    values = [str(run["config"][key]) if key in run["config"] else "—" for run in configured]
    if len(set(values)) > 1:
        diff_rows.append([key, *values])
diff_header = ["setting", *(run["name"] for run in configured)]
if len(configured) < 2:
    diff_note = "Fewer than two runs have a checkpoint with their settings: nothing to compare."
elif not diff_rows:
    diff_note = "All settings are the same."
else:
    diff_note = f"{len(diff_rows)} of {len(all_keys)} settings differ."
    if any("—" in row[1:] for row in diff_rows):
        diff_note += " — = the run has no such setting."
if len(configured) < len(runs):
    diff_note += " Runs without best.pt or ckpt.pt are left out."


def text_table(header, rows):
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def html_table(header, rows):
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


print(f"\n{title}: {len(runs)} {model_name} runs\n")
print(text_table(summary_header, summary_rows))
print(f"\nsettings that differ: {diff_note}")
if diff_rows:
    print(text_table(diff_header, diff_rows))

# -----------------------------------------------------------------------------
# the page: one HTML file, the PNGs inside it as data: URIs, so it opens anywhere, offline
figures = []
for path, plot_title in plots:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    figures.append(f'<figure><img alt="{html.escape(plot_title)}" src="data:image/png;base64,{data}">'
                   f"<figcaption>{html.escape(os.path.basename(path))}</figcaption></figure>")
run_list = "".join(f"<li><b>{html.escape(run['name'])}</b>: {html.escape(os.path.abspath(run['dir']))}</li>" for run in runs)
note_list = "".join(f"<li>{html.escape(message)}</li>" for message in notes)
style = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f0f0f0; }
tbody tr:nth-child(even) { background: #fafafa; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(480px, 100%), 1fr)); gap: 1em; }
figure { margin: 0; min-width: 0; }
img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
"""
page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{style}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>{len(runs)} {model_name} runs:</p>
<ul>{run_list}</ul>
<h2>Summary</h2>
<p>Parameters as the training script counts them{" (without the learned position table)" if kind == "gpt" else ""};
wall time as the log's last record has it (or a ViT run's test.json, after its test read), evaluations and
resumed runs' earlier time included.</p>
{html_table(summary_header, summary_rows)}
<h2>Settings that differ</h2>
<p>{html.escape(diff_note)}</p>
{html_table(diff_header, diff_rows) if diff_rows else ""}
<h2>Curves</h2>
<p>Validation loss solid, training loss dashed, one colour per run. Training FLOPs are the model's
estimate (6 per weight per {unit}, plus attention) times the {unit}s seen.</p>
<div class="plots">{"".join(figures)}</div>
{f"<h2>Notes</h2><ul>{note_list}</ul>" if notes else ""}
</body>
</html>
"""
with training.atomic_write(out) as tmp_path, open(tmp_path, "w", encoding="utf-8") as f:
    f.write(page)
print(f"\nwrote {out}")
