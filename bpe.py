"""
A from-scratch byte-level BPE tokenizer, the kind GPT-2 and GPT-4 use.

How a GPT tokenizer works, in four steps:
  1. Text becomes UTF-8 bytes, so every string (any language, emoji, code) is
     representable with a base vocabulary of just 256 byte tokens.
  2. A regex splits the text into chunks ("pre-tokenization": words, numbers,
     punctuation runs, whitespace). Merges never cross chunk boundaries, so
     " dog" and " dog." share the token " dog" instead of learning "dog." too.
  3. Training repeatedly finds the most frequent adjacent pair of tokens in the
     corpus and merges it into a new token. The order of merges is the "rank":
     rank 256 was the most frequent pair first, rank 257 the next, and so on.
  4. Encoding a chunk replays that history: repeatedly merge the adjacent pair
     whose concatenation has the lowest rank, until no pair is in the vocabulary.

The state is exactly tiktoken's: `mergeable_ranks` (dict bytes -> id) plus
`special_tokens` (dict str -> id). Any byte-level BPE loads the same way, ours
or GPT-2's 50,257-token vocabulary (whose single-byte ids are NOT 0..255), and
encoding gives exactly the ids tiktoken gives for the same ranks and pattern.

Contents, top to bottom:
  - split patterns
  - Tokenizer: encode / decode / save / load / tiktoken interop
  - train(): fast incremental BPE training
  - word-level BPE of Sennrich et al. (2016), a short teaching section
  - vocabulary-size analysis
  - command line interface
"""

import argparse
import base64
import heapq
import json
import multiprocessing
import os
import re
import sys
from collections import Counter, defaultdict, deque
from itertools import chain, islice
from pathlib import Path

import regex  # the stdlib `re` has no \p{L} (Unicode letter) classes
from tqdm import tqdm

# -----------------------------------------------------------------------------
# split patterns

# GPT-2's pre-tokenization regex: English contractions, optional-space + letters,
# optional-space + digits, optional-space + other symbols, and whitespace (a run
# of spaces leaves its last space to the next word). GPT-2 published it with the
# contractions spelled out ('s|'t|'re|...); written '(?:[sdmt]|ll|ve|re), as
# tiktoken writes them, it splits every text the same and the regex module runs
# it faster (bench/bench_bpe.py).
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_PUBLISHED_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# GPT-4's (tiktoken cl100k_base): case-insensitive contractions, numbers in
# groups of at most 3 digits, and newlines kept apart from other whitespace.
GPT4_SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""

# pattern=None means "no regex pre-tokenization". We still cut the text after
# every newline: one chunk per line keeps training and encoding time linear in
# the corpus size (a merge inside a chunk costs time proportional to the chunk).
LINE_SPLIT_PATTERN = r"""[^\n]*\n|[^\n]+"""

# The same splits spelled for the stdlib's `re`, which runs them faster than the
# `regex` module but has no \p{L} or \p{N}: they split ASCII text only. On ASCII,
# \p{L} is [A-Za-z], \p{N} is [0-9], and under re.ASCII \s is the regex module's
# \s. GPT-4's possessive quantifiers are plain ones here: nothing after them
# could take back what they matched, so they change no split (and Python < 3.11
# lacks them).
_GPT2_ASCII = r"""'(?:[sdmt]|ll|ve|re)| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"""
_ASCII_SPELLINGS = {
    GPT2_SPLIT_PATTERN: _GPT2_ASCII, GPT2_PUBLISHED_PATTERN: _GPT2_ASCII,
    GPT4_SPLIT_PATTERN: r"""'(?i:[sdmt]|ll|ve|re)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3}| ?[^\sA-Za-z0-9]+[\r\n]*|\s+$|\s*[\r\n]|\s+(?!\S)|\s""",
}

PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN, "none": None}

FILE_VERSION = "tinyformers-bpe v1"  # first line of a saved tokenizer file
NO_RANK = sys.maxsize  # stands for "this byte string is not a token": larger than any rank
BYTES = [bytes([b]) for b in range(256)]  # byte value -> the one-byte string


