"""
Bad input, the last mile: a prepare run replaces a dataset whole or not at all (killed at any step,
or given an empty corpus), empty and degenerate inputs are errors (or a warning where the result is
still meaningful), and every path a command line names is checked before any work.
"""

import argparse
import builtins
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import bpe  # noqa: E402
import data  # noqa: E402
from conftest import run_scripts  # noqa: E402
from prepare import corpus, text_bpe, tinystories  # noqa: E402

TEXT = "".join(f"To be, or not to be: that is question {i % 7}. Whether 'tis nobler in the mind\n" for i in range(60))
STORIES = "".join(f"Story {i}: the cat sat on the mat, and the dog ran to the park.<|endoftext|>" for i in range(60))
KILLED = 99  # the exit status of a prepare run stopped by os._exit, as SIGKILL stops it: no cleanup at all


def run(*args, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True,
                          **kwargs)


def one_line_error(result):
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: "), result.stderr
    return lines[-1]


def checksums(directory):
    return {p.relative_to(directory): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(directory).rglob("*")) if p.is_file()}


# -----------------------------------------------------------------------------
# a prepare run, killed between any two of its filesystem operations

# every call that changes what is on disk: the points between which a kill can land
STEPS = ["mkdir", "rmdir", "rename", "replace", "link", "unlink", "remove", "fsync"]


def prepare_killed_at(step, main, argv):
    """Run main() with sys.argv = argv in a forked process that dies (os._exit: no finally block, no
    cleanup, as under SIGKILL) just before its step-th filesystem operation. Returns its exit status:
    KILLED, or 0 if it had fewer steps and finished."""
    pid = os.fork()
    if pid == 0:
        count = 0

        def stop_before(function):
            def wrapped(*args, **kwargs):
                nonlocal count
                count += 1
                if count == step:
                    os._exit(KILLED)
                return function(*args, **kwargs)
            return wrapped

        def opens_for_writing(function):  # creating or truncating a file is a step too
            writer = stop_before(function)
            return lambda file, mode="r", *args, **kwargs: (writer if set(mode) & set("wax+") else function)(
                file, mode, *args, **kwargs)

        sys.stdout = sys.stderr = open(os.devnull, "w")
        for name in STEPS:
            setattr(os, name, stop_before(getattr(os, name)))
        builtins.open = io.open = opens_for_writing(io.open)
        sys.argv = list(map(str, argv))
        try:
            main()
            os._exit(0)
        except BaseException as e:  # an error of the run itself, not a kill: say which
            os.write(2, f"{type(e).__name__}: {e}\n".encode())
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def read_dataset(data_dir):
    """What train_gpt.py and sample.py read of a dataset, through the same functions."""
    meta = data.read_meta(str(data_dir), "")
    data.check_token_bins(str(data_dir), meta, 8, "")
    data.load_tokenizer(meta, str(data_dir))


PREPARES = {  # a prepare script's main, and its arguments for an input file, an out_dir and a vocab_size
    "text_bpe": (text_bpe.main, lambda text, out, vocab: ["text_bpe.py", "--input", text, "--out_dir", out,
                                                          "--vocab_size", vocab]),
    "tinystories": (tinystories.main, lambda text, out, vocab: ["tinystories.py", "--data_files", text, "--out_dir",
                                                                out, "--vocab_size", vocab, "--val_fraction", "0.3",
                                                                "--num_proc", "1"]),
}


@pytest.mark.parametrize("script", list(PREPARES))
def test_a_prepare_killed_at_any_step_leaves_the_old_dataset_or_the_new_one(tmp_path, script):
    """Never a mix (a mix made by hand is refused by train_gpt.py: "dataset of two prepares" in
    test_gpt_resilience.BAD_INPUT), and the files beside the dataset are kept."""
    main, argv = PREPARES[script]
    (tmp_path / "input.txt").write_text(STORIES if script == "tinystories" else TEXT)
    old_dir, new_dir, data_dir = tmp_path / "old", tmp_path / "new", tmp_path / "data" / "mine"
    for out, vocab in ((old_dir, 300), (new_dir, 280)):  # two different datasets: other tokenizer, other ids
        assert prepare_killed_at(0, main, argv(tmp_path / "input.txt", out, vocab)) == 0
        (out / "notes.txt").write_text("my own file, kept in the dataset's directory")
    old, new = checksums(old_dir), checksums(new_dir)
    assert old != new

    step = 1
    while True:
        shutil.rmtree(tmp_path / "data", ignore_errors=True)
        shutil.copytree(old_dir, data_dir)
        status = prepare_killed_at(step, main, argv(tmp_path / "input.txt", data_dir, 280))
        leftovers = sorted(p.name for p in data_dir.parent.iterdir() if p != data_dir)
        if data_dir.exists():
            assert checksums(data_dir) in (old, new), f"a mix after a kill at step {step}"
            read_dataset(data_dir)
        else:  # killed between the two renames of the swap: the old dataset is aside, and readers say where
            aside = data_dir.parent / next(name for name in leftovers if ".old-" in name)
            assert checksums(aside) == old
            with pytest.raises(SystemExit, match=f"meta.json is missing: a prepare killed while replacing the "
                                                 f"dataset left it in {aside}"):
                read_dataset(data_dir)
        # the next run cleans up whatever the killed one left and replaces the dataset
        assert prepare_killed_at(0, main, argv(tmp_path / "input.txt", data_dir, 280)) == 0
        assert checksums(data_dir) == new and os.listdir(data_dir.parent) == ["mine"]
        if status == 0:
            break
        assert status == KILLED
        step += 1
    assert step > 20  # every write, rename and fsync of the run was a kill point


