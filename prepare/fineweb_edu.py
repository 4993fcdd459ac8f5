"""
FineWeb-Edu (HuggingFaceFW/fineweb-edu, the sample-10BT subset): web pages filtered for
educational value, ~10B GPT-2 tokens. Streamed from the hub: with --max_tokens the download stops
after that many train tokens instead of fetching all ~27 GB. The dataset has no validation split:
--val_fraction of the documents (by a hash of their text) go to val.bin.

    python prepare/fineweb_edu.py --max_tokens 100_000_000           # the first ~100M tokens
    python prepare/fineweb_edu.py --name sample-100BT --out_dir data/fineweb_edu100B
    python prepare/fineweb_edu.py --data_files shard_00000.parquet   # local shards (.parquet/.jsonl/.txt)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from prepare import corpus  # noqa: E402


def hub_corpus(name, val_fraction):
    from datasets import load_dataset

    def documents():  # a fresh stream each call: reading stops where the caller stops
        for row in load_dataset("HuggingFaceFW/fineweb-edu", name=name, split="train", streaming=True):
            yield corpus.hash_split(row["text"], val_fraction), row["text"]
    return documents


def main():
    parser = corpus.arguments(__doc__, out_dir="data/fineweb_edu", tokenizer="gpt2", vocab_size=32768,
                              val_fraction=0.001)
    parser.add_argument("--name", default="sample-10BT", help="the subset: sample-10BT, sample-100BT, ...")
    parser.add_argument("--max_tokens", type=int, default=0, help="stop after this many train tokens (0 = all)")
    args = parser.parse_args()
    documents = (corpus.local_corpus(args.data_files, args.val_fraction) if args.data_files
                 else hub_corpus(args.name, args.val_fraction))
    corpus.prepare(args, documents, max_tokens=args.max_tokens)


if __name__ == "__main__":
    main()
