"""
End to end, the way a user runs it: prepare a dataset from a few KB of text, train a tiny GPT,
resume it, and sample from it. CPU only, well under a minute.

    python test_smoke.py            # or: python -m pytest test_smoke.py
"""

import json
import os
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.abspath(__file__))
TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 40  # ~6 KB


def run(*args, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def read_log(out_dir):
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_prepare_train_resume_sample(tmp_path):
    text_file = tmp_path / "input.txt"
    text_file.write_text(TEXT)
    data_dir, out_dir = tmp_path / "data", tmp_path / "out"
    run("prepare/shakespeare_char.py", "--input", str(text_file), "--out_dir", str(data_dir / "tiny"))
    meta = json.loads((data_dir / "tiny" / "meta.json").read_text())
    assert meta["vocab_size"] == len(set(TEXT))

    common = [f"--data_dir={data_dir}", "--dataset=tiny", f"--out_dir={out_dir}", "--device=cpu",
              "--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=8",
              "--eval_interval=15", "--eval_iters=5", "--log_interval=5", "--warmup_iters=5",
              "--lr_decay_iters=45", "--learning_rate=3e-3"]
    run("train_gpt.py", *common, "--max_iters=30")
    log = read_log(out_dir)
    assert [r["iter"] for r in log] == [0, 15, 30]
    assert log[-1]["val_loss"] < log[0]["val_loss"] - 0.5, "the model did not learn"
    assert log[-1]["tokens_seen"] == 30 * 8 * 32
    assert torch.load(out_dir / "ckpt.pt", weights_only=True)["iter_num"] == 30

    resumed = run("train_gpt.py", *common, "--max_iters=45", "--init_from=resume")
    assert "iter 35/" in resumed.stdout and "iter 5:" not in resumed.stdout
    assert [r["iter"] for r in read_log(out_dir)] == [0, 15, 30, 45]
    assert torch.load(out_dir / "ckpt.pt", weights_only=True)["iter_num"] == 45

    sample = run("sample.py", f"--out_dir={out_dir}", "--start=First", "--num_samples=2",
                 "--max_new_tokens=40", "--device=cpu")
    samples = sample.stdout.split("---------------\n")
    assert len(samples) == 3 and all(s.startswith("First") and len(s) > 40 for s in samples[:2])
    assert set("".join(samples)) <= set(TEXT) | {"-"}


def test_missing_dataset_names_the_prepare_command(tmp_path):
    result = run("train_gpt.py", f"--data_dir={tmp_path}", "--dataset=openwebtext", check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path}/openwebtext/meta.json is missing; prepare the dataset first: "
        "python prepare/openwebtext.py")


if __name__ == "__main__":  # `python test_smoke.py` runs these tests, and fails when they fail
    import pytest
    sys.exit(pytest.main([__file__, "-q", "-o", "addopts=", *sys.argv[1:]]))
