"""
What the document-corpus prepare scripts share (tinystories.py, wikitext.py, fineweb_edu.py,
python_code.py): their command line, local .txt/.jsonl/.parquet files, a train/val split by
document, the tokenizer (GPT-2's, or a bpe.py tokenizer trained on the train split), and streaming
the token ids into train.bin / val.bin with <|endoftext|> after every document.

A corpus is a function returning a fresh iterator of (split, document) pairs, split "train" or
"val": a bpe.py tokenizer reads the train documents once to learn, then everything is read again
to encode. Nothing holds more than a batch of documents in memory.
"""

import argparse
import json
import os
import sys
import zlib
from itertools import chain, islice

import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bpe  # noqa: E402
import data  # noqa: E402
import training  # noqa: E402

EOT = "<|endoftext|>"
SPLITS = {"train": "train", "validation": "val", "val": "val"}  # --data_files prefix -> split


def arguments(description, out_dir, tokenizer, vocab_size, val_fraction):
    """The options every corpus script takes; a script adds its own before parse_args()."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_files", nargs="*", default=[],
                        help="local .txt/.jsonl/.parquet files instead of the download; prefix one with train= or "
                             "validation= to choose its split, else its documents are split by --val_fraction")
    parser.add_argument("--out_dir", default=out_dir)
    parser.add_argument("--tokenizer", default=tokenizer, help="gpt2 (tiktoken) or bpe (trained on the train split)")
    parser.add_argument("--vocab_size", type=int, default=vocab_size, help="bpe: 256 bytes + merges + <|endoftext|>")
    parser.add_argument("--pattern", default="gpt2", help="bpe: split pattern gpt2, gpt4 or none")
    parser.add_argument("--val_fraction", type=float, default=val_fraction,
                        help="share of documents held out where the data has no validation split")
    parser.add_argument("--num_proc", type=int, default=os.cpu_count() or 1, help="processes or threads tokenizing")
    return parser


def hash_split(document, val_fraction):
    """A document's split from a hash of its text: deterministic, streamable, and a document's
    duplicates land in the same split, so val never holds a copy of a train document."""
    return "val" if zlib.crc32(document.encode("utf-8", "surrogatepass")) % 10**6 < val_fraction * 10**6 else "train"


def split_at_eot(lines):
    """The documents of a .txt file's lines, separated by <|endoftext|> (TinyStories' .txt format);
    a file without one is a single document."""
    document = []
    for line in lines:
        first, *rest = line.split(EOT)
        document.append(first)
        for part in rest:
            yield "".join(document)
            document = [part]
    yield "".join(document)


def read_file(path, split_txt=split_at_eot):
    """The documents of a local file: each .jsonl/.json line's or .parquet row's "text", or a .txt
    file cut by split_txt. Streamed: a file is never read into memory whole."""
    try:
        yield from read_documents(path, split_txt)
    except UnicodeDecodeError as e:
        training.fail(data.not_utf8(path, e))


def read_documents(path, split_txt):
    if path.endswith((".jsonl", ".json")):
        with open(path, encoding="utf-8") as f:
            for line_number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)["text"]
                except (ValueError, KeyError, TypeError):
                    training.fail(f"{path}:{line_number} is not a JSON object with a \"text\" field")
    elif path.endswith(".parquet"):
        import pyarrow.parquet as pq  # installed with datasets
        parquet = pq.ParquetFile(path)
        if "text" not in parquet.schema_arrow.names:
            training.fail(f"{path} has no \"text\" column (columns: {', '.join(parquet.schema_arrow.names)})")
        for batch in parquet.iter_batches(columns=["text"]):
            yield from batch.column(0).to_pylist()
    else:
        with open(path, encoding="utf-8") as f:
            for document in split_txt(f):
                if document.strip():
                    yield document.strip("\n")


def local_corpus(data_files, val_fraction, split_txt=split_at_eot):
    """A corpus of --data_files: 'train=PATH' and 'validation=PATH' choose a file's split; the
    documents of a file without one are split by hash_split."""
    files = []
    for spec in data_files:
        prefix, eq, path = spec.partition("=")
        split = SPLITS.get(prefix) if eq else None
        path = path if split else spec
        if not os.path.isfile(path):
            training.fail(f"--data_files {path} {'is a directory: name its files' if os.path.isdir(path) else 'does not exist'}")
        files.append((split, path))

    def corpus():
        for split, path in files:
            for document in read_file(path, split_txt):
                yield split or hash_split(document, val_fraction), document
    return corpus


def train_bpe(args, corpus, max_chars, out_dir):
    """A bpe.py tokenizer trained on the train documents (the first max_chars characters of them
    if max_chars), saved to out_dir; returned as the identical, faster tiktoken encoding."""
    if not 257 <= args.vocab_size <= 2**16:
        training.fail(f"--vocab_size={args.vocab_size} does not fit uint16 token bins: a bpe tokenizer here "
                      f"has 257 to 65,536 ids (256 bytes + merges + <|endoftext|>)")
    if args.pattern not in bpe.PATTERNS:
        training.fail(f"unknown pattern {args.pattern!r}; choose one of {', '.join(bpe.PATTERNS)}")

    def train_text():  # <|endoftext|> after every document, as in the bins: no merge spans two documents
        seen = 0
        for split, document in corpus():
            if split == "train":
                yield document + EOT
                seen += len(document)
                if max_chars and seen >= max_chars:
                    return
    try:
        tok = bpe.train(train_text(), args.vocab_size, pattern=bpe.PATTERNS[args.pattern], special_tokens=[EOT],
                        uint16=True, verbose=True, num_proc=args.num_proc)
    except ValueError as e:  # no training text
        training.fail(f"{e}: give the train split documents")
    tok.save(os.path.join(out_dir, "tokenizer.bpe"))
    # tiktoken encodes the same ranks several times faster, in threads: check on the first documents
    # that its ids are exactly bpe.py's (streamed over the documents as one text)
    sample = [document + EOT for _, document in islice(corpus(), 200)]
    fast = tok.to_tiktoken()
    assert list(chain.from_iterable(fast.encode(d, allowed_special={EOT}) for d in sample)) == \
        list(tok.encode_stream(sample, allowed_special={EOT})), "tiktoken and bpe.py ids differ"
    return fast, {"vocab_size": tok.n_vocab, "tokenizer": "bpe", "tokenizer_file": "tokenizer.bpe"}


def prepare(args, corpus, max_tokens=0, add_files=None):
    """Tokenize corpus() into out_dir/{train.bin, val.bin, meta.json} (and tokenizer.bpe), built aside
    and swapped in whole (data.new_dataset). With max_tokens, train.bin stops at exactly that many
    tokens, and reading stops there too. add_files(dataset_dir, meta), if given, writes a script's own
    files beside the bins and adds its keys to meta, before meta.json: they are swapped in with the rest."""
    if args.num_proc < 1:
        training.fail(f"--num_proc must be at least 1, got {args.num_proc}")
    if args.tokenizer not in ("gpt2", "bpe"):
        training.fail(f"--tokenizer must be gpt2 or bpe, got {args.tokenizer!r}")
    training.make_dir(args.out_dir)
    with data.new_dataset(args.out_dir) as staging:
        meta = write_dataset(args, corpus, max_tokens, staging, add_files)
    print(f"{meta['train_tokens']:,} train and {meta['val_tokens']:,} val tokens in {args.out_dir}")


def write_dataset(args, corpus, max_tokens, out_dir, add_files):
    """The tokenizer (if bpe), the bins and meta.json, in out_dir; returns the meta.json written."""
    if args.tokenizer == "gpt2":
        enc = data.gpt2_tokenizer()
        meta = {"vocab_size": enc.n_vocab, "tokenizer": "gpt2"}
    else:
        enc, meta = train_bpe(args, corpus, 4 * max_tokens, out_dir)  # ~4 characters per token

    documents = corpus()
    with data.token_file(os.path.join(out_dir, "train.bin")) as train_out, \
            data.token_file(os.path.join(out_dir, "val.bin")) as val_out, \
            tqdm(unit="tok", unit_scale=True, desc=f"tokenizing into {args.out_dir}") as progress:
        out = {"train": train_out, "val": val_out}
        while batch := list(islice(documents, 1024)):
            ids = enc.encode_ordinary_batch([document for _, document in batch], num_threads=args.num_proc)
            for split in out:
                mine = [doc_ids + [enc.eot_token] for (s, _), doc_ids in zip(batch, ids) if s == split]
                split_ids = np.fromiter(chain.from_iterable(mine), dtype=np.int64)
                if split == "train" and max_tokens:
                    split_ids = split_ids[:max_tokens - train_out.count]
                out[split].write(split_ids)
            progress.update(sum(map(len, ids)) + len(batch))
            if max_tokens and train_out.count >= max_tokens:
                break
    for split, writer in out.items():
        if writer.count == 0:
            training.fail(f"the {split} split is empty: give it documents (more data, or a larger --val_fraction)")
    meta.update(train_tokens=train_out.count, val_tokens=val_out.count)
    if add_files:
        add_files(out_dir, meta)
    data.write_meta(meta, out_dir)  # last: the dataset is complete once meta.json exists
    return meta
