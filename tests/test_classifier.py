"""train_classifier.py and model_gpt.GPTClassifier: learning, padding, metrics, resume, bad input."""

import json
import os
import random
import runpy
import signal
import subprocess
import sys

import pytest
import torch

from model_gpt import GPT, GPTClassifier, GPTConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = "the a cat dog sat on mat red blue green run jump fast slow big small tree house".split()
TINY = ["--tokenizer=char", "--n_layer=2", "--n_head=2", "--n_embd=64", "--block_size=64", "--batch_size=16",
        "--warmup_iters=10", "--log_interval=1", "--device=cpu", "--dtype=float32"]


def write_keyword_set(path, n, seed, labels=("fruit", "none")):
    """Texts of random words; the label says whether "banana" is among them."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 10))]
            has_keyword = rng.random() < 0.5
            if has_keyword:
                words.insert(rng.randrange(len(words) + 1), "banana")
            f.write(json.dumps({"text": " ".join(words), "label": labels[0] if has_keyword else labels[1]}) + "\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("keyword")
    write_keyword_set(root / "train.jsonl", 600, seed=0)
    write_keyword_set(root / "val.jsonl", 200, seed=1)
    return root


def run(*args, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}
    result = subprocess.run([sys.executable, "train_classifier.py", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def data_args(data, out_dir):
    return [f"--train_file={data / 'train.jsonl'}", f"--val_file={data / 'val.jsonl'}", f"--out_dir={out_dir}"]


def read_log(out_dir):
    with open(out_dir / "log.jsonl") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def trained(data):
    out_dir = data / "out"
    result = run(*data_args(data, out_dir), *TINY, "--max_iters=80", "--lr_decay_iters=80", "--eval_interval=40")
    return out_dir, result


def test_a_tiny_model_learns_a_keyword_task(trained):
    out_dir, result = trained
    with open(out_dir / "eval.json") as f:
        evaluation = json.load(f)
    assert evaluation["accuracy"] >= 0.95, result.stdout
    assert evaluation["majority_baseline_accuracy"] < 0.6
    assert (out_dir / "confusion_matrix.png").stat().st_size > 1000


def test_eval_json_matches_a_hand_count_of_the_best_models_predictions(data, trained):
    out_dir, _ = trained
    with open(out_dir / "eval.json") as f:
        evaluation = json.load(f)
    names = evaluation["class_names"]
    assert names == ["fruit", "none"]  # string labels are numbered in sorted order
    with open(data / "val.jsonl") as f:
        rows = [json.loads(line) for line in f]
    labels = [names.index(row["label"]) for row in rows]

    # the predictions are best.pt's: recompute them one text at a time
    checkpoint = torch.load(out_dir / "best.pt", weights_only=True)
    assert checkpoint["iter_num"] == evaluation["iter"]
    model = GPTClassifier(GPT(GPTConfig(**checkpoint["model_args"])), len(names))
    model.load_state_dict(checkpoint["model"])
    stoi = {ch: i for i, ch in enumerate(checkpoint["tokenizer_meta"]["itos"])}
    with torch.no_grad():
        predictions = [int(model.eval()(torch.tensor([[stoi[c] for c in row["text"]]]))[0].argmax()) for row in rows]
    assert predictions == evaluation["predictions"]

    matrix = [[0, 0], [0, 0]]
    for label, prediction in zip(labels, predictions):
        matrix[label][prediction] += 1
    assert evaluation["confusion_matrix"] == matrix
    for c, name in enumerate(names):
        tp = matrix[c][c]
        precision = tp / (matrix[0][c] + matrix[1][c])
        recall = tp / sum(matrix[c])
        assert evaluation["per_class"][name]["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
        assert evaluation["per_class"][name]["support"] == labels.count(c)
    macro_f1 = sum(evaluation["per_class"][name]["f1"] for name in names) / 2
    assert evaluation["macro_f1"] == pytest.approx(macro_f1)
    assert evaluation["accuracy"] == pytest.approx(sum(p == l for p, l in zip(predictions, labels)) / len(labels))


def test_predict_prints_the_label_and_the_probabilities(trained):
    out_dir, _ = trained
    lines = run(f"--out_dir={out_dir}", "--predict=the big banana sat on the mat").stdout.splitlines()
    assert lines[0] == "fruit"
    probs = {line.split()[1]: float(line.split()[0]) for line in lines[1:]}
    assert set(probs) == {"fruit", "none"} and probs["fruit"] > 0.5
    assert sum(probs.values()) == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize("pos_encoding", ["learned", "rope"])
def test_left_and_right_padding_give_the_logits_of_one_text_at_a_time(pos_encoding):
    torch.manual_seed(0)
    model = GPTClassifier(GPT(GPTConfig(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=32,
                                        pos_encoding=pos_encoding)), n_classes=3).eval()
    texts = [torch.randint(1, 50, (n,)).tolist() for n in (5, 11, 8)]
    with torch.no_grad():
        alone = torch.cat([model(torch.tensor([t]))[0] for t in texts])
        for side in ("left", "right"):
            idx = torch.zeros(3, 11, dtype=torch.long)
            mask = torch.zeros(3, 11, dtype=torch.long)
            for row, t in enumerate(texts):
                start = 0 if side == "right" else 11 - len(t)
                idx[row, start:start + len(t)] = torch.tensor(t)
                mask[row, start:start + len(t)] = 1
            idx[mask == 0] = 7  # whatever id pads, it must not matter
            logits, _ = model(idx, mask)
            torch.testing.assert_close(logits, alone, atol=1e-5, rtol=1e-5)


def test_freezing_trains_only_the_last_blocks_ln_f_and_the_head():
    model = GPTClassifier(GPT(GPTConfig(block_size=16, vocab_size=50, n_layer=3, n_head=2, n_embd=32)), 2)
    model.freeze(1)
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained and all(name.startswith(("gpt.transformer.h.2.", "gpt.transformer.ln_f.", "head."))
                           for name in trained)
    assert "head.weight" in trained and "gpt.transformer.ln_f.weight" in trained


def test_stopping_and_resuming_is_bit_identical_to_a_straight_run(data):
    # dropout on, SIGTERM at an arbitrary step: the resumed run must restore the RNG and the loss window
    common = [*TINY, "--dropout=0.1", "--max_iters=30", "--lr_decay_iters=30", "--eval_interval=10", "--batch_size=8"]
    straight, preempted = data / "straight", data / "preempted"
    run(*data_args(data, straight), *common)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "train_classifier.py", *data_args(data, preempted), *common],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("iter 13:"):
            process.send_signal(signal.SIGTERM)
            break
    output = process.stdout.read()
    assert process.wait(timeout=120) == 0, output
    assert "continue with the same command and --init_from=resume" in output
    stopped_at = torch.load(preempted / "ckpt.pt", weights_only=True)["iter_num"]
    assert 13 <= stopped_at < 30, stopped_at  # usually between two evaluations; how far past 13 depends on the machine
    run(*data_args(data, preempted), *common, "--init_from=auto")
    assert read_log(straight) == [{**r, "elapsed_s": s["elapsed_s"]} for r, s in zip(read_log(preempted), read_log(straight))]
    assert len(read_log(straight)) == 3
    a = torch.load(straight / "ckpt.pt", weights_only=True)
    b = torch.load(preempted / "ckpt.pt", weights_only=True)
    assert a["iter_num"] == b["iter_num"] == 30
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name


def error_message(monkeypatch, *args):
    """Run train_classifier.py in this process (the errors come before any training) and return the
    message it exits with: training.fail's one line, not a traceback."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["train_classifier.py", *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(os.path.join(ROOT, "train_classifier.py"), run_name="__main__")
    message = str(exit_info.value.code)
    assert len(message.splitlines()) == 1, message
    return message


