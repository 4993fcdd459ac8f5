"""
Tiny Shakespeare as characters: every distinct character is a token (65 of them).
Writes data/shakespeare_char/{train.bin, val.bin, meta.json}: the first 90% of the text trains.

    python prepare/shakespeare_char.py                      # downloads input.txt
    python prepare/shakespeare_char.py --input input.txt    # offline, from a local copy
"""

import argparse
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data  # noqa: E402
import training  # noqa: E402

URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


def read_text(input_path, out_dir):
    """The local file if given, else a cached or freshly downloaded copy of tiny Shakespeare. A file
    without text is an error: it would make an empty dataset."""
    if input_path:
        return read_corpus(input_path)
    cached = os.path.join(out_dir, "input.txt")
    if not os.path.exists(cached):
        try:
            with urllib.request.urlopen(URL, timeout=30) as response:
                raw = response.read()
        except OSError as e:
            training.fail(f"could not download tiny Shakespeare ({e}); download {URL} yourself "
                          f"and run: python prepare/shakespeare_char.py --input PATH")
        with training.atomic_write(cached) as tmp_path, open(tmp_path, "wb") as f:
            f.write(raw)
    return read_corpus(cached)


def read_corpus(path):
    text = data.read_text_file(path)
    if not text.strip():
        training.fail(f"{path} holds no text ({'it is empty' if not text else 'only whitespace'}): nothing to prepare")
    return text


def prepare(out_dir="data/shakespeare_char", input_path=None):
    training.make_dir(out_dir)
    text = read_text(input_path, out_dir)
    itos = sorted(set(text))  # the vocabulary: every character that occurs, in a fixed order
    stoi = {ch: i for i, ch in enumerate(itos)}
    n = len(text)
    train_text, val_text = text[: int(n * 0.9)], text[int(n * 0.9):]
    data.write_dataset(out_dir, [stoi[c] for c in train_text], [stoi[c] for c in val_text],
                           {"vocab_size": len(itos), "tokenizer": "char", "itos": itos})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="a local text file instead of downloading tiny Shakespeare")
    parser.add_argument("--out_dir", default="data/shakespeare_char")
    args = parser.parse_args()
    prepare(args.out_dir, args.input)
