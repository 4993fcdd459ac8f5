"""
Every dataset this project reads or writes, in one place:
  - token datasets: train.bin and val.bin (flat uint16 token ids that train_gpt.py memmaps) and the
    meta.json that describes them (vocabulary size, tokenizer, token counts, file fingerprints);
  - the text tokenizers a meta.json names: "char", "gpt2" (tiktoken) or "bpe" (bpe.py);
  - CIFAR-10/100 images for train_vit.py, read without unpickling code, and their batch augmentation.
prepare/ scripts write datasets through it; training, sampling and analysis read them through it.
"""

import hashlib
import json
import os
import pickle
import reprlib
import shutil
from contextlib import contextmanager

import numpy as np
import torch

from training import atomic_write, check_is_file, fail, make_dir, pid_alive


# -----------------------------------------------------------------------------
# token datasets: uint16 .bin files that train_gpt.py memmaps

class TokenWriter:
    """Appends token ids to an open uint16 .bin file, a piece at a time (memory bounded by a piece)."""

    def __init__(self, f):
        self.f = f
        self.count = 0

    def write(self, ids):
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= 2**16):
            fail(f"token ids must be in [0, 65535] to fit uint16 bins, got max {ids.max()}")
        self.f.write(ids.astype(np.uint16).tobytes())
        self.count += ids.size


@contextmanager
def token_file(path):
    """A TokenWriter for path, atomic: an interrupted prepare never leaves a truncated .bin that
    train_gpt.py would silently train on."""
    with atomic_write(path) as tmp_path, open(tmp_path, "wb") as f:
        yield TokenWriter(f)


def write_tokens(ids, path):
    """Write token ids (all in memory) as a flat uint16 file; returns their count."""
    with token_file(path) as out:
        out.write(ids)
    return out.count


def write_dataset(data_dir, train_ids, val_ids, meta, tokenizer=None):
    """A whole dataset from ids in memory: train.bin, val.bin, the tokenizer (a bpe.Tokenizer, saved as
    meta["tokenizer_file"]) and meta.json with each split's token count (so train_gpt.py can tell a
    truncated or mismatched .bin), built aside and swapped in for data_dir's as a unit (new_dataset)."""
    with new_dataset(data_dir) as staging:
        if tokenizer is not None:
            tokenizer.save(os.path.join(staging, meta["tokenizer_file"]))
        counts = {f"{split}_tokens": write_tokens(ids, os.path.join(staging, f"{split}.bin"))
                  for split, ids in (("train", train_ids), ("val", val_ids))}
        write_meta({**meta, **counts}, staging)
    print(f"{counts['train_tokens']:,} train and {counts['val_tokens']:,} val tokens in {data_dir}")


def write_meta(meta, data_dir):
    """meta.json, written last: with the fingerprint of every file the dataset is made of, so a file
    that is not the one this meta.json was written with (damaged, or from another prepare) is refused."""
    names = ["train.bin", "val.bin"] + ([meta["tokenizer_file"]] if meta.get("tokenizer_file") else [])
    fingerprints = {name: fingerprint(os.path.join(data_dir, name)) for name in names
                    if os.path.isfile(os.path.join(data_dir, name))}
    with atomic_write(os.path.join(data_dir, "meta.json")) as tmp_path, open(tmp_path, "w") as f:
        json.dump({**meta, "fingerprints": fingerprints}, f, ensure_ascii=False)


# -----------------------------------------------------------------------------
# replacing a dataset: built aside, checked, swapped in whole
#
# A prepare run may take hours, get killed, or be given an empty corpus. So it never writes into the
# dataset's directory: it builds the whole new dataset in data/NAME.tmp-PID beside it (the same
# filesystem), checks it, and swaps the two directories with two renames (data/NAME -> data/NAME.old-PID,
# data/NAME.tmp-PID -> data/NAME), then deletes the old one. Killed at any moment, data/NAME is the old
# dataset or the new one, never a mix; in the instant between the renames it is missing, and the next
# prepare of it puts the old one back. Leftovers of killed runs (their PID is gone) are deleted then too.

