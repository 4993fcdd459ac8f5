"""
DDP on CPU: `torchrun --standalone --nproc_per_node=2` with gloo, checked against one process.
Each worker runs the real train_gpt.py (through runpy, so nothing in the script is test-specific)
and then writes its parameters, so the test can compare ranks with each other and with a single
process that accumulates gradients over the same global batch.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from model_gpt import GPT, GPTConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = "".join(f"Now is the winter of our discontent, number {i % 11}, made glorious summer\n" for i in range(150))
WORKER = """
import os, runpy, sys
import torch
sys.path.insert(0, {root!r})
os.chdir({root!r})
out = sys.argv[1]
rank = os.environ.get("RANK", "0")
open(os.path.join(out, f"pid{{rank}}"), "w").write(str(os.getpid()))
sys.argv = ["train_gpt.py", *sys.argv[2:]]
torch.set_num_threads(1)
script = runpy.run_path("train_gpt.py", run_name="__main__")
torch.save(script["model"].state_dict(), os.path.join(out, f"params{{rank}}.pt"))
if os.path.isdir("/proc/self/task"):  # the threads left once the script is done (Linux)
    names = [open(f"/proc/self/task/{{t}}/comm").read().strip() for t in os.listdir("/proc/self/task")]
    open(os.path.join(out, f"threads{{rank}}"), "w").write(" ".join(names))
"""

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="needs torch.distributed")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    (root / "input.txt").write_text(TEXT)
    subprocess.run([sys.executable, "prepare/shakespeare_char.py", "--input", str(root / "input.txt"),
                    "--out_dir", str(root / "data" / "tiny")], cwd=ROOT, check=True, capture_output=True)
    (root / "worker.py").write_text(WORKER.format(root=ROOT))
    return root


def train_args(root, out_dir, *extra):
    return [str(out_dir), "--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=4",
            "--eval_iters=2", "--log_interval=1", "--warmup_iters=2", "--device=cpu", "--dtype=float32",
            f"--data_dir={root / 'data'}", "--dataset=tiny", f"--out_dir={out_dir}", *extra]


def launch(root, out_dir, nproc, *extra, wait=True):
    out_dir.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if nproc == 1:
        command = [sys.executable, str(root / "worker.py")]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                   str(root / "worker.py")]
    process = subprocess.Popen(command + train_args(root, out_dir, *extra), cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not wait:
        return process
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output
    return output


def test_two_ranks_equal_one_process_accumulating_the_same_global_batch(setup):
    common = ["--max_iters=8", "--eval_interval=4", "--gradient_accumulation_steps=4", "--peak_flops=1e9"]
    output = launch(setup, setup / "ddp", 2, *common)
    launch(setup, setup / "single", 1, *common)
    rank0 = torch.load(setup / "ddp" / "params0.pt", weights_only=True)
    rank1 = torch.load(setup / "ddp" / "params1.pt", weights_only=True)
    single = torch.load(setup / "single" / "params0.pt", weights_only=True)
    for name in single:
        assert torch.equal(rank0[name], rank1[name]), f"{name} differs between ranks"
        torch.testing.assert_close(rank0[name], single[name], atol=1e-6, rtol=0, msg=name)
    saved = torch.load(setup / "ddp" / "ckpt.pt", weights_only=True)
    assert saved["iter_num"] == 8 and all(torch.equal(saved["model"][n], rank0[n]) for n in rank0)
    # MFU is per device: each of the 2 processes did half the tokens the printed tokens/s counts
    flops_per_token = GPT(GPTConfig(**saved["model_args"])).estimate_flops_per_token()
    line = next(line for line in output.splitlines() if line.startswith("iter 8/"))
    tokens_per_s = float(line.split(" ms/iter, ")[1].split(" tokens/s")[0].replace(",", ""))
    mfu_percent = float(line.split("mfu ")[1].split("%")[0])
    assert mfu_percent == pytest.approx(100 * flops_per_token * tokens_per_s / 2 / 1e9, rel=0.02, abs=0.06)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="lists a process's threads through Linux's /proc")
def test_a_finished_run_has_freed_its_process_group_so_no_gloo_thread_outlives_it(setup):
    # gloo's threads still alive at interpreter exit can abort a rank (SIGABRT) after a run that went
    # well: the script drops every reference to the group before destroying it, which joins them
    launch(setup, setup / "threads", 2, "--max_iters=2", "--eval_interval=2", "--gradient_accumulation_steps=2")
    for rank in (0, 1):
        names = (setup / "threads" / f"threads{rank}").read_text().split()
        assert names and not any("gloo" in name for name in names), names


def test_sigterm_to_one_rank_stops_both_with_a_checkpoint_that_resumes(setup):
    out_dir = setup / "preempted"
    shutil.rmtree(out_dir, ignore_errors=True)
    common = ["--max_iters=400", "--eval_interval=1000", "--gradient_accumulation_steps=2"]
    process = launch(setup, out_dir, 2, *common, wait=False)
    for line in process.stdout:
        if line.startswith("iter 3/"):  # rank 0 is training, so both ranks are past their setup
            os.kill(int((out_dir / "pid1").read_text()), signal.SIGTERM)
            break
    output = process.stdout.read()
    assert process.wait(timeout=120) == 0, output
    assert "stopped at iter" in output
    checkpoint = torch.load(out_dir / "ckpt.pt", weights_only=True)
    assert 3 <= checkpoint["iter_num"] < 400 and len(checkpoint["rng"]) == 2

    resume_to = checkpoint["iter_num"] + 3
    output = launch(setup, out_dir, 2, f"--max_iters={resume_to}", "--eval_interval=1000",
                    "--gradient_accumulation_steps=2", "--init_from=auto")
    assert f"iter {checkpoint['iter_num'] + 1}/" in output and "iter 1/" not in output
    assert torch.load(out_dir / "ckpt.pt", weights_only=True)["iter_num"] == resume_to


def test_vit_trains_and_evaluates_on_two_ranks(tmp_path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import numpy as np
    from test_vit import random_split, write_cifar10
    data_dir = write_cifar10(tmp_path / "cifar", random_split(np.random.default_rng(0)), 32)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train_vit.py",
         f"--data_dir={data_dir}", "--download=False", "--verify_md5=False", "--batch_size=16", "--epochs=1",
         "--n_layer=2", "--n_head=2", "--n_embd=32", "--compile=False", "--num_workers=0", "--dtype=float32",
         "--device=cpu", "--mixup=0.8", "--val_images=32", f"--out_dir={tmp_path / 'out'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "128 train / 32 held-out / 32 test images; 4 steps per epoch of 16 x 2 images" in result.stdout
    # the held-out images chose best.pt; the two ranks then read the test split with it, half each
    assert result.stdout.count("test split, best.pt (epoch 1)") == 1
    assert json.loads((tmp_path / "out" / "test.json").read_text())["images"] == 32
    checkpoint = torch.load(tmp_path / "out" / "ckpt.pt", weights_only=True)
    assert checkpoint["epoch"] == 1 and len(checkpoint["rng"]) == 2  # both ranks' RNG states
