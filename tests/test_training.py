"""training.py: config overrides, the LR schedule, checkpoints and tokenizers."""

import ast
import math
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import configurator
import data
import training
from conftest import needs  # noqa: E402

DEFAULTS = {"batch_size": 12, "learning_rate": 6e-4, "compile": True, "device": "cuda",
            "init_from": "scratch", "wandb_run_name": None}


def test_command_line_overrides_are_parsed_and_typed():
    config = configurator.configure(DEFAULTS, ["--batch_size=32", "--learning_rate", "1", "--compile=False",
                                           "--device=cpu", "--init_from", "123", "--wandb_run_name=run1"])
    assert config == {"batch_size": 32, "learning_rate": 1.0, "compile": False, "device": "cpu",
                      "init_from": "123", "wandb_run_name": "run1"}
    assert isinstance(config["learning_rate"], float)


def test_config_file_then_overrides_in_order(tmp_path):
    path = tmp_path / "cfg.py"
    path.write_text("import math\nbatch_size = 64\nlearning_rate = 3e-4\n_private = 1\n")
    config = configurator.configure(DEFAULTS, [str(path), "--batch_size=8"])
    assert config["batch_size"] == 8 and config["learning_rate"] == 3e-4


def test_a_typo_names_the_nearest_keys():
    with pytest.raises(SystemExit, match=r"unknown config key 'batch_sise' .*did you mean batch_size\?"):
        configurator.configure(DEFAULTS, ["--batch_sise=3"])


@pytest.mark.parametrize("arg, message", [
    ("--batch_size=1e3", "must be int like its default 12, got 1000.0"),
    ("--compile=yes", "must be True or False, got 'yes'"),
    ("--batch_size", "has no value"),
])
def test_a_bad_value_is_a_one_line_error(arg, message):
    with pytest.raises(SystemExit, match=message):
        configurator.configure(DEFAULTS, [arg])


def test_a_typo_in_a_config_file_is_caught(tmp_path):
    path = tmp_path / "cfg.py"
    path.write_text("learning_rat = 1e-3\n")
    with pytest.raises(SystemExit, match=r"unknown config key 'learning_rat' \(from .*cfg.py\); did you mean learning_rate"):
        configurator.configure(DEFAULTS, [str(path)])


def test_learning_rate_schedule_by_hand():
    lr = lambda it: training.learning_rate_at(it, 1.0, warmup_iters=10, lr_decay_iters=110, min_lr=0.1)
    assert lr(0) == pytest.approx(1 / 11)
    assert lr(9) == pytest.approx(10 / 11)
    assert lr(10) == pytest.approx(1.0)
    assert lr(60) == pytest.approx(0.1 + 0.5 * (1 + math.cos(math.pi / 2)) * 0.9)  # halfway: 0.55
    assert lr(110) == pytest.approx(0.1) and lr(500) == 0.1


def test_checkpoints_round_trip_and_leave_no_temp_files(tmp_path):
    path = str(tmp_path / "ckpt.pt")
    state = {"kind": "gpt", "model": {"w": torch.arange(4.0)}, "model_args": {}, "iter_num": 7, "config": {"a": "b"}, "rng": training.rng_state()}
    training.save_checkpoint(state, path)
    training.save_checkpoint({**state, "iter_num": 8}, path)
    loaded = training.load_checkpoint(path, "GPT")
    assert loaded["iter_num"] == 8 and torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_rng_state_restores_every_generator():
    import random
    state = training.rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    training.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_a_missing_checkpoint_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint at .*nope.pt; train first"):
        training.load_checkpoint(str(tmp_path / "nope.pt"), "GPT")


def test_char_tokenizer_round_trip(tmp_path):
    text = "Hello, world!\nÆsop"
    meta = {"vocab_size": len(set(text)), "tokenizer": "char", "itos": sorted(set(text))}
    encode, decode = data.load_tokenizer(meta, str(tmp_path))
    ids = encode(text)
    assert decode(ids) == text and max(ids) < meta["vocab_size"]
    with pytest.raises(SystemExit, match="not in this dataset's vocabulary"):
        encode("xyz")


