"""
analysis/ablate.py on a tiny GPT (2 layers, 32 wide) and a few KB of text: the table's rows and
numbers against the runs' own logs, a stop mid-run and a failed run that the next call completes
without repeating what was done, a re-run that starts nothing, the dry run, and bad configs. And on
a tiny ViT with held-out images: the test split's accuracy, read once, comes from each run's test.json.
"""

import json
import math
import os
import pathlib
import shlex
import signal
import statistics
import subprocess
import sys
import time

import matplotlib.image
import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import run_scripts  # noqa: E402
from test_vit import random_split, write_cifar10  # noqa: E402

TEXT = "".join(f"the cat sat on mat {i % 5}.\n" for i in range(300))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TWO_BY_TWO = {"gelu": {}, "relu": {"mlp": "relu"}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablate-data")
    (root / "input.txt").write_text(TEXT)
    subprocess.run([sys.executable, "prepare/shakespeare_char.py", "--input", str(root / "input.txt"),
                    "--out_dir", str(root / "tiny")], cwd=ROOT, check=True, capture_output=True)
    return str(root)


def write_ablation(path, data_dir, variants, baseline="gelu", script="train_gpt.py", max_iters=6, **extra):
    """An ablation config for a tiny GPT, evaluated every max_iters / 4 iterations."""
    base = dict(n_layer=2, n_head=2, n_embd=32, block_size=16, batch_size=4, max_iters=max_iters,
                lr_decay_iters=max_iters, warmup_iters=0, eval_interval=max(1, max_iters // 4), eval_iters=2,
                log_interval=1000, device="cpu", dtype="float32", compile=False, data_dir=data_dir, dataset="tiny")
    settings = dict(script=script, base_config="", base_overrides=base, baseline=baseline, variants=variants, **extra)
    path.write_text("".join(f"{key} = {value!r}\n" for key, value in settings.items()))
    return str(path)


def ablate(*args):
    return subprocess.run([sys.executable, "analysis/ablate.py", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)


def read_log(run_dir):
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def evaluations(run_dir):
    """How many evaluations the run has logged so far (0 before it starts)."""
    try:
        with open(os.path.join(run_dir, "log.jsonl")) as f:
            return sum(line.endswith("\n") for line in f)
    except FileNotFoundError:
        return 0


def marker(run_dir):
    with open(os.path.join(run_dir, "ablate.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def stopped_then_completed(data_dir, tmp_path_factory):
    """2 variants x 2 seeds, 400 iterations each: SIGTERM to ablate (alone, as `kill PID` sends it)
    once the second run has logged its iter-100 evaluation, so it stops with steps both behind and
    ahead of it; then the same command twice. Returns what each step left."""
    tmp = tmp_path_factory.mktemp("ablate")
    config = write_ablation(tmp / "act.py", data_dir, TWO_BY_TWO, max_iters=400)
    out_root = str(tmp / "out")
    args = [config, "--seeds=2", f"--out_root={out_root}"]
    second = os.path.join(out_root, "relu-seed1337")  # seeds outermost: the second run is relu's first seed
    with open(tmp / "stopped.txt", "w") as output:
        process = subprocess.Popen([sys.executable, "analysis/ablate.py", *args], cwd=ROOT, env=ENV,
                                   stdout=output, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while not (evaluations(second) >= 2 or process.poll() is not None or time.time() > deadline):
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        stopped_code = process.wait(timeout=120)
    stopped = {"code": stopped_code, "output": (tmp / "stopped.txt").read_text(),
               "first_log": read_log(os.path.join(out_root, "gelu-seed1337")),
               "second_iter": torch.load(os.path.join(second, "ckpt.pt"), weights_only=True)["iter_num"],
               "second_finished": marker(second)["finished"],
               "dirs": sorted(os.listdir(out_root))}
    completed = ablate(*args)
    mtimes = {name: os.path.getmtime(os.path.join(out_root, name, "ckpt.pt")) for name in os.listdir(out_root)
              if os.path.isdir(os.path.join(out_root, name))}
    again = ablate(*args)
    return out_root, stopped, completed, again, mtimes


def test_a_stopped_ablation_resumes_the_stopped_run_and_repeats_no_finished_one(stopped_then_completed):
    out_root, stopped, completed, _, _ = stopped_then_completed
    assert stopped["code"] == 128 + signal.SIGTERM, stopped["output"]
    assert "run the same command again to resume" in stopped["output"]
    # the first run finished; the second was stopped part-way (and saved); the other two never started
    assert stopped["dirs"] == ["gelu-seed1337", "relu-seed1337"]
    assert marker(os.path.join(out_root, "gelu-seed1337"))["finished"]
    assert 100 <= stopped["second_iter"] < 400 and not stopped["second_finished"]

    assert completed.returncode == 0, completed.stderr
    assert "[1/4] gelu seed 1337: finished before, skipped" in completed.stdout
    assert "[2/4] relu seed 1337 (resuming): " in completed.stdout
    assert "[3/4] gelu seed 1338: " in completed.stdout and "[4/4] relu seed 1338: " in completed.stdout
    assert read_log(os.path.join(out_root, "gelu-seed1337")) == stopped["first_log"]
    # resumed, not restarted: every evaluation once, the last at max_iters
    for name in ("gelu-seed1337", "relu-seed1337", "gelu-seed1338", "relu-seed1338"):
        assert [r["iter"] for r in read_log(os.path.join(out_root, name))] == [0, 100, 200, 300, 400]
        assert marker(os.path.join(out_root, name))["finished"]


def test_a_rerun_of_a_finished_ablation_starts_no_run(stopped_then_completed):
    out_root, _, _, again, mtimes = stopped_then_completed
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("finished before, skipped") == 4 and "train_gpt.py" not in again.stdout
    assert mtimes == {name: os.path.getmtime(os.path.join(out_root, name, "ckpt.pt")) for name in mtimes}


def test_the_table_holds_each_variants_mean_and_std_over_its_runs_logs(stopped_then_completed):
    out_root, _, _, _, _ = stopped_then_completed
    with open(os.path.join(out_root, "results.json")) as f:
        results = json.load(f)
    with open(os.path.join(out_root, "results.md")) as f:
        table = f.read()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| variant")]
    assert [row.split(" | ")[0] for row in rows] == ["| gelu (baseline)", "| relu"]
    assert f"python analysis/ablate.py {shlex.quote(results['ablation'])} --seeds=2 --out_root={out_root}" in table

    expected = {}
    for variant in TWO_BY_TWO:
        logs = [read_log(os.path.join(out_root, f"{variant}-seed{seed}")) for seed in (1337, 1338)]
        losses = [min(r["val_loss"] for r in log) for log in logs]
        throughput = [statistics.median(r["tokens_per_s"] for r in log[1:]) for log in logs]  # iter 0 trained nothing
        expected[variant] = {"val_loss": losses, "perplexity": [math.exp(x) for x in losses],
                             "bits_per_byte": [x / math.log(2) for x in losses],  # one ASCII character per token
                             "tokens_per_s": throughput, "wall_s": [log[-1]["elapsed_s"] for log in logs]}
    for variant, row in zip(TWO_BY_TWO, rows):
        result = results["variants"][variant]
        for key, values in expected[variant].items():
            mean, std = statistics.mean(values), statistics.stdev(values)
            diff = mean - statistics.mean(expected["gelu"][key])
            assert result["mean"][key] == pytest.approx(mean, rel=1e-12)
            assert result["std"][key] == pytest.approx(std, rel=1e-12)
            assert result["diff"][key] == pytest.approx(diff, abs=1e-9)
        loss_mean, loss_std = statistics.mean(expected[variant]["val_loss"]), statistics.stdev(expected[variant]["val_loss"])
        cell = f"{loss_mean:.4f} ± {loss_std:.4f}"
        if variant == "relu":
            cell += f" ({loss_mean - statistics.mean(expected['gelu']['val_loss']):+.4f})"
        assert f" | {cell} | " in row, row
    # the parameter count is the model's (the MLP's width is the same, only its nonlinearity differs)
    assert results["variants"]["gelu"]["mean"]["params"] == results["variants"]["relu"]["mean"]["params"] > 0


def test_the_plot_shows_each_variants_learning_curve_averaged_over_seeds(stopped_then_completed):
    out_root, _, _, _, _ = stopped_then_completed
    with open(os.path.join(out_root, "results.json")) as f:
        results = json.load(f)
    for variant in TWO_BY_TWO:
        logs = [read_log(os.path.join(out_root, f"{variant}-seed{seed}")) for seed in (1337, 1338)]
        losses = list(zip(*[[r["val_loss"] for r in log] for log in logs]))  # per evaluation, both seeds
        curve = results["variants"][variant]["curve"]
        assert curve["x"] == [0, 100, 200, 300, 400]
        assert curve["mean"] == pytest.approx([statistics.mean(pair) for pair in losses], rel=1e-12)
        assert curve["low"] == [min(pair) for pair in losses] and curve["high"] == [max(pair) for pair in losses]
    image = matplotlib.image.imread(os.path.join(out_root, "results.png"))
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300


def test_a_failed_run_is_reported_and_left_for_the_next_call(data_dir, tmp_path):
    config = write_ablation(tmp_path / "bad_run.py", data_dir, {"gelu": {}, "swish": {"mlp": "swish"}})
    args = [config, "--seeds=1", f"--out_root={tmp_path / 'out'}"]
    first = ablate(*args)
    assert first.returncode != 0
    assert first.stderr.strip().splitlines()[-1].startswith("error: 1 run(s) failed: swish-seed1337 (exit code 1)")
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| gelu (baseline) | (none) | 1 | " in table and "Not finished (run the command again to retry): swish-seed1337." in table
    assert " ± " not in table.split("| variant |")[1]  # one seed: no spread to show
    # the next call skips the finished run and tries the failed one again
    assert marker(str(tmp_path / "out" / "gelu-seed1337"))["finished"]
    assert not marker(str(tmp_path / "out" / "swish-seed1337"))["finished"]


def test_a_run_another_ablation_already_finished_is_copied_not_trained_again(data_dir, stopped_then_completed):
    out_root = stopped_then_completed[0]
    second_root = out_root + "-second"  # beside the finished 2 x 2 ablation
    # "gelu" names mlp=gelu, which the first ablation's "gelu" left at its default: the same run. "relu"
    # is the first ablation's relu but shorter: another run, trained
    config = write_ablation(pathlib.Path(out_root).parent / "second.py", data_dir,
                            {"gelu": {"mlp": "gelu"}, "relu": {"mlp": "relu", "max_iters": 4}}, max_iters=400)
    result = ablate(config, "--seeds=1", f"--out_root={second_root}")
    assert result.returncode == 0, result.stderr
    assert "gelu seed 1337: the same run as" in result.stdout and "relu seed 1337: the same run" not in result.stdout
    assert marker(os.path.join(second_root, "gelu-seed1337"))["copied_from"] == os.path.join(out_root, "gelu-seed1337")
    assert read_log(os.path.join(second_root, "gelu-seed1337")) == read_log(os.path.join(out_root, "gelu-seed1337"))
    assert "copied_from" not in marker(os.path.join(second_root, "relu-seed1337"))
    assert [r["iter"] for r in read_log(os.path.join(second_root, "relu-seed1337"))][-1] == 4
    with open(os.path.join(second_root, "results.md")) as f:
        assert "Copied from a finished run with the same settings (not trained again): gelu-seed1337 from " in f.read()


def test_a_finished_run_whose_config_file_changed_since_is_not_copied(data_dir, tmp_path):
    recipe = tmp_path / "recipe.py"
    recipe.write_text("learning_rate = 1e-3\n")
    config = write_ablation(tmp_path / "ablation.py", data_dir, {"gelu": {}}, max_iters=2)
    with open(config, "a") as f:
        f.write(f"base_config = {str(recipe)!r}\n")  # replaces write_ablation's ""
    first = ablate(config, "--seeds=1", f"--out_root={tmp_path / 'first'}")
    assert first.returncode == 0, first.stderr
    recipe.write_text("learning_rate = 2e-3\n")  # the same command now means another run
    second = ablate(config, "--seeds=1", f"--out_root={tmp_path / 'second'}")
    assert second.returncode == 0, second.stderr
    assert "the same run as" not in second.stdout
    assert marker(str(tmp_path / "second" / "gelu-seed1337"))["settings"][1]["learning_rate"] == 2e-3


def test_dry_run_prints_every_command_and_runs_nothing(data_dir, tmp_path):
    config = write_ablation(tmp_path / "dry.py", data_dir, TWO_BY_TWO)
    result = ablate(config, "--seeds=2", "--dry_run=True", f"--out_root={tmp_path / 'out'}", "--max_iters=3")
    assert result.returncode == 0, result.stderr
    commands = [shlex.split(line) for line in result.stdout.strip().splitlines()]
    assert len(commands) == 4 and not (tmp_path / "out").exists()
    runs = set()
    for command in commands:
        assert command[:2] == ["python", "train_gpt.py"] and command[-1] == "--init_from=auto"
        seed, out_dir = command[-3].removeprefix("--seed="), command[-2].removeprefix("--out_dir=")
        variant = "relu" if "--mlp=relu" in command else "gelu"
        assert out_dir == str(tmp_path / "out" / f"{variant}-seed{seed}")
        assert "--max_iters=3" in command and command.index("--max_iters=3") > command.index("--max_iters=6")
        runs.add((variant, seed))
    assert runs == {("gelu", "1337"), ("relu", "1337"), ("gelu", "1338"), ("relu", "1338")}


BAD_CONFIGS = {
    "sets no 'variants'": dict(variants=None),
    "baseline 'swiglu' is not a variant (gelu, relu)": dict(baseline="swiglu"),
    "variant 'relu': unknown config key 'mpl' (from command line); did you mean mlp":
        dict(variants={"gelu": {}, "relu": {"mpl": "relu"}}),
    "training script 'train_nope.py' does not exist": dict(script="train_nope.py"),
}


@pytest.fixture(scope="module")
def bad_configs(data_dir, tmp_path_factory):
    """ablate.py on each of BAD_CONFIGS, all in one process (conftest.run_scripts): expected message ->
    (the out_root it was given, the result)."""
    cases = {}
    for expected, settings in BAD_CONFIGS.items():
        tmp = tmp_path_factory.mktemp("bad-ablation")
        settings = dict(settings)
        variants = settings.pop("variants", TWO_BY_TWO)
        config = write_ablation(tmp / "bad.py", data_dir, variants, **settings)
        if variants is None:  # no variants at all, not variants = None
            lines = (tmp / "bad.py").read_text().splitlines()
            (tmp / "bad.py").write_text("\n".join(line for line in lines if not line.startswith("variants")))
        cases[expected] = (tmp / "out", ["analysis/ablate.py", config, f"--out_root={tmp / 'out'}"])
    results = run_scripts([command for _, command in cases.values()])
    return {expected: (out_root, result) for (expected, (out_root, _)), result in zip(cases.items(), results)}


@pytest.mark.parametrize("expected", BAD_CONFIGS)
def test_bad_ablation_configs_are_one_line_errors(bad_configs, expected):
    out_root, result = bad_configs[expected]
    assert result.returncode != 0 and not out_root.exists()
    err = result.stderr.strip()
    assert "\n" not in err and err.startswith("error: ") and expected in err, err


def test_a_vit_ablation_with_held_out_images_reports_the_test_split_read_once(tmp_path):
    cifar = write_cifar10(tmp_path / "cifar", random_split(np.random.default_rng(0)), 16)
    base = dict(n_layer=1, n_head=2, n_embd=16, compile=False, num_workers=0, dtype="float32", device="cpu",
                log_interval=0, data_dir=cifar, download=False, verify_md5=False, batch_size=16, epochs=2,
                val_images=16, autoaugment="none", random_erasing=0.0, mixup=0.0, cutmix=0.0)
    config = tmp_path / "vit_ablation.py"
    config.write_text(f"script = 'train_vit.py'\nbase_overrides = {base!r}\nbaseline = 'gelu'\n"
                      f"variants = {TWO_BY_TWO!r}\n")
    result = ablate(str(config), "--seeds=1", f"--out_root={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out" / "results.json") as f:
        results = json.load(f)
    for variant in TWO_BY_TWO:
        run = tmp_path / "out" / f"{variant}-seed1337"
        with open(run / "test.json") as f:
            test = json.load(f)
        metrics = results["variants"][variant]["runs"]["1337"]
        assert metrics["test_top1"] == pytest.approx(100 * test["top1"], rel=1e-12)
        assert metrics["top1"] == pytest.approx(100 * max(r["top1"] for r in read_log(run)), rel=1e-12)  # held-out
        assert metrics["wall_s"] == test["elapsed_s"] > read_log(run)[-1]["elapsed_s"]
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| test top-1, read once (%) |" in table
    assert f" | {100 * test['top1']:.2f} (" in table  # relu's row: its test top-1, then the difference to gelu's
