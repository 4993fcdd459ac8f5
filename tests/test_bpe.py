"""Tests for bpe.py. Each test checks one behaviour against an independent reference:
hand-computed ids, tiktoken, a slow recount-every-merge trainer, or the input text."""

import json
import pickle
import random
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import regex

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import bpe  # noqa: E402

from conftest import needs, real_data  # noqa: E402

GPT2_FILE = real_data("GPT2_TIKTOKEN_FILE")
SHAKESPEARE = real_data("TINYSHAKESPEARE_FILE")
needs_gpt2 = needs("GPT2_TIKTOKEN_FILE")
needs_shakespeare = needs("TINYSHAKESPEARE_FILE")

SAMPLE = ("The quick brown fox jumps over the lazy dog. It's 2024, isn't it? "
          "Numbers 1234567 and code: def f(x): return x**2  \n\n  Ünïcödé naïve café 日本語 😀🎉\n") * 20
HELD_OUT = "Foxes aren't dogs; 98765 über-jumps!\n\tTabs, 中文 and emoji 🦊 too.  "
SPECIALS = {"<|endoftext|>": 100_000, "<|sep|>": 100_001}


@pytest.fixture(scope="module")
def trained():
    return bpe.train(SAMPLE, 600, special_tokens=list(SPECIALS))


@pytest.fixture(scope="module")
def gpt2():
    return bpe.Tokenizer.from_tiktoken_file(GPT2_FILE, {"<|endoftext|>": 50256})


@pytest.fixture(scope="module")
def gpt2_tiktoken():
    tiktoken = pytest.importorskip("tiktoken")
    import tiktoken.load
    # GPT-2's pattern as published, not ours: the reference must not share our rewriting of it
    return tiktoken.Encoding(name="gpt2", pat_str=bpe.GPT2_PUBLISHED_PATTERN,
                             mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(GPT2_FILE)),
                             special_tokens={"<|endoftext|>": 50256})


# ---- training

def test_wikipedia_example_by_hand():
    # "aaabdaaabac": merge aa (4 times) -> 256; then (aa, a) and (a, b) tie at 2 and
    # (b"aa", b"a") > (b"a", b"b"), so aaa -> 257; then (aaa, b) -> 258.
    tok = bpe.train("aaabdaaabac", 256 + 3, pattern=None)
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.decode([258, 100, 258, 97, 99]) == "aaabdaaabac"


def reference_train(text, vocab_size, pattern, special_tokens=()):
    """Slow and obvious: recount every pair after every merge, same tie rule."""
    segments = regex.split("|".join(map(regex.escape, special_tokens)), text) if special_tokens else [text]
    split = pattern if pattern is not None else bpe.LINE_SPLIT_PATTERN
    chunks = [list(c.encode()) for s in segments for c in regex.findall(split, s)]
    vocab = [bytes([i]) for i in range(256)]
    while len(vocab) < vocab_size - len(special_tokens):
        counts = Counter(pair for c in chunks for pair in zip(c, c[1:]))
        if not counts:
            break
        a, b = max(counts, key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]]))
        token = vocab[a] + vocab[b]
        assert token not in vocab  # a merge always makes a new byte string (see bpe.train)
        vocab.append(token)
        new_id = len(vocab) - 1
        merged = []
        for c in chunks:
            out, i = [], 0
            while i < len(c):
                if i + 1 < len(c) and (c[i], c[i + 1]) == (a, b):
                    out.append(new_id)
                    i += 2
                else:
                    out.append(c[i])
                    i += 1
            merged.append(out)
        chunks = merged
    ranks = {token: i for i, token in enumerate(vocab)}
    return ranks, {s: len(vocab) + i for i, s in enumerate(special_tokens)}


def random_text(seed, n, alphabet):
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


@pytest.mark.parametrize("text, vocab_size, pattern, specials", [
    ("aaabdaaabac", 270, None, ()),
    ("ab cd ef gh ij", 262, bpe.GPT2_SPLIT_PATTERN, ()),  # every pair ties at count 1
    ("hello world<|endoftext|>hello there<|sep|>world hello", 280, bpe.GPT2_SPLIT_PATTERN,
     ("<|endoftext|>", "<|sep|>")),
    (random_text(0, 3000, "abc \n"), 320, None, ()),  # tiny alphabet: repeated byte strings
    (random_text(1, 3000, "ab cd\n"), 300, bpe.GPT2_SPLIT_PATTERN, ()),
    ("aaaaaaa bab ababab aaaab\n" * 20 + random_text(2, 2000, "aab"), 300, None, ()),  # touching occurrences
    (SAMPLE[:1500], 400, bpe.GPT4_SPLIT_PATTERN, ("<|endoftext|>",)),
])
def test_trainer_matches_slow_reference(text, vocab_size, pattern, specials):
    tok = bpe.train(text, vocab_size, pattern=pattern, special_tokens=specials)
    ranks, special_ids = reference_train(text, vocab_size, pattern, specials)
    assert tok.mergeable_ranks == ranks
    assert tok.special_tokens == special_ids


