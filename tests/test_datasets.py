"""Tests for corpus-scale tokenization (bpe.Tokenizer.encode_stream, streaming bpe.train) and the
document-corpus prepare scripts, on small data each test writes itself."""

import json
import os
import random
import subprocess
import sys
from itertools import islice, repeat
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import bpe  # noqa: E402
from conftest import needs, real_data, run_scripts  # noqa: E402

SHAKESPEARE = real_data("TINYSHAKESPEARE_FILE")
GPT2_FILE = real_data("GPT2_TIKTOKEN_FILE")
EOT = "<|endoftext|>"
# characters that make chunks of every kind: letters, digits, punctuation, runs of spaces and
# newlines, contractions, multi-byte characters, and pieces of the special token
ALPHABET = list("ab cd\n\n  .,'s1234é😀\t") + [EOT, "\r\n", "'ll", "<|", "endof", "text|>"]


def random_pieces(rng, text):
    """text cut at random points, so chunks and special tokens span the pieces."""
    cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 30))))
    return [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]


# ---- streaming encode

@pytest.mark.parametrize("pattern", [bpe.GPT2_SPLIT_PATTERN, bpe.GPT4_SPLIT_PATTERN, None, r"\w+|\W"])
def test_encode_stream_equals_encode_of_the_joined_text(pattern):
    rng = random.Random(0)
    tok = bpe.train("".join(rng.choice(ALPHABET) for _ in range(3000)), 320, pattern=pattern,
                    special_tokens=[EOT])
    for _ in range(150):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 300)))
        pieces = random_pieces(rng, text)
        assert list(tok.encode_stream(pieces, allowed_special="all")) == tok.encode(text, allowed_special="all")
        assert list(tok.encode_stream(pieces, allowed_special="none")) == tok.encode_ordinary(text)
        # encode_stream re-cuts only every 64K characters: cut these short texts at every chance
        recut = list(bpe._stream_pieces(pieces, pattern, [EOT], min_chars=rng.randint(1, 40)))
        assert "".join(recut) == text
        assert [i for p in recut for i in tok.encode(p, allowed_special="all")] == tok.encode(text, allowed_special="all")


def test_encode_stream_cuts_long_streams_at_safe_points():
    # 200 KB in pieces of 7 characters: the stream is re-cut into pieces of >= 64K characters,
    # each ending before a newline, and the ids are those of the whole text
    rng = random.Random(1)
    text = "".join(rng.choice(ALPHABET) for _ in range(60_000))
    pieces = list(bpe._stream_pieces((text[i:i + 7] for i in range(0, len(text), 7)),
                                     bpe.GPT2_SPLIT_PATTERN, [EOT], min_chars=1 << 16))
    assert len(pieces) > 1 and "".join(pieces) == text
    assert all(piece[-1] not in "\n " for piece in pieces[:-1])
    tok = bpe.train(text[:5000], 300, special_tokens=[EOT])
    stream = tok.encode_stream((text[i:i + 7] for i in range(0, len(text), 7)), allowed_special="all")
    assert list(stream) == tok.encode(text, allowed_special="all")


@pytest.mark.parametrize("pattern", [bpe.GPT2_SPLIT_PATTERN, None])
def test_a_stream_is_cut_at_the_last_safe_point_read_so_far_though_each_string_is_searched_once(pattern):
    # the reference searches all it holds at every string, which is quadratic where safe points are
    # rare (generated kernels, whose lines end in ';', '{' or '}'); the stream must cut where it does
    import regex
    safe = regex.compile(bpe._SAFE_CUTS[pattern])

    def reference(strings, min_chars):
        held = ""
        for string in strings:
            held += string
            match = safe.search(held) if len(held) >= min_chars else None  # (?r): the last one
            if match:
                yield held[:match.end()]
                held = held[match.end():]
        if held:
            yield held
    rng = random.Random(2)
    for _ in range(300):
        text = "".join(rng.choice("a1;{} \n") for _ in range(rng.randint(0, 300)))
        strings, min_chars = random_pieces(rng, text), rng.randint(1, 60)
        assert list(bpe._stream_pieces(strings, pattern, [EOT], min_chars)) == list(reference(strings, min_chars))


def test_encode_stream_reads_lazily_from_an_endless_stream():
    tok = bpe.train("hello world\n" * 50, 270)
    first = list(islice(tok.encode_stream(repeat("hello world\n")), 1000))
    assert first == (tok.encode("hello world\n") * 1000)[:1000]