def test_token_bins_are_uint16(tmp_path):
    path = str(tmp_path / "train.bin")
    data.write_tokens([0, 1, 65535], path)
    assert np.fromfile(path, dtype=np.uint16).tolist() == [0, 1, 65535]
    with pytest.raises(SystemExit, match="fit uint16"):
        data.write_tokens([65536], path)
    assert np.fromfile(path, dtype=np.uint16).tolist() == [0, 1, 65535]  # the old file is intact


@needs("GPT2_TIKTOKEN_FILE")
def test_offline_gpt2_tokenizer_matches_gpt2():
    encode, decode = data.load_tokenizer({"tokenizer": "gpt2"}, "")
    assert encode("Hello world") == [15496, 995]
    assert encode("<|endoftext|>") == [50256]
    assert decode([15496, 995]) == "Hello world"


def test_an_auto_setting_also_takes_true_or_false():
    config = configurator.configure({"compile": "auto"}, ["--compile=True"])
    assert config["compile"] is True
    assert configurator.configure({"compile": "auto"}, [])["compile"] == "auto"
    assert training.resolve_compile("auto", "cuda:0") and not training.resolve_compile("auto", "cpu")
    assert training.resolve_compile(True, "cpu")  # an explicit True compiles on a CPU too


# -----------------------------------------------------------------------------
# devices and precision

def test_autocast_targets_the_devices_own_type():
    # MPS autocast is its own device type: mapping it to a CPU autocast would run MPS in fp32
    for device, device_type in (("mps", "mps"), ("cuda:1", "cuda"), ("cpu", "cpu")):
        with warnings.catch_warnings():  # "CUDA/MPS is not available": this machine has neither
            warnings.simplefilter("ignore")
            context = training.autocast(device, "bfloat16")
        assert context.device == device_type and context.fast_dtype == torch.bfloat16
    assert not isinstance(training.autocast("mps", "float32"), torch.autocast)


def test_resuming_in_float16_from_a_run_without_loss_scaling_starts_a_fresh_scaler(capsys):
    bf16_run = torch.amp.GradScaler("cpu", enabled=False).state_dict()  # what a bf16/fp32 checkpoint holds
    assert bf16_run == {}
    scaler = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0)
    with pytest.raises(RuntimeError):  # torch's own refusal, which resume used to die of
        scaler.load_state_dict(bf16_run)
    training.load_scaler_state(scaler, bf16_run)
    assert "starting a fresh grad scaler" in capsys.readouterr().out
    assert scaler.get_scale() == 1024.0
    fp16_run = torch.amp.GradScaler("cpu", enabled=True, init_scale=8.0).state_dict()
    training.load_scaler_state(scaler, fp16_run)  # an fp16 run's scale carries over
    assert scaler.get_scale() == 8.0


# -----------------------------------------------------------------------------
# no host syncs in the training step

