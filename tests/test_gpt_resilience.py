"""
Training that survives (GPT side): exact resume, preemption, atomic checkpoints, refusing unsafe
checkpoints, non-finite losses, and a clear one-line error for each kind of bad input.
"""

import argparse
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import data
import training
from conftest import run_scripts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = "".join(f"To be, or not to be: that is question {i % 7}. Whether 'tis nobler in the mind\n"
               for i in range(120))
CHECKPOINT = {"kind": "gpt", "model": {}, "model_args": {}, "config": {}}  # the keys every checkpoint has
TINY_MODEL = ["--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=4",
              "--eval_iters=3", "--log_interval=1", "--warmup_iters=2", "--lr_decay_iters=20",
              "--device=cpu", "--dtype=float32"]


def run(*args, check=True, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def last_error_line(result):
    assert result.returncode != 0, result.stdout
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A prepared dataset and a model trained 10 iterations on it."""
    root = tmp_path_factory.mktemp("trained")
    (root / "input.txt").write_text(TEXT)
    run("prepare/shakespeare_char.py", "--input", str(root / "input.txt"), "--out_dir", str(root / "data" / "tiny"))
    run("train_gpt.py", *TINY_MODEL, f"--data_dir={root / 'data'}", "--dataset=tiny", f"--out_dir={root / 'out'}",
        "--max_iters=10", "--eval_interval=10")
    return root


@pytest.fixture
def workdir(trained, tmp_path):
    """A private copy of the trained fixture, so a test may damage it."""
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    return tmp_path


def train_args(workdir, *extra):
    return ["train_gpt.py", *TINY_MODEL, f"--data_dir={workdir / 'data'}", "--dataset=tiny",
            f"--out_dir={workdir / 'out'}", *extra]


def checksums(directory):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.rglob("*")) if p.is_file()}


def final_state(out_dir):
    checkpoint = torch.load(out_dir / "ckpt.pt", weights_only=True)
    with open(out_dir / "log.jsonl") as f:
        log = [json.loads(line) for line in f]
    return checkpoint, [(r["iter"], r["train_loss"], r["val_loss"]) for r in log]


# -----------------------------------------------------------------------------
# exact resume and preemption

def test_stopping_and_resuming_is_bit_identical_to_a_straight_run(workdir):
    # dropout on: the resumed run must also restore the RNG that drives it
    common = ["--dropout=0.1", "--eval_interval=5", "--max_iters=20"]
    straight, split = workdir / "straight", workdir / "split"
    run(*train_args(workdir, *common, f"--out_dir={straight}"))
    run(*train_args(workdir, *common[:-1], "--max_iters=10", f"--out_dir={split}"))
    run(*train_args(workdir, *common, "--init_from=resume", f"--out_dir={split}"))
    (ckpt_a, log_a), (ckpt_b, log_b) = final_state(straight), final_state(split)
    assert ckpt_a["iter_num"] == ckpt_b["iter_num"] == 20
    assert log_a == log_b  # every eval of the two runs, exactly
    for name, tensor in ckpt_a["model"].items():
        assert torch.equal(tensor, ckpt_b["model"][name]), name


def test_sigterm_saves_and_the_resumed_run_matches_a_straight_run(workdir):
    common = ["--dropout=0.1", "--eval_interval=1000", "--max_iters=300", "--always_save_checkpoint=False"]
    straight, preempted = workdir / "straight", workdir / "preempted"
    run(*train_args(workdir, *common, f"--out_dir={straight}"))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, *train_args(workdir, *common, f"--out_dir={preempted}")],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:  # let it train a few steps, then preempt it
        if line.startswith("iter 5/"):
            process.send_signal(signal.SIGTERM)
            break
    output = process.stdout.read()
    assert process.wait(timeout=60) == 0
    assert "continue with the same command and --init_from=resume" in output
    stopped_at = torch.load(preempted / "ckpt.pt", weights_only=True)["iter_num"]
    assert 5 <= stopped_at < 300

    run(*train_args(workdir, *common, f"--out_dir={preempted}", "--init_from=auto"))
    (ckpt_a, log_a), (ckpt_b, log_b) = final_state(straight), final_state(preempted)
    assert log_a == log_b and ckpt_b["iter_num"] == 300
    for name, tensor in ckpt_a["model"].items():
        assert torch.equal(tensor, ckpt_b["model"][name]), name


def test_best_pt_keeps_the_best_eval_and_a_stop_writes_only_ckpt_pt(workdir):
    # always_save_checkpoint=False: best.pt at each eval that improves, ckpt.pt only when the run stops
    out_dir = workdir / "best"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, *train_args(workdir, "--eval_interval=5", "--max_iters=300",
                                                           "--always_save_checkpoint=False", f"--out_dir={out_dir}")],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("iter 23/"):
            process.send_signal(signal.SIGTERM)
            break
    output = process.stdout.read()
    assert process.wait(timeout=60) == 0, output
    with open(out_dir / "log.jsonl") as f:
        best_record = min((json.loads(line) for line in f if json.loads(line)["iter"] > 0), key=lambda r: r["val_loss"])
    best = torch.load(out_dir / "best.pt", weights_only=True)
    last = torch.load(out_dir / "ckpt.pt", weights_only=True)
    assert best["iter_num"] == best_record["iter"] <= 20 < 23 <= last["iter_num"]
    assert best["best_val_loss"] == best_record["val_loss"]
    assert "optimizer" not in best and "optimizer" in last  # best.pt: weights, not a second optimizer
    # sample.py reads best.pt unless told otherwise
    sample = ["sample.py", f"--out_dir={out_dir}", "--device=cpu", "--max_new_tokens=3", "--num_samples=1"]
    assert f"best.pt (iter {best['iter_num']}," in run(*sample).stderr
    assert f"ckpt.pt (iter {last['iter_num']}," in run(*sample, "--ckpt=last").stderr


def test_training_pads_the_vocabulary_to_a_multiple_of_64(trained):
    with open(trained / "data" / "tiny" / "meta.json") as f:
        vocab_size = json.load(f)["vocab_size"]
    model_args = torch.load(trained / "out" / "ckpt.pt", weights_only=True)["model_args"]
    assert vocab_size < 64 and model_args["vocab_size"] == 64 and model_args["tokenizer_vocab_size"] == vocab_size


def test_sample_compile_generates_through_the_compiled_model(workdir):
    # the eager backend: dynamo captures the graphs without inductor's minutes of code generation
    wrapper = ("import functools, runpy, sys, torch, torch._dynamo\n"
               "torch.compile = functools.partial(torch.compile, backend='eager')\n"
               "sys.argv = ['sample.py', *sys.argv[1:]]\n"
               "runpy.run_path('sample.py', run_name='__main__')\n"
               "print('graphs:', torch._dynamo.utils.counters['stats']['unique_graphs'], file=sys.stderr)\n")
    args = [f"--out_dir={workdir / 'out'}", "--device=cpu", "--max_new_tokens=8", "--num_samples=1", "--temperature=0"]
    compiled = run("-c", wrapper, *args, "--compile=True")
    assert int(compiled.stderr.split("graphs:")[1]) > 0
    assert compiled.stdout == run("sample.py", *args).stdout


def test_a_resume_drops_log_lines_after_its_checkpoint_and_stale_temp_files(workdir):
    out = workdir / "out"
    with open(out / "log.jsonl", "a") as f:  # an eval logged at 15, then the run was killed before it saved
        f.write(json.dumps({"iter": 15, "train_loss": 9.0, "val_loss": 9.0}) + "\n")
    stale = out / ".tmp-4194305-ckpt.pt"  # above Linux's largest pid: no process has it
    stale.write_bytes(b"half a checkpoint")
    run(*train_args(workdir, "--init_from=resume", "--max_iters=20", "--eval_interval=5"))
    with open(out / "log.jsonl") as f:
        log = [json.loads(line) for line in f]
    assert [r["iter"] for r in log] == [0, 10, 15, 20] and log[2]["val_loss"] != 9.0
    with open(out / "log.csv") as f:
        assert [line.split(",")[0] for line in f][1:] == ["0", "10", "15", "20"]
    assert not stale.exists()


def test_init_from_auto_starts_from_scratch_without_a_checkpoint(workdir):
    result = run(*train_args(workdir, "--init_from=auto", "--max_iters=2", f"--out_dir={workdir / 'fresh'}"))
    assert "iter 0/" in result.stdout


# -----------------------------------------------------------------------------
# checkpoints on disk

def test_a_crash_while_saving_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "ckpt.pt")
    training.save_checkpoint({**CHECKPOINT, "iter_num": 1, "w": torch.ones(1000)}, path)

    def dies_halfway(obj, f):
        f.write(b"\x80\x02 half a checkpoint")
        raise KeyboardInterrupt  # the process is being killed mid-write

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        training.save_checkpoint({**CHECKPOINT, "iter_num": 2, "w": torch.zeros(1000)}, path)
    assert training.load_checkpoint(path, "GPT")["iter_num"] == 1
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_a_full_disk_is_a_one_line_error_naming_the_file_and_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "ckpt.pt")
    training.save_checkpoint({**CHECKPOINT, "iter_num": 1}, path)

    def disk_full(obj, f):
        f.write(b"\x80\x02 the first bytes")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what torch.save raises on a full disk

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(SystemExit, match=f"^error: could not write {path}: No space left on device; free some space"):
        training.save_checkpoint({**CHECKPOINT, "iter_num": 2}, path)
    assert training.load_checkpoint(path, "GPT")["iter_num"] == 1 and os.listdir(tmp_path) == ["ckpt.pt"]


def test_sigkill_at_any_moment_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    writer = (f"import sys, torch; sys.path.insert(0, {ROOT!r}); import training\n"
              f"i = 0\n"
              f"while True:\n"
              f"    i += 1; training.save_checkpoint({{**{CHECKPOINT!r}, 'iter_num': i, 'w': torch.full((200_000,), float(i))}}, {str(path)!r})\n")
    for attempt in range(5):
        process = subprocess.Popen([sys.executable, "-c", writer])
        deadline = time.time() + 30
        while not path.exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.1 + 0.13 * attempt)
        process.send_signal(signal.SIGKILL)
        process.wait()
        checkpoint = training.load_checkpoint(str(path), "GPT")
        assert torch.equal(checkpoint["w"], torch.full((200_000,), float(checkpoint["iter_num"])))


def test_a_malicious_pickle_is_refused_not_executed(workdir):
    marker = workdir / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for name in ("ckpt.pt", "best.pt"):  # what train_gpt.py resumes from, and what sample.py reads
        torch.save({"model": Exploit()}, workdir / "out" / name)
    for result in (run("sample.py", f"--out_dir={workdir / 'out'}", check=False),
                   run(*train_args(workdir, "--init_from=resume"), check=False)):
        assert "was refused as unsafe" in last_error_line(result)
    assert not marker.exists()


def test_export_writes_safetensors_equal_to_the_checkpoint(workdir):
    from safetensors.torch import load_file
    run(*train_args(workdir, "--init_from=resume", "--max_iters=12", "--eval_interval=12", "--export=safetensors"))
    exported = load_file(workdir / "out" / "model.safetensors")
    state = torch.load(workdir / "out" / "ckpt.pt", weights_only=True)["model"]
    assert exported.keys() <= state.keys() and "transformer.h.0.attn.c_attn.weight" in exported
    for name, tensor in exported.items():
        assert torch.equal(tensor, state[name])


# -----------------------------------------------------------------------------
# non-finite losses

def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(workdir):
    before = checksums(workdir / "out")
    result = run(*train_args(workdir, "--init_from=resume", "--max_iters=20", "--learning_rate=1e30",
                             "--decay_lr=False"), check=False)
    assert "non-finite loss/gradient at iter" in last_error_line(result)
    assert checksums(workdir / "out")[workdir / "out" / "ckpt.pt"] == before[workdir / "out" / "ckpt.pt"]


def test_skipping_non_finite_steps_never_saves_a_broken_model(workdir):
    before = checksums(workdir / "out")[workdir / "out" / "ckpt.pt"]
    result = run(*train_args(workdir, "--init_from=resume", "--max_iters=20", "--eval_interval=5",
                             "--learning_rate=1e30", "--decay_lr=False", "--on_nonfinite=skip"))
    assert "non-finite gradient, step skipped" in result.stdout
    assert checksums(workdir / "out")[workdir / "out" / "ckpt.pt"] == before


# -----------------------------------------------------------------------------
# bad input: one line naming the fix, and nothing on disk damaged

def truncate_train_bin(workdir):
    path = workdir / "data" / "tiny" / "train.bin"
    path.write_bytes(path.read_bytes()[:-100])


def shrink_vocab_in_meta(workdir):
    path = workdir / "data" / "tiny" / "meta.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "vocab_size": 5, "itos": meta["itos"][:5]}))


def checkpoint_of_another_kind(workdir):
    for name in ("ckpt.pt", "best.pt"):
        path = workdir / "out" / name
        torch.save({**torch.load(path, weights_only=True), "kind": "vit"}, path)


def write_meta(text):
    return lambda workdir: (workdir / "data" / "tiny" / "meta.json").write_text(text)


def remove_val_bin(workdir):
    (workdir / "data" / "tiny" / "val.bin").unlink()


def truncate_best_pt(workdir):
    path = workdir / "out" / "best.pt"
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def change_best_pt(change):
    """best.pt replaced by change(its contents)."""
    def damage(workdir):
        path = workdir / "out" / "best.pt"
        torch.save(change(torch.load(path, weights_only=True)), path)
    return damage


def best_pt_as_ckpt_pt(workdir):
    shutil.copy(workdir / "out" / "best.pt", workdir / "out" / "ckpt.pt")


def best_pt_a_directory(workdir):
    (workdir / "out" / "best.pt").unlink()
    (workdir / "out" / "best.pt").mkdir()


def latin1_file(workdir):
    (workdir / "latin1.txt").write_bytes("Où est la café?\n".encode("latin-1"))


def bpe_tokenizer_file(text):
    """The dataset turned into a bpe.py one whose tokenizer file holds text (vocab_size kept), and
    best.pt pointed at this copy of the dataset."""
    def damage(workdir):
        checkpoint = torch.load(workdir / "out" / "best.pt", weights_only=True)
        checkpoint["config"]["data_dir"] = str(workdir / "data")
        torch.save(checkpoint, workdir / "out" / "best.pt")
        path = workdir / "data" / "tiny" / "meta.json"
        meta = json.loads(path.read_text())
        path.write_text(json.dumps({"vocab_size": meta["vocab_size"], "tokenizer": "bpe", "tokenizer_file": "tokenizer.bpe"}))
        if text is not None:
            (workdir / "data" / "tiny" / "tokenizer.bpe").write_text(text)
    return damage


BPE_HEADER = "tinyformers-bpe v1\n"


def empty_file(workdir):
    (workdir / "empty.txt").write_text("")


def short_dataset(workdir):
    """data/tiny replaced by a dataset of 12 train tokens, fewer than one window of block_size=32."""
    data.write_dataset(str(workdir / "data" / "tiny"), [0, 1, 2, 3] * 3, [3, 2, 1, 0] * 20, {"vocab_size": 4})


def bpe_dataset_with_another_tokenizer(workdir):
    """data/bpe as a prepare killed mid-way left it before datasets were swapped in whole: one run's bins
    and meta.json beside another run's tokenizer file."""
    import bpe
    tok = bpe.train(TEXT, 300)
    data.write_dataset(str(workdir / "data" / "bpe"), tok.encode_ordinary(TEXT[:6000]), tok.encode_ordinary(TEXT[6000:]),
                       {"vocab_size": tok.n_vocab, "tokenizer": "bpe", "tokenizer_file": "tokenizer.bpe"}, tokenizer=tok)
    bpe.train(TEXT, 280).save(workdir / "data" / "bpe" / "tokenizer.bpe")


BAD_INPUT = {
    "truncated bin": (truncate_train_bin, ["train_gpt.py"], [],
                      "train.bin is not the file WORKDIR/data/tiny/meta.json was written with: damaged"),
    "missing bin": (remove_val_bin, ["train_gpt.py"], [],
                    "val.bin is missing; prepare the dataset first"),
    "ids beyond vocab": (shrink_vocab_in_meta, ["train_gpt.py"], ["--max_iters=1"],
                         "the dataset and its meta.json disagree"),
    "meta disagrees with checkpoint": (shrink_vocab_in_meta, ["train_gpt.py"], ["--init_from=resume"],
                                       "meta.json says 5: wrong --dataset?"),
    "block_size beyond the model": (None, ["train_gpt.py"], ["--init_from=resume", "--block_size=64"],
                                    "block_size=64 is larger than the model's context of 32"),
    "checkpoint of another model": (checkpoint_of_another_kind, ["sample.py"], [],
                                    "is a 'vit' checkpoint, not a GPT's"),
    "no checkpoint": (None, ["sample.py"], ["--out_dir=nowhere"],
                      "no checkpoint at nowhere/best.pt; train first"),
    "zero samples": (None, ["sample.py"], ["--num_samples=0"], "num_samples must be at least 1, got 0"),
    "negative temperature": (None, ["sample.py"], ["--temperature=-0.5"], "temperature must be >= 0"),
    "mistyped key": (None, ["train_gpt.py"], ["--max_iter=5"], "did you mean max_iters"),
    # every numeric setting's range is checked by its script (configurator.check_settings), before anything is written
    "zero batch": (None, ["train_gpt.py"], ["--batch_size=0"], "batch_size must be at least 1, got 0"),
    "zero block": (None, ["train_gpt.py"], ["--block_size=0"], "block_size must be at least 1, got 0"),
    "zero heads": (None, ["train_gpt.py"], ["--n_head=0"], "n_head must be at least 1, got 0"),
    "zero eval interval": (None, ["train_gpt.py"], ["--eval_interval=0"], "eval_interval must be at least 1, got 0"),
    "no eval batches": (None, ["train_gpt.py"], ["--eval_iters=0"], "eval_iters must be at least 1, got 0"),
    "negative iterations": (None, ["train_gpt.py"], ["--max_iters=-5"], "max_iters must be >= 0, got -5"),
    "no micro-steps": (None, ["train_gpt.py"], ["--gradient_accumulation_steps=0"],
                       "gradient_accumulation_steps must be at least 1, got 0"),
    "negative learning rate": (None, ["train_gpt.py"], ["--learning_rate=-1e-3"], "learning_rate must be > 0"),
    "beta of 1": (None, ["train_gpt.py"], ["--beta2=1.0"], "beta2 must be in [0, 1), got 1.0"),
    "negative top_k": (None, ["sample.py"], ["--top_k=-1"], "top_k must be >= 0, got -1"),
    "meta.json not JSON": (write_meta("{vocab_size: 5"), ["train_gpt.py"], [], "meta.json is not valid JSON"),
    "meta.json without vocab_size": (write_meta('{"tokenizer": "char"}'), ["train_gpt.py"], [],
                                     "has no valid vocab_size (a positive integer), got None"),
    "meta.json vocab_size a string": (write_meta('{"vocab_size": "65"}'), ["train_gpt.py"], [],
                                      "has no valid vocab_size (a positive integer), got '65'"),
    "itos shorter than the vocabulary": (write_meta('{"vocab_size": 3, "tokenizer": "char", "itos": ["a"]}'),
                                         ["train_gpt.py"], [], "needs an itos list of vocab_size=3 characters, got 1"),
    "cuda without a GPU": (None, ["train_gpt.py"], ["--device=cuda"], "device=cuda, but PyTorch sees no CUDA GPU"),
    "config with a syntax error": (lambda w: (w / "broken.py").write_text("batch_size = = 3\n"), ["train_gpt.py"],
                                   ["BROKEN_CONFIG"], "could not be run (line 1): SyntaxError"),
    "config with a failing import": (lambda w: (w / "broken.py").write_text("import not_a_module\n"), ["train_gpt.py"],
                                     ["BROKEN_CONFIG"], "could not be run: ModuleNotFoundError"),
    # a fresh run never silently replaces a trained model; a resume never silently ignores a changed shape
    "scratch over a trained run": (None, ["train_gpt.py"], ["--max_iters=1"], "already holds a trained model (ckpt.pt, best.pt)"),
    "changed architecture on resume": (None, ["train_gpt.py"], ["--init_from=resume", "--n_layer=3", "--mlp=relu"],
                                       "was trained with --n_layer=2 (now 3), --mlp=gelu (now relu): resume with the checkpoint's "
                                       "settings (--n_layer=2 --mlp=gelu)"),
    "mistyped value": (None, ["train_gpt.py"], ["--dropout=high"], "must be float like its default"),
    "unknown device": (None, ["train_gpt.py"], ["--device=gpu"], "device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
    "bad choice": (None, ["train_gpt.py"], ["--init_from=gtp2"], "init_from must be scratch, resume, auto"),
    "unknown optimizer": (None, ["train_gpt.py"], ["--optimizer=sgd"], "optimizer must be 'adamw' or 'muon', got 'sgd'"),
    # checkpoints (each other way one can be broken: BROKEN_FILES below)
    "unsafe checkpoint": (change_best_pt(lambda c: {**c, "extra": argparse.Namespace(a=1)}), ["sample.py"], [],
                          "best.pt was refused as unsafe: it holds Python objects other than tensors"),
    "resuming from weights only": (best_pt_as_ckpt_pt, ["train_gpt.py"], ["--init_from=resume"],
                                   "ckpt.pt lacks optimizer, rng: best.pt holds weights only, resume needs a ckpt.pt"),
    # where output goes
    "out_dir a file": (None, ["train_gpt.py"], ["--out_dir=WORKDIR/input.txt"], "input.txt is a file, not a directory"),
    "out_dir under a file": (None, ["train_gpt.py"], ["--out_dir=WORKDIR/input.txt/out"],
                             "could not create the directory WORKDIR/input.txt/out: Not a directory"),
    "prepare into a file": (None, ["prepare/shakespeare_char.py"], ["--input", "WORKDIR/input.txt", "--out_dir",
                                                                    "WORKDIR/input.txt"], "a file has that name"),
    # text read as input
    "prompt not UTF-8": (latin1_file, ["sample.py"], ["--start=FILE:WORKDIR/latin1.txt"],
                         "latin1.txt is not UTF-8 text (invalid start byte: byte 0xf9); convert it first"),
    "prompt file a directory": (None, ["sample.py"], ["--start=FILE:WORKDIR"], "is a directory, not a text file"),
    "corpus not UTF-8": (latin1_file, ["prepare/shakespeare_char.py"], ["--input", "WORKDIR/latin1.txt", "--out_dir",
                                                                        "WORKDIR/new"], "latin1.txt is not UTF-8 text"),
    "bpe corpus not UTF-8": (latin1_file, ["prepare/text_bpe.py"], ["--input", "WORKDIR/latin1.txt", "--out_dir",
                                                                    "WORKDIR/new"], "latin1.txt is not UTF-8 text"),
    # a dataset's bpe.py tokenizer file end to end (each way one can be broken: BROKEN_FILES below)
    "tokenizer with a bad pattern": (bpe_tokenizer_file(BPE_HEADER + '"[a-"\n{}\n'), ["sample.py"], [],
                                     "the pattern (line 2) is not a valid regex"),
    "meta.json fingerprints not a table": (write_meta('{"vocab_size": 5, "fingerprints": 7}'), ["train_gpt.py"], [],
                                           "fingerprints must map file names to strings, got 7"),
    "meta.json bpe without its file": (write_meta('{"vocab_size": 5, "tokenizer": "bpe"}'), ["train_gpt.py"], [],
                                       "a bpe tokenizer needs the name of its tokenizer_file"),
    # a prepare replaces a dataset whole, with a sane one, or not at all (killed at any step: test_bad_input.py)
    "empty corpus over a dataset": (empty_file, ["prepare/shakespeare_char.py"], ["--input", "WORKDIR/empty.txt", "--out_dir",
                                    "WORKDIR/data/tiny"], "empty.txt holds no text (it is empty): nothing to prepare"),
    "empty bpe corpus over a dataset": (empty_file, ["prepare/text_bpe.py"], ["--input", "WORKDIR/empty.txt", "--out_dir",
                                        "WORKDIR/data/tiny"], "empty.txt holds no text (it is empty): nothing to prepare"),
    "prepare into a folder of datasets": (None, ["prepare/shakespeare_char.py"], ["--input", "WORKDIR/input.txt", "--out_dir",
                                          "WORKDIR/data"], "holds the folder 'tiny', and a dataset replaces its whole directory"),
    "dataset of two prepares": (bpe_dataset_with_another_tokenizer, ["train_gpt.py"], ["--dataset=bpe"],
                                "tokenizer.bpe is not the file WORKDIR/data/bpe/meta.json was written with"),
    "dataset shorter than one block": (short_dataset, ["train_gpt.py"], [],
                                       "train.bin has only 12 tokens, too few for block_size=32"),
    # bpe.py's command line: empty inputs, and the output path checked before training
    "bpe on an empty file": (empty_file, ["bpe.py"], ["train", "--input", "WORKDIR/empty.txt", "--vocab_size", "300", "--out",
                             "WORKDIR/t.bpe"], "input file WORKDIR/empty.txt is empty"),
    "empty special token": (None, ["bpe.py"], ["train", "--input", "WORKDIR/input.txt", "--vocab_size", "300", "--special", "",
                            "--out", "WORKDIR/t.bpe"], "special tokens must be non-empty strings, got ['']"),
    "bpe output in a missing directory": (None, ["bpe.py"], ["train", "--input", "WORKDIR/input.txt", "--vocab_size", "300",
                                          "--out", "WORKDIR/nowhere/t.bpe"], "the directory WORKDIR/nowhere does not exist"),
    "bpe output a directory": (None, ["bpe.py"], ["train", "--input", "WORKDIR/input.txt", "--vocab_size", "300", "--out",
                               "WORKDIR/data"], "--out WORKDIR/data is a directory: name the tokenizer file to write"),
}


@pytest.fixture(scope="module")
def bad_input(trained, tmp_path_factory):
    """Each BAD_INPUT case run in its own copy of the trained fixture, damaged as the case says, all
    in one process (conftest.run_scripts): case -> (its copy, the copy's checksums before, the result)."""
    cases = {}
    for case, (damage, script, extra, message) in BAD_INPUT.items():
        workdir = tmp_path_factory.mktemp("bad-input")
        shutil.copytree(trained, workdir, dirs_exist_ok=True)
        if damage:
            damage(workdir)
        extra = [str(workdir / "broken.py") if arg == "BROKEN_CONFIG" else arg.replace("WORKDIR", str(workdir))
                 for arg in extra]
        if script == ["train_gpt.py"]:
            args = train_args(workdir, *extra)
        elif script == ["sample.py"]:
            args = ["sample.py", f"--out_dir={workdir / 'out'}", "--device=cpu", "--max_new_tokens=3", *extra]
            if "--out_dir=nowhere" in extra:
                args.remove(f"--out_dir={workdir / 'out'}")
        else:
            args = [*script, *extra]
        cases[case] = (workdir, checksums(workdir), args)
    results = run_scripts([args for _, _, args in cases.values()])
    return {case: (workdir, before, result) for (case, (workdir, before, _)), result in zip(cases.items(), results)}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_a_one_line_error_and_damages_nothing(bad_input, case):
    workdir, before, result = bad_input[case]
    error = last_error_line(result)
    assert error.startswith("error: ") and BAD_INPUT[case][3].replace("WORKDIR", str(workdir)) in error, error
    assert "Traceback" not in result.stderr
    assert checksums(workdir) == before


def read_best_pt(workdir):
    return training.load_trained(str(workdir / "out"), "best", "GPT")


def read_tokenizer(workdir):
    data_dir = str(workdir / "data" / "tiny")
    return data.load_tokenizer(data.read_meta(data_dir, ""), data_dir)


# Every file a script reads goes through one function of training.py per kind, which the scripts
# call first: each broken file, read through it, is one line naming the file and the fix.
BROKEN_FILES = {
    "truncated checkpoint": (truncate_best_pt, read_best_pt, "best.pt is truncated or not a checkpoint"),
    "checkpoint that is a list": (change_best_pt(lambda c: [c]), read_best_pt, "is a 'list' checkpoint, not a GPT's"),
    "checkpoint without model_args": (change_best_pt(lambda c: {k: v for k, v in c.items() if k != "model_args"}),
                                      read_best_pt, "best.pt lacks model_args: it was not written by this project"),
    "checkpoint a directory": (best_pt_a_directory, read_best_pt, "best.pt is a directory, not a checkpoint file"),
    "tokenizer file missing": (bpe_tokenizer_file(None), read_tokenizer, "tokenizer.bpe is missing; prepare the dataset again"),
    "tokenizer not a bpe.py file": (bpe_tokenizer_file("hello\n"), read_tokenizer, "not a bpe.py tokenizer file"),
    "tokenizer pattern not JSON": (bpe_tokenizer_file(BPE_HEADER + "[a-\n{}\n"), read_tokenizer,
                                   "the pattern (line 2) and special tokens (line 3) must be JSON"),
    "tokenizer with bad specials": (bpe_tokenizer_file(BPE_HEADER + 'null\n["<|endoftext|>"]\n'), read_tokenizer,
                                    "the special tokens (line 3) must map strings to ids >= 0"),
    "tokenizer with a bad rank line": (bpe_tokenizer_file(BPE_HEADER + 'null\n{}\nYQ== 0\n!!! 1\n'), read_tokenizer,
                                       "rank line 2 is not '<base64 token> <rank>'"),
    "tokenizer with an id twice": (bpe_tokenizer_file(BPE_HEADER + 'null\n{"<|endoftext|>": 0}\nYQ== 0\n'), read_tokenizer,
                                   "token ids must be unique"),
}


@pytest.mark.parametrize("case", list(BROKEN_FILES))
def test_a_broken_file_is_a_one_line_error_naming_it(workdir, case):
    damage, read, message = BROKEN_FILES[case]
    damage(workdir)
    with pytest.raises(SystemExit) as error:
        read(workdir)
    assert str(error.value).startswith("error: ") and "\n" not in str(error.value) and message in str(error.value)


def test_overwrite_lets_a_fresh_run_replace_a_trained_one(workdir):
    before = torch.load(workdir / "out" / "ckpt.pt", weights_only=True)["iter_num"]
    run(*train_args(workdir, "--max_iters=4", "--eval_interval=2", "--overwrite=True"))
    assert before == 10 and torch.load(workdir / "out" / "ckpt.pt", weights_only=True)["iter_num"] == 4


def test_sampling_from_another_directory_finds_the_runs_dataset(workdir, tmp_path):
    # training started in workdir with data_dir and out_dir relative to it; sample.py runs elsewhere
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    subprocess.run([sys.executable, os.path.join(ROOT, "train_gpt.py"), *TINY_MODEL, "--data_dir=data", "--dataset=tiny",
                    "--out_dir=relative", "--max_iters=2", "--eval_interval=2"], cwd=workdir, env=env, check=True,
                   capture_output=True)
    result = subprocess.run([sys.executable, os.path.join(ROOT, "sample.py"), f"--out_dir={workdir / 'relative'}",
                             "--device=cpu", "--max_new_tokens=5", "--num_samples=1"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_ctrl_c_while_sampling_prints_what_was_generated_and_stops_quietly(workdir):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "sample.py", f"--out_dir={workdir / 'out'}", "--device=cpu",
                                "--max_new_tokens=100000", "--num_samples=1", "--start=To be"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "this can take a while" in process.stderr.readline() + process.stderr.readline()  # warned up front
    time.sleep(2)  # generating
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err and "(stopped)" in err
    assert out.startswith("To be") and len(out) > len("To be\n")


def test_a_prompt_longer_than_the_context_is_cropped_with_a_warning(workdir):
    result = run("sample.py", f"--out_dir={workdir / 'out'}", "--device=cpu", "--start=" + TEXT[:100],
                 "--max_new_tokens=5", "--num_samples=1")
    assert "longer than the model's context of 32" in result.stderr
    assert result.stdout.startswith(TEXT[:100])


def test_pretrained_gpt2_weights_need_a_dataset_in_gpt2_tokens(workdir):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=32, vocab_size=50257)
    transformers.GPT2LMHeadModel(config).save_pretrained(workdir / "hf-gpt2")
    before = checksums(workdir / "out")
    result = run(*train_args(workdir, f"--init_from={workdir / 'hf-gpt2'}"), check=False)
    assert "needs a dataset in GPT-2 tokens, but" in last_error_line(result)
    assert checksums(workdir / "out") == before
