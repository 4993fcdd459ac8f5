"""
A corpus of Python source with no download at all: the Python installation's own standard library
(~1,800 files, ~31 MB on Python 3.11), so anyone can train a code model offline. One document per
file, deduplicated by content; train/val split by file, never inside one.
Writes data/python_code/{tokenizer.bpe, train.bin, val.bin, meta.json}.

    python prepare/python_code.py                            # the stdlib, a bpe.py tokenizer of 2048 ids
    python prepare/python_code.py --site_packages            # plus the installed packages' sources
    python prepare/python_code.py --data_files my_repo/ more/*.py --out_dir data/my_code
    python prepare/python_code.py --tokenizer=gpt2           # GPT-2's tokens instead
"""

import hashlib
import os
import site
import sys
import sysconfig
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import training  # noqa: E402
from prepare import corpus  # noqa: E402


def python_files(roots, skip_dirs):
    """Every .py file under roots (a root may be a single file), in sorted order, except under a
    directory named in skip_dirs (the stdlib folder holds site-packages)."""
    for root in map(Path, roots):
        if root.is_file():
            yield root
            continue
        for path in sorted(root.rglob("*.py")):
            if not skip_dirs.intersection(path.relative_to(root).parts[:-1]) and path.is_file():
                yield path


def code_corpus(roots, other_files, val_fraction):
    """(split, source) for each distinct file: a copy of a file already seen is skipped, and a file
    that is not UTF-8 too (a few test files on purpose)."""
    def documents():
        seen = set()
        for path in python_files(roots, skip_dirs={"site-packages", "dist-packages", "__pycache__"}):
            try:
                source = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            digest = hashlib.sha1(source.encode("utf-8", "surrogatepass")).digest()
            if digest not in seen and source.strip():
                seen.add(digest)
                yield corpus.hash_split(source, val_fraction), source
        yield from corpus.local_corpus(other_files, val_fraction)()
    return documents


def main():
    parser = corpus.arguments(__doc__, out_dir="data/python_code", tokenizer="bpe", vocab_size=2048,
                              val_fraction=0.05)
    parser.add_argument("--site_packages", action="store_true", help="add the installed packages' .py files")
    parser.add_argument("--no_stdlib", action="store_true", help="only --data_files (and --site_packages)")
    args = parser.parse_args()

    roots = [] if args.no_stdlib else [sysconfig.get_paths()["stdlib"]]
    if args.site_packages:
        roots += site.getsitepackages()
    other_files = []  # --data_files: directories and .py files are code; .txt/.jsonl/.parquet go to corpus.read_file
    for path in args.data_files:
        if not os.path.exists(path):
            training.fail(f"--data_files {path} does not exist")
        (roots if os.path.isdir(path) or path.endswith(".py") else other_files).append(path)
    if not roots and not other_files:
        training.fail("no code to read: drop --no_stdlib, or give --data_files or --site_packages")
    corpus.prepare(args, code_corpus(roots, other_files, args.val_fraction))


if __name__ == "__main__":
    main()
