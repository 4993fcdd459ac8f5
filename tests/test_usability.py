"""A new user's first hour: every script explains itself with --help, the learning-rate schedule
follows max_iters, progress lines say how far a run is and how long is left, a resumed run says
where it resumed, and `python test_smoke.py` runs the smoke tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import configurator  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 60


def run(*args, timeout=120):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


# the scripts whose settings are module-level variables, read by configurator.configure
CONFIGURED = ["train_gpt.py", "train_vit.py", "train_classifier.py", "train_gpt_backprop.py", "sample.py",
              "analysis/evaluate.py", "analysis/attention.py", "analysis/embeddings.py", "analysis/compare.py"]
# the scripts with an argparse command line (bench/ too, whose --help argparse makes the same way)
ARGPARSE = sorted(str(p.relative_to(REPO)) for p in REPO.glob("prepare/*.py") if p.name != "corpus.py") + ["bpe.py"]


@pytest.mark.parametrize("script", CONFIGURED)
def test_help_lists_every_setting_with_its_default_and_comment(script):
    result = run(script, "--help")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    settings = configurator.read_settings(REPO / script)
    assert settings
    for name, default, comment, _ in settings:
        line = next((line for line in result.stdout.splitlines() if line.strip().startswith(f"--{name}=")), None)
        assert line is not None, f"--{name} is missing from {script} --help"
        if default is not None:
            assert f"--{name}={default!r}" in line
        assert comment in line


def test_help_groups_settings_as_the_script_does_and_names_its_config_files():
    out = run("train_gpt.py", "-h").stdout
    lines = out.splitlines()
    assert lines[0] == "usage: python train_gpt.py [config/FILE.py ...] [--key=value ...]"
    optimizer = lines.index("optimizer:")
    assert lines[optimizer + 1].startswith("  --optimizer='adamw'") and "muon" in lines[optimizer + 1]
    assert "config/shakespeare_char.py" in lines[-1] and "config/vit_cpu.py" not in lines[-1]


@pytest.mark.parametrize("script", ARGPARSE)
def test_every_other_script_people_run_has_help(script):
    result = run(script, "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage:"), result.stderr


@pytest.fixture(scope="module")
def shakespeare(tmp_path_factory):
    root = tmp_path_factory.mktemp("first-hour")
    (root / "input.txt").write_text(TEXT)
    result = run("prepare/shakespeare_char.py", "--input", root / "input.txt", "--out_dir", root / "data" / "tiny")
    assert result.returncode == 0, result.stderr
    return root


TINY = ["--dataset=tiny", "--n_layer=1", "--n_head=2", "--n_embd=16", "--block_size=16", "--batch_size=4",
        "--eval_iters=2", "--device=cpu", "--compile=False", "--warmup_iters=2", "--min_lr=1e-4"]


def test_the_schedule_decays_to_min_lr_at_max_iters_unless_lr_decay_iters_is_given(shakespeare):
    out = shakespeare / "short"
    result = run("train_gpt.py", *TINY, f"--data_dir={shakespeare / 'data'}", f"--out_dir={out}", "--max_iters=20",
                 "--eval_interval=10")
    assert result.returncode == 0, result.stderr
    lrs = [json.loads(line)["lr"] for line in open(out / "log.jsonl")]
    assert lrs[-1] == pytest.approx(1e-4) and lrs[1] > 1e-4  # min_lr reached exactly at the end, not before
    out = shakespeare / "long-decay"
    result = run("train_gpt.py", *TINY, f"--data_dir={shakespeare / 'data'}", f"--out_dir={out}", "--max_iters=20",
                 "--eval_interval=10", "--lr_decay_iters=40")
    assert result.returncode == 0, result.stderr
    assert json.loads(open(out / "log.jsonl").readlines()[-1])["lr"] > 2e-4  # halfway down a 40-iter cosine


def test_progress_lines_give_the_total_and_the_time_left_and_a_resume_says_where(shakespeare):
    out = shakespeare / "resumed"
    common = [*TINY, f"--data_dir={shakespeare / 'data'}", f"--out_dir={out}", "--eval_interval=10", "--log_interval=5"]
    result = run("train_gpt.py", *common, "--max_iters=10")
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("iter 5/10: loss")]
    assert len(progress) == 1 and progress[0].endswith(" left")
    result = run("train_gpt.py", *common, "--max_iters=20", "--init_from=resume")
    assert result.returncode == 0, result.stderr
    assert f"resumed from {out / 'ckpt.pt'} at iter 10/20" in result.stdout


def test_python_test_smoke_py_runs_the_smoke_tests_and_fails_when_they_fail():
    passing = run("test_smoke.py", "-k", "missing_dataset")
    assert passing.returncode == 0 and "1 passed" in passing.stdout, passing.stdout + passing.stderr
    none = run("test_smoke.py", "-k", "no_such_test")  # pytest's own failure: nothing ran
    assert none.returncode != 0