def _replace_surrogates(text):
    """Lone surrogates (e.g. "\\ud800") cannot be UTF-8 encoded; like tiktoken we
    replace each by U+FFFD before splitting, so ids stay identical to tiktoken's."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _special_regex(specials):
    # longest first, so a special token that is a prefix of another never wins
    alternatives = sorted(specials, key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(s) for s in alternatives) + ")")


# Where a long text may be cut so that each piece splits into exactly the chunks
# the whole text would: before a newline that follows a letter or digit for the
# GPT-2 and GPT-4 patterns (no chunk of theirs spans such a point, and neither
# looks behind), after any newline for the line pattern. Other patterns: nowhere.
_AFTER_LETTER_OR_DIGIT = r"(?r)[\p{L}\p{N}](?=\n)"
_SAFE_CUTS = {GPT2_SPLIT_PATTERN: _AFTER_LETTER_OR_DIGIT, GPT2_PUBLISHED_PATTERN: _AFTER_LETTER_OR_DIGIT,
              GPT4_SPLIT_PATTERN: _AFTER_LETTER_OR_DIGIT, None: r"(?r)\n"}


def _stream_pieces(texts, pattern, specials, min_chars):
    """Regroup an iterable of strings into pieces of >= min_chars characters (but
    the last) cut at safe points, so chunking each piece alone gives the chunks of
    the concatenated text. Only one piece is held in memory, however long the stream.
    A cut touches a newline, so it never falls inside a special token without one."""
    cut_regex = _SAFE_CUTS.get(pattern)
    if cut_regex is None or any("\n" in s for s in specials):
        cut_regex = None  # no safe cut known: each string of the stream is taken whole
    else:
        cut_regex = regex.compile(cut_regex)
    buffer, cut = "", 0  # cut: where the buffer's last safe cut point ends (0: it has none)
    for text in texts:
        searched = len(buffer)
        buffer += text
        if cut_regex is None:
            continue
        # a later cut point can only lie in the new text or touch its start: search that alone, from
        # its end ((?r)). Searching the whole buffer at every text was quadratic in a stream with no
        # cut point (generated kernels whose lines all end in ';', '{' or '}')
        match = cut_regex.search(buffer, max(searched - 1, 0))
        if match:
            cut = match.end()
        if len(buffer) >= min_chars and cut > 0:
            yield buffer[:cut]
            buffer, cut = buffer[cut:], 0
    if buffer:
        yield buffer


class _Splitter:
    """text -> list of its chunks under pattern (None: one chunk per line). ASCII
    text, the common case, goes through the pattern's stdlib spelling if it has one.
    A class, not a closure, so that a Tokenizer pickles (worker processes)."""

    def __init__(self, pattern):
        self.unicode = regex.compile(pattern if pattern is not None else LINE_SPLIT_PATTERN)
        spelling = _ASCII_SPELLINGS.get(pattern)
        self.ascii = re.compile(spelling, re.ASCII) if spelling else self.unicode

    def __call__(self, text):
        return (self.ascii if text.isascii() else self.unicode).findall(text)


# -----------------------------------------------------------------------------
# the tokenizer

class Tokenizer:
    """Byte-level BPE: mergeable ranks (bytes -> id), special tokens (str -> id)
    and the split pattern (a regex string, or None for one chunk per line)."""

    MAX_CACHE = 500_000  # chunks; the cache is emptied when it grows past this

    def __init__(self, mergeable_ranks, special_tokens=None, pattern=GPT2_SPLIT_PATTERN):
        self.mergeable_ranks = dict(mergeable_ranks)
        self.special_tokens = dict(special_tokens or {})
        self.pattern = pattern
        self._split = _Splitter(pattern)
        # id -> bytes for decoding; a special token decodes to its UTF-8 text
        self._decoder = {rank: token for token, rank in self.mergeable_ranks.items()}
        self._decoder.update((i, s.encode("utf-8")) for s, i in self.special_tokens.items())
        if len(self._decoder) != len(self.mergeable_ranks) + len(self.special_tokens):
            raise ValueError("token ids must be unique across mergeable ranks and special tokens")
        # chunk text -> tuple of ids. Natural text repeats the same words over and
        # over, so most chunks cost one dict lookup instead of the merge loop
        self._cache = {}

    @property
    def n_vocab(self):
        """Number of ids, i.e. one more than the largest id (like tiktoken)."""
        return max(self._decoder) + 1 if self._decoder else 0

    # ---- encoding

    def _bpe(self, piece):
        """Encode one chunk (bytes): the algorithm tiktoken uses. Start from single
        bytes; repeatedly merge the adjacent pair whose concatenation has the lowest
        rank (the leftmost one on a tie) until no adjacent pair is a token."""
        ranks = self.mergeable_ranks
        whole = ranks.get(piece)
        if whole is not None:  # common words are one token: skip the loop
            return (whole,)
        parts = [BYTES[b] for b in piece]
        # pair_ranks[i] is the rank of parts[i] + parts[i+1] (NO_RANK: not a token);
        # after a merge only the two neighbours of the merged pair need a new lookup
        pair_ranks = [ranks.get(a + b, NO_RANK) for a, b in zip(parts, parts[1:])]
        while pair_ranks:
            best = min(pair_ranks)  # min/index run in C: fast for word-sized chunks
            if best == NO_RANK:
                break
            i = pair_ranks.index(best)
            parts[i] += parts.pop(i + 1)
            del pair_ranks[i]
            if i > 0:
                pair_ranks[i - 1] = ranks.get(parts[i - 1] + parts[i], NO_RANK)
            if i < len(pair_ranks):
                pair_ranks[i] = ranks.get(parts[i] + parts[i + 1], NO_RANK)
        return tuple(ranks[p] for p in parts)

    def encode_ordinary(self, text):
        """Encode text as ordinary text: special-token strings get no special
        treatment (they are split and merged like anything else)."""
        cache = self._cache
        if len(cache) > self.MAX_CACHE:
            cache.clear()
        try:
            chunks = self._split(text)
            for chunk in set(chunks).difference(cache):  # each new chunk through the merge loop once
                cache[chunk] = self._bpe(chunk.encode("utf-8"))
            return list(chain.from_iterable(map(cache.__getitem__, chunks)))
        except UnicodeEncodeError:  # rare: lone surrogates, see _replace_surrogates
            return self.encode_ordinary(_replace_surrogates(text))

    def encode(self, text, allowed_special="none_raise"):
        """Encode text, with tiktoken's rules for special tokens.

        allowed_special:
          "none_raise" (default): no special token is allowed; if the text contains
                       one's string, raise ValueError (tiktoken's default too).
          "all":       every special token's string becomes its id.
          a set:       those specials become their ids; any other special token
                       string in the text raises ValueError.
          "none":      specials are plain text (same as encode_ordinary).
        """
        if allowed_special == "none":
            return self.encode_ordinary(text)
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif allowed_special == "none_raise":
            allowed = set()
        elif isinstance(allowed_special, (set, frozenset, list, tuple)):
            allowed = set(allowed_special)
            unknown = allowed - set(self.special_tokens)
            if unknown:
                raise ValueError(f"not special tokens of this tokenizer: {sorted(unknown)}")
        else:
            raise ValueError(f"allowed_special must be 'all', 'none', 'none_raise' or a set, got {allowed_special!r}")
        disallowed = set(self.special_tokens) - allowed
        if disallowed:
            match = _special_regex(disallowed).search(text)
            if match:
                raise ValueError(
                    f"Encountered text corresponding to disallowed special token {match.group()!r}. "
                    f"Pass allowed_special={{{match.group()!r}}} (or 'all') to encode it as a special "
                    f"token, or allowed_special='none' / encode_ordinary() to encode it as plain text.")
        if not allowed:
            return self.encode_ordinary(text)
        ids = []
        # split() with a capturing group alternates: text, special, text, special, ...
        for i, part in enumerate(_special_regex(allowed).split(text)):
            if i % 2:
                ids.append(self.special_tokens[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def encode_stream(self, texts, allowed_special="none_raise"):
        """Encode an iterable of strings (file lines, dataset rows, ...) exactly as
        encode() would encode their concatenation, yielding ids as it goes: memory
        stays constant however long the stream. Chunks may span the pieces; the text
        is re-cut at safe points (_stream_pieces) and each piece encoded alone."""
        for piece in _stream_pieces(texts, self.pattern, self.special_tokens, min_chars=1 << 16):
            yield from self.encode(piece, allowed_special)

    # ---- decoding

    def decode_bytes(self, ids):
        return b"".join(self._decoder[i] for i in ids)

    def decode(self, ids):
        """Ids -> str. A token can end in the middle of a multi-byte character, so
        a slice of ids may not be valid UTF-8: invalid bytes become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # ---- saving and loading

    def save(self, path):
        """One small text file: a version line, the pattern and the special tokens
        as JSON (one line each), then one `<base64 token> <rank>` line per token,
        exactly the lines of a tiktoken .tiktoken file."""
        lines = [FILE_VERSION, json.dumps(self.pattern), json.dumps(self.special_tokens)]
        for token, rank in sorted(self.mergeable_ranks.items(), key=lambda item: item[1]):
            lines.append(f"{base64.b64encode(token).decode('ascii')} {rank}")
        # written beside it, then renamed over it: a kill mid-write never leaves half a tokenizer file
        tmp_path = Path(f"{path}.tmp-{os.getpid()}")
        try:
            tmp_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        os.replace(tmp_path, path)

    @classmethod
    def load(cls, path):
        """Read a file save() wrote. A damaged or hand-edited one raises ValueError saying what is wrong."""
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not a bpe.py tokenizer file (not UTF-8 text: {e.reason})") from None
        if len(lines) < 3 or lines[0] != FILE_VERSION:
            raise ValueError(f"{path}: not a bpe.py tokenizer file (first line should be {FILE_VERSION!r})")
        try:
            pattern, special_tokens = json.loads(lines[1]), json.loads(lines[2])
        except (ValueError, RecursionError) as e:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"{path}: the pattern (line 2) and special tokens (line 3) must be JSON: {e}") from None
        if not (pattern is None or isinstance(pattern, str)):
            raise ValueError(f"{path}: the pattern (line 2) must be a string or null, got {pattern!r:.100}")
        if not (isinstance(special_tokens, dict) and all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 and s for s, i in special_tokens.items())):
            raise ValueError(f"{path}: the special tokens (line 3) must map strings to ids >= 0 (no string empty), "
                             f"got {lines[2][:200]}")
        try:
            tok = cls(_parse_rank_lines(lines[3:]), special_tokens, pattern)
        except regex.error as e:
            raise ValueError(f"{path}: the pattern (line 2) is not a valid regex: {e}") from None
        except ValueError as e:  # a rank line, or an id given twice
            raise ValueError(f"{path}: {e}") from None
        missing = [b for b in BYTES if b not in tok.mergeable_ranks]
        if missing:  # byte-level BPE encodes any text from its 256 single bytes up
            raise ValueError(f"{path}: {len(missing)} of the 256 single bytes have no rank (e.g. {missing[0]!r})")
        return tok

    @classmethod
    def from_tiktoken_file(cls, path, special_tokens=None, pattern=GPT2_SPLIT_PATTERN):
        """Load a .tiktoken ranks file, e.g. GPT-2's: from_tiktoken_file(
        "gpt2.tiktoken", {"<|endoftext|>": 50256})."""
        return cls(_parse_rank_lines(Path(path).read_text(encoding="ascii").splitlines()),
                   special_tokens, pattern)

    def to_tiktoken(self, name="tinyformers-bpe"):
        """The same tokenizer as a tiktoken.Encoding (ids are identical)."""
        import tiktoken  # only needed for interop
        return tiktoken.Encoding(
            name=name,
            pat_str=self.pattern if self.pattern is not None else LINE_SPLIT_PATTERN,
            mergeable_ranks=self.mergeable_ranks,
            special_tokens=self.special_tokens,
        )

    @classmethod
    def train(cls, text_or_files, vocab_size, **kwargs):
        """Same as the module-level train()."""
        return train(text_or_files, vocab_size, **kwargs)


