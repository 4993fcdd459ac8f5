"""
Prepare a text corpus for training with a bpe.py tokenizer trained on it.

    python prepare/text_bpe.py                                 # tiny Shakespeare, vocab 1024
    python prepare/text_bpe.py --input my.txt --input more.txt --vocab_size 4096 --out_dir data/mine

Writes into --out_dir:
    tokenizer.bpe        the trained tokenizer (bpe.Tokenizer.load reads it)
    train.bin, val.bin   token ids as numpy uint16, first 90% / last 10% of the text
    meta.json            {"vocab_size": ..., "tokenizer": "bpe", "tokenizer_file": "tokenizer.bpe"}

The tokenizer is trained on the train split only, so val.bin measures how the
model does on text the tokenizer has not seen either.
"""

import argparse
import json
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # to import bpe from the repo root
import bpe  # noqa: E402

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


def write_atomically(path, ids):
    """Write to a temp file in the same directory, then rename over the target:
    os.replace is atomic, so a crash leaves either the old file or the new one,
    never a truncated dataset."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.asarray(ids, dtype=np.uint16).tofile(f)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", action="append", default=[], help="UTF-8 text file (repeatable); default: tiny Shakespeare")
    parser.add_argument("--vocab_size", type=int, default=1024)
    parser.add_argument("--pattern", default="gpt2", help="split pattern: gpt2, gpt4 or none")
    parser.add_argument("--out_dir", default="data/shakespeare_bpe")
    args = parser.parse_args()

    if args.pattern not in bpe.PATTERNS:
        raise SystemExit(f"text_bpe.py: error: unknown pattern {args.pattern!r}; choose one of {', '.join(bpe.PATTERNS)}")
    os.makedirs(args.out_dir, exist_ok=True)
    if args.input:
        for path in args.input:
            if not os.path.isfile(path):
                raise SystemExit(f"text_bpe.py: error: input file not found: {path}")
        text = "".join(Path(path).read_text(encoding="utf-8") for path in args.input)
    else:
        cached = os.path.join(args.out_dir, "input.txt")
        if not os.path.exists(cached):
            print(f"downloading {SHAKESPEARE_URL}")
            try:
                with urllib.request.urlopen(SHAKESPEARE_URL, timeout=30) as response:
                    data = response.read()
            except OSError as e:
                raise SystemExit(f"text_bpe.py: error: download failed ({e}); pass --input PATH instead")
            with open(cached, "wb") as f:
                f.write(data)
        text = Path(cached).read_text(encoding="utf-8")

    n = len(text)
    train_text, val_text = text[:int(n * 0.9)], text[int(n * 0.9):]
    try:  # uint16=True: every id must fit in the .bin files
        tok = bpe.train(train_text, args.vocab_size, pattern=bpe.PATTERNS[args.pattern], uint16=True, verbose=True)
    except ValueError as e:
        raise SystemExit(f"text_bpe.py: error: {e}")
    tok.save(os.path.join(args.out_dir, "tokenizer.bpe"))

    train_ids = tok.encode_ordinary(train_text)
    val_ids = tok.encode_ordinary(val_text)
    print(f"train has {len(train_ids):,} tokens, val has {len(val_ids):,} tokens ({n:,} characters)")
    write_atomically(os.path.join(args.out_dir, "train.bin"), train_ids)
    write_atomically(os.path.join(args.out_dir, "val.bin"), val_ids)
    meta = {"vocab_size": tok.n_vocab, "tokenizer": "bpe", "tokenizer_file": "tokenizer.bpe"}
    with open(os.path.join(args.out_dir, "meta.json"), "w") as f:
        json.dump(meta, f)
    print(f"wrote {args.out_dir}: vocab_size {tok.n_vocab}")


if __name__ == "__main__":
    main()
