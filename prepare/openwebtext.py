"""
OpenWebText (~9B GPT-2 tokens, ~54 GB of HF cache) tokenized with GPT-2's BPE, for training GPT-2 124M.
Writes data/openwebtext/{train.bin (~17 GB), val.bin (~8.5 MB), meta.json}.

    python prepare/openwebtext.py                                   # the HF hub dataset
    python prepare/openwebtext.py --data_files 'my/*.jsonl'         # local json lines with a "text" field
    python prepare/openwebtext.py --data_files corpus.txt --out_dir data/mycorpus   # local plain text
Offline, point GPT2_TIKTOKEN_FILE at a local gpt2.tiktoken (GPT-2's ranks in tiktoken's format).
"""

import argparse
import os
import sys

import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data  # noqa: E402
import training  # noqa: E402

_encoding = None


def tokenize(example):
    """Each document becomes its GPT-2 tokens followed by <|endoftext|>, which separates documents."""
    global _encoding
    if _encoding is None:  # built once per worker process
        _encoding = data.gpt2_tokenizer()
    ids = _encoding.encode_ordinary(example["text"])
    ids.append(_encoding.eot_token)
    return {"ids": ids, "len": len(ids)}


def load_documents(data_files, num_proc):
    from datasets import load_dataset
    if not data_files:
        return load_dataset("Skylion007/openwebtext", num_proc=num_proc)["train"]
    kind = "json" if any(f.endswith((".json", ".jsonl")) for f in data_files) else "text"
    # the "text" builder makes one row per line; sample_by="document" keeps each file whole
    extra = {"sample_by": "document"} if kind == "text" else {}
    return load_dataset(kind, data_files=data_files, **extra)["train"]


def write_split(dataset, path, total_batches=1024):
    """Concatenate every document's ids into one uint16 memmap, a shard at a time (bounded memory)."""
    total = int(np.sum(dataset["len"], dtype=np.uint64))
    total_batches = max(1, min(total_batches, len(dataset)))
    with training.atomic_write(path) as tmp_path:  # only a complete file gets the real name
        out = np.memmap(tmp_path, dtype=np.uint16, mode="w+", shape=(total,))
        pos = 0
        for i in tqdm(range(total_batches), desc=f"writing {path}"):
            shard = dataset.shard(num_shards=total_batches, index=i, contiguous=True).with_format("numpy")
            ids = np.concatenate(shard["ids"]) if len(shard) else np.zeros(0, dtype=np.uint16)
            out[pos: pos + len(ids)] = ids
            pos += len(ids)
        out.flush()
        del out
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_files", nargs="*", help="local .txt/.json/.jsonl files instead of the hub")
    parser.add_argument("--out_dir", default="data/openwebtext")
    parser.add_argument("--num_proc", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--val_fraction", type=float, default=0.0005)
    args = parser.parse_args()
    training.make_dir(args.out_dir)

    documents = load_documents(args.data_files, args.num_proc)
    if len(documents) < 2:
        training.fail("need at least 2 documents to make a train/val split")
    val_size = max(1, int(len(documents) * args.val_fraction))
    split = documents.train_test_split(test_size=val_size, seed=2357, shuffle=True)
    num_proc = args.num_proc if len(documents) >= 1000 else 1
    meta = {"vocab_size": 50257, "tokenizer": "gpt2"}
    with data.new_dataset(args.out_dir) as staging:  # built aside, swapped in whole
        for name, dataset in (("train", split["train"]), ("val", split["test"])):
            tokenized = dataset.map(tokenize, remove_columns=dataset.column_names, num_proc=num_proc,
                                    desc=f"tokenizing {name}")
            meta[f"{name}_tokens"] = write_split(tokenized, os.path.join(staging, f"{name}.bin"))
        data.write_meta(meta, staging)  # last: the dataset is complete once meta.json exists


if __name__ == "__main__":
    main()