def _parse_rank_lines(lines):
    ranks = {}
    for number, line in enumerate(lines, 1):
        if line:
            try:
                token, rank = line.split()
                token, rank = base64.b64decode(token, validate=True), int(rank)
            except ValueError:  # binascii.Error is a ValueError
                raise ValueError(f"rank line {number} is not '<base64 token> <rank>': {line[:40]!r}") from None
            if not token or rank < 0 or token in ranks:
                raise ValueError(f"rank line {number} has an empty token, a negative rank or a token given before: "
                                 f"{line[:40]!r}")
            ranks[token] = rank
    return ranks


# -----------------------------------------------------------------------------
# training

def _training_streams(text_or_files):
    """The corpus as a list of streams of strings, each stream one text: a str is
    the training text itself; a Path, or a list/tuple of paths, names files (no
    chunk spans two files), each read in 1 MB blocks; any other iterable (a
    generator, a dataset column) streams the pieces of one concatenated text."""
    if isinstance(text_or_files, str):
        return [[text_or_files]]
    if isinstance(text_or_files, (os.PathLike, list, tuple)):
        paths = [text_or_files] if isinstance(text_or_files, os.PathLike) else text_or_files
        return [_read_blocks(path) for path in paths]
    return [text_or_files]


def _read_blocks(path, size=1 << 20):
    with open(path, encoding="utf-8") as f:
        try:
            while block := f.read(size):
                yield block
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not UTF-8 text ({e.reason}); convert it first, e.g. with iconv") from None


