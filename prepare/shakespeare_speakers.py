"""
Who is speaking? A labelled text-classification set made from tiny Shakespeare, for
train_classifier.py: each speech is a text, its speaker (the name line before it) is the label.

In tiny Shakespeare every speech is a block of lines separated by a blank line, whose first line
is the speaker's name and a colon ("ROMEO:"). We keep the `n_speakers` speakers with the most
speeches, and split each speaker's speeches by their position in the text: the first 80% train, the
last 20% validate. So every speaker is in both splits in the same proportion, no speech is in both,
and validation speeches always come later in their play than the training ones. The name line is
not part of the text.

    python prepare/shakespeare_speakers.py --input /work/shared/data/tinyshakespeare/input.txt
    python train_classifier.py config/classify_shakespeare_cpu.py

Writes data/shakespeare_speakers/{train.jsonl, val.jsonl}: one {"text": ..., "label": "ROMEO"} per line.
"""

import argparse
import json
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import training  # noqa: E402
from prepare.shakespeare_char import read_text  # noqa: E402


def speeches(text):
    """[(speaker, speech), ...] in the order they appear in the text."""
    out = []
    for block in text.split("\n\n"):
        name, _, speech = block.strip("\n").partition("\n")
        if name.endswith(":") and speech.strip():
            out.append((name[:-1], speech))
    return out


def split_by_speaker(all_speeches, n_speakers, val_fraction):
    """The n_speakers most frequent speakers (ties: the first to appear); each one's speeches in text
    order, the first (1 - val_fraction) of them for training and the rest for validation."""
    counts = Counter(speaker for speaker, _ in all_speeches)  # most_common keeps first-seen order for ties
    kept = [speaker for speaker, _ in counts.most_common(n_speakers)]
    train, val = [], []
    for speaker in kept:
        theirs = [speech for s, speech in all_speeches if s == speaker]
        n_train = round(len(theirs) * (1 - val_fraction))
        train += [{"text": speech, "label": speaker} for speech in theirs[:n_train]]
        val += [{"text": speech, "label": speaker} for speech in theirs[n_train:]]
    return kept, train, val


def write_jsonl(rows, path):
    with training.atomic_write(path) as tmp_path, open(tmp_path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def prepare(out_dir="data/shakespeare_speakers", input_path=None, n_speakers=6, val_fraction=0.2):
    training.make_dir(out_dir)
    kept, train, val = split_by_speaker(speeches(read_text(input_path, out_dir)), n_speakers, val_fraction)
    if not train or not val:
        training.fail(f"no {'validation' if train else 'training'} speeches: the text needs blocks of lines "
                      f"that start with a speaker's name and a colon (ROMEO:), --n_speakers at least 1 and "
                      f"--val_fraction in (0, 1)")
    write_jsonl(train, os.path.join(out_dir, "train.jsonl"))
    write_jsonl(val, os.path.join(out_dir, "val.jsonl"))
    for speaker in kept:
        n_train = sum(row["label"] == speaker for row in train)
        n_val = sum(row["label"] == speaker for row in val)
        print(f"{speaker:>20}: {n_train} train, {n_val} val speeches")
    majority = max(sum(row["label"] == s for row in val) for s in kept) / len(val)
    print(f"{len(train)} train and {len(val)} val speeches in {out_dir}; "
          f"always guessing the most frequent speaker scores {majority:.1%} on val")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="a local tiny Shakespeare input.txt instead of downloading it")
    parser.add_argument("--out_dir", default="data/shakespeare_speakers")
    parser.add_argument("--n_speakers", type=int, default=6)
    parser.add_argument("--val_fraction", type=float, default=0.2)
    args = parser.parse_args()
    prepare(args.out_dir, args.input, args.n_speakers, args.val_fraction)
