"""
Syntax validity of a code model: the share of its samples that Python's own parser accepts.

A sample stops wherever max_new_tokens runs out, usually in the middle of a statement, so each one
is first cut at its last complete top-level statement (or where the model ended the file with
<|endoftext|>). A sample with no complete statement counts as invalid: an empty text would parse.

    python analysis/syntax_check.py --out_dir=out-python-code --num_samples=50
    python analysis/syntax_check.py --out_dir=out-python-code --show=3     # print 3 of the cut samples

Reads out_dir/best.pt (--ckpt=last: ckpt.pt). analysis/evaluate.py --syntax_samples=N reports the
same figure; other scripts import cut_to_last_statement and syntax_validity.
"""

import ast
import io
import os
import sys
import tokenize

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data  # noqa: E402
import training  # noqa: E402

EOT = "<|endoftext|>"
# a top-level line starting with one of these continues the statement before it
CONTINUATIONS = {"else", "elif", "except", "finally"}


def cut_to_last_statement(text):
    """The text up to the start of its last top-level statement: the last one may be cut off, the
    ones before it are complete (the next one started). Found with the tokenizer, so a line at
    column 0 inside a string or brackets does not count; an `else:` or a decorated def does not
    start a new statement. Tokenizing stops at the first error: statements before it remain."""
    lines = text.splitlines(keepends=True)
    starts = []  # line numbers (1-based) where a new top-level statement starts
    previous = None  # the first token of the previous top-level logical line
    at_line_start = True
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in (tokenize.NEWLINE, tokenize.NL):
                at_line_start = tok.type == tokenize.NEWLINE or at_line_start
                continue
            if tok.type in (tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
                continue
            if at_line_start and tok.start[1] == 0:
                if tok.string not in CONTINUATIONS and previous != "@":
                    starts.append(tok.start[0])
                previous = tok.string
            at_line_start = False
    except (tokenize.TokenError, SyntaxError):  # unterminated string or bracket, bad indentation
        pass
    if len(starts) < 2:
        return ""
    return "".join(lines[:starts[-1] - 1])


def syntax_validity(texts):
    """Share of texts that ast.parse accepts; a text without a single statement counts as invalid."""
    texts = list(texts)
    if not texts:
        raise ValueError("syntax_validity needs at least one text")
    valid = 0
    for text in texts:
        try:
            valid += bool(ast.parse(text).body)
        except (SyntaxError, ValueError):  # ValueError: a null byte in the source
            pass
    return valid / len(texts)


def code_samples(model, meta, data_path, num_samples, max_new_tokens, temperature, top_k, device):
    """num_samples samples, each started as a new file (after <|endoftext|>, where the model learned
    files begin) and cut at its last complete top-level statement (or where the model ended the file)."""
    import torch
    encode, decode = data.load_tokenizer(meta, data_path)
    if meta["tokenizer"] == "bpe":
        specials = data.read_bpe_file(os.path.join(data_path, meta["tokenizer_file"])).special_tokens
        start = [specials[EOT]] if EOT in specials else encode("\n")
    else:
        start = [50256] if meta["tokenizer"] == "gpt2" else encode("\n")
    x = torch.tensor([start] * num_samples, dtype=torch.long, device=device)
    with torch.no_grad():
        y = model.generate(x, max_new_tokens, temperature=temperature, top_k=top_k or None)
    cut = []
    for ids in y[:, len(start):].tolist():
        text = decode(ids)
        cut.append(text.split(EOT)[0] if EOT in text else cut_to_last_statement(text))
    return cut


def main():
    import torch
    from analysis import common

    settings = training.configure({"out_dir": "out-python-code", "ckpt": "best", "num_samples": 50,
                                   "max_new_tokens": 250, "temperature": 0.8, "top_k": 200, "seed": 1337,
                                   "device": "auto", "show": 0}, sys.argv[1:])
    device = training.pick_device(settings["device"])
    torch.manual_seed(settings["seed"])
    checkpoint = training.load_trained(settings["out_dir"], settings["ckpt"], "GPT")
    data_path, meta, _, _ = common.text_data(checkpoint["config"])
    cut = code_samples(common.load_model(checkpoint, device), meta, data_path, settings["num_samples"],
                       settings["max_new_tokens"], settings["temperature"], settings["top_k"], device)
    for text in cut[:settings["show"]]:
        print(text + "\n---------------")
    kept = sum(len(text.splitlines()) for text in cut) / len(cut)
    print(f"syntax validity: {syntax_validity(cut):.1%} of {len(cut)} samples "
          f"({settings['max_new_tokens']} tokens each, {kept:.1f} lines kept on average after the cut)")


if __name__ == "__main__":
    main()
