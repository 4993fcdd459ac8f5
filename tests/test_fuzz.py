"""
Fuzzing every file reader: each test starts from a valid file of one kind (a checkpoint, meta.json,
a tokenizer file, token bins, CIFAR pickles, a config file, classifier JSONL), damages it the ways
files get damaged (cut short, bytes flipped, inserted or deleted, values of another type, keys
dropped) and reads it with the function the scripts read it with. Every read must end in a clean
load or a one-line `error:` naming the file: never a traceback, never a hang.

A few hundred examples per reader, the same ones each run; to search longer (new examples each run):
    FUZZ_EXAMPLES=20000 python -m pytest -n 0 tests/test_fuzz.py
"""

import base64
import io
import json
import os
import pickle
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import bpe  # noqa: E402
import configurator  # noqa: E402
import data  # noqa: E402
import training  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 0))
fuzz = settings(max_examples=EXAMPLES or 300, derandomize=not EXAMPLES, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))
TEXT = "".join(f"To be, or not to be: that is question {i % 7}.\n" for i in range(40))


@contextmanager
def time_limit(seconds):
    """Raise TimeoutError in a read that takes longer than this: a hang, not a slow read."""
    def stop(signum, frame):
        raise TimeoutError(f"a read took over {seconds} s")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def read_cleanly(read, names):
    """read() returns, or stops with a one-line error that names the file (one of names): any other
    exception, a traceback a user would see, fails the test, and so does a read that hangs."""
    with time_limit(10):
        try:
            return read()
        except SystemExit as stop:
            message = str(stop.code)
            assert message.startswith("error: ") and "\n" not in message, message
            assert any(str(name) in message for name in names), message


# -----------------------------------------------------------------------------
# ways a file gets damaged

@st.composite
def damaged_bytes(draw, original):
    """original cut short, or with bytes flipped, overwritten, inserted or deleted (1 to 4 times)."""
    content = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(content)))
        kind = draw(st.sampled_from(["cut", "flip", "overwrite", "insert", "delete"]))
        if kind == "cut":
            del content[at:]
        elif kind == "flip" and at < len(content):
            content[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            content[at:at + 4] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "insert":
            content[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del content[at:at + draw(st.integers(1, 16))]
    return bytes(content)


# values of every JSON type, small and nested; and, for pickles and checkpoints, arrays and tensors
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)
arrays = st.builds(lambda shape, dtype: np.ones(shape, dtype=dtype),
                   st.lists(st.integers(0, 4), max_size=3).map(tuple), st.sampled_from(["uint8", "int64", "float32"]))


@st.composite
def damaged_dict(draw, original, values):
    """original with keys dropped, values replaced by others (of any type) and keys added."""
    changed = dict(original)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["drop", "replace", "add"]))
        if kind == "drop" and changed:
            del changed[draw(st.sampled_from(sorted(changed)))]
        elif kind == "replace" and changed:
            changed[draw(st.sampled_from(sorted(changed)))] = draw(values)
        else:
            changed[draw(st.text(max_size=6))] = draw(values)
    return changed


# -----------------------------------------------------------------------------
# checkpoints: training.load_checkpoint, through which every script reads ckpt.pt and best.pt

CHECKPOINT = {"kind": "gpt", "model": {"wte.weight": torch.ones(4, 2)}, "model_args": {"n_layer": 1, "vocab_size": 4},
              "config": {"dataset": "tiny"}, "iter_num": 3, "optimizer": {"state": {}}, "rng": {}}


def saved(checkpoint):
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


@fuzz
@given(st.one_of(damaged_bytes(saved(CHECKPOINT)),
                 damaged_dict(CHECKPOINT, json_values | arrays.map(torch.from_numpy)).map(saved)))
def test_checkpoint(tmp_path, content):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(content)

    def read():
        checkpoint = training.load_checkpoint(str(path), "GPT", resume=True)
        dict(**checkpoint["model_args"]), checkpoint["config"].get("dataset"), list(checkpoint["model"].items())
    read_cleanly(read, ["ckpt.pt"])


# -----------------------------------------------------------------------------
# datasets: meta.json (data.read_meta), train.bin/val.bin (data.check_token_bins), the tokenizer file
# (data.read_bpe_file): what train_gpt.py, sample.py and analysis/ read, in the order they read it