def _count_chunks(text, pattern, special_tokens):
    """Pre-tokenize one piece of the corpus: Counter of its chunks. Runs in a worker process."""
    split = _Splitter(pattern)
    text = _replace_surrogates(text)
    segments = _special_regex(special_tokens).split(text)[::2] if special_tokens else [text]
    counts = Counter()
    for segment in segments:
        counts.update(split(segment))
    return counts


def _descending(token):
    """A sort key that orders byte strings in *reverse* lexicographic order.
    heapq is a min-heap but the tie rule wants the greatest pair first, so each
    byte b becomes 255 - b, plus an end marker 256 that is bigger than any byte:
    a string then sorts after its own extensions ("ab" after "abc"), exactly
    the reverse of bytes comparison."""
    return tuple(255 - b for b in token) + (256,)


def _merge_pair(ids, a, b, new_id, freq, pair_counts):
    """Replace every non-overlapping occurrence of (a, b), left to right, by new_id, and update
    pair_counts by this chunk's change, freq times each. Only the pairs around an occurrence change:
    x a b y becomes x new y, so (x, a), (a, b), (b, y) lose freq and (x, new), (new, y) gain it. x is
    the output's last id, which is new_id itself when two occurrences touch (a b a b -> new new), so
    the (new, a) the first added, the second takes away. Returns the merged list and the pairs that
    gained, or None where (a, b) does not occur. ids.index finds each a at C speed."""
    out, gained, i, n, found = [], [], 0, len(ids), False
    while True:
        try:
            j = ids.index(a, i)
        except ValueError:
            break
        if j + 1 == n or ids[j + 1] != b:
            out += ids[i:j + 1]
            i = j + 1
            continue
        out += ids[i:j]
        pair_counts[a, b] -= freq
        if out:
            pair_counts[out[-1], a] -= freq
            pair_counts[out[-1], new_id] += freq
            gained.append((out[-1], new_id))
        if j + 2 < n:
            pair_counts[b, ids[j + 2]] -= freq
            pair_counts[new_id, ids[j + 2]] += freq
            gained.append((new_id, ids[j + 2]))
        out.append(new_id)
        i, found = j + 2, True
    if not found:
        return None, gained
    return out + ids[i:], gained