def count_host_reads(fn):
    """How many times fn reads a tensor's value back to Python (.item(), bool(), int(): on a GPU
    each of those waits for all queued work)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        reads = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._local_scalar_dense.default:
                Count.reads += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return Count.reads


def test_the_non_finite_guard_reads_nothing_back_until_checked():
    guard = training.NonFiniteGuard("stop", "cpu", "iter", "out/ckpt.pt")
    norms = [torch.tensor(1.0), torch.tensor(float("nan")), torch.tensor(2.0), torch.tensor(float("inf"))]
    assert count_host_reads(lambda: [guard.step_ok(norm, step) for step, norm in enumerate(norms)]) == 0
    with pytest.raises(SystemExit, match="non-finite loss/gradient at iter 1; the last good checkpoint out/ckpt.pt"):
        guard.check()
    skipping = training.NonFiniteGuard("skip", "cpu", "iter", "out/ckpt.pt")
    assert [skipping.step_ok(norm, step) for step, norm in enumerate(norms)] == [True, False, True, False]
    skipping.check()  # skipped steps never reached the weights: nothing to stop for


def test_ranks_compare_stop_flags_every_few_calls_on_the_cpu(monkeypatch):
    monkeypatch.setattr(signal, "signal", lambda signum, handler: None)  # keep pytest's own handlers
    reduced = []
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda flag, op, group: reduced.append(flag.device.type))
    ddp = training.Distributed(True, 0, 0, 2, "cuda:0", True, cpu_group="gloo group")
    stop = training.StopRequest(ddp, every=10)
    assert [stop.agreed() for _ in range(25)] == [False] * 25
    assert reduced == ["cpu", "cpu"]
    stop.requested = True
    assert [stop.agreed() for _ in range(5)] == [False] * 4 + [True]
    assert [stop.agreed() for _ in range(3)] == [True] * 3 and len(reduced) == 3  # agreed once, for good


def test_dataloader_workers_ignore_stop_signals():
    # each worker sends itself SIGTERM, as a cluster's signal to the whole process group would
    script = ("import os, signal, sys, time, torch; sys.path.insert(0, os.getcwd()); import training\n"
              "class Data(torch.utils.data.Dataset):\n"
              "    def __len__(self): return 4\n"
              "    def __getitem__(self, i): os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.1); return i\n"
              "loader = torch.utils.data.DataLoader(Data(), num_workers=1, worker_init_fn=training.ignore_stop_signals)\n"
              "print(sorted(int(x) for x in loader))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0, 1, 2, 3]"


# -----------------------------------------------------------------------------
# the scripts' names: one name, one meaning

def top_level_assignments(tree):
    """{name: [line, ...]} of every module-level assignment, in order (inside if/for/while/with/try
    blocks too, not inside functions or classes)."""
    names = {}

    def visit(statements):
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                continue
            targets = {ast.Assign: lambda n: n.targets, ast.AugAssign: lambda n: [n.target],
                       ast.AnnAssign: lambda n: [n.target], ast.For: lambda n: [n.target],
                       ast.With: lambda n: [item.optional_vars for item in n.items if item.optional_vars]}
            for target in targets.get(type(node), lambda n: [])(node):
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        names.setdefault(name.id, []).append(node.lineno)
            for field in ("body", "orelse", "finalbody"):
                visit(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                visit(handler.body)

    visit(tree.body)
    return names


@pytest.mark.parametrize("script", ["train_gpt.py", "train_vit.py", "train_classifier.py", "sample.py"])
def test_settings_are_never_overwritten_and_functions_only_read_names_defined_above_them(script):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, script)) as f:
        tree = ast.parse(f.read())
    assigned = top_level_assignments(tree)
    configure_line = assigned["config"][0]
    settings = [name for name, lines in assigned.items() if lines[0] < configure_line and name != "config"]
    for name in settings:
        assert len(assigned[name]) == 1, f"{script}: the setting {name} is reassigned on lines {assigned[name][1:]}"
    for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
        local = {node.id for node in ast.walk(function) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
        local |= {arg.arg for arg in ast.walk(function.args) if isinstance(arg, ast.arg)}
        for node in ast.walk(function):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in assigned.keys() - local:
                assert assigned[node.id][0] < function.lineno, \
                    f"{script}: {function.name}() reads {node.id}, first assigned below it (line {assigned[node.id][0]})"


def test_the_training_scripts_use_the_same_names_for_the_same_things():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shared = {"ddp", "init_mode", "ckpt_path", "precision", "compile_model", "model", "fast_model", "train_model",
              "optim", "scaler", "guard", "stop", "timer", "metrics"}
    for script in ("train_gpt.py", "train_vit.py", "train_classifier.py"):
        with open(os.path.join(root, script)) as f:
            assert shared <= top_level_assignments(ast.parse(f.read())).keys(), script


# a shipped config is run by train_vit.py (vit_*), train_classifier.py (classify_*) or train_gpt.py
REPO = Path(__file__).resolve().parents[1]
SCRIPT_OF_CONFIG = {"vit_": "train_vit.py", "classify_": "train_classifier.py", "rl_": "train_rl.py"}


@pytest.mark.parametrize("config_file", sorted(p.name for p in (REPO / "config").glob("*.py")))
def test_every_shipped_config_sets_only_settings_of_its_script_with_their_types(config_file):
    script = next((s for prefix, s in SCRIPT_OF_CONFIG.items() if config_file.startswith(prefix)), "train_gpt.py")
    defaults = configurator.script_settings(REPO / script)
    assert {"out_dir", "learning_rate"} <= set(defaults)  # the parser found the script's settings
    # a key the script lacks, or a value of another type, is a SystemExit naming it
    config = configurator.configure(defaults, [str(REPO / "config" / config_file)])
    assert set(config) == set(defaults)