def test_encode_stream_refuses_a_disallowed_special_token_split_across_pieces():
    tok = bpe.train("hello world " * 20, 280, special_tokens=[EOT])
    with pytest.raises(ValueError, match="disallowed special token"):
        list(tok.encode_stream(["hello <|endof", "text|> world"]))


@needs("TINYSHAKESPEARE_FILE", "GPT2_TIKTOKEN_FILE")
def test_encode_stream_with_gpt2_ranks_equals_tiktoken_on_shakespeare_lines():
    import tiktoken
    gpt2 = bpe.Tokenizer.from_tiktoken_file(GPT2_FILE, {EOT: 50256})
    text = SHAKESPEARE.read_text(encoding="utf-8")[:200_000]
    enc = tiktoken.Encoding(name="gpt2", pat_str=bpe.GPT2_SPLIT_PATTERN, mergeable_ranks=gpt2.mergeable_ranks,
                            special_tokens={EOT: 50256})
    assert list(gpt2.encode_stream(text.splitlines(keepends=True))) == enc.encode_ordinary(text)


# ---- streaming training

def test_streaming_training_equals_in_memory_training(tmp_path):
    # > 2 MB, so the stream makes several 1 MB pieces and worker processes count them
    rng = random.Random(2)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) + rng.choice([".\n", "\n", EOT])
             for _ in range(60_000)]
    text = "".join(lines)
    assert len(text) > 2 << 20
    in_memory = bpe.train(text, 600, special_tokens=[EOT], num_proc=1)
    streamed = bpe.train(iter(lines), 600, special_tokens=[EOT], num_proc=2)
    (tmp_path / "corpus.txt").write_text(text, encoding="utf-8")
    from_file = bpe.train([tmp_path / "corpus.txt"], 600, special_tokens=[EOT], num_proc=2)
    assert streamed.mergeable_ranks == in_memory.mergeable_ranks == from_file.mergeable_ranks
    assert streamed.special_tokens == in_memory.special_tokens == {EOT: 599}


def test_training_files_never_merges_across_two_files(tmp_path):
    (tmp_path / "a.txt").write_text("ab", encoding="utf-8")
    (tmp_path / "b.txt").write_text("cd", encoding="utf-8")
    tok = bpe.train([tmp_path / "a.txt", tmp_path / "b.txt"], 300, pattern=None)
    assert set(tok.mergeable_ranks) - {bytes([i]) for i in range(256)} == {b"ab", b"cd"}


# ---- prepare scripts

def run_prepare(script, *args, env=None):
    result = subprocess.run([sys.executable, str(REPO / "prepare" / script), *map(str, args)],
                            capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})})
    return result


def read_split(out_dir, split):
    """The documents of a split, decoded from its .bin with the dataset's own tokenizer."""
    meta = json.loads((out_dir / "meta.json").read_text())
    ids = np.fromfile(out_dir / f"{split}.bin", dtype=np.uint16)
    assert len(ids) == meta[f"{split}_tokens"]
    if meta["tokenizer"] == "bpe":
        tok = bpe.Tokenizer.load(out_dir / meta["tokenizer_file"])
        assert tok.n_vocab == meta["vocab_size"] and tok.special_tokens == {EOT: meta["vocab_size"] - 1}
    else:
        tok = bpe.Tokenizer.from_tiktoken_file(GPT2_FILE, {EOT: 50256})
    text = tok.decode(ids.tolist())
    assert text.endswith(EOT)  # every document, the last included, ends with <|endoftext|>
    return text.split(EOT)[:-1]


def stories(seed, n):
    rng = random.Random(seed)
    words = "the cat dog sat ran big small happy sad tree park ball Lily Tom saw played with and a".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 40))).capitalize() + f". Story {seed}-{i}."
            for i in range(n)]


def test_tinystories_txt_and_jsonl_official_splits(tmp_path):
    train, val = stories(0, 120), stories(1, 15)
    (tmp_path / "train.txt").write_text("\n<|endoftext|>\n".join(train) + "\n<|endoftext|>\n", encoding="utf-8")
    (tmp_path / "val.jsonl").write_text("".join(json.dumps({"text": s}) + "\n" for s in val), encoding="utf-8")
    out = tmp_path / "ts"
    result = run_prepare("tinystories.py", "--data_files", f"train={tmp_path / 'train.txt'}",
                         f"validation={tmp_path / 'val.jsonl'}", "--vocab_size", 320, "--out_dir", out)
    assert result.returncode == 0, result.stderr
    assert read_split(out, "train") == train
    assert read_split(out, "val") == val
    assert "train and" in result.stdout