@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A char dataset and a bpe.py one, each with its meta.json as written."""
    root = tmp_path_factory.mktemp("datasets")
    itos = sorted(set(TEXT))
    ids = [itos.index(ch) for ch in TEXT]
    data.write_dataset(str(root / "char"), ids[:1500], ids[1500:], {"vocab_size": len(itos), "tokenizer": "char",
                                                                    "itos": itos})
    tok = bpe.train(TEXT, 280, special_tokens=["<|endoftext|>"])
    data.write_dataset(str(root / "bpe"), tok.encode_ordinary(TEXT[:1500]), tok.encode_ordinary(TEXT[1500:]),
                       {"vocab_size": tok.n_vocab, "tokenizer": "bpe", "tokenizer_file": "tokenizer.bpe"}, tokenizer=tok)
    return root, {kind: json.loads((root / kind / "meta.json").read_text()) for kind in ("char", "bpe")}


def read_dataset(data_dir):
    """meta.json, the bins and the tokenizer, as train_gpt.py and sample.py read them; then a decode."""
    meta = data.read_meta(str(data_dir), "prepare it again")
    data.check_token_bins(str(data_dir), meta, 8, "prepare it again")
    if meta.get("tokenizer") != "gpt2":  # that one is GPT-2's ranks, fetched: not this dataset's files
        _, decode = data.load_tokenizer(meta, str(data_dir))
        decode(list(range(meta["vocab_size"])))


@fuzz
@given(st.sampled_from(["char", "bpe"]), st.data())
def test_meta_json(datasets, kind, draw):
    root, metas = datasets
    original = metas[kind]
    content = draw.draw(st.one_of(damaged_bytes(json.dumps(original).encode()),
                                  damaged_dict(original, json_values).map(lambda meta: json.dumps(meta).encode())))
    (root / kind / "meta.json").write_bytes(content)
    try:
        read_cleanly(lambda: read_dataset(root / kind), [root / kind])
    finally:
        (root / kind / "meta.json").write_text(json.dumps(original))


@fuzz
@given(st.sampled_from(["train.bin", "val.bin"]), st.booleans(), st.data())
def test_token_bins(datasets, name, fingerprints, draw):
    """With fingerprints in meta.json, and without (a dataset prepared before they were)."""
    root, metas = datasets
    path = root / "char" / name
    original = path.read_bytes()
    meta = metas["char"] if fingerprints else {k: v for k, v in metas["char"].items() if k != "fingerprints"}
    (root / "char" / "meta.json").write_text(json.dumps(meta))
    path.write_bytes(draw.draw(damaged_bytes(original)))
    try:
        read_cleanly(lambda: read_dataset(root / "char"), [path])
    finally:
        path.write_bytes(original)
        (root / "char" / "meta.json").write_text(json.dumps(metas["char"]))


@st.composite
def damaged_lines(draw, original):
    """original (text) with a line dropped, repeated or two lines swapped."""
    lines = original.splitlines()
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["drop", "repeat", "swap"]))
    if kind == "drop":
        del lines[i]
    elif kind == "repeat":
        lines.insert(j, lines[i])
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return ("\n".join(lines) + "\n").encode()


TOKENIZER = bpe.train(TEXT, 280, special_tokens=["<|endoftext|>"])


def tokenizer_file():
    lines = [bpe.FILE_VERSION, json.dumps(TOKENIZER.pattern), json.dumps(TOKENIZER.special_tokens)]
    lines += [f"{base64.b64encode(token).decode()} {rank}" for token, rank in sorted(TOKENIZER.mergeable_ranks.items(),
                                                                                       key=lambda item: item[1])]
    return "\n".join(lines) + "\n"


@fuzz
@given(st.one_of(damaged_bytes(tokenizer_file().encode()), damaged_lines(tokenizer_file())))
def test_tokenizer_file(tmp_path, content):
    path = tmp_path / "t.bpe"
    path.write_bytes(content)

    def read():
        tok = data.read_bpe_file(str(path))  # a tokenizer that loads must also encode and decode
        tok.decode(tok.encode(TEXT[:300] + "<|endoftext|> é😀", allowed_special="all"))
    read_cleanly(read, ["t.bpe"])


# -----------------------------------------------------------------------------
# CIFAR's pickled batches: data.CIFARImages, which train_vit.py and analysis/ read them through

BATCH = {"batch_label": "training batch 1 of 1", "labels": [0, 1, 2], "filenames": ["a.png", "b.png", "c.png"],
         "data": np.arange(3 * 3072, dtype=np.uint8).reshape(3, 3072)}
CLASSES = {"label_names": ["airplane", "automobile", "bird"], "num_cases_per_batch": 3, "num_vis": 3072}


def pickled(entry):
    return pickle.dumps(entry, protocol=2)  # as CIFAR's files are: Python 2 pickles


@fuzz
@given(st.sampled_from(["data_batch_1", "batches.meta"]), st.data())
def test_cifar_files(tmp_path, name, draw):
    original = BATCH if name == "data_batch_1" else CLASSES
    content = draw.draw(st.one_of(damaged_bytes(pickled(original)), damaged_dict(original, json_values | arrays).map(pickled)))
    (tmp_path / "data_batch_1").write_bytes(pickled(BATCH))
    (tmp_path / "batches.meta").write_bytes(pickled(CLASSES))
    (tmp_path / name).write_bytes(content)

    def read():
        images = data.CIFARImages([str(tmp_path / "data_batch_1")], str(tmp_path / "batches.meta"), "label_names")
        images[len(images) - 1]  # a dataset that loads must also give its images
    read_cleanly(read, [name])


# -----------------------------------------------------------------------------
# config files: configurator.configure, given a config file as the training scripts are

CONFIG = REPO / "config" / "shakespeare_char.py"


@fuzz
@given(damaged_bytes(CONFIG.read_bytes()))
def test_config_file(tmp_path, content):
    path = tmp_path / "my_config.py"
    path.write_bytes(content)
    defaults = {**configurator.script_settings(REPO / "train_gpt.py"), "__file__": str(REPO / "train_gpt.py")}
    read_cleanly(lambda: configurator.configure(defaults, [str(path)]), ["my_config.py"])


# -----------------------------------------------------------------------------
# the classifier's JSONL: data.read_jsonl

ROWS = [{"text": "a fine play", "label": "good"}, {"text": "a dull play", "label": "bad"}, {"text": "so-so", "label": 2}]


@fuzz
@given(st.one_of(damaged_bytes("".join(json.dumps(row) + "\n" for row in ROWS).encode()),
                 st.lists(st.one_of(st.sampled_from(ROWS), damaged_dict(ROWS[0], json_values)), min_size=1, max_size=4)
                 .map(lambda rows: "".join(json.dumps(row) + "\n" for row in rows).encode())))
def test_classifier_jsonl(tmp_path, content):
    path = tmp_path / "train.jsonl"
    path.write_bytes(content)
    read_cleanly(lambda: data.read_jsonl(str(path)), ["train.jsonl"])
