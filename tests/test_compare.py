"""
analysis/compare.py: runs written by hand (a log.jsonl and a best.pt of a tiny model, no training),
compared into PNGs and one self-contained HTML page.
"""

import base64
import json
import math
import os
import re
import runpy
import subprocess
import sys
from dataclasses import asdict

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch

from model_gpt import GPT, GPTConfig
from model_vit import ViT, ViTConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "analysis", "compare.py")
GPT_ARGS = dict(n_layer=1, n_head=2, n_embd=8, block_size=4, vocab_size=16, bias=False)
VIT_ARGS = dict(img_size=8, patch_size=4, n_classes=3, n_layer=1, n_head=2, n_embd=8)
GPT_PLOTS = {"loss-iter", "loss-seen", "loss-flops", "loss-time", "lr", "throughput"}


def gpt_records(n, new_log=True, loss_offset=0.0):
    """n evaluations 100 iterations apart, 1000 tokens per iteration; new_log: with flops and tokens_per_s."""
    records = []
    for i in range(n):
        record = {"iter": 100 * i, "train_loss": 3.0 - 0.2 * i + loss_offset, "val_loss": 3.1 - 0.2 * i + loss_offset,
                  "lr": 1e-3, "tokens_seen": 100_000 * i, "elapsed_s": 10.0 * i + 1}
        if new_log:
            record.update(flops=record["tokens_seen"] * 1e6, tokens_per_s=None if i == 0 else 10_000.0)
        records.append(record)
    return records


