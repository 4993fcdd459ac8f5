"""
TinyStories (roneneldan/TinyStories): ~2.1M short stories in simple English written by GPT-3.5/4,
the dataset small models learn to write coherent text from. Its own train/validation splits, with
<|endoftext|> between stories. Writes data/tinystories/{tokenizer.bpe, train.bin, val.bin, meta.json}.

    python prepare/tinystories.py                                   # download; bpe.py vocab 4096
    python prepare/tinystories.py --tokenizer=bpe --vocab_size=512 --out_dir data/tinystories512
    python prepare/tinystories.py --tokenizer=gpt2 --out_dir data/tinystories_gpt2
    python prepare/tinystories.py --data_files train=TinyStoriesV2-GPT4-train.txt \\
        validation=TinyStoriesV2-GPT4-valid.txt                     # local copies (.txt/.jsonl/.parquet)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from prepare import corpus  # noqa: E402


def hub_corpus():
    from datasets import load_dataset
    dataset = load_dataset("roneneldan/TinyStories")  # ~1 GB to the HF cache, once

    def documents():
        for split, hub_split in (("train", "train"), ("val", "validation")):
            for row in dataset[hub_split]:
                yield split, row["text"]
    return documents


def main():
    parser = corpus.arguments(__doc__, out_dir="data/tinystories", tokenizer="bpe", vocab_size=4096,
                              val_fraction=0.01)
    args = parser.parse_args()
    documents = corpus.local_corpus(args.data_files, args.val_fraction) if args.data_files else hub_corpus()
    corpus.prepare(args, documents)


if __name__ == "__main__":
    main()
