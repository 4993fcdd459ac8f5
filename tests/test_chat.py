"""sample.py --chat=True driven through stdin, and analysis/code_eval.py's command line, on a tiny
code model trained here (and on a tiny random model in GPT-2's Hugging Face format)."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs, real_data  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GPT2_FILE = real_data("GPT2_TIKTOKEN_FILE")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run(args, stdin=None):
    return subprocess.run([sys.executable, *map(str, args)], input=stdin, capture_output=True, text=True,
                          cwd=REPO, env=ENV, timeout=120)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    """A tiny GPT trained for 300 steps on a few Python files, with a bpe.py tokenizer."""
    root = tmp_path_factory.mktemp("chat")
    src = root / "src"
    src.mkdir()
    for i in range(40):
        (src / f"m{i}.py").write_text(f"import os\n\n\ndef f{i}(x):\n    return x + {i}\n\n\nclass C{i}:\n"
                                      f"    def g(self, y):\n        return y * {i}\n", encoding="utf-8")
    result = run([REPO / "prepare/python_code.py", "--no_stdlib", "--data_files", src, "--vocab_size", 300,
                  "--val_fraction", 0.2, "--out_dir", root / "data/code"])
    assert result.returncode == 0, result.stderr
    result = run([REPO / "train_gpt.py", f"--data_dir={root / 'data'}", "--dataset=code", f"--out_dir={root / 'out'}",
                  "--n_layer=1", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=8", "--max_iters=300",
                  "--eval_interval=300", "--eval_iters=2", "--log_interval=300", "--device=cpu", "--learning_rate=1e-2",
                  "--always_save_checkpoint=True", "--warmup_iters=10", "--lr_decay_iters=300"])
    assert result.returncode == 0, result.stderr
    return root / "out"


def chat(out_dir, lines, *extra):
    """Run a chat session; return (exit code, its output split at the "> " prompts)."""
    result = run([REPO / "sample.py", f"--out_dir={out_dir}", "--chat=True", "--device=cpu", *extra],
                 stdin="".join(line + "\n" for line in lines))
    assert "Traceback" not in result.stderr and "error" not in result.stderr, result.stderr  # stderr: which checkpoint
    return result.returncode, result.stdout.split("> ")


def test_commands_change_the_settings_and_replies_appear(out_dir):
    code, turns = chat(out_dir, ["temp 0.5", "topk 40", "topp 0.9", "max 12", "temp -1", "topk x", "bogus 7",
                                 "help", "reset", "temp 0", "class C", "quit", "temp 0.3"])
    assert code == 0
    assert turns[0].startswith("chat: type a prompt")
    assert turns[1:11] == ["(temp = 0.5)\n", "(topk = 40)\n", "(topp = 0.9)\n", "(max = 12)\n",
                           "(temp must be >= 0 (0 = greedy), got '-1')\n", "(topk must be >= 0 (0 = all), got 'x')\n",
                           turns[7], turns[0], "(conversation forgotten)\n", "(temp = 0.0)\n"]
    # "bogus 7" is a prompt like any other, answered (the model may end its text at once); after the
    # reset, the greedy reply to "class C" goes on like the files it learned from
    assert turns[7].endswith("\n") and "def" in turns[11]
    assert turns[12:] == [""]  # quit: nothing after it is read (no "(temp = 0.3)")


def test_greedy_replies_max_and_reset(out_dir):
    # temp 0 is greedy: the same conversation gets the same reply; a smaller max is a prefix of it;
    # reset forgets the conversation, so the reply is the one a fresh session gets
    code, turns = chat(out_dir, ["temp 0", "max 30", "class A:", "reset", "max 4", "class A:", "reset",
                                 "max 30", "def g(y):", "class A:"])
    assert code == 0
    long_reply, short_reply, after_g = turns[3], turns[6], turns[10]
    # each reply is printed followed by one newline
    assert short_reply[:-1] and long_reply.startswith(short_reply[:-1]) and len(short_reply) < len(long_reply)
    code, fresh = chat(out_dir, ["temp 0", "max 30", "class A:"])
    assert fresh[3] == long_reply
    assert after_g != long_reply  # the conversation so far does change the reply


def test_end_of_input_exits_cleanly(out_dir):
    code, turns = chat(out_dir, [])
    assert code == 0 and len(turns) == 2 and turns[1] == "\n"


def read_until(stream, marker):
    """What the chat prints up to and including marker (the prompt "> " has no newline after it)."""
    text = ""
    while not text.endswith(marker):
        char = stream.read(1)
        assert char, f"the chat ended before printing {marker!r}: {text!r}"
        text += char
    return text


def test_ctrl_c_stops_a_reply_and_the_chat_goes_on_then_at_the_prompt_leaves(out_dir):
    env = {**ENV, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "sample.py", f"--out_dir={out_dir}", "--chat=True", "--device=cpu"],
                               cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    read_until(process.stdout, "> ")
    process.stdin.write("max 100000\nclass A:\n")  # a reply far longer than the test waits
    process.stdin.flush()
    read_until(process.stdout, "> ")  # "(max = 100000)"
    read_until(process.stdout, "\n")  # the reply is streaming: its first line is out
    process.send_signal(signal.SIGINT)
    read_until(process.stdout, " (stopped)\n> ")  # the reply ends there, and a new prompt follows
    process.send_signal(signal.SIGINT)  # at the prompt: leave
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr


@needs("GPT2_TIKTOKEN_FILE")
def test_chat_on_weights_in_gpt2_format(tmp_path):
    transformers = pytest.importorskip("transformers")
    import torch
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=64, vocab_size=50257)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path, safe_serialization=True)
    ENV["GPT2_TIKTOKEN_FILE"] = str(GPT2_FILE)
    try:
        code, turns = chat("unused", ["max 5", "Hello, I'm a language model,", "exit"], f"--init_from={tmp_path}")
    finally:
        del ENV["GPT2_TIKTOKEN_FILE"]
    assert code == 0 and turns[1] == "(max = 5)\n" and turns[2].strip()


def test_syntax_check_command_line(out_dir):
    result = run([REPO / "analysis/code_eval.py", f"--out_dir={out_dir}", "--num_tasks=0", "--free_samples=6",
                  "--max_new_tokens=40", "--show=2", "--device=cpu"])
    assert result.returncode == 0, result.stderr
    assert re.search(r"^syntax validity: \d+\.\d% of 6 samples \(40 tokens each, [\d.]+ lines kept",
                     result.stdout, re.MULTILINE)
    assert result.stdout.count("---------------") == 2
    result = run([REPO / "analysis/code_eval.py", f"--out_dir={out_dir.parent / 'nothing'}"])
    assert result.returncode == 1 and result.stderr.startswith("error: no checkpoint at")