def write_run(out_dir, kind, records, config, model_args):
    """A run's out_dir as the training scripts leave it: log.jsonl and best.pt."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "log.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    model = GPT(GPTConfig(**model_args)) if kind == "gpt" else ViT(ViTConfig(**model_args))
    torch.save({"kind": kind, "model": model.state_dict(), "model_args": asdict(model.config), "config": config},
               out_dir / "best.pt")
    return str(out_dir)


def compare(monkeypatch, *args):
    """Run compare.py in this process (as `python analysis/compare.py ARGS` would) and return its globals."""
    monkeypatch.setattr(sys, "argv", [SCRIPT, *args])
    return runpy.run_path(SCRIPT, run_name="__main__")


@pytest.fixture(scope="module")
def gpt_report(tmp_path_factory):
    """Two GPT runs, one with a new log and one with an old log (no flops, no throughput), compared
    by the script from the command line, from the repo root."""
    root = tmp_path_factory.mktemp("compare")
    config = {"out_dir": "a", "learning_rate": 1e-3, "n_layer": 1}
    a = write_run(root / "runs" / "a", "gpt", gpt_records(5), config, GPT_ARGS)
    b = write_run(root / "runs" / "b", "gpt", gpt_records(4, new_log=False, loss_offset=0.1),
                  {**config, "out_dir": "b"}, {**GPT_ARGS, "pos_encoding": "rope"})
    out = root / "report" / "cmp.html"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "analysis/compare.py", a, b, f"--out={out}"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_html_holds_one_inline_png_per_plot_and_nothing_from_outside(gpt_report):
    out, _ = gpt_report
    page = out.read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == page.count("<img") == len(GPT_PLOTS)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page


def test_every_png_reads_back_and_is_small(gpt_report):
    out, _ = gpt_report
    pngs = sorted(name for name in os.listdir(out.parent) if name.endswith(".png"))
    assert pngs == sorted(f"cmp-{plot}.png" for plot in GPT_PLOTS)
    for name in pngs:
        image = plt.imread(out.parent / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
        assert os.path.getsize(out.parent / name) < 150_000


def test_summary_is_printed_with_each_run(gpt_report):
    _, stdout = gpt_report
    row_a = next(line for line in stdout.splitlines() if line.startswith("a "))
    # run a: best val loss 3.1 - 0.8 = 2.3 at the last of 5 evaluations, perplexity e^2.3, 400k tokens
    assert "2.3000" in row_a and f"{math.exp(2.3):.2f}" in row_a and "400k" in row_a and "log.jsonl" in row_a


def test_config_diff_lists_exactly_the_keys_that_differ(tmp_path, monkeypatch):
    same = {"learning_rate": 1e-3, "n_layer": 1, "dataset": "shakespeare_char"}
    a = write_run(tmp_path / "a", "gpt", gpt_records(2), {**same, "pos_encoding": "learned", "qk_norm": True}, GPT_ARGS)
    b = write_run(tmp_path / "b", "gpt", gpt_records(2), {**same, "pos_encoding": "rope"}, GPT_ARGS)
    result = compare(monkeypatch, a, b, f"--out={tmp_path / 'c.html'}")
    assert result["diff_header"] == ["setting", "a", "b"]
    assert result["diff_rows"] == [["pos_encoding", "learned", "rope"], ["qk_norm", "True", "—"]]
    table = (tmp_path / "c.html").read_text().split("Settings that differ")[1]
    assert re.findall(r"<tr><td>([^<]*)</td>", table) == ["pos_encoding", "qk_norm"]


def test_flops_of_an_old_log_are_tokens_seen_times_flops_per_token(tmp_path, monkeypatch):
    old = write_run(tmp_path / "old", "gpt", gpt_records(3, new_log=False), {}, GPT_ARGS)
    result = compare(monkeypatch, old, f"--out={tmp_path / 'c.html'}")
    # by hand: weights a token multiplies, the position table left out: wte 16*8 (also the tied head),
    # per block ln_1 8, c_attn 8*24, attn c_proj 8*8, ln_2 8, c_fc 8*32, mlp c_proj 32*8; ln_f 8
    matmul_params = 16 * 8 + (8 + 8 * 24 + 8 * 8 + 8 + 8 * 32 + 32 * 8) + 8
    per_token = 6 * matmul_params + 12 * 1 * 8 * 4  # + attention: 12 * n_layer * n_embd * block_size
    assert per_token == 5904
    assert [record["flops"] for record in result["runs"][0]["records"]] == [0, 100_000 * per_token, 200_000 * per_token]


def test_vit_runs_get_a_top1_plot_and_their_best_top1(tmp_path, monkeypatch):
    records = [{"epoch": e, "step": 10 * e, "train_loss": 2.0 - 0.1 * e, "val_loss": 1.9 - 0.1 * e,
                "top1": [0.3, 0.5, 0.45][e - 1], "top5": 1.0, "lr": 1e-3, "images_seen": 1280 * e,
                "elapsed_s": 5.0 * e} for e in (1, 2, 3)]  # an old ViT log: no flops, no images_per_s
    a = write_run(tmp_path / "vit-a", "vit", records, {"epochs": 3}, VIT_ARGS)
    b = write_run(tmp_path / "vit-b", "vit", records[:2], {"epochs": 2}, VIT_ARGS)
    result = compare(monkeypatch, a, b, f"--out={tmp_path / 'v.html'}")
    assert [os.path.basename(path) for path, _ in result["plots"]] == [
        "v-loss-iter.png", "v-loss-seen.png", "v-loss-flops.png", "v-loss-time.png", "v-lr.png", "v-top1.png"]
    assert [row[4] for row in result["summary_rows"]] == ["50.00%", "50.00%"]
    assert result["runs"][0]["records"][2]["flops"] == 3840 * ViT(ViTConfig(**VIT_ARGS)).estimate_flops_per_image()


def test_rl_runs_get_their_held_out_plots_and_a_correct_plot_when_one_ran_kernels(tmp_path, monkeypatch):
    records = [{"iter": 10 * i, "val_loss": 2.0 + 0.01 * i, "nontrivial_rate": 0.2 * i, "reward": 0.3 * i, "length": 90 - 10 * i,
                "kl_to_start": 0.1 * i, "lr": 1e-4, "tokens_seen": 6400 * i, "elapsed_s": 60.0 * i + 5} for i in range(3)]
    compiled = write_run(tmp_path / "rl-compile", "gpt", records, {"language": "cuda"}, GPT_ARGS)
    executed = write_run(tmp_path / "rl-execution", "gpt", [{**r, "correct_rate": 0.1 * i, "fast_1": 0.0}
                                                            for i, r in enumerate(records)],
                         {"language": "cuda", "execution_reward": True}, GPT_ARGS)
    names = lambda result: {os.path.basename(path)[2:-4] for path, _ in result["plots"]}
    alone = names(compare(monkeypatch, compiled, f"--out={tmp_path / 'a.html'}"))
    assert {"rl-nontrivial", "rl-reward", "rl-length", "rl-kl"} <= alone and "rl-correct" not in alone
    assert "rl-correct" in names(compare(monkeypatch, compiled, executed, f"--out={tmp_path / 'b.html'}"))


def test_held_out_vit_runs_take_the_summary_from_test_json_and_label_their_curve_held_out(tmp_path, monkeypatch):
    records = [{"epoch": e, "step": 10 * e, "train_loss": 2.0, "val_loss": 1.9, "top1": [0.3, 0.5][e - 1], "top5": 1.0,
                "lr": 1e-3, "images_seen": 1280 * e, "elapsed_s": 5.0 * e} for e in (1, 2)]
    a = write_run(tmp_path / "a", "vit", records, {"val_images": 64}, VIT_ARGS)
    (tmp_path / "a" / "test.json").write_text(json.dumps(
        {"checkpoint": "best.pt", "epoch": 2, "images": 640, "loss": 1.25, "top1": 0.4375, "top5": 1.0, "elapsed_s": 131.0}))
    result = compare(monkeypatch, a, f"--out={tmp_path / 'c.html'}")
    row = result["summary_rows"][0]
    assert row[3:6] == ["1.2500", "43.75%", "test.json (test split read once by best.pt, 640 images)"]
    assert row[-1] == "2m 11s"  # test.json's elapsed_s: the run's end, after its test read
    assert result["split"] == "held-out" and "Held-out top-1 accuracy per epoch" in (tmp_path / "c.html").read_text()


def test_eval_json_figures_replace_the_logs_in_the_summary(tmp_path, monkeypatch):
    a = write_run(tmp_path / "a", "gpt", gpt_records(2), {}, GPT_ARGS)
    (tmp_path / "a" / "eval.json").write_text(json.dumps(
        {"kind": "gpt", "split": "val", "tokens": 4096, "loss": 1.5, "perplexity": math.exp(1.5),
         "bits_per_byte": 2.0, "top1": 0.4, "top5": 0.8}))
    result = compare(monkeypatch, a, f"--out={tmp_path / 'c.html'}")
    assert result["summary_rows"][0][3:6] == ["1.5000", f"{math.exp(1.5):.2f}", "eval.json (val split, 4,096 tokens)"]


def test_a_run_trained_again_in_its_out_dir_keeps_the_later_records(tmp_path, monkeypatch):
    first, again = gpt_records(4), gpt_records(3, loss_offset=-1.0)  # restarted from scratch after iter 300
    a = write_run(tmp_path / "a", "gpt", first + again[:2] + [again[2]], {}, GPT_ARGS)
    result = compare(monkeypatch, a, f"--out={tmp_path / 'c.html'}")
    assert result["runs"][0]["records"] == again
    assert any("4 record(s) dropped" in message for message in result["notes"])


def test_two_runs_with_the_same_directory_name_get_different_names(tmp_path, monkeypatch):
    a = write_run(tmp_path / "x" / "out", "gpt", gpt_records(2), {}, GPT_ARGS)
    b = write_run(tmp_path / "y" / "out", "gpt", gpt_records(2), {}, GPT_ARGS)
    result = compare(monkeypatch, a, b + "/", f"--out={tmp_path / 'c.html'}")
    assert [run["name"] for run in result["runs"]] == ["out", "out-2"]


def make_bad_input(tmp_path, case):
    """The command-line arguments of one kind of bad input."""
    out = f"--out={tmp_path / 'c.html'}"
    good = write_run(tmp_path / "good", "gpt", gpt_records(2), {}, GPT_ARGS)
    if case == "no runs":
        return [out]
    if case == "missing dir":
        return [good, str(tmp_path / "nope"), out]
    run = tmp_path / "bad"
    run.mkdir()
    if case == "no log":
        return [good, str(run), out]
    if case == "empty log":
        (run / "log.jsonl").write_text("")
    if case == "garbled log":
        (run / "log.jsonl").write_text(json.dumps(gpt_records(1)[0]) + '\n{"iter": 100, "train_lo\n')
    if case == "not a log":
        (run / "log.jsonl").write_text('{"hello": 1}\n')
    if case == "gpt and vit":
        records = [{"epoch": 1, "step": 10, "train_loss": 2.0, "val_loss": 1.9, "top1": 0.3, "lr": 1e-3,
                    "images_seen": 1280, "elapsed_s": 5.0}]
        write_run(run, "vit", records, {}, VIT_ARGS)
    if case == "foreign checkpoint":
        write_run(run, "vit", gpt_records(2), {}, VIT_ARGS)  # a GPT's log next to a ViT's best.pt
    if case == "out is a directory":
        return [good, f"--out={tmp_path}"]
    if case == "not a test.json":
        records = [{"epoch": 1, "step": 10, "train_loss": 2.0, "val_loss": 1.9, "top1": 0.3, "lr": 1e-3,
                    "images_seen": 1280, "elapsed_s": 5.0}]
        write_run(run, "vit", records, {"val_images": 64}, VIT_ARGS)
        (run / "test.json").write_text('{"top1": "high"}')
        return [str(run), out]
    return [good, str(run), out]


@pytest.mark.parametrize("case, expected", [
    ("no runs", "no run directories given; usage: python analysis/compare.py OUT_DIR"),
    ("missing dir", "nope does not exist; pass the out_dir of a training run"),
    ("no log", "bad has no log.jsonl; pass the out_dir of a train_gpt.py or train_vit.py run"),
    ("empty log", "log.jsonl is empty: the run has not evaluated yet"),
    ("garbled log", "log.jsonl line 2 is not JSON (a run killed mid-write leaves half a line); delete that line"),
    ("not a log", "log.jsonl line 1 is not a training log record"),
    ("gpt and vit", "GPT runs (good) and ViT runs (bad) cannot share plots; compare each kind on its own"),
    ("foreign checkpoint", "best.pt is not a GPT checkpoint, but"),
    ("out is a directory", "is a directory; name the HTML file to write, e.g. --out="),
    ("not a test.json", "test.json is not train_vit.py's test.json; delete it to compare the run from its log"),
])
def test_bad_input_is_a_one_line_error(tmp_path, monkeypatch, case, expected):
    with pytest.raises(SystemExit) as stopped:
        compare(monkeypatch, *make_bad_input(tmp_path, case))
    message = str(stopped.value.code)
    assert message.startswith("error: ") and "\n" not in message and expected in message, message
    assert not (tmp_path / "c.html").exists() and not any(tmp_path.glob("c-*.png"))