@contextmanager
def new_dataset(data_dir):
    """Yield an empty directory to write a whole dataset into (train.bin, val.bin, a tokenizer file,
    meta.json last); when the block ends, check it (check_new_dataset) and swap it in for data_dir.
    An error, Ctrl-C or a kill before then leaves data_dir as it was."""
    target = dataset_target(data_dir)
    recover_interrupted_swap(target)
    staging = f"{target}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)  # a killed run's, whose PID this process got again
    make_dir(staging)
    try:
        yield staging
        check_new_dataset(staging, data_dir)
        swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def dataset_target(data_dir):
    """The real path of data_dir (a symlinked one is replaced where it points, on its own disk), once
    it is known to be a directory that can be swapped whole: a dataset's own, not the current
    directory, a mount point, or a folder holding other folders (data/ itself, a repository)."""
    target = os.path.realpath(data_dir)
    cwd = os.path.realpath(os.getcwd())
    if cwd == target or cwd.startswith(target + os.sep):
        fail(f"--out_dir {data_dir} is the current directory or holds it: prepare into a directory of its own, "
             f"e.g. data/NAME")
    if os.path.ismount(target):
        fail(f"--out_dir {data_dir} is a mount point, and a dataset is built beside its directory and swapped in: "
             f"prepare into a directory inside it, e.g. {os.path.join(data_dir, 'NAME')}")
    if os.path.isdir(target):
        folders = [entry.name for entry in os.scandir(target) if entry.is_dir(follow_symlinks=False)]
        if folders:
            fail(f"--out_dir {data_dir} holds the folder {folders[0]!r}, and a dataset replaces its whole "
                 f"directory: prepare into a directory of its own, e.g. data/NAME")
    return target


def leftovers(target, kind):
    """{pid: path} of the data/NAME.tmp-PID or data/NAME.old-PID directories whose process is gone."""
    parent, name = os.path.split(target)
    found = {}
    for entry in os.listdir(parent) if os.path.isdir(parent) else []:
        pid = entry[len(f"{name}.{kind}-"):]
        if entry.startswith(f"{name}.{kind}-") and pid.isdigit() and not pid_alive(int(pid)):
            found[int(pid)] = os.path.join(parent, entry)
    return found


def recover_interrupted_swap(target):
    """Undo what prepare runs killed mid-way left: a dataset a swap had moved aside goes back in place
    (the new one it was replaced by never got there), then every leftover directory is deleted."""
    old = leftovers(target, "old")
    if old and not os.path.isfile(os.path.join(target, "meta.json")):
        aside = old.pop(max(old))
        if os.path.isdir(target):  # made again since (a prepare script makes its out_dir first): keep what it holds
            for entry in os.listdir(target):
                os.replace(os.path.join(target, entry), os.path.join(aside, entry))
            os.rmdir(target)
        os.rename(aside, target)
        print(f"restored {target} from {aside}, where a killed prepare had moved it")
    for path in [*old.values(), *leftovers(target, "tmp").values()]:
        shutil.rmtree(path, ignore_errors=True)
        print(f"removed {path}, left by a killed prepare")


def check_new_dataset(staging, data_dir):
    """A new dataset may replace the old one only if it is sane: meta.json valid, two non-empty splits
    of exactly the token counts it records, every id below the vocabulary, and the fingerprint of each
    file (the tokenizer's too) recorded. Any failure is one line, and data_dir stays as it was."""
    unchanged = f"{data_dir} is left as it was"
    meta = read_meta(staging, unchanged)
    for split in ("train", "val"):
        path = os.path.join(staging, f"{split}.bin")
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        if size == 0:
            fail(f"the new dataset's {split} split is empty: give the prepare script more text; {unchanged}")
        tokens = np.memmap(path, dtype=np.uint16, mode="r")
        top = max(int(tokens[i: i + (1 << 24)].max()) for i in range(0, len(tokens), 1 << 24))
        if 2 * meta.get(f"{split}_tokens", -1) != size or top >= meta["vocab_size"]:
            fail(f"the new {split}.bin ({size // 2} tokens, largest id {top}) disagrees with its meta.json "
                 f"({meta.get(f'{split}_tokens')} tokens, vocab_size={meta['vocab_size']}); {unchanged}")
    for name in ["train.bin", "val.bin"] + ([meta["tokenizer_file"]] if meta.get("tokenizer_file") else []):
        if not os.path.isfile(os.path.join(staging, name)) or name not in meta["fingerprints"]:
            fail(f"the new dataset lacks {name} or its fingerprint in meta.json; {unchanged}")
        check_fingerprint(staging, meta, name)