@pytest.mark.parametrize("row, message", [
    ({"text": "a cat"}, 'line 2 must be an object with "text" and "label"'),
    ({"text": "a cat", "label": 1.5}, "line 2: the label must be an int >= 0 or a non-empty string, got 1.5"),
    ({"text": "a cat", "label": True}, "the label must be an int >= 0 or a non-empty string, got True"),
    ({"text": "  ", "label": "none"}, "line 2: the text must be a non-empty string, got '  '"),
    ({"text": "a cat", "label": 3}, "labels must be all ints or all strings"),
])
def test_bad_examples_are_one_line_errors(monkeypatch, tmp_path, data, row, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "the dog", "label": "none"}) + "\n" + json.dumps(row) + "\n")
    line = error_message(monkeypatch, f"--train_file={bad}", f"--val_file={data / 'val.jsonl'}",
                         f"--out_dir={tmp_path / 'out'}", *TINY)
    assert line.startswith(f"error: {bad} line 2") or "all ints or all strings" in line, line
    assert message in line, line


def test_a_label_count_that_changes_on_resume_is_a_one_line_error(monkeypatch, tmp_path, data, trained):
    out_dir, _ = trained
    three = tmp_path / "three.jsonl"
    write_keyword_set(three, 60, seed=2, labels=("fruit", "other"))
    with open(three, "a") as f:
        f.write(json.dumps({"text": "a dog", "label": "none"}) + "\n")
    message = error_message(monkeypatch, f"--train_file={three}", f"--val_file={data / 'val.jsonl'}",
                            f"--out_dir={out_dir}", *TINY, "--init_from=resume")
    assert message == (f"error: {out_dir / 'ckpt.pt'} has 2 classes, the data has 3: "
                                       f"resume with the data it was trained on")