# -----------------------------------------------------------------------------
# replacing a dataset: what else its directory holds, and where it is

def write_small_dataset(data_dir, vocab_size=5):
    data.write_dataset(str(data_dir), [1, 2, 3, 4] * 10, [4, 3, 2, 1] * 3, {"vocab_size": vocab_size})


def test_files_beside_a_dataset_are_kept_when_it_is_replaced(tmp_path):
    data_dir = tmp_path / "mine"
    write_small_dataset(data_dir)
    (data_dir / "corpus.txt").write_text("the text the dataset was made from")
    os.symlink("corpus.txt", data_dir / "link.txt")
    write_small_dataset(data_dir, vocab_size=6)
    assert data.read_meta(str(data_dir), "")["vocab_size"] == 6
    assert (data_dir / "corpus.txt").read_text() == "the text the dataset was made from"
    assert os.readlink(data_dir / "link.txt") == "corpus.txt"
    assert sorted(os.listdir(tmp_path)) == ["mine"]


def test_a_symlinked_dataset_directory_is_replaced_where_it_points(tmp_path):
    (tmp_path / "big_disk").mkdir()
    write_small_dataset(tmp_path / "big_disk" / "mine")
    (tmp_path / "data").mkdir()
    os.symlink(tmp_path / "big_disk" / "mine", tmp_path / "data" / "mine")
    write_small_dataset(tmp_path / "data" / "mine", vocab_size=6)
    assert (tmp_path / "data" / "mine").is_symlink()
    assert data.read_meta(str(tmp_path / "big_disk" / "mine"), "")["vocab_size"] == 6


@pytest.mark.parametrize("out_dir, message", [
    ("data", "--out_dir data holds the folder 'mine', and a dataset replaces its whole directory"),
    (".", "--out_dir . is the current directory or holds it: prepare into a directory of its own"),
])
def test_a_directory_that_is_more_than_a_dataset_is_never_swapped(tmp_path, monkeypatch, out_dir, message):
    write_small_dataset(tmp_path / "data" / "mine")
    monkeypatch.chdir(tmp_path)
    before = checksums(tmp_path)
    with pytest.raises(SystemExit, match=message):
        write_small_dataset(out_dir)
    assert checksums(tmp_path) == before


def test_the_next_prepare_puts_back_a_dataset_a_killed_swap_left_aside(tmp_path, capsys):
    write_small_dataset(tmp_path / "mine")
    os.rename(tmp_path / "mine", tmp_path / "mine.old-999999999")  # no process has that PID
    (tmp_path / "mine.tmp-999999998").mkdir()
    with pytest.raises(SystemExit):  # the new dataset fails its check: the old one must still be there after
        data.write_dataset(str(tmp_path / "mine"), [], [1], {"vocab_size": 5})
    assert "restored" in capsys.readouterr().out
    assert os.listdir(tmp_path) == ["mine"] and data.read_meta(str(tmp_path / "mine"), "")["vocab_size"] == 5


@pytest.mark.parametrize("train_ids, val_ids, vocab_size, message", [
    ([], [1, 2], 5, "the new dataset's train split is empty: give the prepare script more text"),
    ([1, 2], [], 5, "the new dataset's val split is empty"),
    ([1, 7], [1, 2], 5, r"the new train.bin \(2 tokens, largest id 7\) disagrees with its meta.json"),
])
def test_a_dataset_that_fails_its_check_replaces_nothing(tmp_path, train_ids, val_ids, vocab_size, message):
    write_small_dataset(tmp_path / "mine")
    before = checksums(tmp_path)
    with pytest.raises(SystemExit, match=f"^error: {message}.*; {tmp_path / 'mine'} is left as it was$"):
        data.write_dataset(str(tmp_path / "mine"), train_ids, val_ids, {"vocab_size": vocab_size})
    assert checksums(tmp_path) == before


