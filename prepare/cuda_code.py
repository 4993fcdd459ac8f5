"""
A corpus of CUDA source: the tarball of seven permissively licensed repositories
(cuda-kernels.tar.gz: 2,616 .cu/.cuh files, 40 MB; see docs/cuda.md), a directory, or any list of
.cu/.cuh files (your own kernels). One document per file, deduplicated by content, licence header
dropped; train/val split by file, never inside one, so no kernel is in both.
Writes data/cuda_code/{tokenizer.bpe, train.bin, val.bin, meta.json, files.json}; files.json names
each split's files in order, for code_check.dataset_tasks.

    python prepare/cuda_code.py cuda-kernels.tar.gz                   # a bpe.py tokenizer of 2048 ids
    python prepare/cuda_code.py cuda-kernels.tar.gz --weight NVIDIA+cutlass=0 karpathy+llm.c=3
    python prepare/cuda_code.py my_kernels/ more/*.cu --out_dir data/my_cuda
    python prepare/cuda_code.py cuda-kernels.tar.gz --train_only data/elementwise_kernels.tar.gz
"""

import hashlib
import json
import os
import re
import sys
import tarfile
from itertools import chain
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import training  # noqa: E402
from prepare import corpus  # noqa: E402

SUFFIXES = (".cu", ".cuh")
# a file's first comment, when it is a licence: the same 20-30 lines atop every file of a repository
LICENCE = re.compile(r"\A\s*(/\*.*?\*/|(//[^\n]*\n\s*)+)", re.DOTALL)


def strip_licence(text):
    head = LICENCE.match(text)
    if head and re.search(r"copyright|licen[cs]e|SPDX", head.group(0), re.IGNORECASE):
        return text[head.end():].lstrip("\n")
    return text


def source_files(paths):
    """(name, text) of every .cu/.cuh file in paths: tarballs (names as stored, e.g.
    karpathy+llm.c/train_gpt2.cu), directories (names relative to the directory) and files, in
    sorted order. A file that is not UTF-8 is skipped."""
    for path in paths:
        if os.path.isfile(path) and tarfile.is_tarfile(path):
            with tarfile.open(path) as tar:
                for member in sorted(tar.getmembers(), key=lambda m: m.name):
                    if member.isfile() and member.name.endswith(SUFFIXES):
                        try:
                            yield member.name.removeprefix("./"), tar.extractfile(member).read().decode("utf-8")
                        except UnicodeDecodeError:
                            continue
        elif os.path.isdir(path):
            for file in sorted(Path(path).rglob("*")):
                if file.suffix in SUFFIXES and file.is_file():
                    try:
                        yield str(file.relative_to(path)), file.read_text(encoding="utf-8")
                    except UnicodeDecodeError:
                        continue
        elif os.path.isfile(path):
            yield os.path.basename(path), training.read_text_file(path)
        else:
            training.fail(f"{path} does not exist: give the tarball, a directory or .cu/.cuh files")


def cuda_corpus(paths, weights, val_fraction, names, train_only=()):
    """(split, text) for each distinct file, licence header dropped; a train file of a repository
    with a weight N (its name's first component) comes N times (0: not at all); the files of
    train_only are all train. Appends each document's file name to names[split], in the order the
    bins hold them, and a train_only file's to names["train_only"] too: training data, not tasks."""
    def documents():
        seen = set()
        for split in names:
            names[split].clear()
        files = chain(((name, text, False) for name, text in source_files(paths)),
                      ((name, text, True) for name, text in source_files(train_only)))
        for name, text, always_train in files:
            text = strip_licence(text)
            digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()
            if digest in seen or not text.strip():
                continue
            seen.add(digest)
            if always_train:
                names["train_only"].append(name)
            split = "train" if always_train else corpus.hash_split(text, val_fraction)
            for _ in range(1 if split == "val" else weights.get(name.split("/")[0], 1)):
                names[split].append(name)
                yield split, text
    return documents


def main():
    parser = corpus.arguments(__doc__, out_dir="data/cuda_code", tokenizer="bpe", vocab_size=2048,
                              val_fraction=0.5)
    parser.add_argument("sources", nargs="+", help="cuda-kernels.tar.gz, directories, .cu/.cuh files")
    parser.add_argument("--weight", nargs="*", default=[], metavar="REPO=N",
                        help="train on a repository's files N times (0: leave them out of train), e.g. "
                             "karpathy+llm.c=3; its val files stay as they are")
    parser.add_argument("--train_only", nargs="*", default=[], metavar="SOURCE",
                        help="tarballs, directories or files whose kernels all train and none is held out, e.g. "
                             "generated ones (prepare/elementwise_kernels.py)")
    args = parser.parse_args()
    weights = {}
    for spec in args.weight:
        repo, _, n = spec.partition("=")
        if not n.isdigit():
            training.fail(f"--weight {spec}: give REPO=N with N a whole number, e.g. karpathy+llm.c=3")
        weights[repo] = int(n)
    names = {"train": [], "val": [], "train_only": []}
    corpus.prepare(args, cuda_corpus(args.sources, weights, args.val_fraction, names, args.train_only))
    with training.atomic_write(os.path.join(args.out_dir, "files.json")) as tmp, open(tmp, "w") as f:
        json.dump(names, f)
    meta_path = os.path.join(args.out_dir, "meta.json")
    with open(meta_path) as f:
        meta = json.load(f)
    meta["language"] = "cuda"  # code_check.dataset_tasks: which tasks the held-out files give
    with training.atomic_write(meta_path) as tmp, open(tmp, "w") as f:
        json.dump(meta, f)


if __name__ == "__main__":
    main()
