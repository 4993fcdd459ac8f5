"""training.py: config overrides, the LR schedule, checkpoints and tokenizers."""

import json
import math
import os

import numpy as np
import pytest
import torch

import training

DEFAULTS = {"batch_size": 12, "learning_rate": 6e-4, "compile": True, "device": "cuda",
            "init_from": "scratch", "wandb_run_name": None}


def test_command_line_overrides_are_parsed_and_typed():
    config = training.configure(DEFAULTS, ["--batch_size=32", "--learning_rate", "1", "--compile=False",
                                           "--device=cpu", "--init_from", "123", "--wandb_run_name=run1"])
    assert config == {"batch_size": 32, "learning_rate": 1.0, "compile": False, "device": "cpu",
                      "init_from": "123", "wandb_run_name": "run1"}
    assert isinstance(config["learning_rate"], float)


def test_config_file_then_overrides_in_order(tmp_path):
    path = tmp_path / "cfg.py"
    path.write_text("import math\nbatch_size = 64\nlearning_rate = 3e-4\n_private = 1\n")
    config = training.configure(DEFAULTS, [str(path), "--batch_size=8"])
    assert config["batch_size"] == 8 and config["learning_rate"] == 3e-4


def test_a_typo_names_the_nearest_keys():
    with pytest.raises(SystemExit, match=r"unknown config key 'batch_sise' .*did you mean batch_size\?"):
        training.configure(DEFAULTS, ["--batch_sise=3"])


@pytest.mark.parametrize("arg, message", [
    ("--batch_size=1e3", "must be int like its default 12, got 1000.0"),
    ("--compile=yes", "must be True or False, got 'yes'"),
    ("--batch_size", "has no value"),
])
def test_a_bad_value_is_a_one_line_error(arg, message):
    with pytest.raises(SystemExit, match=message):
        training.configure(DEFAULTS, [arg])


def test_a_typo_in_a_config_file_is_caught(tmp_path):
    path = tmp_path / "cfg.py"
    path.write_text("learning_rat = 1e-3\n")
    with pytest.raises(SystemExit, match=r"unknown config key 'learning_rat' \(from .*cfg.py\); did you mean learning_rate"):
        training.configure(DEFAULTS, [str(path)])


def test_learning_rate_schedule_by_hand():
    lr = lambda it: training.learning_rate_at(it, 1.0, warmup_iters=10, lr_decay_iters=110, min_lr=0.1)
    assert lr(0) == pytest.approx(1 / 11)
    assert lr(9) == pytest.approx(10 / 11)
    assert lr(10) == pytest.approx(1.0)
    assert lr(60) == pytest.approx(0.1 + 0.5 * (1 + math.cos(math.pi / 2)) * 0.9)  # halfway: 0.55
    assert lr(110) == pytest.approx(0.1) and lr(500) == 0.1


def test_checkpoints_round_trip_and_leave_no_temp_files(tmp_path):
    path = str(tmp_path / "ckpt.pt")
    state = {"kind": "gpt", "model": {"w": torch.arange(4.0)}, "iter_num": 7, "config": {"a": "b"}, "rng": training.rng_state()}
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
    encode, decode = training.load_tokenizer(meta, str(tmp_path))
    ids = encode(text)
    assert decode(ids) == text and max(ids) < meta["vocab_size"]
    with pytest.raises(SystemExit, match="not in this dataset's vocabulary"):
        encode("xyz")


def test_token_bins_are_uint16(tmp_path):
    path = str(tmp_path / "train.bin")
    training.write_tokens([0, 1, 65535], path)
    assert np.fromfile(path, dtype=np.uint16).tolist() == [0, 1, 65535]
    with pytest.raises(SystemExit, match="fit uint16"):
        training.write_tokens([65536], path)
    assert np.fromfile(path, dtype=np.uint16).tolist() == [0, 1, 65535]  # the old file is intact


GPT2_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "gpt2", "gpt2.tiktoken")


@pytest.mark.skipif(not os.path.exists(GPT2_FILE), reason="needs ../shared/data/gpt2/gpt2.tiktoken")
def test_offline_gpt2_tokenizer_matches_gpt2(monkeypatch):
    monkeypatch.setenv("GPT2_TIKTOKEN_FILE", GPT2_FILE)
    encode, decode = training.load_tokenizer({"tokenizer": "gpt2"}, "")
    assert encode("Hello world") == [15496, 995]
    assert encode("<|endoftext|>") == [50256]
    assert decode([15496, 995]) == "Hello world"