def test_wikitext_articles_split_by_document(tmp_path):
    rng = random.Random(3)
    articles = [f" = Article {a} = \n \n" + "".join(f" {s} \n" for s in stories(a, 3)) + " \n = = Notes = = \n \n"
                + f" {rng.random()} \n \n" for a in range(40)]
    (tmp_path / "wiki.train.raw").write_text("".join(articles), encoding="utf-8")
    out = tmp_path / "wk"
    result = run_prepare("wikitext.py", "--data_files", tmp_path / "wiki.train.raw", "--val_fraction", 0.25,
                         "--tokenizer", "bpe", "--vocab_size", 400, "--out_dir", out)
    assert result.returncode == 0, result.stderr
    train, val = read_split(out, "train"), read_split(out, "val")
    assert train and val and not set(train) & set(val)
    # each document is one whole article (the sections stay inside it), none lost or duplicated
    assert sorted(train + val) == sorted(a.strip("\n") for a in articles)


@needs("GPT2_TIKTOKEN_FILE")
def test_fineweb_edu_jsonl_gpt2_tokens_and_max_tokens(tmp_path):
    docs = stories(4, 300) + stories(4, 300)  # every document twice: a copy never lands in the other split
    (tmp_path / "shard.jsonl").write_text("".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(docs)))
    env = {"GPT2_TIKTOKEN_FILE": str(GPT2_FILE)}
    out = tmp_path / "fw"
    result = run_prepare("fineweb_edu.py", "--data_files", tmp_path / "shard.jsonl", "--val_fraction", 0.1,
                         "--out_dir", out, env=env)
    assert result.returncode == 0, result.stderr
    train, val = read_split(out, "train"), read_split(out, "val")
    assert not set(train) & set(val) and sorted(train + val) == sorted(docs)
    assert 0.02 < len(val) / len(docs) < 0.25
    result = run_prepare("fineweb_edu.py", "--data_files", tmp_path / "shard.jsonl", "--val_fraction", 0.1,
                         "--out_dir", out, "--max_tokens", 1234, env=env)
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["train_tokens"] == 1234 == os.path.getsize(out / "train.bin") // 2


def test_python_code_split_by_file_deduplicated(tmp_path):
    src = tmp_path / "src"
    files = {f"pkg/mod{i}.py": f"def f{i}(x):\n    return x * {i}\n\n\nclass C{i}:\n    y = {i}\n" for i in range(60)}
    files["copy/mod0.py"] = files["pkg/mod0.py"]  # a duplicate: kept once
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")
    (src / "pkg/latin1.py").write_bytes(b"s = '\xe9'\n")  # not UTF-8: skipped
    (src / "pkg/notes.txt").write_text("not code", encoding="utf-8")  # not .py: not read
    out = tmp_path / "code"
    result = run_prepare("python_code.py", "--no_stdlib", "--data_files", src, "--vocab_size", 300,
                         "--val_fraction", 0.2, "--out_dir", out)
    assert result.returncode == 0, result.stderr
    train, val = read_split(out, "train"), read_split(out, "val")
    assert train and val and not set(train) & set(val)
    assert sorted(train + val) == sorted(set(files.values()))  # whole files, each once


def test_prepare_errors_are_one_line(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "hello world"}) + "\n")
    (tmp_path / "bad.jsonl").write_text('{"title": "no text"}\n')
    vocabulary, missing, bad, no_val = run_scripts([
        ["prepare/tinystories.py", "--data_files", tmp_path / "a.jsonl", "--vocab_size", 70000, "--out_dir", tmp_path / "x"],
        ["prepare/wikitext.py", "--data_files", tmp_path / "missing.raw", "--out_dir", tmp_path / "x"],
        ["prepare/fineweb_edu.py", "--data_files", tmp_path / "bad.jsonl", "--tokenizer", "bpe", "--vocab_size", 300,
         "--out_dir", tmp_path / "x"],
        ["prepare/tinystories.py", "--data_files", tmp_path / "a.jsonl", "--vocab_size", 300, "--val_fraction", 0,
         "--out_dir", tmp_path / "x"]])
    assert vocabulary.returncode != 0
    assert vocabulary.stderr.strip().splitlines() == [
        "error: --vocab_size=70000 does not fit uint16 token bins: a bpe tokenizer here has 257 to 65,536 ids "
        "(256 bytes + merges + <|endoftext|>)"]
    assert missing.stderr.strip().splitlines() == [f"error: --data_files {tmp_path / 'missing.raw'} does not exist"]
    assert bad.stderr.strip().splitlines()[-1] == f'error: {tmp_path / "bad.jsonl"}:1 is not a JSON object with a "text" field'
    assert no_val.stderr.strip().splitlines()[-1].startswith("error: the val split is empty")