def swap_in(staging, target):
    """Put the dataset in staging where target is, as a unit: two renames of whole directories."""
    if os.path.isdir(target):
        link_other_files(target, staging)
        aside = f"{target}.old-{os.getpid()}"
        os.rename(target, aside)
        os.rename(staging, target)
        shutil.rmtree(aside)
    else:
        os.rename(staging, target)
    dir_fd = os.open(os.path.dirname(target), os.O_RDONLY)  # make the renames durable
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def link_other_files(old_dir, new_dir):
    """A hard link in new_dir to each file of old_dir that is not part of its dataset (a downloaded
    input.txt, your own files), a copy where the filesystem has no hard links: replacing a dataset
    replaces nothing else. Files of a write a killed process left (.tmp-*) stay behind."""
    skip = dataset_files(old_dir)
    for name in os.listdir(old_dir):
        old, new = os.path.join(old_dir, name), os.path.join(new_dir, name)
        if name in skip or name.startswith(".tmp-") or os.path.lexists(new):
            continue
        try:
            os.link(old, new, follow_symlinks=False)
        except OSError:
            shutil.copy2(old, new, follow_symlinks=False)


def dataset_files(data_dir):
    """The names of the files a dataset directory's dataset is made of, as its meta.json lists them."""
    try:
        with open(os.path.join(data_dir, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
        listed = [*meta.get("fingerprints", {}), meta.get("tokenizer_file")]
    except (OSError, ValueError, AttributeError, TypeError):  # no meta.json, or a damaged one
        listed = []
    return {"meta.json", "train.bin", "val.bin", *(name for name in listed if isinstance(name, str))}


def fingerprint(path):
    """A cheap identity of a dataset file: SHA-256 of its size and of 16 blocks of 64 KiB spread evenly
    through it (all of a file under 1 MiB), so a 20 GB bin costs 1 MiB of reading. Another prepare
    writes other tokens, so another fingerprint; a copy keeps it (a modification time would not)."""
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for block in range(16):
            f.seek(block * max(0, size - 65536) // 15)
            digest.update(f.read(65536))
    return digest.hexdigest()[:16]


def check_fingerprint(data_dir, meta, name):
    """The file is the one meta.json was written with (datasets from before fingerprints pass)."""
    path = os.path.join(data_dir, name)
    expected = meta.get("fingerprints", {}).get(name)
    if expected is not None and fingerprint(path) != expected:
        fail(f"{path} is not the file {os.path.join(data_dir, 'meta.json')} was written with: damaged, or "
             f"from another prepare run; prepare the dataset again")


def read_text_file(path):
    """A whole UTF-8 text file given as input (a prompt, a corpus), each failure one line."""
    check_is_file(path, "a text file", f"{path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        fail(not_utf8(path, e))


def not_utf8(path, error):
    return (f"{path} is not UTF-8 text ({error.reason}: byte {error.object[error.start]:#04x}); convert it "
            f"first, e.g. iconv -f latin1 -t utf-8 {path} > converted.txt")


def read_bpe_file(path):
    """A bpe.py tokenizer file named by a dataset's meta.json, each failure one line."""
    import bpe
    check_is_file(path, "a bpe.py tokenizer file", f"{path} is missing; prepare the dataset again")
    try:
        return bpe.Tokenizer.load(path)
    except (ValueError, UnicodeDecodeError) as e:
        fail(f"{str(e).removeprefix(path + ': ')} in {path}; prepare the dataset again")


# -----------------------------------------------------------------------------
# text tokenizers named by a dataset's meta.json: "char", "gpt2" (tiktoken) or "bpe" (bpe.py)

def gpt2_tokenizer():
    """
    tiktoken's GPT-2 encoding. tiktoken downloads its ranks file on first use; offline, point
    GPT2_TIKTOKEN_FILE at a local copy of gpt2.tiktoken (the GPT-2 ranks in tiktoken's format).
    """
    import tiktoken
    path = os.environ.get("GPT2_TIKTOKEN_FILE")
    if not path:
        try:
            return tiktoken.get_encoding("gpt2")
        except Exception as e:  # requests' and tiktoken's many network errors
            fail(f"could not get GPT-2's tokenizer ({type(e).__name__}); offline, set GPT2_TIKTOKEN_FILE "
                 f"to a local gpt2.tiktoken")
    if not os.path.isfile(path):
        fail(f"GPT2_TIKTOKEN_FILE={path} does not exist")
    from tiktoken.load import load_tiktoken_bpe
    from bpe import GPT2_SPLIT_PATTERN
    return tiktoken.Encoding(name="gpt2", pat_str=GPT2_SPLIT_PATTERN,
                             mergeable_ranks=load_tiktoken_bpe(path),
                             special_tokens={"<|endoftext|>": 50256})


def read_meta(data_dir, prepare_hint):
    """A dataset's meta.json, checked: valid JSON, a positive int vocab_size, and for a char
    tokenizer an itos table of exactly that many characters. Any failure is one line."""
    path = os.path.join(data_dir, "meta.json")
    if os.path.isdir(path):
        fail(f"{path} is a directory, not the dataset's meta.json")
    if not os.path.isfile(path):
        aside = leftovers(os.path.realpath(data_dir), "old")
        if aside:  # killed in the instant between the two renames of swap_in
            fail(f"{path} is missing: a prepare killed while replacing the dataset left it in {max(aside.items())[1]}; "
                 f"prepare again (which puts it back first), or move it back yourself")
        fail(f"{path} is missing; prepare the dataset first: {prepare_hint}")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (ValueError, RecursionError) as e:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        fail(f"{path} is not valid JSON ({type(e).__name__}: {str(e)[:200]!r}); prepare the dataset again: {prepare_hint}")
    vocab_size = meta.get("vocab_size") if isinstance(meta, dict) else None
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 1:
        fail(f"{path} has no valid vocab_size (a positive integer), got {reprlib.repr(vocab_size)}; prepare the "
             f"dataset again: {prepare_hint}")
    if vocab_size > 2**16:
        fail(f"{path} says vocab_size={vocab_size}, more ids than uint16 token bins hold (65536); prepare the "
             f"dataset again: {prepare_hint}")
    itos = meta.get("itos")
    if meta.get("tokenizer") == "char" and (not isinstance(itos, list) or len(itos) != vocab_size):
        fail(f"{path}: a char tokenizer needs an itos list of vocab_size={vocab_size} characters, got "
             f"{len(itos) if isinstance(itos, list) else type(itos).__name__}; prepare the dataset again: {prepare_hint}")
    if meta.get("tokenizer") == "char" and not all(isinstance(ch, str) and ch for ch in itos):
        fail(f"{path}: a char tokenizer's itos must be a list of non-empty strings; prepare the dataset again: {prepare_hint}")
    fingerprints = meta.get("fingerprints", {})
    if not (isinstance(fingerprints, dict) and all(isinstance(v, str) for v in fingerprints.values())):
        fail(f"{path}: fingerprints must map file names to strings, got {reprlib.repr(fingerprints)}; prepare the "
             f"dataset again: {prepare_hint}")
    for key in ("train_tokens", "val_tokens"):
        count = meta.get(key, 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            fail(f"{path}: {key} must be a token count (an int >= 0), got {reprlib.repr(count)}; prepare the dataset "
                 f"again: {prepare_hint}")
    name = meta.get("tokenizer_file")
    if (meta.get("tokenizer") == "bpe" or name is not None) and not (
            isinstance(name, str) and name == os.path.basename(name) and name not in ("", ".", "..")):
        fail(f"{path}: a bpe tokenizer needs the name of its tokenizer_file (a file beside meta.json), got "
             f"{reprlib.repr(name)}; prepare the dataset again: {prepare_hint}")
    return meta


def dataset_path(config, out_dir):
    """Where the dataset a run was trained on is: data_dir/dataset as the run named it, from the
    current directory, or else from the directory that holds out_dir (where training was started
    when out_dir was given relative to it), so sampling from elsewhere finds it too."""
    named = os.path.join(config["data_dir"], config["dataset"])
    candidates = [named] if os.path.isabs(named) else [named, os.path.join(os.path.dirname(os.path.abspath(out_dir)), named)]
    for path in candidates:
        if os.path.isfile(os.path.join(path, "meta.json")):
            return path
    fail(f"the run's dataset {named} (its meta.json) is neither in {' nor in '.join(dict.fromkeys(candidates))}; "
         f"run from the directory training was started in (the analysis scripts also take --data_dir=...)")


def check_token_bins(data_path, meta, block_size, prepare_hint):
    """train.bin and val.bin exist, hold the token counts meta.json records, and more than one window;
    they and the tokenizer file are the ones meta.json was written with (never a mix of two prepares)."""
    for split in ("train", "val"):
        path = os.path.join(data_path, f"{split}.bin")
        check_is_file(path, "a token file", f"{path} is missing; prepare the dataset first: {prepare_hint}")
        check_fingerprint(data_path, meta, f"{split}.bin")
        size, expected = os.path.getsize(path), meta.get(f"{split}_tokens")
        if size % 2 != 0 or (expected is not None and size != 2 * expected):
            fail(f"{path} is truncated or damaged ({size} bytes, meta.json says {reprlib.repr(expected)} tokens); "
                 f"prepare it again: {prepare_hint}")
        if size // 2 <= block_size:
            fail(f"{path} has only {size // 2} tokens, too few for block_size={block_size} (a window is block_size + 1 "
                 f"tokens): give the prepare script more text, or train with a smaller --block_size")
    if meta.get("tokenizer_file"):
        path = os.path.join(data_path, meta["tokenizer_file"])
        check_is_file(path, "a tokenizer file", f"{path} is missing; prepare the dataset again: {prepare_hint}")
        check_fingerprint(data_path, meta, meta["tokenizer_file"])


def random_windows(data_path, split, block_size, n, generator, rank=0, world_size=1):
    """Process rank's n of a global batch of n * world_size random windows of split.bin: x and y
    (n, block_size) int64 on the CPU, y one token on from x. Every process draws the whole global
    batch's positions from its own copy of the generator and keeps its slice, so N processes see
    exactly the windows one process would (and a resumed run, given the generator's state, the same
    windows as a straight one)."""
    # re-open the memmap each time: a long-lived memmap keeps the pages it touched resident
    tokens = np.memmap(os.path.join(data_path, f"{split}.bin"), dtype=np.uint16, mode="r")
    ix = torch.randint(len(tokens) - block_size, (n * world_size,), generator=generator)[rank * n:(rank + 1) * n]
    windows = torch.from_numpy(np.stack([tokens[i:i + block_size + 1] for i in ix.tolist()]).astype(np.int64))
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()           # (n, block_size) each


def load_tokenizer(meta, data_dir):
    """Return (encode, decode) for the tokenizer a dataset was prepared with."""
    kind = meta.get("tokenizer")
    if kind == "char":
        itos = meta["itos"]
        stoi = {ch: i for i, ch in enumerate(itos)}

        def encode(text):
            unknown = sorted(set(text) - stoi.keys())
            if unknown:
                fail(f"characters {''.join(unknown)!r} are not in this dataset's vocabulary")
            return [stoi[ch] for ch in text]
        return encode, lambda ids: "".join(itos[i] for i in ids)
    if kind == "gpt2":
        enc = gpt2_tokenizer()
        return (lambda text: enc.encode(text, allowed_special={"<|endoftext|>"})), enc.decode
    if kind == "bpe":
        tok = read_bpe_file(os.path.join(data_dir, meta["tokenizer_file"]))
        check_fingerprint(data_dir, meta, meta["tokenizer_file"])
        if tok.n_vocab != meta["vocab_size"]:  # a model's ids beyond the tokenizer's could not be decoded
            fail(f"{os.path.join(data_dir, 'meta.json')} says vocab_size={meta['vocab_size']}, but its tokenizer file "
                 f"has {tok.n_vocab} ids; prepare the dataset again")
        return tok.encode_ordinary, tok.decode
    fail(f"{os.path.join(data_dir, 'meta.json')} names an unknown tokenizer {kind!r} (char, gpt2 or bpe)")


def start_ids(meta, data_path, encode):
    """The ids a document starts after: <|endoftext|>, where the model learned files begin."""
    if meta["tokenizer"] == "bpe":
        specials = read_bpe_file(os.path.join(data_path, meta["tokenizer_file"])).special_tokens
        return [specials["<|endoftext|>"]] if "<|endoftext|>" in specials else encode("\n")
    return [50256] if meta["tokenizer"] == "gpt2" else encode("\n")


# -----------------------------------------------------------------------------
# labelled texts for train_classifier.py: JSONL

def read_jsonl(path):
    """train_classifier.py's own data: (texts, labels) from a JSONL file of {"text": non-empty str, "label": int >= 0 or str}."""
    if not os.path.isfile(path):
        fail(f"{path} does not exist")
    texts, labels = [], []
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path} line {line_no}"
                try:
                    row = json.loads(line)
                except (ValueError, RecursionError) as e:  # json.JSONDecodeError is a ValueError; deep nesting is not
                    fail(f"{where} is not JSON ({type(e).__name__}: {str(e):.100})")
                if not isinstance(row, dict) or "text" not in row or "label" not in row:
                    fail(f'{where} must be an object with "text" and "label", got {line.strip()!r:.80}')
                text, label = row["text"], row["label"]
                if not isinstance(text, str) or not text.strip():
                    fail(f"{where}: the text must be a non-empty string, got {text!r:.80}")
                # bool is a subclass of int in Python: refuse it explicitly
                if isinstance(label, bool) or not (isinstance(label, str) and label or isinstance(label, int) and label >= 0):
                    fail(f"{where}: the label must be an int >= 0 or a non-empty string, got {label!r:.80}")
                texts.append(text)
                labels.append(label)
    except UnicodeDecodeError as e:
        fail(not_utf8(path, e))
    if not texts:
        fail(f"{path} holds no examples")
    return texts, labels


# -----------------------------------------------------------------------------
# CIFAR-10/100 through torchvision's loaders, for train_vit.py and analysis/

CIFAR = {  # torchvision class name, what we call it, per-channel mean and std of the training images
    "cifar10": ("CIFAR10", "CIFAR-10", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ("CIFAR100", "CIFAR-100", (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


class CIFARArrays(pickle.Unpickler):
    """Unpickles CIFAR's batch files and nothing else. They hold dicts of strings, numbers, lists and
    numpy arrays; unpickling may call any function a file names (that is how a crafted file runs
    code), so every global but numpy's array reconstruction is refused."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}  # how protocol-2 pickles written by Python 3 spell bytes

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which no CIFAR file holds")
        return super().find_class(module, name)


def first_line(error):
    """An exception's message as one short line, for an error that names a damaged file."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def read_cifar_file(path):
    """One of CIFAR's pickled dicts, through CIFARArrays; a file that is not one is a one-line error."""
    check_is_file(path, "a CIFAR file", f"{path} is missing")
    try:
        with open(path, "rb") as f:
            entry = CIFARArrays(f, encoding="latin1").load()  # the files are Python 2 pickles
    except Exception as e:  # the unpickler's many ways to find a damaged file; none of them runs code
        fail(f"{path} is not a CIFAR batch file (refused as unsafe or damaged: {first_line(e)})")
    if not isinstance(entry, dict):
        fail(f"{path} is not a CIFAR batch file: it holds a {type(entry).__name__}, not a dict")
    return entry


class CIFARImages(torch.utils.data.Dataset):
    """A CIFAR split as PIL images and int labels, like torchvision's CIFAR10/CIFAR100 (whose download
    and md5 lists it uses), but read through CIFARArrays: a file from elsewhere cannot run code."""

    def __init__(self, files, meta_file, meta_key, transform=None):
        from PIL import Image
        self.to_image, self.transform = Image.fromarray, transform
        data, self.targets = [], []
        for path in files:
            entry = read_cifar_file(path)
            images, labels = entry.get("data"), entry.get("labels", entry.get("fine_labels"))
            if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 2
                    and images.shape[1] == 3 * 32 * 32):
                fail(f"{path} is not a CIFAR batch file: its data is not uint8 images of 3x32x32 values")
            if not (isinstance(labels, list) and len(labels) == len(images)
                    and all(isinstance(label, int) and label >= 0 for label in labels)):
                fail(f"{path} is not a CIFAR batch file: it needs one label (an int >= 0) per image")
            data.append(images)
            self.targets.extend(labels)
        classes = read_cifar_file(meta_file).get(meta_key)
        if not (isinstance(classes, list) and all(isinstance(name, str) for name in classes)
                and len(classes) > max(self.targets, default=-1)):
            fail(f"{meta_file} is not a CIFAR meta file: its {meta_key} must list a class name for every label")
        self.classes = classes
        if not self.targets:
            fail(f"{', '.join(files)} hold no images")
        self.data = np.vstack(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 32, 32, 3) HWC

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        image = self.to_image(self.data[index])
        return (image if self.transform is None else self.transform(image)), self.targets[index]


def load_cifar(dataset, data_dir, train, download, verify_md5):
    """The train or test split of CIFAR-10/100 in data_dir (downloaded by torchvision's code if asked),
    as a CIFARImages dataset. verify_md5=False skips the md5 sums, for a copy you made yourself."""
    from torchvision import datasets
    from torchvision.datasets.utils import check_integrity, download_and_extract_archive
    if dataset not in CIFAR:
        fail(f"dataset must be cifar10 or cifar100, got '{dataset}'")
    class_name, name, _, _ = CIFAR[dataset]
    spec = getattr(datasets, class_name)  # torchvision's file names, url and md5 sums
    folder = os.path.join(data_dir, spec.base_folder)
    files = [(os.path.join(folder, file), md5) for file, md5 in (spec.train_list if train else spec.test_list)]
    files.append((os.path.join(folder, spec.meta["filename"]), spec.meta["md5"]))
    if download and not all(check_integrity(path, md5) for path, md5 in files):
        try:
            download_and_extract_archive(spec.url, data_dir, filename=spec.filename, md5=spec.tgz_md5)
        except OSError as e:  # no network, or the download broke off
            fail(f"could not download {name} ({e}); put {spec.base_folder} in {data_dir} and run with --download=False")
    if not os.path.isdir(folder):
        fail(f"{name} not found in {data_dir}; run with --download=True or put {spec.base_folder} there")
    for path, md5 in files:
        if not check_integrity(path, md5 if verify_md5 else None):
            hint = " (for a copy you made yourself: --verify_md5=False)" if verify_md5 and os.path.isfile(path) else ""
            fail(f"{name} in {folder} is incomplete or corrupted: {path} is missing or fails its md5 check{hint}")
    return CIFARImages([path for path, _ in files[:-1]], files[-1][0], spec.meta["key"])


def cifar_normalize(dataset):
    """[ToTensor, Normalize]: the transforms every CIFAR image gets last, in training and evaluation."""
    from torchvision import transforms
    _, _, mean, std = CIFAR[dataset]
    return [transforms.ToTensor(), transforms.Normalize(mean, std)]


def random_crop_flip(images, padding, generator):
    """RandomCrop(size, padding) and RandomHorizontalFlip(), as torchvision applies them to one image,
    applied to a whole batch (B, C, H, W) in one gather: each image its own offsets and flip, drawn on
    the CPU from `generator` (so a seeded batch is the same on every device). Zero padding, as
    RandomCrop's. One tensor op for the batch instead of a chain of transforms per image."""
    B, C, H, W = images.shape
    top = torch.randint(0, 2 * padding + 1, (B, 1, 1), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (B, 1, 1), generator=generator)
    flip = torch.rand(B, 1, 1, generator=generator) < 0.5
    rows = top + torch.arange(H)[:, None]           # (B, H, 1): the padded row each output row reads
    cols = left + torch.arange(W)                   # (B, 1, W)
    cols = torch.where(flip, cols.flip(-1), cols)   # a flipped image reads its columns right to left
    padded = torch.nn.functional.pad(images, (padding,) * 4)    # (B, C, H + 2p, W + 2p)
    batch = torch.arange(B, device=images.device)[:, None, None, None]
    channel = torch.arange(C, device=images.device)[None, :, None, None]
    rows, cols = rows[:, None].to(images.device), cols[:, None].to(images.device)  # broadcast over channels
    return padded[batch, channel, rows, cols]                   # (B, C, H, W)
