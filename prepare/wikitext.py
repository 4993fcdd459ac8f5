"""
WikiText (Salesforce/wikitext): Wikipedia's good and featured articles, the classic
language-modelling benchmark. WikiText-2 (~2M words) by default, WikiText-103 (~103M) by option;
the official train and validation splits, one document per article.
Writes data/wikitext2/{train.bin, val.bin, meta.json} (GPT-2 tokens by default).

    python prepare/wikitext.py                                      # wikitext-2-raw-v1
    python prepare/wikitext.py --name wikitext-103-raw-v1 --out_dir data/wikitext103
    python prepare/wikitext.py --tokenizer=bpe --vocab_size=8192 --out_dir data/wikitext2_bpe
    python prepare/wikitext.py --data_files train=wiki.train.raw validation=wiki.valid.raw   # local copies
"""

import os
import sys

import regex

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from prepare import corpus  # noqa: E402

# an article starts at its title line " = Title = " (sections are " = = Section = = ")
TITLE = regex.compile(r" = [^=].* = \n?$")


def articles(lines):
    """WikiText comes one line per row (or per line of a .raw file): join them into articles."""
    article = []
    for line in lines:
        if TITLE.match(line) and any(s.strip() for s in article):
            yield "".join(article)
            article = []
        article.append(line)
    yield "".join(article)


def hub_corpus(name):
    from datasets import load_dataset
    dataset = load_dataset("Salesforce/wikitext", name)

    def documents():
        for split, hub_split in (("train", "train"), ("val", "validation")):
            for article in articles(row["text"] for row in dataset[hub_split]):
                if article.strip():
                    yield split, article
    return documents


def main():
    parser = corpus.arguments(__doc__, out_dir="data/wikitext2", tokenizer="gpt2", vocab_size=8192,
                              val_fraction=0.05)
    parser.add_argument("--name", default="wikitext-2-raw-v1", help="wikitext-2-raw-v1 or wikitext-103-raw-v1")
    args = parser.parse_args()
    if args.data_files:
        documents = corpus.local_corpus(args.data_files, args.val_fraction, split_txt=articles)
    else:
        documents = hub_corpus(args.name)
    corpus.prepare(args, documents)


if __name__ == "__main__":
    main()