def train(text_or_files, vocab_size, pattern=GPT2_SPLIT_PATTERN, special_tokens=(), uint16=False, verbose=False,
          num_proc=None):
    """Train a byte-level BPE tokenizer; returns a Tokenizer.

    text_or_files: the training text (str), a path / list of paths of UTF-8
                   files, or any other iterable of strings (a generator, a
                   dataset's rows), read as one concatenated text. Files and
                   iterables are streamed: memory grows with the number of
                   distinct chunks, not with the size of the corpus.
    vocab_size:    total number of ids: 256 bytes + merges + special tokens.
                   Merged tokens get ids 256, 257, ... in merge order, then the
                   special tokens get the last ids. uint16=True additionally
                   requires vocab_size <= 65,536 so every id fits a uint16 .bin.
    pattern:       split regex (GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, any
                   regex string) or None: no pre-tokenization, one chunk per line.
    special_tokens: strings like "<|endoftext|>". They cut the training text
                   (no merge crosses them, their text is not learned from).
    num_proc:      processes that split and count the text (default: all cores).

    Tie rule (deterministic, independent of corpus order): the pair with the
    highest count is merged; among equal counts, the pair whose
    (left token bytes, right token bytes) is lexicographically greatest wins.
    Training stops early, with fewer ids than asked and a warning, if no pairs
    are left. An empty text, or an empty special token, is a ValueError.

    Every merge creates a byte string that is not yet a token. (If the bytes
    of token t occur with token boundaries at both ends, no merge ever crossed
    those ends, so that stretch went through exactly the same merges as the
    stretch that became t, and was merged into t in the same step.)

    The algorithm, and why it is fast:
      - identical chunks are counted once: the corpus becomes a Counter of
        distinct chunks, each a list of ids with a frequency (weight). The text
        streams through in ~1 MB pieces cut where no chunk spans the cut
        (_stream_pieces), and worker processes split and count the pieces;
      - pair counts are kept up to date incrementally: merging a pair only
        touches the chunks that contain it (pair -> set of chunk indices), and
        there only the pairs next to each occurrence (_merge_pair);
      - the best pair comes from a heap. Counts of existing pairs only go down
        when merging, so a stale heap entry is detected when it is popped
        (its stored count differs) and pushed back with the current count.
    """
    special_tokens = list(dict.fromkeys(special_tokens))  # dedupe, keep order
    if not all(isinstance(s, str) and s for s in special_tokens):
        raise ValueError(f"special tokens must be non-empty strings, got {special_tokens!r}")
    lo, hi = 256 + len(special_tokens), (65536 if uint16 else None)
    if vocab_size < lo or (hi is not None and vocab_size > hi):
        valid = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"vocab_size={vocab_size} is invalid: it must be {valid} "
                         f"(256 byte tokens + {len(special_tokens)} special tokens"
                         + (", ids must fit in uint16)" if uint16 else ")"))

    # 1. pre-tokenize: the corpus becomes a Counter of distinct chunks
    pieces = chain.from_iterable(_stream_pieces(stream, pattern, special_tokens, min_chars=1 << 20)
                                 for stream in _training_streams(text_or_files))
    head = list(islice(pieces, 2))
    pieces = chain(head, pieces)
    chunk_counts = Counter()
    num_proc = num_proc or os.cpu_count() or 1
    if len(head) < 2 or num_proc == 1:  # a small text is one piece: no process start-up cost
        for piece in pieces:
            chunk_counts.update(_count_chunks(piece, pattern, special_tokens))
    else:
        with multiprocessing.Pool(num_proc) as pool:
            pending = deque()  # at most two pieces per worker in flight: memory stays bounded
            for piece in pieces:
                pending.append(pool.apply_async(_count_chunks, (piece, pattern, special_tokens)))
                if len(pending) >= 2 * num_proc:
                    chunk_counts.update(pending.popleft().get())
            for result in pending:
                chunk_counts.update(result.get())
    if not chunk_counts:
        raise ValueError("no text to train on (it is empty, or only special tokens)")
    chunks, freqs = [], []  # distinct chunks as lists of ids, and how often each occurs
    for chunk, freq in chunk_counts.items():
        ids = list(chunk.encode("utf-8"))
        if len(ids) > 1:  # a single byte holds no pair: it can never take part in a merge
            chunks.append(ids)
            freqs.append(freq)

    # 2. count every adjacent pair once, weighted by chunk frequency
    pair_counts = defaultdict(int)
    where = defaultdict(set)  # pair -> indices of the chunks that (may) contain it
    for ci, (ids, freq) in enumerate(zip(chunks, freqs)):
        for pair in zip(ids, ids[1:]):
            pair_counts[pair] += freq
            where[pair].add(ci)

    vocab = [bytes([b]) for b in range(256)]  # id -> bytes
    ranks = {token: i for i, token in enumerate(vocab)}  # bytes -> id
    key = [_descending(token) for token in vocab]  # id -> tie-break sort key
    heap = [(-count, key[a], key[b], a, b) for (a, b), count in pair_counts.items()]
    heapq.heapify(heap)

    # 3. merge until the vocabulary is full
    n_merges = vocab_size - 256 - len(special_tokens)
    progress = tqdm(total=n_merges, desc="bpe merges", disable=not verbose)
    while len(vocab) < 256 + n_merges and heap:
        neg_count, _, _, a, b = heapq.heappop(heap)
        count = pair_counts.get((a, b), 0)
        if count != -neg_count:  # stale entry: re-queue with the current count
            if count > 0:
                heapq.heappush(heap, (-count, key[a], key[b], a, b))
            continue
        new_id = len(vocab)
        token = vocab[a] + vocab[b]
        vocab.append(token)
        ranks[token] = new_id
        key.append(_descending(token))
        progress.update()

        # update the counts of the pairs around each occurrence of (a, b), in the chunks that have it
        new_pairs = set()
        for ci in where.pop((a, b)):
            merged, gained = _merge_pair(chunks[ci], a, b, new_id, freqs[ci], pair_counts)
            if merged is None:
                continue  # stale index entry: an earlier merge removed the pair here
            chunks[ci] = merged
            for pair in gained:
                where[pair].add(ci)
            new_pairs.update(gained)
        # pairs holding the new token need a heap entry; those whose count fell are found stale when popped
        for pair in new_pairs:
            if pair_counts[pair] > 0:  # (new, a) of "a b a b" is gained, then lost again
                heapq.heappush(heap, (-pair_counts[pair], key[pair[0]], key[pair[1]], pair[0], pair[1]))
    progress.close()
    if len(vocab) < 256 + n_merges:
        # still a complete tokenizer of this text, with n_vocab saying its size: a warning, not an error
        print(f"warning: the text has only {len(vocab) - 256} merges to learn, not the {n_merges} that vocab_size="
              f"{vocab_size} asks for: the tokenizer has {len(vocab) + len(special_tokens)} ids (train on more text "
              f"for more)", file=sys.stderr)

    n_ranks = len(vocab)
    specials = {s: n_ranks + i for i, s in enumerate(special_tokens)}
    return Tokenizer(ranks, specials, pattern)


