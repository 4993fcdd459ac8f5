"""bench/gpu_check.py end to end on a CPU at its tiny sizes, so that the day it first meets a GPU only
the GPU can fail. Its data needs GPT-2's tokenizer offline (a gpt2.tiktoken in the shared data next
to the repository): without it the run is skipped."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GPT2_FILE = REPO.parent / "shared/data/gpt2/gpt2.tiktoken"
KERNELBENCH = REPO.parent / "shared/data/cuda/kernelbench.tar.gz"  # if present: its harness runs too
TEXT = "".join(f"KING {i % 7}:\nNow is the winter of our discontent, made glorious summer number {i % 13}.\n\n"
               for i in range(400))
CHECKS = ["gpt2_loss", "gpt2_speed", "kv_cache", "fp16_scaler", "torchrun", "vit_speed", "kernelbench"]


def gpu_check(*args, env=None):
    return subprocess.run([sys.executable, "bench/gpu_check.py", "--device=cpu", "--tiny=True", *args], cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not GPT2_FILE.exists(), reason="needs ../shared/data/gpt2/gpt2.tiktoken")
def test_every_check_runs_on_a_cpu_and_lands_in_the_report(tmp_path):
    (tmp_path / "input.txt").write_text(TEXT)
    report = tmp_path / "report.json"
    # a made-up peak, so that the MFU verdicts run: gpt2_speed's floor of 0 passes, vit_speed's of 1e9 fails
    done = gpu_check(f"--data_dir={tmp_path / 'data'}", f"--shakespeare={tmp_path / 'input.txt'}", f"--report={report}",
                     "--peak_flops=1e12", "--min_gpt_mfu=0", "--min_vit_mfu=1e9",
                     *([f"--kernelbench={KERNELBENCH}"] if KERNELBENCH.exists() else []),
                     env={"GPT2_TIKTOKEN_FILE": str(GPT2_FILE)})
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # vit_speed's FAIL
    result = json.loads(report.read_text())
    assert list(result["checks"]) == CHECKS
    status = {name: check["status"] for name, check in result["checks"].items()}
    assert status == {"gpt2_loss": "PASS", "gpt2_speed": "PASS", "kv_cache": "PASS", "fp16_scaler": "PASS",
                      "torchrun": "PASS", "vit_speed": "FAIL", "kernelbench": "SKIP"}, output  # no CUDA, no kernel
    assert (result["PASS"], result["FAIL"], result["SKIP"]) == (5, 1, 1)
    for name, check in result["checks"].items():  # each printed as one line with its figure
        assert f"{check['status']:4s} {name:11s} {check['figure']}" in output
    assert "MFU" in result["checks"]["vit_speed"]["figure"] and "gloo" in result["checks"]["torchrun"]["figure"]
    assert result["checks"]["torchrun"]["max_abs_diff"] == 0.0  # one CPU process, launched either way
    if KERNELBENCH.exists():
        assert result["checks"]["kernelbench"]["correct"] is True  # the harness, torch.relu standing in
        assert result["checks"]["kernelbench"]["emulated"]["correct"] is True  # the kernel's body, emulated


def test_bad_settings_are_a_one_line_error(tmp_path):
    done = gpu_check("--min_gpt_mfu=-1")
    assert done.returncode == 1 and done.stderr.strip().splitlines() == ["error: min_gpt_mfu must be >= 0, got -1.0"]
    done = gpu_check(f"--kernelbench={tmp_path}")  # not KernelBench: refused before any check runs
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        f"error: {tmp_path} holds no KernelBench/level1/*.py: pass kernelbench.tar.gz or the directory that holds KernelBench/"]
