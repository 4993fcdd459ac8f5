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
from contextlib import contextmanager

import numpy as np
import torch

from training import atomic_write, check_is_file, fail, remove_stale_temp_files


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


def write_dataset(data_dir, train_ids, val_ids, meta):
    """train.bin, val.bin, then meta.json with each split's token count (so train_gpt.py can tell
    a truncated or mismatched .bin): a dataset is complete once its meta.json is written."""
    counts = {f"{split}_tokens": write_tokens(ids, os.path.join(data_dir, f"{split}.bin"))
              for split, ids in (("train", train_ids), ("val", val_ids))}
    write_meta({**meta, **counts}, data_dir)
    print(f"{counts['train_tokens']:,} train and {counts['val_tokens']:,} val tokens in {data_dir}")


def write_meta(meta, data_dir):
    """meta.json, written last: with the fingerprint of every file the dataset is made of, so the
    bins and tokenizer file of a later prepare that was killed before its own meta.json are refused,
    not read with this meta.json (a dataset changes as a unit)."""
    remove_stale_temp_files(data_dir)  # the dataset is complete: what an earlier, killed prepare left goes
    names = ["train.bin", "val.bin"] + ([meta["tokenizer_file"]] if meta.get("tokenizer_file") else [])
    fingerprints = {name: fingerprint(os.path.join(data_dir, name)) for name in names
                    if os.path.isfile(os.path.join(data_dir, name))}
    with atomic_write(os.path.join(data_dir, "meta.json")) as tmp_path, open(tmp_path, "w") as f:
        json.dump({**meta, "fingerprints": fingerprints}, f, ensure_ascii=False)


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
             f"written by a prepare interrupted before its meta.json; prepare the dataset again")


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
        fail(f"{path} is missing; prepare the dataset first: {prepare_hint}")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:  # json.JSONDecodeError is a ValueError
        fail(f"{path} is not valid JSON ({e}); prepare the dataset again: {prepare_hint}")
    vocab_size = meta.get("vocab_size") if isinstance(meta, dict) else None
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 1:
        fail(f"{path} has no valid vocab_size (a positive integer), got {vocab_size!r}; prepare the dataset again: {prepare_hint}")
    itos = meta.get("itos")
    if meta.get("tokenizer") == "char" and (not isinstance(itos, list) or len(itos) != vocab_size):
        fail(f"{path}: a char tokenizer needs an itos list of vocab_size={vocab_size} characters, got "
             f"{len(itos) if isinstance(itos, list) else type(itos).__name__}; prepare the dataset again: {prepare_hint}")
    fingerprints = meta.get("fingerprints", {})
    if not (isinstance(fingerprints, dict) and all(isinstance(v, str) for v in fingerprints.values())):
        fail(f"{path}: fingerprints must map file names to strings, got {fingerprints!r}; prepare the dataset again: {prepare_hint}")
    if meta.get("tokenizer") == "bpe" and not isinstance(meta.get("tokenizer_file"), str):
        fail(f"{path}: a bpe tokenizer needs the name of its tokenizer_file; prepare the dataset again: {prepare_hint}")
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
    """train.bin and val.bin exist, hold the token counts meta.json records, and more than one window."""
    for split in ("train", "val"):
        path = os.path.join(data_path, f"{split}.bin")
        if not os.path.exists(path):
            fail(f"{path} is missing; prepare the dataset first: {prepare_hint}")
        check_fingerprint(data_path, meta, f"{split}.bin")
        size, expected = os.path.getsize(path), meta.get(f"{split}_tokens")
        if size % 2 != 0 or (expected is not None and size != 2 * expected):
            fail(f"{path} is truncated or damaged ({size} bytes, meta.json says {expected} tokens); "
                 f"prepare it again: {prepare_hint}")
        if size // 2 <= block_size:
            fail(f"{path} has only {size // 2} tokens, too few for block_size={block_size}")


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
        return tok.encode_ordinary, tok.decode
    fail(f"{os.path.join(data_dir, 'meta.json')} names an unknown tokenizer {kind!r} (char, gpt2 or bpe)")


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


class CIFARImages(torch.utils.data.Dataset):
    """A CIFAR split as PIL images and int labels, like torchvision's CIFAR10/CIFAR100 (whose download
    and md5 lists it uses), but read through CIFARArrays: a file from elsewhere cannot run code."""

    def __init__(self, files, meta_file, meta_key, transform=None):
        from PIL import Image
        self.to_image, self.transform = Image.fromarray, transform
        data, self.targets = [], []
        for path in [*files, meta_file]:
            try:
                with open(path, "rb") as f:
                    entry = CIFARArrays(f, encoding="latin1").load()  # the files are Python 2 pickles
            except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError) as e:
                fail(f"{path} is not a CIFAR batch file (refused as unsafe or damaged: {e})")
            if path == meta_file:
                self.classes = entry[meta_key]
            else:
                data.append(entry["data"])
                self.targets.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
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