# -----------------------------------------------------------------------------
# teaching section: the classic word-level BPE of Sennrich et al. (2016)
#
# "Neural Machine Translation of Rare Words with Subword Units" introduced BPE
# for NLP. It differs from the byte-level BPE above in three ways: the units
# are Unicode characters (so unseen characters are out of vocabulary), words
# come from whitespace splitting, and each word ends with an end-of-word
# marker "</w>" so that "est</w>" (a suffix) differs from "est" (a prefix).
# Kept short and separate from the real tokenizer on purpose.

END_OF_WORD = "</w>"


def get_stats(vocab):
    """Count adjacent symbol pairs; vocab maps word (tuple of symbols) -> frequency."""
    pairs = Counter()
    for word, freq in vocab.items():
        for pair in zip(word, word[1:]):
            pairs[pair] += freq
    return pairs


def merge_word(word, pair):
    """Replace each occurrence of `pair` in the symbol tuple `word` by one symbol."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def word_bpe(words, num_merges):
    """Learn `num_merges` merges from a list of words, e.g. text.split().
    Returns (merges, vocab): the merged pairs in order, and the final
    segmentation of every distinct word (tuple of symbols -> frequency).

    Tie rule, as in the paper's reference code (max() over a dict of pairs
    counted in word order): among equally frequent pairs, the one occurring
    first wins, reading distinct words in order of first appearance.

    The paper recounts every pair after each merge; here the counts are
    updated only for the words containing the merged pair (`words_with`),
    which gives the same result hundreds of times faster.
    """
    vocab = {}
    for word, freq in Counter(words).items():  # Counter keeps first-appearance order
        vocab[tuple(word) + (END_OF_WORD,)] = freq
    segmented = list(vocab)  # word index -> current symbols
    freqs = list(vocab.values())
    stats = get_stats(vocab)
    words_with = defaultdict(set)  # pair -> indices of words that contain it
    for i, word in enumerate(segmented):
        for pair in zip(word, word[1:]):
            words_with[pair].add(i)

    def first_occurrence(pair):
        for i in sorted(words_with[pair]):
            word = segmented[i]
            for j in range(len(word) - 1):
                if (word[j], word[j + 1]) == pair:
                    return i, j

    merges = []
    for _ in range(num_merges):
        if not stats:
            break
        top = max(stats.values())
        best = min((pair for pair, count in stats.items() if count == top), key=first_occurrence)
        merges.append(best)
        for i in words_with.pop(best):
            old, new = segmented[i], merge_word(segmented[i], best)
            if new == old:
                continue  # stale index entry
            for pair in zip(old, old[1:]):
                stats[pair] -= freqs[i]
                if not stats[pair]:
                    del stats[pair]
            for pair in zip(new, new[1:]):
                stats[pair] += freqs[i]
                words_with[pair].add(i)
            segmented[i] = new
    return merges, dict(zip(segmented, freqs))


# -----------------------------------------------------------------------------
# choosing a vocabulary size

def analyze(text, vocab_sizes, pattern=GPT2_SPLIT_PATTERN, held_out=0.1, tolerance=0.10):
    """Measure candidate vocabulary sizes on held-out text.

    Trains once on the first (1 - held_out) of the text at the largest size:
    BPE is greedy, so the tokenizer of a smaller size is exactly the first
    merges of a larger one (truncate the ranks). Each size is then measured on
    the last `held_out` part of the text (text it was not trained on):
      tokens_per_byte: fewer is better (shorter sequences, more context per token)
      bytes_per_token: the compression ratio, 1 / tokens_per_byte
      vocab_used:      share of the vocabulary that occurs in the held-out text;
                       low values mean ids (and embedding rows) the model will
                       rarely see, i.e. merges overfit to the training text.

    Recommended size: the smallest size whose held-out token count is within
    `tolerance` (10%) of the best (largest) candidate's. Past that knee, a
    bigger vocabulary buys little compression for a bigger, sparser embedding.
    Returns (rows, recommended_size).
    """
    cut = int(len(text) * (1 - held_out))
    train_text, test_text = text[:cut], text[cut:]
    n_bytes = len(test_text.encode("utf-8"))
    if n_bytes == 0:
        raise ValueError("text is too short to hold out a test part")
    full = train(train_text, max(vocab_sizes), pattern=pattern)
    rows = []
    for size in sorted(set(vocab_sizes)):
        ranks = {token: rank for token, rank in full.mergeable_ranks.items() if rank < size}
        ids = Tokenizer(ranks, pattern=pattern).encode_ordinary(test_text)
        rows.append({"vocab_size": size, "tokens_per_byte": len(ids) / n_bytes,
                     "bytes_per_token": n_bytes / max(len(ids), 1),
                     "vocab_used": len(set(ids)) / len(ranks)})
    best = min(row["tokens_per_byte"] for row in rows)
    recommended = next(row["vocab_size"] for row in rows if row["tokens_per_byte"] <= best * (1 + tolerance))
    return rows, recommended


# -----------------------------------------------------------------------------
# command line interface

def _fail(message):
    """A one-line error, as every script of this project gives for bad input, instead of a traceback."""
    raise SystemExit(f"error: {message}")


def _pattern_from_name(name):
    if name not in PATTERNS:
        _fail(f"unknown pattern {name!r}; choose one of {', '.join(PATTERNS)}")
    return PATTERNS[name]


def _existing_files(paths):
    for path in paths:
        if not Path(path).is_file():
            _fail(f"input file not found: {path}")
        if os.path.getsize(path) == 0:
            _fail(f"input file {path} is empty")
    return [Path(path) for path in paths]


def _check_output_file(path):
    """--out names a file that can be written: not a directory, in a directory that exists."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        _fail(f"--out {path} is a directory: name the tokenizer file to write, e.g. {os.path.join(path, 'tokenizer.bpe')}")
    if not os.path.isdir(folder):
        _fail(f"--out {path}: the directory {folder} does not exist; create it first (mkdir -p {folder})")
    if not os.access(folder, os.W_OK):
        _fail(f"--out {path}: the directory {folder} is not writable; write elsewhere")


