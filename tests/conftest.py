"""Shared by every test file."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The tests' models are tiny: threads only add synchronisation, which on a busy machine costs
    5-10x (subprocesses the tests start get OMP_NUM_THREADS=1 for the same reason)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Real data some tests compare against, found through environment variables (never a path outside
# the repository): without it they skip and say what to provide. .ci/run sets them where it can.
REAL_DATA = {
    "GPT2_TIKTOKEN_FILE": "a gpt2.tiktoken file (GPT-2's BPE ranks in tiktoken's format)",
    "TINYSHAKESPEARE_FILE": "tiny Shakespeare's input.txt (python prepare/shakespeare_char.py downloads it to "
                            "data/shakespeare_char/input.txt)",
}


def real_data(variable):
    """The path in the environment variable, or None when it is unset or names no file."""
    path = os.environ.get(variable)
    return pathlib.Path(path) if path and os.path.isfile(path) else None


def needs(*variables):
    """Skip unless each variable names a file; the reason says what to set to what."""
    missing = [v for v in variables if real_data(v) is None]
    return pytest.mark.skipif(bool(missing), reason="set " + " and ".join(
        f"{v} to {REAL_DATA[v]}" for v in missing) + " to run this test")


# Runs each command as `python SCRIPT ARGS` would, one after another in one process: stdout and
# stderr captured, SystemExit turned into the exit status and the message Python would print, any
# other exception into its traceback and status 1.
RUNNER = """
import contextlib, io, json, runpy, sys, traceback
results = []
for argv in json.load(sys.stdin):
    out, err, status = io.StringIO(), io.StringIO(), 0
    sys.argv = argv
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as e:
            if isinstance(e.code, str):  # SystemExit("error: ...") prints its message and exits 1
                print(e.code, file=sys.stderr)
                status = 1
            else:
                status = e.code or 0
        except Exception:
            traceback.print_exc()
            status = 1
    results.append([status, out.getvalue(), err.getvalue()])
print("\\n" + json.dumps(results), file=sys.__stdout__)  # last, after anything C code wrote to the same pipe
"""


def run_scripts(commands, env=None, timeout=300):
    """Each command (a script and its arguments, run from the repository's root) as
    subprocess.run([python, *command]) would report it, but all of them in one Python process: for
    commands that stop on bad input, where a process per command (seconds of imports each) would be
    most of the test's time. The commands share the process, so give it only such commands: one that
    trained would hand its seeds, threads and signal handlers on to the next."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", **(env or {})}
    done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps([list(map(str, c)) for c in commands]),
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return [subprocess.CompletedProcess([sys.executable, *command], status, out, err)
            for command, (status, out, err) in zip(commands, json.loads(done.stdout.splitlines()[-1]))]


# A KernelBench in miniature (KernelBench/level1/*.py, as in kernelbench.tar.gz): two elementwise
# problems, one held out (its number a multiple of 4), and four that code_check.kernelbench_tasks
# must leave out.
MINI_KERNELBENCH = {
    "19_ReLU": "return torch.relu(x)",
    "20_LeakyReLU": "return torch.nn.functional.leaky_relu(x, negative_slope=self.negative_slope)",
    "23_Softmax": "return torch.softmax(x, dim=1)",   # each output depends on its whole row
    "37_FrobeniusNorm_": "return x / torch.norm(x)",  # ... on every element: mixing inputs shows it
    "31_ELU": "return torch.nn.functional.elu(x, alpha=self.alpha)",  # an init input
    "1_Matmul": "return torch.matmul(x, y)",          # two inputs
}


def kernelbench_problem(name, expression):
    arguments = "x, y" if "y)" in expression else "x"
    init = "[1.0]" if "alpha" in expression else "[]"
    return f'''import torch
class Model(torch.nn.Module):
    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha
        self.negative_slope = 0.01
    def forward(self, {arguments}):
        """{name}."""
        {expression}
batch_size = 4
dim = 8
def get_inputs():
    return [{", ".join(f"torch.rand(batch_size, dim)" for _ in arguments.split(", "))}]
def get_init_inputs():
    return {init}
'''


@pytest.fixture(scope="session")
def kernelbench_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("kernelbench")
    (root / "KernelBench" / "level1").mkdir(parents=True)
    for name, expression in MINI_KERNELBENCH.items():
        (root / "KernelBench" / "level1" / f"{name}.py").write_text(kernelbench_problem(name, expression))
    return root
