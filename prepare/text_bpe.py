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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # to import bpe from the repo root
import bpe  # noqa: E402
import data  # noqa: E402
import training  # noqa: E402
from prepare.shakespeare_char import read_text  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", action="append", default=[], help="UTF-8 text file (repeatable); default: tiny Shakespeare")
    parser.add_argument("--vocab_size", type=int, default=1024)
    parser.add_argument("--pattern", default="gpt2", help="split pattern: gpt2, gpt4 or none")
    parser.add_argument("--out_dir", default="data/shakespeare_bpe")
    args = parser.parse_args()

    if args.pattern not in bpe.PATTERNS:
        training.fail(f"unknown pattern {args.pattern!r}; choose one of {', '.join(bpe.PATTERNS)}")
    training.make_dir(args.out_dir)
    # several inputs are concatenated; none means tiny Shakespeare (cached or downloaded)
    text = "".join(read_text(path, args.out_dir) for path in args.input) if args.input else read_text(None, args.out_dir)

    n = len(text)
    train_text, val_text = text[:int(n * 0.9)], text[int(n * 0.9):]
    try:  # uint16=True: every id must fit in the .bin files
        tok = bpe.train(train_text, args.vocab_size, pattern=bpe.PATTERNS[args.pattern], uint16=True, verbose=True)
    except ValueError as e:
        training.fail(str(e))
    data.write_dataset(args.out_dir, tok.encode_ordinary(train_text), tok.encode_ordinary(val_text),
                       {"vocab_size": tok.n_vocab, "tokenizer": "bpe", "tokenizer_file": "tokenizer.bpe"}, tokenizer=tok)


if __name__ == "__main__":
    main()