# -----------------------------------------------------------------------------
# empty and degenerate inputs

EMPTY_CORPORA = {"": "holds no text (it is empty)", " \n\n": "holds no text (only whitespace)"}
PREPARE_SCRIPTS = {"prepare/shakespeare_char.py": [], "prepare/shakespeare.py": [],
                   "prepare/text_bpe.py": ["--vocab_size", "300"], "prepare/shakespeare_speakers.py": []}


@pytest.fixture(scope="module")
def empty_corpora(tmp_path_factory):
    """Each prepare script given each empty corpus, with a dataset where its output would go, all
    in one process (conftest.run_scripts): (script, corpus) -> (the folder, its dataset's checksums
    before, the result)."""
    cases = {}
    for script, args in PREPARE_SCRIPTS.items():
        for corpus_text in EMPTY_CORPORA:
            root = tmp_path_factory.mktemp("empty")
            write_small_dataset(root / "mine")
            (root / "empty.txt").write_text(corpus_text)
            cases[script, corpus_text] = (root, checksums(root / "mine"),
                                          [script, "--input", root / "empty.txt", "--out_dir", root / "mine", *args])
    results = run_scripts([command for _, _, command in cases.values()])
    return {case: (root, before, result) for (case, (root, before, _)), result in zip(cases.items(), results)}


@pytest.mark.parametrize("script", PREPARE_SCRIPTS)
@pytest.mark.parametrize("corpus_text", EMPTY_CORPORA, ids=["empty", "whitespace"])
def test_an_empty_corpus_is_an_error_and_the_old_dataset_stays(empty_corpora, script, corpus_text):
    root, before, result = empty_corpora[script, corpus_text]
    assert one_line_error(result) == f"error: {root / 'empty.txt'} {EMPTY_CORPORA[corpus_text]}: nothing to prepare"
    assert checksums(root / "mine") == before


