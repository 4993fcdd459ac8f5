"""
analysis/: evaluation metrics, attention maps and embedding pictures, checked against hand
computations on tiny models and datasets the tests write themselves.
"""

import json
import math
import os
import subprocess
import sys
from dataclasses import asdict

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from analysis import common, metrics
from model_gpt import GPT, GPTConfig
from model_vit import ViT, ViTConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import run_scripts  # noqa: E402
from test_vit import random_split, write_cifar10  # noqa: E402

TEXT = "".join(f"the cat sat on mat {i % 5}.\n" for i in range(300))


def run(script, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, f"analysis/{script}", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(result, expected):
    assert result.returncode != 0, result.stdout
    err = result.stderr.strip()
    assert "\n" not in err and err.startswith("error: ") and expected in err, err


def save_run(out_dir, model, config, kind):
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"kind": kind, "model": model.state_dict(), "model_args": asdict(model.config), "config": config,
                "iter_num": 7, "epoch": 1, "best_val_loss": 1.0}, out_dir / "best.pt")
    return out_dir


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    """A char dataset, and a 1-layer GPT whose logits are the same at every position, fixed by hand:
    all blocks add nothing (zero output projections) and ln_f outputs its bias b, so the logits are
    wte @ b, with b = e_0: each token's logit is its embedding's first coordinate."""
    root = tmp_path_factory.mktemp("char")
    (root / "input.txt").write_text(TEXT)
    subprocess.run([sys.executable, "prepare/shakespeare_char.py", "--input", str(root / "input.txt"),
                    "--out_dir", str(root / "data" / "tiny")], cwd=ROOT, check=True, capture_output=True)
    vocab = json.loads((root / "data" / "tiny" / "meta.json").read_text())["vocab_size"]
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=64, tokenizer_vocab_size=vocab))
    logits = torch.randn(64) * 2
    logits[vocab:] = 100.0  # padding ids: the likeliest of all, yet never predicted
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("c_proj.weight"):
                p.zero_()
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(F.one_hot(torch.tensor(0), 16).float())
        model.transformer.wte.weight[:, 0] = logits
    out_dir = save_run(root / "out", model, {"data_dir": str(root / "data"), "dataset": "tiny"}, "gpt")
    return root, out_dir, logits[:vocab]


def test_gpt_evaluation_equals_a_hand_count(char_run):
    root, out_dir, logits = char_run
    result = run("evaluate.py", f"--out_dir={out_dir}", "--eval_tokens=1000000", "--batch_size=7")
    assert result.returncode == 0, result.stderr
    report = json.loads((out_dir / "eval.json").read_text())
    val = np.fromfile(root / "data" / "tiny" / "val.bin", dtype=np.uint16).astype(np.int64)
    n_windows = (len(val) - 1) // 16
    targets = torch.from_numpy(val[1: n_windows * 16 + 1])   # every window of 16, consecutive
    log_probs = F.log_softmax(logits, dim=0)                # the same prediction at every position
    assert report["tokens"] == len(targets)
    assert report["loss"] == pytest.approx(-log_probs[targets].mean().item(), rel=1e-5)
    assert report["perplexity"] == pytest.approx(math.exp(report["loss"]), rel=1e-12)
    assert report["bits_per_byte"] == pytest.approx(report["loss"] / math.log(2), rel=1e-12)  # 1 byte/char
    ranked = logits.argsort(descending=True)
    assert report["top1"] == pytest.approx((targets == ranked[0]).float().mean().item())
    assert report["top5"] == pytest.approx(torch.isin(targets, ranked[:5]).float().mean().item())


def test_attention_maps_are_the_causal_softmax_of_scaled_scores():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=11)).eval()
    idx = torch.randint(0, 11, (2, 8))
    (maps,) = common.attention_maps(model, idx)
    assert maps.shape == (2, 2, 8, 8)
    x = model.transformer.h[0].ln_1(model.transformer.wte(idx) + model.transformer.wpe(torch.arange(8)))
    q, k, _ = model.transformer.h[0].attn.c_attn(x).split(16, dim=2)
    q, k = (t.view(2, 8, 2, 8).transpose(1, 2) for t in (q, k))
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(8)
    scores = scores.masked_fill(torch.ones(8, 8, dtype=torch.bool).triu(1), float("-inf"))
    torch.testing.assert_close(maps, scores.softmax(-1))
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 8))
    assert model.transformer.h[0].attn.flash  # switched back after the capture


def test_vit_attention_maps_see_every_patch():
    torch.manual_seed(0)
    model = ViT(ViTConfig(n_layer=2, n_head=2, n_embd=16, patch_size=8)).eval()
    maps = common.attention_maps(model, torch.randn(1, 3, 32, 32))
    assert len(maps) == 2 and maps[0].shape == (1, 2, 17, 17)  # 16 patches + CLS, no mask
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(1, 2, 17))
    assert (maps[0] > 0).all()