def _load_tokenizer(path):
    if not Path(path).is_file():
        _fail(f"tokenizer file not found: {path}")
    try:
        return Tokenizer.load(path)
    except ValueError as e:
        _fail(str(e))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Byte-level BPE tokenizer: train, encode, decode, analyze.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train", help="train a tokenizer on text files")
    p.add_argument("--input", action="append", required=True, help="UTF-8 text file (repeatable)")
    p.add_argument("--vocab_size", type=int, required=True, help="total ids: 256 + merges + specials")
    p.add_argument("--pattern", default="gpt2", help="split pattern: gpt2, gpt4 or none")
    p.add_argument("--special", action="append", default=[], help="special token, e.g. '<|endoftext|>' (repeatable)")
    p.add_argument("--uint16", action="store_true", help="require all ids to fit in uint16 (vocab_size <= 65536)")
    p.add_argument("--out", required=True, help="tokenizer file to write")
    p = commands.add_parser("encode", help="encode stdin, print ids")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--allow_special", action="store_true", help="encode special-token text as special ids")
    p = commands.add_parser("decode", help="decode whitespace-separated ids from stdin")
    p.add_argument("--tokenizer", required=True)
    p = commands.add_parser("analyze", help="compare vocabulary sizes on held-out text")
    p.add_argument("--input", action="append", required=True, help="UTF-8 text file (repeatable)")
    p.add_argument("--vocab_sizes", default="256,512,1024,2048,4096,8192", help="comma-separated sizes")
    p.add_argument("--pattern", default="gpt2", help="split pattern: gpt2, gpt4 or none")
    args = parser.parse_args(argv)

    try:
        if args.command == "train":
            pattern = _pattern_from_name(args.pattern)
            _check_output_file(args.out)  # before training, which may take long
            tok = train(_existing_files(args.input), args.vocab_size, pattern=pattern, special_tokens=args.special,
                        uint16=args.uint16, verbose=True)
            try:
                tok.save(args.out)
            except OSError as e:  # a full disk, a directory made unwritable while training ran
                _fail(f"could not write {args.out}: {e.strerror or e}")
            print(f"wrote {args.out}: {tok.n_vocab} ids ({len(tok.mergeable_ranks)} ranks, "
                  f"{len(tok.special_tokens)} special)", file=sys.stderr)
        elif args.command == "encode":
            tok = _load_tokenizer(args.tokenizer)
            text = sys.stdin.read()
            found = _special_regex(tok.special_tokens).search(text) if tok.special_tokens else None
            if found and not args.allow_special:
                _fail(f"the input holds the text of the special token {found.group()!r}: pass --allow_special to "
                      f"encode it as the special token's id")
            ids = tok.encode(text, allowed_special="all" if args.allow_special else "none")
            print(" ".join(map(str, ids)))
        elif args.command == "decode":
            tok = _load_tokenizer(args.tokenizer)
            try:
                ids = [int(s) for s in sys.stdin.read().split()]
                sys.stdout.write(tok.decode(ids))
            except (ValueError, KeyError) as e:
                _fail(f"invalid id in input: {e}")
        elif args.command == "analyze":
            pattern = _pattern_from_name(args.pattern)
            try:
                sizes = [int(s) for s in args.vocab_sizes.split(",")]
            except ValueError:
                _fail(f"--vocab_sizes must be comma-separated integers, got {args.vocab_sizes!r}")
            if min(sizes) < 256:
                _fail("every vocab size must be >= 256 (the byte tokens)")
            text = "".join(p.read_text(encoding="utf-8") for p in _existing_files(args.input))
            rows, recommended = analyze(text, sizes, pattern=pattern)
            print(f"{'vocab_size':>10} {'tokens/byte':>12} {'bytes/token':>12} {'vocab used':>11}")
            for row in rows:
                print(f"{row['vocab_size']:>10} {row['tokens_per_byte']:>12.4f} {row['bytes_per_token']:>12.3f} "
                      f"{row['vocab_used']:>10.1%}")
            print(f"recommended vocab_size: {recommended} (smallest within 10% of the best held-out token count)")
    except ValueError as e:  # bad vocab size, disallowed special token, text too short, ...
        _fail(f"{e}")


if __name__ == "__main__":
    main()
