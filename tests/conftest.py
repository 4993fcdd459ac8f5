"""Shared by every test file."""

import os
import pathlib

import pytest
import torch


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