def test_tie_rule_is_independent_of_corpus_order():
    words = [" ab", " cd", " ef", " gh", " ab", " cd"]  # same chunks, opposite order
    forward = bpe.train("".join(words), 262)
    backward = bpe.train("".join(reversed(words)), 262)
    assert forward.mergeable_ranks == backward.mergeable_ranks


def test_no_merge_crosses_a_special_token():
    tok = bpe.train("ab<|endoftext|>ab<|endoftext|>ab", 300, pattern=None, special_tokens=["<|endoftext|>"])
    assert b"b<" not in tok.mergeable_ranks and b">a" not in tok.mergeable_ranks
    assert tok.special_tokens == {"<|endoftext|>": len(tok.mergeable_ranks)}


def test_vocab_size_errors():
    with pytest.raises(ValueError, match=r">= 256"):
        bpe.train("hello", 255)
    with pytest.raises(ValueError, match=r">= 258"):
        bpe.train("hello", 257, special_tokens=["<a>", "<b>"])
    with pytest.raises(ValueError, match=r"\[256, 65536\]"):
        bpe.train("hello", 65537, uint16=True)


def test_cli_errors_are_one_line_system_exits(tmp_path):
    with pytest.raises(SystemExit, match="input file not found"):
        bpe.main(["train", "--input", str(tmp_path / "missing.txt"), "--vocab_size", "300", "--out", "x"])
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(SystemExit, match="unknown pattern 'gpt3'"):
        bpe.main(["train", "--input", str(tmp_path / "a.txt"), "--vocab_size", "300", "--pattern", "gpt3", "--out", "x"])
    with pytest.raises(SystemExit, match="vocab_size=10 is invalid"):
        bpe.main(["train", "--input", str(tmp_path / "a.txt"), "--vocab_size", "10", "--out", "x"])


# ---- encoding and decoding

def test_round_trip_random_unicode_emoji_and_empty(trained):
    rng = random.Random(1234)
    code_points = [c for c in range(0x20, 0x2FFFF) if not 0xD800 <= c <= 0xDFFF]
    texts = ["", "😀🎉👩‍👩‍👧", HELD_OUT] + ["".join(chr(rng.choice(code_points)) for _ in range(200)) for _ in range(20)]
    for text in texts:
        assert trained.decode(trained.encode(text)) == text


def test_lone_surrogates_become_replacement_char_like_tiktoken(trained):
    enc = trained.to_tiktoken()
    for text in ["\ud800", "a\udc00b", "x\ud83d\ude00 y"]:  # the last is a valid surrogate *pair*
        assert trained.encode(text) == enc.encode(text)
    assert trained.decode(trained.encode("a\ud800b")) == "a\ufffdb"
    assert trained.decode(trained.encode("x\ud83d\ude00")) == "x😀"


def test_invalid_utf8_decodes_to_replacement_char(trained):
    euro = trained.encode("€")  # 3 bytes: e2 82 ac
    assert trained.decode_bytes(euro) == "€".encode()
    first_byte = [trained.mergeable_ranks[b"\xe2"]]
    assert trained.decode(first_byte) == "\ufffd"
    assert trained.decode(first_byte + trained.encode("ok")) == b"\xe2ok".decode("utf-8", "replace")


def test_trained_ranks_match_tiktoken_on_held_out_text(trained):
    enc = trained.to_tiktoken()
    for text in [HELD_OUT, SAMPLE[::-1], "   leading and trailing   ", "\n\n\n"]:
        assert trained.encode_ordinary(text) == enc.encode_ordinary(text)
    gpt4 = bpe.train(SAMPLE, 500, pattern=bpe.GPT4_SPLIT_PATTERN)
    assert gpt4.encode_ordinary(HELD_OUT) == gpt4.to_tiktoken().encode_ordinary(HELD_OUT)