def test_attention_script_draws_the_heads_and_summarises_them(char_run):
    _, out_dir, _ = char_run
    result = run("attention.py", f"--out_dir={out_dir}", "--start=the cat")
    assert result.returncode == 0, result.stderr
    assert plt.imread(out_dir / "attention.png").ndim == 3
    summary = json.loads((out_dir / "attention.json").read_text())
    model = common.load_model(torch.load(out_dir / "best.pt", weights_only=True), "cpu")
    meta = json.loads((out_dir.parent / "data" / "tiny" / "meta.json").read_text())
    ids = torch.tensor([[meta["itos"].index(ch) for ch in "the cat"]])
    att = common.attention_maps(model, ids)[0][0]                                   # (n_head, 7, 7)
    distance = sum(att[:, t, s] * (t - s) for t in range(7) for s in range(t + 1)) / 7
    assert summary["layers"][0]["mean_distance"] == pytest.approx(distance.tolist(), rel=1e-5)
    assert summary["layers"][0]["previous_token"] == pytest.approx(
        [float(sum(att[h, t, t - 1] for t in range(1, 7)) / 6) for h in range(2)], rel=1e-5)
    assert summary["layers"][0]["first_token"] == pytest.approx(att[:, 1:, 0].mean(-1).tolist(), rel=1e-5)


def test_embedding_script_writes_the_token_map_and_position_similarity(char_run):
    _, out_dir, _ = char_run
    result = run("embeddings.py", f"--out_dir={out_dir}")
    assert result.returncode == 0, result.stderr
    assert plt.imread(out_dir / "embeddings.png").ndim == 3


# -----------------------------------------------------------------------------
# classification metrics, by hand

def test_confusion_matrix_and_f1_equal_a_hand_count():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    predictions = torch.tensor([0, 1, 0, 1, 1, 2, 0, 2, 1, 2])
    matrix = metrics.confusion_matrix(predictions, labels, 3)
    assert matrix.tolist() == [[2, 1, 0], [0, 2, 0], [1, 1, 3]]
    report = metrics.classification_report(matrix)
    # class 0: TP 2, predicted 3, true 3; class 1: TP 2, predicted 4, true 2; class 2: TP 3, predicted 3, true 5
    precision, recall = [2 / 3, 2 / 4, 3 / 3], [2 / 3, 2 / 2, 3 / 5]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall)]
    assert report["precision"] == pytest.approx(precision) and report["recall"] == pytest.approx(recall)
    assert report["f1"] == pytest.approx(f1) and report["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert report["accuracy"] == pytest.approx(7 / 10)
    # a class never predicted and never present: precision, recall and F1 are 0, not NaN
    empty = metrics.classification_report(metrics.confusion_matrix(predictions, labels, 4))
    assert empty["f1"][3] == 0.0 and not any(math.isnan(v) for v in empty["precision"] + empty["recall"])


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("vit")
    data_dir = write_cifar10(root / "cifar", random_split(np.random.default_rng(0)), 20)
    torch.manual_seed(0)
    model = ViT(ViTConfig(n_layer=1, n_head=2, n_embd=16, patch_size=8))
    config = {"data_dir": data_dir, "dataset": "cifar10", "download": False, "verify_md5": False, "num_workers": 0}
    return save_run(root / "out", model, config, "vit")


def test_vit_evaluation_counts_each_test_image_once(vit_run):
    result = run("evaluate.py", f"--out_dir={vit_run}", "--batch_size=6")
    assert result.returncode == 0, result.stderr
    report = json.loads((vit_run / "eval.json").read_text())
    matrix = torch.tensor(report["confusion_matrix"])
    assert report["images"] == matrix.sum() == 20
    assert report["top1"] == pytest.approx(matrix.trace().item() / 20)
    assert report["macro_f1"] == pytest.approx(metrics.classification_report(matrix)["macro_f1"])
    assert set(report["per_class"]) == {f"class{i}" for i in range(10)}
    assert plt.imread(vit_run / "confusion_matrix.png").ndim == 3


@pytest.mark.parametrize("script", ["attention.py", "embeddings.py"])
def test_vit_pictures_are_valid_pngs(vit_run, script):
    result = run(script, f"--out_dir={vit_run}", *(["--index=3"] if script == "attention.py" else []))
    assert result.returncode == 0, result.stderr
    png = "attention_vit.png" if script == "attention.py" else "embeddings_vit.png"
    assert plt.imread(vit_run / png).ndim == 3


BAD_INPUT = [
    ("evaluate.py", ["--out_dir=nowhere"], "no checkpoint at nowhere/best.pt"),
    ("evaluate.py", ["--split=test"], "split must be 'val' or 'train'"),
    ("attention.py", ["--index=20"], "index must be in [0, 19] for the 20 test images, got 20"),
    ("attention.py", ["--image=README.md"], "cannot read the image README.md"),
    ("embeddings.py", ["--ckpt=newest"], "ckpt must be 'best' (best.pt) or 'last' (ckpt.pt)"),
]


@pytest.fixture(scope="module")
def bad_input(vit_run):
    """Each BAD_INPUT command, all in one process (conftest.run_scripts)."""
    return run_scripts([[f"analysis/{script}", *(args if any(a.startswith("--out_dir") for a in args)
                                                  else [f"--out_dir={vit_run}", *args])]
                        for script, args, _ in BAD_INPUT], env={"MPLBACKEND": "Agg"})


@pytest.mark.parametrize("case", range(len(BAD_INPUT)), ids=[" ".join([s, *a]) for s, a, _ in BAD_INPUT])
def test_bad_input_is_a_one_line_error(bad_input, case):
    assert_one_line_error(bad_input[case], BAD_INPUT[case][2])