def test_a_corpus_script_given_no_documents_is_an_error(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    args = argparse.Namespace(out_dir=str(tmp_path / "mine"), tokenizer="bpe", vocab_size=300, pattern="gpt2", num_proc=1)
    with pytest.raises(SystemExit, match="no text to train on .*: give the train split documents"):
        corpus.prepare(args, corpus.local_corpus([str(tmp_path / "empty.jsonl")], 0.1))
    assert not (tmp_path / "mine").exists() or os.listdir(tmp_path / "mine") == []


def test_a_text_without_speeches_is_an_error(tmp_path):
    (tmp_path / "prose.txt").write_text("Just prose.\nNo speaker names anywhere.\n")
    result = run("prepare/shakespeare_speakers.py", "--input", tmp_path / "prose.txt", "--out_dir", tmp_path / "sp")
    assert "no training speeches: the text needs blocks of lines that start with a speaker's name" in one_line_error(result)


def test_bpe_refuses_an_empty_text_and_an_empty_special_token():
    with pytest.raises(ValueError, match="no text to train on"):
        bpe.train("", 300)
    with pytest.raises(ValueError, match="no text to train on"):
        bpe.train("<|endoftext|>" * 3, 300, special_tokens=["<|endoftext|>"])
    with pytest.raises(ValueError, match=r"special tokens must be non-empty strings, got \[''\]"):
        bpe.train(TEXT, 300, special_tokens=[""])


def test_a_vocabulary_beyond_the_texts_merges_is_a_warning_and_a_smaller_tokenizer(capsys):
    # a warning, not an error: the tokenizer is complete for this text, and n_vocab gives its real size
    # (which prepare scripts record in meta.json), so the user need not guess the reachable size
    tok = bpe.train("ab ab ab", 1000)
    assert capsys.readouterr().err.startswith("warning: the text has only 2 merges to learn, not the 744 that "
                                              "vocab_size=1000 asks for: the tokenizer has 258 ids")
    assert tok.n_vocab == 258 and tok.decode(tok.encode("ab ba")) == "ab ba"


def test_a_dataset_shorter_than_one_block_is_refused_naming_both_fixes(tmp_path):
    write_small_dataset(tmp_path / "mine")
    meta = data.read_meta(str(tmp_path / "mine"), "")
    with pytest.raises(SystemExit, match="val.bin has only 12 tokens, too few for block_size=12 .*: give the prepare "
                                         "script more text, or train with a smaller --block_size"):
        data.check_token_bins(str(tmp_path / "mine"), meta, 12, "")


# -----------------------------------------------------------------------------
# bpe.py's command line: paths checked before training, errors in the user's terms

def bpe_cli(*args):
    with pytest.raises(SystemExit) as stop:
        bpe.main(list(map(str, args)))
    message = str(stop.value)
    assert message.startswith("error: ") and "\n" not in message
    return message


def test_bpe_output_path_is_checked_before_training(tmp_path):
    (tmp_path / "a.txt").write_text(TEXT)
    train = ["train", "--input", tmp_path / "a.txt", "--vocab_size", 300]
    assert bpe_cli(*train, "--out", tmp_path / "nowhere" / "t.bpe") == (
        f"error: --out {tmp_path / 'nowhere' / 't.bpe'}: the directory {tmp_path / 'nowhere'} does not exist; "
        f"create it first (mkdir -p {tmp_path / 'nowhere'})")
    assert bpe_cli(*train, "--out", tmp_path).startswith(f"error: --out {tmp_path} is a directory: name the tokenizer file")
    (tmp_path / "empty.txt").write_text("")
    assert bpe_cli("train", "--input", tmp_path / "empty.txt", "--vocab_size", 300, "--out", tmp_path / "t.bpe") == (
        f"error: input file {tmp_path / 'empty.txt'} is empty")
    assert not (tmp_path / "t.bpe").exists()


def test_bpe_encode_names_the_flag_for_special_token_text(tmp_path, monkeypatch, capsys):
    tok = bpe.train(TEXT, 300, special_tokens=["<|endoftext|>"])
    tok.save(tmp_path / "t.bpe")
    monkeypatch.setattr(sys, "stdin", io.StringIO("to be<|endoftext|>"))
    assert bpe_cli("encode", "--tokenizer", tmp_path / "t.bpe") == (
        "error: the input holds the text of the special token '<|endoftext|>': pass --allow_special to encode it "
        "as the special token's id")
    monkeypatch.setattr(sys, "stdin", io.StringIO("to be<|endoftext|>"))
    bpe.main(["encode", "--tokenizer", str(tmp_path / "t.bpe"), "--allow_special"])
    assert capsys.readouterr().out.split()[-1] == str(tok.special_tokens["<|endoftext|>"])


def test_a_bpe_file_that_would_fail_later_is_refused_when_loaded(tmp_path):
    good = tmp_path / "t.bpe"
    bpe.train(TEXT, 300).save(good)
    lines = good.read_text().splitlines()
    broken = {
        "an empty special token": (lines[:2] + ['{"": 300}'] + lines[3:], "must map strings to ids >= 0 (no string empty)"),
        "a byte without a rank": (lines[:3] + lines[4:], "1 of the 256 single bytes have no rank (e.g. b'\\x00')"),
        "a token twice": (lines + [lines[3].split()[0] + " 900"], "a token given before"),
        "a negative rank": (lines + ["YWJj -1"], "a negative rank"),
    }
    for name, (text, message) in broken.items():
        good.write_text("\n".join(text) + "\n")
        with pytest.raises(SystemExit, match=f"^error: .*{re.escape(message)}.* in {good}; prepare the dataset again$"):
            data.read_bpe_file(str(good))
    good.write_bytes(b"\xff\xfe")
    with pytest.raises(SystemExit, match="not a bpe.py tokenizer file \\(not UTF-8 text"):
        data.read_bpe_file(str(good))


def test_saving_a_tokenizer_never_leaves_half_a_file(tmp_path, monkeypatch):
    path = tmp_path / "t.bpe"
    bpe.train(TEXT, 300).save(path)
    before = path.read_bytes()

    def disk_full(self, text, encoding=None):
        open(self, "w").write(text[:100])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError):
        bpe.train(TEXT, 280).save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["t.bpe"]



def test_a_corpus_scripts_own_files_are_swapped_in_with_its_dataset(tmp_path):
    (tmp_path / "stories.txt").write_text(STORIES)
    args = argparse.Namespace(out_dir=str(tmp_path / "mine"), tokenizer="bpe", vocab_size=280, pattern="gpt2", num_proc=1)

    def add_files(dataset_dir, meta):  # as prepare/cuda_code.py names each split's files
        (Path(dataset_dir) / "files.json").write_text('{"train": [], "val": []}')
        meta["language"] = "stories"
    corpus.prepare(args, corpus.local_corpus([str(tmp_path / "stories.txt")], 0.3), add_files=add_files)
    assert (tmp_path / "mine" / "files.json").exists()
    assert data.read_meta(str(tmp_path / "mine"), "")["language"] == "stories"