@needs_gpt2
def test_gpt2_hello_world(gpt2):
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.n_vocab == 50257


def stdlib_code():
    """Real code: the first 40 of the standard library's top-level .py files, concatenated."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return "".join(path.read_text(encoding="utf-8", errors="replace") for path in sorted(stdlib.glob("*.py"))[:40])


def test_gpt2_pattern_splits_every_text_like_the_published_one():
    code = stdlib_code()
    texts = [SAMPLE, HELD_OUT, code, "I'm sure you'll've 'd 'S 'LL don't ''s '' 'x 're've 'tis \n'm ' s",
             random_text(2, 20_000, "'smtdlvrexS \n\t1.")]
    for text in texts:
        assert regex.findall(bpe.GPT2_SPLIT_PATTERN, text) == regex.findall(bpe.GPT2_PUBLISHED_PATTERN, text)


def test_a_pickled_tokenizer_encodes_as_the_original(trained):
    # worker processes (multiprocessing, datasets.map(num_proc=...)) receive the tokenizer pickled
    copy = pickle.loads(pickle.dumps(trained))
    for text in [SAMPLE, HELD_OUT, "plain ASCII text, it's here"]:
        assert copy.encode(text, allowed_special="all") == trained.encode(text, allowed_special="all")


@pytest.mark.parametrize("pattern", [bpe.GPT2_SPLIT_PATTERN, bpe.GPT4_SPLIT_PATTERN])
def test_ascii_text_splits_as_the_regex_module_splits_it(pattern):
    code = stdlib_code()
    texts = [code.encode("ascii", "ignore").decode(), SAMPLE.encode("ascii", "ignore").decode(),
             "I'm sure you'll've 'd 'S 'LL DON'T ''s '' 'x 're've 'tis \n'm ' s",
             "ends in spaces  \n", "ends in a newline and spaces \n  ", "  \n\n",
             random_text(3, 20_000, "".join(map(chr, range(128)))),
             random_text(4, 20_000, "'sSmtdlLvrReE \n\r\t\x0b\x0c\x1c\x1f_1.")[:-1] + "\n"]
    split = bpe._Splitter(pattern)
    for text in texts:
        assert text.isascii()  # so split() takes the stdlib spelling
        assert split(text) == regex.findall(pattern, text)


@needs_gpt2
@needs_shakespeare
def test_gpt2_ids_equal_tiktoken_on_tiny_shakespeare(gpt2, gpt2_tiktoken):
    text = SHAKESPEARE.read_text(encoding="utf-8")
    ids = gpt2.encode_ordinary(text)
    assert ids == gpt2_tiktoken.encode_ordinary(text)
    assert gpt2.decode(ids) == text


def test_special_token_semantics_equal_tiktoken():
    tok = bpe.Tokenizer(bpe.train(SAMPLE, 400).mergeable_ranks, {"<|endoftext|>": 400, "<|sep|>": 401})
    enc = tok.to_tiktoken()
    both = "a<|endoftext|>b<|sep|>c"
    sep_only = "a<|sep|>b"
    assert tok.encode(both, allowed_special="all") == enc.encode(both, allowed_special="all")
    assert tok.encode(both, allowed_special="all")[1] == 400
    assert tok.encode(sep_only, allowed_special={"<|sep|>"}) == enc.encode(sep_only, allowed_special={"<|sep|>"})
    assert tok.encode(both, allowed_special="none") == enc.encode(both, disallowed_special=())
    assert tok.encode_ordinary(both) == enc.encode_ordinary(both)
    for allowed in [set(), {"<|sep|>"}]:  # <|endoftext|> present but not allowed: both raise
        with pytest.raises(ValueError):
            enc.encode(both, allowed_special=allowed)
        with pytest.raises(ValueError, match="disallowed special token"):
            tok.encode(both, allowed_special=allowed if allowed else "none_raise")
    assert tok.encode("plain text") == enc.encode("plain text")


# ---- saving and loading

@pytest.mark.parametrize("pattern", [bpe.GPT2_SPLIT_PATTERN, bpe.GPT4_SPLIT_PATTERN, None])
@pytest.mark.parametrize("specials", [(), ("<|endoftext|>", "<|sep|>")])
def test_save_load_round_trip(tmp_path, pattern, specials):
    tok = bpe.train(SAMPLE, 350, pattern=pattern, special_tokens=specials)
    tok.save(tmp_path / "tok.bpe")
    loaded = bpe.Tokenizer.load(tmp_path / "tok.bpe")
    assert loaded.mergeable_ranks == tok.mergeable_ranks
    assert loaded.special_tokens == tok.special_tokens
    assert loaded.pattern == pattern
    assert loaded.encode(HELD_OUT + "<|sep|>", allowed_special="all") == tok.encode(HELD_OUT + "<|sep|>", allowed_special="all")


@needs_gpt2
def test_gpt2_save_load_round_trip(tmp_path, gpt2):
    gpt2.save(tmp_path / "gpt2.bpe")
    loaded = bpe.Tokenizer.load(tmp_path / "gpt2.bpe")
    assert loaded.mergeable_ranks == gpt2.mergeable_ranks and loaded.special_tokens == gpt2.special_tokens


# ---- prepare/text_bpe.py

def test_prepare_script_bins_decode_to_the_90_10_split(tmp_path):
    text = (SAMPLE + "".join(f"line {i}: zebra {i * i} quux\n" for i in range(60)))[:5000]
    (tmp_path / "in.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    subprocess.run([sys.executable, "prepare/text_bpe.py", "--input", str(tmp_path / "in.txt"),
                    "--vocab_size", "300", "--out_dir", str(out)], cwd=REPO, check=True, capture_output=True)
    meta = json.loads((out / "meta.json").read_text())
    tok = bpe.Tokenizer.load(out / meta["tokenizer_file"])
    train_ids = np.fromfile(out / "train.bin", dtype=np.uint16).tolist()
    val_ids = np.fromfile(out / "val.bin", dtype=np.uint16).tolist()
    assert set(meta.pop("fingerprints")) == {"train.bin", "val.bin", "tokenizer.bpe"}  # the files it is made of
    assert meta == {"vocab_size": 300, "tokenizer": "bpe", "tokenizer_file": "tokenizer.bpe",
                    "train_tokens": len(train_ids), "val_tokens": len(val_ids)}
    cut = int(len(text) * 0.9)
    assert tok.decode(train_ids) == text[:cut]
    assert tok.decode(val_ids) == text[cut:]
    assert not list(out.glob("*.tmp"))


# ---- vocabulary analysis

def test_analyze_matches_direct_training_and_encoding():
    text = SAMPLE * 3
    rows, recommended = bpe.analyze(text, [256, 300, 400])
    cut = int(len(text) * 0.9)
    small = bpe.train(text[:cut], 300)  # truncating the 400 ranks must equal training at 300
    n_bytes = len(text[cut:].encode())
    assert rows[1]["tokens_per_byte"] == len(small.encode_ordinary(text[cut:])) / n_bytes
    assert rows[0]["tokens_per_byte"] == 1.0
    best = min(r["tokens_per_byte"] for r in rows)
    assert recommended == min(r["vocab_size"] for r in rows if r["tokens_per_byte"] <= 1.1 * best)


# ---- word-level BPE (Sennrich et al.)

def sennrich_reference(words, num_merges):
    """The paper's loop, verbatim in spirit: recount all pairs, max() picks the
    first most frequent pair in word order, re-segment every word."""
    vocab = Counter(" ".join(word) + " </w>" for word in words)
    vocab = dict(vocab)
    merges = []
    for _ in range(num_merges):
        pairs = Counter()
        for word, freq in vocab.items():
            symbols = word.split()
            for i in range(len(symbols) - 1):
                pairs[symbols[i], symbols[i + 1]] += freq
        if not pairs:
            break
        best = max(pairs, key=pairs.get)
        merges.append(best)
        pattern = regex.compile(r"(?<!\S)" + regex.escape(" ".join(best)) + r"(?!\S)")
        vocab = {pattern.sub("".join(best), word): freq for word, freq in vocab.items()}
    return merges


def test_word_bpe_matches_the_papers_loop():
    toy = "low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3
    assert bpe.word_bpe(toy.split(), 10)[0] == sennrich_reference(toy.split(), 10)
    words = SAMPLE.split() * 2 + HELD_OUT.split()
    assert bpe.word_bpe(words, 120)[0] == sennrich_reference(words, 120)


@needs_shakespeare
def test_word_bpe_shakespeare_3813_symbols():
    words = SHAKESPEARE.read_text(encoding="utf-8").split()
    merges, vocab = bpe.word_bpe(words, 4000)
    assert len(merges) == 4000
    assert len({symbol for word in vocab for symbol in word}) == 3813
