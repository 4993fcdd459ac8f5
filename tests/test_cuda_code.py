"""prepare/cuda_code.py's command line on a directory of hand-written kernels, and the completion
tasks code_check builds from the dataset it writes: held-out files only, compiling references only."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import code_check  # noqa: E402

COMPILES = "__global__ void scale{i}(float* x, int n) {{\n    int j = threadIdx.x;\n    if (j < n) x[j] *= {i}.0f;\n}}\n"
NEEDS_PROJECT_HEADER = "__global__ void fused{i}(Params p) {{\n    p.out[threadIdx.x] = {i};\n}}\n"


def test_prepare_splits_by_file_and_the_tasks_are_the_held_out_kernels_that_compile(tmp_path):
    for i in range(8):
        path = tmp_path / "kernels" / f"repo+{i % 2}" / f"k{i}.cu"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"// Copyright {i}, MIT License\n#include \"params.h\"\n\n" + COMPILES.format(i=i) + "\n"
                        + NEEDS_PROJECT_HEADER.format(i=i))
    out = tmp_path / "data"
    done = subprocess.run([sys.executable, "prepare/cuda_code.py", str(tmp_path / "kernels"), "--out_dir", str(out),
                           "--vocab_size=300", "--val_fraction=0.5", "--num_proc=1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    files = json.loads((out / "files.json").read_text())
    assert files["train"] and files["val"] and not set(files["train"]) & set(files["val"])
    assert json.loads((out / "meta.json").read_text())["language"] == "cuda"

    tasks = code_check.dataset_tasks(str(out), "val")
    # one task per held-out file: its scale kernel; fused needs a type from a header the corpus lacks
    assert sorted(t.source for t in tasks) == sorted(files["val"])
    assert all(t.name.startswith("scale") and t.prompt.startswith(code_check.PREAMBLE) for t in tasks)
    assert code_check.dataset_tasks(str(out), "val") == tasks  # read back from tasks_val.jsonl


def test_code_eval_writes_the_table_with_its_two_anchors(tmp_path):
    (tmp_path / "kernels").mkdir()
    for i in range(8):
        (tmp_path / "kernels" / f"k{i}.cu").write_text(COMPILES.format(i=i))
    data = tmp_path / "data" / "tiny_cuda"
    run = {"cwd": REPO, "capture_output": True, "text": True, "timeout": 300}
    done = subprocess.run([sys.executable, "prepare/cuda_code.py", str(tmp_path / "kernels"), "--out_dir", str(data),
                           "--vocab_size=300", "--val_fraction=0.5", "--num_proc=1"], **run)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "train_gpt.py", "config/cuda_code.py", f"--data_dir={data.parent}",
                           "--dataset=tiny_cuda", f"--out_dir={out}", "--n_layer=1", "--block_size=64", "--max_iters=4",
                           "--lr_decay_iters=4", "--warmup_iters=1", "--eval_interval=4", "--eval_iters=1"], **run)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "analysis/code_eval.py", f"--out_dir={out}", "--num_tasks=2",
                           "--num_samples=2", "--k=2", "--max_new_tokens=8", "--device=cpu"], **run)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "code_eval.json").read_text())
    assert not (out / "eval.json").exists()  # analysis/evaluate.py's name, which compare.py reads
    assert report["tasks"] == 2 and report["samples_per_task"] == 2 and len(report["samples"]) == 2
    assert report["rows"]["references"]["ok_rate"] == 1.0 == report["rows"]["references"]["pass@2"]
    assert report["rows"]["empty body"]["ok_rate"] == 1.0 and report["rows"]["empty body"]["nontrivial_rate"] == 0.0
    assert "| model |" in done.stdout and "| empty body | 100.0% | 0.0% |" in done.stdout


def test_prepare_without_sources_is_one_line():
    done = subprocess.run([sys.executable, "prepare/cuda_code.py", "no/such/kernels.tar.gz"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "error: no/such/kernels.tar.gz does not exist: give the tarball, a directory or .cu/.cuh files"]
