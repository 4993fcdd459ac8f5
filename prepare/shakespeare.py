"""
Tiny Shakespeare with GPT-2's BPE tokenizer (tiktoken), for fine-tuning GPT-2 on it.
Writes data/shakespeare/{train.bin, val.bin, meta.json}: the first 90% of the text trains.

    python prepare/shakespeare.py --input input.txt
Offline, point GPT2_TIKTOKEN_FILE at a local gpt2.tiktoken (GPT-2's ranks in tiktoken's format).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data  # noqa: E402
import training  # noqa: E402
from prepare.shakespeare_char import read_text  # noqa: E402


def prepare(out_dir="data/shakespeare", input_path=None):
    training.make_dir(out_dir)
    text = read_text(input_path, out_dir)
    enc = data.gpt2_tokenizer()
    n = len(text)
    train_ids = enc.encode_ordinary(text[: int(n * 0.9)])
    val_ids = enc.encode_ordinary(text[int(n * 0.9):])
    data.write_dataset(out_dir, train_ids, val_ids, {"vocab_size": enc.n_vocab, "tokenizer": "gpt2"})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="a local text file instead of downloading tiny Shakespeare")
    parser.add_argument("--out_dir", default="data/shakespeare")
    args = parser.parse_args()
    prepare(args.out_dir, args.input)
