"""
Checking generated code, for both of the project's code models (Python and CUDA): what
analysis/code_eval.py measures and what an RL reward scores.

- Completion tasks from held-out files. CUDA: each __global__ kernel whose reference body compiles
  alone after a fixed preamble of CUDA headers; the prompt is the preamble and the kernel's
  signature up to its opening brace, the answer ends at the matching closing brace. Python: each
  function, prompted with its signature and docstring, the answer ending at the dedent.
- Checks: the code compiles (nvcc -ptx, which needs no GPU) or parses (ast), and it is
  non-trivial: a CUDA body writes memory through a pointer parameter, a Python body does something
  other than pass / ... / a bare return. An empty body compiles; it must never score.
- A sandbox for every command that reads or runs untrusted generated code (nvcc included), and the
  execution check of a kernel against a KernelBench problem's PyTorch reference: run on a GPU, or
  for one elementwise kernel body, emulated on the CPU one thread after another (g++).

    import code_check
    tasks = code_check.dataset_tasks("data/cuda_code", "val")           # [Task], cached in the data dir
    result = code_check.score(tasks[0], sampled_text)                  # Result(ok, nontrivial, reward, ...)
    code_check.pass_at_k(n=4, c=1, k=2)                                # 0.5

Nothing here imports torch at module level, so the sandbox's launcher (this file, run as a script)
starts in milliseconds; generated code never runs in the calling process.
"""

import ast
import ctypes
import functools
import io
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import tokenize
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

EOT = "<|endoftext|>"
# every CUDA task's prompt starts with these headers, and a kernel counts as a task only if it
# compiles after them alone (the corpus's own project headers are not in the corpus)
PREAMBLE = "#include <cuda_runtime.h>\n#include <cuda_fp16.h>\n#include <cuda_bf16.h>\n#include <stdint.h>\n\n"
NVCC_PIP = "pip install nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-cccl"
MIN_TOKENS = 6  # a non-trivial body has at least this many C or Python tokens


@dataclass(frozen=True)
class Task:
    language: str   # "cuda" or "python"
    name: str       # the kernel's or function's name
    prompt: str     # what the model continues: PREAMBLE + signature + "{" / signature + docstring
    reference: str  # the original body that followed the prompt (CUDA: up to its closing brace)
    source: str     # where it came from: a file name, or "val.bin document 12"


@dataclass(frozen=True)
class Result:
    ok: bool          # compiles (CUDA) / parses (Python)
    nontrivial: bool  # writes through a pointer parameter / does something
    reward: float     # 1 for ok and nontrivial, partial_credit for only ok (and MIN_TOKENS long), store_credit /
                      # nvcc's errors for a CUDA body that stores but does not compile, prefix_credit x
                      # parsing_share for a Python body that does not parse, else 0
    length: int       # characters of the completion, as cut
    message: str      # the compiler's first error line, or why the check refused the code
    correct: bool = False  # (execution check, train_rl's execution_reward) its output is the reference's
    speedup: float = 0.0   # ... and the reference's time over its time, when correct


def fail(message):
    """A one-line error, as training.fail, without importing torch here."""
    raise SystemExit(f"error: {message}")


# -----------------------------------------------------------------------------
# C/CUDA text: braces, comments and literals

def blank_comments_and_literals(text):
    """text with every comment, string and character literal replaced by spaces (newlines kept),
    same length, so an index into one is an index into the other and a brace inside "}" or // {
    is no longer a brace. An unterminated literal ends at its line's end, as the compiler's does."""
    out, i, n = list(text), 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
        elif c in "\"'":
            end = i + 1
            while end < n and text[end] != c and text[end] != "\n":
                end += 2 if text[end] == "\\" else 1
            end = min(end, n)  # a backslash at the very end skips past it
            end = end + 1 if end < n and text[end] == c else end
        else:
            i += 1
            continue
        for j in range(i, end):
            if out[j] != "\n":
                out[j] = " "
        i = end
    return "".join(out)


def matching_brace(code, open_index):
    """Index just past the "}" that closes the "{" at open_index in blanked code, or None."""
    depth = 0
    for i in range(open_index, len(code)):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def template_arguments(signature):
    """Arguments that instantiate a kernel template: float for each type, 32 for each number (true
    for a bool), nothing for a pack; None if the signature is no template."""
    code = blank_comments_and_literals(signature).lstrip()
    if not code.startswith("template"):
        return None
    start = code.index("<")
    depth, arguments, piece = 0, [], ""
    for c in code[start:]:
        depth += {"<": 1, "(": 1, ">": -1, ")": -1}.get(c, 0)
        if (c == "," and depth == 1) or depth == 0:
            kind = piece.split("=")[0].split()
            if kind and "..." not in piece:
                arguments.append("float" if kind[0] in ("typename", "class") else "true" if kind[0] == "bool" else "32")
            piece = ""
            if depth == 0:
                return arguments
        elif depth >= 1 and not (c == "<" and depth == 1):
            piece += c
    return arguments


def instantiation(task):
    """Code after a template kernel that makes nvcc compile its body: it parses an uninstantiated
    template's body so loosely that `x y z = ;;` passes, so the kernel's address is taken with
    template_arguments. Empty for a kernel that is no template."""
    arguments = template_arguments(task.prompt.removeprefix(PREAMBLE))
    if arguments is None:
        return ""
    return f"\nstatic auto* const instantiate_{task.name} = &{task.name}<{', '.join(arguments)}>;\n"


def template_start(code, line_start):
    """Where a `template <...>` just before line_start begins (it may span lines), else line_start."""
    before = code[:line_start].rstrip()
    if not before.endswith(">"):
        return line_start
    depth, i = 0, len(before) - 1
    while i >= 0:  # back to the "<" matching the last ">"
        depth += {">": 1, "<": -1}.get(before[i], 0)
        if depth == 0:
            break
        i -= 1
    head = re.search(r"\btemplate\s*$", before[:max(i, 0)])
    return head.start() if head and i >= 0 else line_start


def parameter_list(code, start, brace):
    """(open, close) indices of the last top-level (...) between start and the body's brace."""
    close = code.rfind(")", start, brace)
    depth = 0
    for i in range(close, start - 1, -1):
        depth += {")": 1, "(": -1}.get(code[i], 0)
        if depth == 0:
            return i, close
    return None


def cuda_tasks(text, source=""):
    """A Task for each __global__ kernel defined in a .cu/.cuh file's text (compiling or not: see
    compiling_tasks). Declarations and kernels inside #define macros are skipped."""
    code = blank_comments_and_literals(text)
    tasks = []
    for m in re.finditer(r"\b__global__\b", code):
        line_start = code.rfind("\n", 0, m.start()) + 1
        previous_line = code[:max(line_start - 1, 0)].rsplit("\n", 1)[-1]
        if code[line_start:].lstrip().startswith("#") or previous_line.rstrip().endswith("\\"):
            continue  # part of a macro
        end = re.compile(r"[{;]").search(code, m.end())
        if end is None or code[end.start()] == ";":
            continue  # a declaration
        brace = end.start()
        params = parameter_list(code, m.end(), brace)
        body_end = matching_brace(code, brace)
        if params is None or body_end is None:
            continue
        name = re.search(r"(\w+)\s*$", code[m.end():params[0]])
        start = template_start(code, line_start)
        tasks.append(Task("cuda", name.group(1) if name else "kernel", PREAMBLE + text[start:brace + 1],
                          text[brace + 1:body_end], source))
    return tasks


# -----------------------------------------------------------------------------
# Python functions

def python_tasks(text, source=""):
    """A Task for each function (methods and nested ones too) of a Python file's text, dedented to
    column 0: the prompt is its decorators, signature and docstring, the reference the rest."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.splitlines(keepends=True)
    tasks = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        body = node.body
        has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str)
        if has_doc and len(body) == 1:
            continue  # nothing after the docstring to complete
        split = body[0].end_lineno if has_doc else body[0].lineno - 1  # last line of the prompt
        if body[0].lineno == node.lineno:  # `def f(): return 1` on one line: no body lines to complete
            continue
        function = textwrap.dedent("".join(lines[first - 1:node.end_lineno]))
        prompt_lines = split - first + 1
        function_lines = function.splitlines(keepends=True)
        tasks.append(Task("python", node.name, "".join(function_lines[:prompt_lines]),
                          "".join(function_lines[prompt_lines:]), source))
    return tasks


def python_body_end(text, at_line_start=True):
    """Where a function's body ends in a continuation of its prompt: at the first line indented less
    than the body's first line, or not at all (column 0 is the next statement of the file). Less
    than the first line, not column 0: a method is prompted dedented to column 0, but the model may
    know it for a method, indent its body 8 spaces and start the class's next method at 4. When the
    prompt does not end with a newline (see open_ended), the text before the first newline
    continues the prompt's last line: no body line. Returns an index into text, or None."""
    start = 0 if at_line_start else text.find("\n") + 1
    if start == 0 and not at_line_start:
        return None
    indent = None
    for line in text[start:].splitlines(keepends=True):
        if line.strip():
            width = len(line) - len(line.lstrip())
            indent = width if indent is None else indent
            if width < indent or width == 0:
                return start
        start += len(line)
    return None


def body_end(task, text):
    """Where the body in `text`, a continuation of task.prompt, ends (an index into text), or None if
    it has not ended yet: a kernel's body just after the brace that closes its own (braces in
    comments and strings do not count), a function's at its dedent (python_body_end)."""
    if task.language == "cuda":
        end = matching_brace(blank_comments_and_literals("{" + text), 0)
        return None if end is None else end - 1
    return python_body_end(text, at_line_start=task.prompt.endswith("\n"))


def open_ended(task):
    """The task as a model should be prompted with it. A Python prompt ends with a newline that the
    tokenizer would encode alone, but in the training data a newline and the next line's
    indentation are one token ("\\n    "): prompted with the lone newline, the model is off its
    distribution from its first token. So the prompt loses its last newline, for the model to
    write with the indentation, and the newline moves to the reference: prompt + reference is still
    the whole function. A CUDA prompt ends with "{" and stays as it is."""
    if task.language == "python" and task.prompt.endswith("\n"):
        return replace(task, prompt=task.prompt[:-1], reference="\n" + task.reference)
    return task


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


def cut_completion(task, text):
    """A sampled continuation of task.prompt, cut where the body ends (body_end) and before any
    <|endoftext|>. A body that never ends is returned whole: a kernel that never closes fails to
    compile, as it should; a Python body ends with the text."""
    text = text.split(EOT)[0]
    end = body_end(task, text)
    text = text if end is None else text[:end]
    return text if task.language == "cuda" else text.rstrip() + "\n"


# -----------------------------------------------------------------------------
# non-trivial: does the body do anything?

TOKEN = re.compile(r"\w+|[^\s\w]")  # a word or one punctuation character


def count_tokens(code):
    return len(TOKEN.findall(code))


def code_size(task, completion):
    """How much code a completion holds, as train_rl.py's length reward (length_floor) counts it: the
    distinct pairs of neighbouring code tokens, comments and string literals left out (CUDA:
    counted_code's, #if regions too). Real code seldom repeats a pair, so this grows with its length,
    but padding adds nothing: neither a comment or a long string, nor a statement, an argument or an
    attribute written again (exploit 6, docs/rl.md)."""
    if task.language == "cuda":
        code = counted_code(completion)
    else:
        kept = []
        try:
            for token in tokenize.generate_tokens(io.StringIO(completion).readline):
                if token.type not in (tokenize.COMMENT, tokenize.STRING):
                    kept.append(token.string)
        except (tokenize.TokenError, SyntaxError):  # a body cut mid-statement: count what came before
            pass
        code = " ".join(kept)
    tokens = TOKEN.findall(code)
    return len(set(zip(tokens, tokens[1:])))


def distinct_line_share(task, completion):
    """The share of a body's non-blank lines (cut as the checks cut it, stripped) that it has not
    written before: 1 for most real code, little for a body that fills the space to the cap with one
    statement again and again (train_rl.py's repeat_discount; exploit 12 of docs/rl.md for a body
    that does not parse)."""
    lines = [line.strip() for line in cut_completion(task, completion).split("\n") if line.strip()]
    return len(set(lines)) / len(lines) if lines else 1.0


CONDITIONAL = re.compile(r"\s*#\s*(if|ifdef|ifndef|endif)\b")


def counted_code(completion):
    """The CUDA code the checks count: comments and literals blanked, and every #if / #ifdef /
    #ifndef ... #endif region blanked with its directives. Whether nvcc sees such code depends on
    macros this check does not evaluate, and a policy learned to hide code under `#if 0` (docs/rl.md),
    so it counts as absent; like the rest of the check, this errs towards calling a body trivial."""
    lines, depth = blank_comments_and_literals(completion).split("\n"), 0
    for i, line in enumerate(lines):
        directive = CONDITIONAL.match(line)
        if directive or depth:
            lines[i] = " " * len(line)
        if directive:
            depth = max(depth - 1, 0) if directive.group(1) == "endif" else depth + 1  # a stray #endif closes nothing
    return "\n".join(lines)


def pointer_parameters(signature):
    """Names of the pointer (and array) parameters of a kernel's signature, e.g.
    `__global__ void k(const float* __restrict__ x, float *y, int n) {` -> {"x", "y"}."""
    code = blank_comments_and_literals(signature)
    brace = code.find("{", max(code.find("__global__"), 0))  # the body's: a hinted prompt holds more braces
    params = parameter_list(code, 0, brace if brace >= 0 else len(code))
    if params is None:
        return set()
    names, depth, piece = set(), 0, ""
    for c in code[params[0] + 1:params[1]] + ",":
        if c == "," and depth == 0:
            declaration = piece.split("=")[0]
            name = re.findall(r"\w+", re.sub(r"\[[^\]]*\]", "", declaration))
            if name and ("*" in declaration or "[" in declaration):
                names.add(name[-1])
            piece = ""
            continue
        depth += {"(": 1, "<": 1, "[": 1, ")": -1, ">": -1, "]": -1}.get(c, 0)
        piece += c
    return names


ASSIGNMENT = re.compile(r"\s*(?:\+\+|--|(?:<<|>>|[-+*/%&|^])?=(?!=))")


def lvalue_end(code, i):
    """Past a chain of [...] subscripts and .field / ->field accesses starting at i, and whether it
    went through memory (a subscript or ->)."""
    through_memory = False
    while True:
        j = len(code) - len(code[i:].lstrip())
        if code.startswith("[", j):
            depth = 0
            for k in range(j, len(code)):
                depth += {"[": 1, "]": -1}.get(code[k], 0)
                if depth == 0:
                    break
            i, through_memory = k + 1, True
        elif re.match(r"(\.|->)\s*\w+", code[j:]):
            through_memory |= code.startswith("->", j)
            i = j + re.match(r"(\.|->)\s*\w+", code[j:]).end()
        else:
            return i, through_memory


def writes_through(code, pointers):
    """Whether blanked code stores through one of the pointers: `p[i] = `, `p[i] += `, `p[i]++`,
    `*p = `, `*(p + i) = `, `p->x = `, `reinterpret_cast<T*>(p)[i] = `, or `atomicAdd(&p[i], ...)`.
    A local pointer initialised from one (`float* row = p + i * n;`) counts as that pointer."""
    pointers = set(pointers)
    while True:  # local pointers derived from known ones, until no new one appears
        derived = {m.group(1) for m in re.finditer(r"(?:\*\s*(?:const\s+|__restrict__\s+)*|\bauto\s+)(\w+)\s*=([^;]*)", code)
                   if any(re.search(rf"\b{re.escape(p)}\b", m.group(2)) for p in pointers)}
        if derived <= pointers:
            break
        pointers |= derived
    for p in pointers:
        name = rf"\b{re.escape(p)}\b"
        if re.search(rf"\batomic\w*\s*\(\s*[&(\s]*{name}", code):
            return True
        roots = [(m.start(), m.end()) for m in re.finditer(name, code)]
        roots += [(m.start(), m.end()) for m in re.finditer(rf"\w+_cast\s*<[^;{{}}]*?>\s*\(\s*{name}[^()]*\)", code)]
        for start, end in roots:
            after, through_memory = lvalue_end(code, end)
            prefix = code[:start].rstrip()
            dereferenced = prefix.endswith("*") and not re.search(r"[\w)\]]\s*\*$", prefix)  # unary *, not a product
            incremented = prefix.endswith(("++", "--"))
            if (through_memory or dereferenced) and (ASSIGNMENT.match(code, after) or incremented):
                return True
        for m in re.finditer(rf"(?<![\w)\]\s])\s*\*\s*\(\s*{name}[^()]*\)", code):  # *(p + i) = v
            if ASSIGNMENT.match(code, m.end()):
                return True
    return False


def cuda_nontrivial(task, completion):
    """The kernel's body stores through a pointer parameter and has at least MIN_TOKENS tokens, neither
    counting code under a preprocessor conditional."""
    body = counted_code(completion)
    return count_tokens(body) >= MIN_TOKENS and writes_through(body, pointer_parameters(task.prompt))


def prompt_lines(task):
    """The lines a Python task's prompt fills (a trailing newline starts none): the statements of
    its completion begin after them, open-ended or not."""
    return len(task.prompt.rstrip("\n").split("\n"))


def parameter_names(arguments):
    """The names an ast.arguments binds, in order."""
    names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
    return names + [a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None]


def reads(node, hidden=frozenset()):
    """The names node reads, except where a nested function's (or lambda's) own parameter of that
    name hides the outer one: `def inner(self, x): return x` reads no x of the function around it."""
    if isinstance(node, ast.Name):
        return {node.id} - hidden if isinstance(node.ctx, ast.Load) else set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        inner = hidden | set(parameter_names(node.args))
        outside = node.args.defaults + [d for d in node.args.kw_defaults if d] + getattr(node, "decorator_list", [])
        body = node.body if isinstance(node.body, list) else [node.body]
        return set().union(*(reads(n, hidden) for n in outside), *(reads(n, inner) for n in body))
    return set().union(*(reads(child, hidden) for child in ast.iter_child_nodes(node)))


def python_nontrivial(task, completion):
    """The function's body (docstring aside) holds a statement other than pass, ..., a bare return,
    a string or a nested def / class, has at least MIN_TOKENS tokens, and reads one of the function's
    parameters if it has any besides self / cls. Two exploits RL found closed those clauses
    (docs/rl.md): one-line bodies like `return super().__init__()` or `self.assertTrue(x)`, which do
    something but ignore what the function was given; and bodies that only define nested functions,
    which do nothing when the function runs, their parameters named like the outer ones."""
    try:
        function = ast.parse(task.prompt + completion).body[0]
    except (SyntaxError, ValueError, IndexError):
        return False
    if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    # only the completion's statements count: a hinted prompt (see hinted) holds some of the body
    last_prompt_line = prompt_lines(task)
    body = [statement for statement in function.body if statement.lineno > last_prompt_line]
    names = parameter_names(function.args)
    parameters = set(names[1:] if names[:1] in (["self"], ["cls"]) else names)
    if parameters and not parameters & set().union(*map(reads, body)):
        return False
    trivial = (ast.Pass, ast.Expr, ast.Return, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for statement in body:
        if isinstance(statement, ast.Expr) and not isinstance(statement.value, ast.Constant):
            return count_tokens(completion) >= MIN_TOKENS  # a call, an await: does something
        if isinstance(statement, ast.Return) and statement.value is not None \
                and not (isinstance(statement.value, ast.Constant) and statement.value.value is None):
            return count_tokens(completion) >= MIN_TOKENS
        if not isinstance(statement, trivial):
            return count_tokens(completion) >= MIN_TOKENS
    return False


# -----------------------------------------------------------------------------
# hints: the reference body's first statements moved into the prompt (train_rl.py's reverse curriculum)

def statement_ends(task):
    """Offsets into task.reference of the newline that ends each line completing one of the body's
    top-level statements. CUDA: a line ending in ";" or "}" outside every brace, parenthesis and
    preprocessor conditional. Python: the last line of each statement of the function's body. The
    cut is before the newline: the tokenizers learned a newline and the next line's indentation as
    one token (see open_ended), so a hinted prompt ends as an open-ended one does."""
    if task.language == "cuda":
        code, ends, depth, last = counted_code(task.reference), [], 0, ""
        for i, c in enumerate(code):
            if c == "\n":
                if depth == 0 and last in (";", "}"):
                    ends.append(i)
                last = ""
            elif not c.isspace():
                last = c
                depth += {"{": 1, "(": 1, "}": -1, ")": -1}.get(c, 0)
        return ends
    text = task.prompt + task.reference
    try:
        function = ast.parse(text).body[0]
    except (SyntaxError, ValueError, IndexError):
        return []
    lines, last_prompt_line = text.split("\n"), prompt_lines(task)
    return sorted({len("\n".join(lines[:statement.end_lineno])) - len(task.prompt)  # `a = 1; b = 2` ends once
                   for statement in function.body if statement.lineno > last_prompt_line})


def hinted(task, cut):
    """The task with the first `cut` characters of its reference body moved to the end of its prompt."""
    return replace(task, prompt=task.prompt + task.reference[:cut], reference=task.reference[cut:])


def hint_cuts(task):
    """Where a task's reference may be cut for a hint: 0 (no hint), then each statement end
    (statement_ends) after which the rest of the reference is still non-trivial by itself. So a
    hinted task stays solvable, and since the checks count only the completion, its reward pays for
    code the model wrote, not for the hint."""
    nontrivial = cuda_nontrivial if task.language == "cuda" else python_nontrivial
    return [0] + [end for end in statement_ends(task) if nontrivial(hinted(task, end), task.reference[end:])]


# -----------------------------------------------------------------------------
# the sandbox: limits for a subprocess that reads or runs untrusted code

@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


LANDLOCK_WRITES = sum(1 << bit for bit in range(1, 13) if bit not in (2, 3))  # write, remove, make_*
PR_SET_NO_NEW_PRIVS = 38


def processes_of(uid):
    """How many processes uid has now (RLIMIT_NPROC counts them all, not just the sandbox's)."""
    count = 0
    for pid in os.listdir("/proc"):
        try:
            count += pid.isdigit() and os.stat(f"/proc/{pid}").st_uid == uid
        except OSError:
            pass
    return count


def landlock_writes_only_under(directory):
    """Restrict this process and its children (Linux >= 5.13, Landlock) so that they create, write,
    delete or rename files only under directory (and write to devices: /dev/null, a GPU's).
    Reading stays allowed. Returns False where the kernel has no Landlock."""
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, VERSION)
    if abi < 1:
        return False
    handled = LANDLOCK_WRITES | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0)  # + refer, truncate
    ruleset = libc.syscall(444, ctypes.byref(ctypes.c_uint64(handled)), ctypes.c_size_t(8), 0)
    for path, allowed in ((directory, handled), ("/dev", handled & ((1 << 1) | (1 << 14)))):  # /dev/null, a GPU
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        rule = ctypes.create_string_buffer(allowed.to_bytes(8, "little") + fd.to_bytes(4, "little", signed=True))
        if libc.syscall(445, ruleset, 1, rule, 0) != 0:  # landlock_add_rule(PATH_BENEATH)
            raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
        os.close(fd)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if libc.syscall(446, ruleset, 0) != 0:  # landlock_restrict_self
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    return True


def enter_sandbox(limits, argv):
    """The launcher's side (this file run as a script, in the new process group): limits on itself,
    then exec argv, which inherits them."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    if limits["memory_bytes"]:
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
    nproc = processes_of(os.getuid()) + limits["max_processes"]  # (root is exempt: only the timeout stops its forks)
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    landlock_writes_only_under(os.getcwd())
    os.execvpe(argv[0], argv, os.environ)


def run_sandboxed(argv, files=None, timeout=10.0, cpu_seconds=None, memory_bytes=4 << 30, file_bytes=64 << 20,
                  max_processes=64, env=None):
    """
    Run argv in a fresh, empty temporary directory holding only `files` ({name: text}), and return
    Completed(returncode, stdout, stderr, timed_out). The process gets: a new process group, killed
    whole (SIGKILL) at `timeout` seconds of wall time or when argv exits; limits on CPU seconds
    (cpu_seconds, by default one more than the timeout), address space (memory_bytes; None for CUDA
    programs, which reserve terabytes of virtual addresses), the size of any file it writes, and its
    user's number of processes (max_processes more than now; the kernel exempts root, whose fork
    bomb only the timeout stops); no file writes outside its directory (Landlock, on Linux >= 5.13);
    a minimal environment (PATH, HOME and TMPDIR in its directory, plus env) and stdin closed. The
    directory is deleted afterwards.

    This guards against accidents, such as a generated infinite loop, memory or fork bomb, or stray
    write; it is not a security boundary (a determined program can still read files, use the
    network, or exploit the kernel). For code from people you do not trust, run it in a container or
    VM without network.
    """
    with tempfile.TemporaryDirectory(prefix="sandbox-") as workdir:
        for name, text in (files or {}).items():
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as f:
                f.write(text)
        # the CPU limit a second past the timeout: a backstop, so that the wall clock stops a busy loop
        # first and says so (at the same second the two raced, and a loop killed by either looked alike)
        limits = {"cpu_seconds": math.ceil(cpu_seconds or timeout + 1), "memory_bytes": memory_bytes,
                  "file_bytes": file_bytes, "max_processes": max_processes}
        environment = {"PATH": os.pathsep.join([os.path.dirname(argv[0]), "/usr/bin", "/bin"]), "HOME": workdir,
                       "TMPDIR": workdir, "LANG": "C.UTF-8", **(env or {})}
        launcher = [sys.executable, "-I", "-S", os.path.abspath(__file__), "--sandbox", json.dumps(limits), *argv]
        process = subprocess.Popen(launcher, cwd=workdir, env=environment, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the group: children it left running too
            except ProcessLookupError:
                pass
        if timed_out:
            stdout, stderr = process.communicate()
    return Completed(process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"), timed_out)


# -----------------------------------------------------------------------------
# compiling and parsing

def find_nvcc():
    """nvcc on PATH, else the one the nvidia-cuda-nvcc wheel installs; a one-line error if neither."""
    found = shutil.which("nvcc")
    if found:
        return found
    try:
        import nvidia
        for root in nvidia.__path__:
            for sub in sorted(os.listdir(root), reverse=True):  # cu13 before cu12
                candidate = os.path.join(root, sub, "bin", "nvcc")
                if os.access(candidate, os.X_OK):
                    return candidate
    except ImportError:
        pass
    fail(f"nvcc (the CUDA compiler) is not installed; {NVCC_PIP}")


INCLUDE = re.compile(r'^\s*#\s*include\b\s*(.*)$', re.MULTILINE)


def refused_include(source):
    """Why source's #includes are refused, or "": only <name> and "name" are allowed, never an
    absolute path, a .. or a macro (nothing outside the compiler's own header directories)."""
    for m in INCLUDE.finditer(source):
        target = m.group(1).strip()
        quoted = re.match(r'(<[^>]*>|"[^"]*")', target)
        if not quoted:
            return f"#include {target} refused: only <header> or \"header\""
        path = quoted.group(1)[1:-1]
        if os.path.isabs(path) or ".." in path.replace("\\", "/").split("/"):
            return f"#include {quoted.group(1)} refused: an absolute path or .. reaches outside the CUDA headers"
    return ""


@functools.lru_cache(maxsize=65536)
def compile_cuda(source, timeout=30.0):
    """(compiles, first error line, errors) for a CUDA source file: nvcc -ptx -arch=sm_80 (device code
    to PTX, no GPU needed) in the sandbox, with only the CUDA toolkit's own include paths. errors is
    nvcc's own count, 0 when it compiles, None when the count misses errors: a refused #include, a
    timeout, the preprocessor stopping first (a stray #endif, an #error), or a syntax error
    ("expected a ..."), after which nvcc's parser skips ahead without checking what it skips; each
    hides the errors after it (exploits 7 and 9, docs/rl.md). Cached by text: an RL batch repeats
    itself."""
    refused = refused_include(source)
    if refused:
        return False, refused, None
    done = run_sandboxed([find_nvcc(), "-ptx", "-arch=sm_80", "kernel.cu", "-o", "kernel.ptx"],
                         files={"kernel.cu": source}, timeout=timeout)
    if done.timed_out:
        return False, f"nvcc timed out after {timeout:g} s", None
    if done.returncode == 0:
        return True, "", 0
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if "error" in line]
    count = re.search(r"^(\d+) errors? detected", output, re.MULTILINE)  # the compiler's last line
    syntax = any(re.search(r"error: expected (a|an) ", line) for line in errors)
    return False, (errors or output.strip().splitlines() or [f"nvcc exit {done.returncode}"])[0], \
        int(count.group(1)) if count and not syntax else None


def parses(source):
    try:
        ast.parse(source)
        return True, ""
    except (SyntaxError, ValueError) as e:  # ValueError: a null byte
        return False, f"{type(e).__name__}: {e}"


def parsing_share(task, completion):
    """Python: how near a body that does not parse came to parsing, as the share of its lines before
    its first syntax error, when those lines parse on their own (a last line that opens a block or a
    bracket is dropped until they do) and do something (python_nontrivial); else 0. A body cut at
    max_new_tokens mid-statement but sound up to there scores near 1, one wrong in its first line 0:
    the graded signal nvcc's error count gives a kernel (store_credit), for a parser that stops at
    the first error. Lines are counted once each and blank ones not at all, so that a body filling
    the space to the cap with one statement written again and again earns little (exploit 12)."""
    source = task.prompt + completion
    try:
        ast.parse(source)
        return 1.0
    except SyntaxError as error:
        error_line = error.lineno or 1
    except ValueError:  # a null byte
        return 0.0
    lines = source.rstrip("\n").split("\n")
    first = prompt_lines(task)  # the body's lines are lines[first:]
    body = [line.strip() for line in lines[first:]]
    for kept in range(min(error_line - 1, len(lines)), first, -1):
        prefix = "\n".join(lines[:kept]) + "\n"
        if parses(prefix)[0]:
            if not python_nontrivial(task, prefix[len(task.prompt):]):
                return 0.0
            return len(set(body[:kept - first]) - {""}) / sum(map(bool, body))
    return 0.0


def score(task, text, partial_credit=0.0, store_credit=0.0, prefix_credit=0.0):
    """Result for a model's continuation `text` of task.prompt: cut where the body ends, then
    compiled (nvcc) / parsed (ast) and checked for doing something. reward: 1 when both hold,
    partial_credit when it compiles / parses and has MIN_TOKENS tokens without doing anything,
    store_credit / nvcc's error count when a CUDA body stores through a pointer parameter but does not
    compile (the fewer errors, the nearer it is to compiling; nothing when the count misses errors:
    policies learned to end a body with a stray #endif, which stops the preprocessor at one error,
    and to open it with a stray ")", a syntax error after which the parser checks nothing),
    prefix_credit x parsing_share for a Python body that does not parse, else 0. The empty body
    compiles: paid for compiling, it is the first thing a policy learns to write (docs/rl.md), so
    partial credit wants some code."""
    completion = cut_completion(task, text)
    stores, errors = False, None
    if task.language == "cuda":
        ok, message, errors = compile_cuda(task.prompt + completion + instantiation(task))
        stores = cuda_nontrivial(task, completion)
        nontrivial = ok and stores
        tokens = count_tokens(counted_code(completion))
    else:
        ok, message = parses(task.prompt + completion)
        nontrivial = ok and python_nontrivial(task, completion)
        tokens = count_tokens(completion)
    if nontrivial:
        reward = 1.0
    elif ok:
        reward = partial_credit if tokens >= MIN_TOKENS else 0.0
    elif task.language == "cuda":
        reward = store_credit / errors if stores and errors else 0.0
    else:
        reward = prefix_credit * parsing_share(task, completion) if prefix_credit else 0.0
    return Result(ok, nontrivial, reward, len(completion), message)


def score_many(tasks, texts, partial_credit=0.0, store_credit=0.0, prefix_credit=0.0, workers=None):
    """score() of each (task, text) pair, nvcc running in `workers` threads (default: the cores)."""
    with ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        return list(pool.map(lambda pair: score(*pair, partial_credit, store_credit, prefix_credit), zip(tasks, texts)))


def pass_at_k(n, c, k):
    """The unbiased estimate of pass@k from n samples of which c pass (Chen et al. 2021): the
    chance that k of the n, drawn without replacement, hold at least one that passes,
    1 - C(n-c, k) / C(n, k), computed as a product to stay exact for large n."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


# -----------------------------------------------------------------------------
# the tasks of a prepared dataset

def documents(data_dir, split, train_only=False):
    """(name, text) of each document (file) of data_dir/{split}.bin, cut at the <|endoftext|> id
    after each and decoded; names from the files.json a prepare script wrote, else "val.bin document 3".
    The files it lists as train_only (prepare/cuda_code.py --train_only: generated kernels) are
    training data, not the split's own tasks, and are left out; with train_only=True only they
    are returned."""
    import numpy as np
    import data
    meta = data.read_meta(data_dir, "prepare the dataset first")
    encode, decode = data.load_tokenizer(meta, data_dir)
    eot = data.start_ids(meta, data_dir, encode)
    ids = np.memmap(os.path.join(data_dir, f"{split}.bin"), dtype=np.uint16, mode="r")
    # cut at the id prepare wrote after every document, not at the decoded text "<|endoftext|>": a file
    # may hold that text itself (llm.c's tokenizer code does), tokenized as ordinary text
    ends = np.flatnonzero(ids == eot[0]).tolist() if decode(eot) == EOT else []
    spans = list(zip([0] + [end + 1 for end in ends], ends))
    names, train_only_names = [f"{split}.bin document {i}" for i in range(len(spans))], set()
    if os.path.exists(os.path.join(data_dir, "files.json")):
        with open(os.path.join(data_dir, "files.json"), encoding="utf-8") as f:
            listed = json.load(f)
        names, train_only_names = listed.get(split, names), set(listed.get("train_only", []))
    # decoded once chosen: the documents left out (40,000 generated kernels, say) are never decoded
    return [(name, decode(ids[start:end].tolist())) for name, (start, end) in zip(names, spans)
            if (name in train_only_names) == train_only]


def compiling_tasks(tasks, workers=None):
    """The CUDA tasks whose reference body compiles alone after PREAMBLE (a Python task parses)."""
    results = score_many(tasks, [t.reference for t in tasks], workers=workers)
    return [t for t, r in zip(tasks, results) if r.ok]


def document_tasks(docs, data_dir, language=None):
    """The tasks that (name, text) documents hold, once each where prepare repeated a file
    (--weight); language "cuda" or "python", default data_dir's meta.json "language"
    (prepare/cuda_code.py writes "cuda"), else python."""
    import data
    language = language or data.read_meta(data_dir, "prepare the dataset first").get("language", "python")
    if language not in ("cuda", "python"):
        fail(f"language must be cuda or python, got {language!r}")
    make = cuda_tasks if language == "cuda" else python_tasks
    return list(dict.fromkeys(task for name, text in docs for task in make(text, name)))


def train_only_tasks(data_dir, count, language=None, workers=None):
    """The tasks of the first `count` files that prepare marked train_only (prepare/cuda_code.py
    --train_only: generated kernels) whose reference compiles (parses). They are training data and
    never held out, so RL may train on them beside the training split's tasks. Built at each call:
    compiling `count` references is quick, all 40,000 generated kernels' would not be."""
    docs = documents(data_dir, "train", train_only=True)[:count]
    return compiling_tasks(document_tasks(docs, data_dir, language), workers)


def dataset_tasks(data_dir, split="val", language=None, workers=None):
    """The completion tasks of a prepared dataset's split (val: held out from training), built once
    and cached in data_dir/tasks_{split}.jsonl (delete it to rebuild); language as document_tasks'."""
    path = os.path.join(data_dir, f"tasks_{split}.jsonl")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return [Task(**json.loads(line)) for line in f]
    tasks = compiling_tasks(document_tasks(documents(data_dir, split), data_dir, language), workers)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for task in tasks:
            f.write(json.dumps(asdict(task)) + "\n")
    os.replace(path + ".tmp", path)
    return tasks


# -----------------------------------------------------------------------------
# the execution check on a GPU: a kernel against a KernelBench problem's PyTorch reference
#
# The contract for a candidate: CUDA source (compiled with torch.utils.cpp_extension.load_inline)
# that defines `torch::Tensor forward(...)` taking the problem's get_inputs() (tensors, then ints
# as int64_t and floats as double), then its get_init_inputs(), then the reference Model's
# parameters, and returning the Model's output. A PYBIND11_MODULE binding forward is added if the
# source has none. Unmeasured here (no GPU): tests/test_code_check.py runs every part on the CPU
# with Python functions standing in for the compiled kernel.

RELU_KERNEL = r"""#include <torch/extension.h>

__global__ void relu_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}

torch::Tensor forward(torch::Tensor x) {
    TORCH_CHECK(x.is_cuda() && x.is_contiguous() && x.scalar_type() == torch::kFloat, "a contiguous float CUDA tensor");
    auto y = torch::empty_like(x);
    int64_t n = x.numel();
    relu_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""
RELU_PROBLEM = "19_ReLU"  # KernelBench level 1's ReLU, which RELU_KERNEL solves (bench/gpu_check.py)
TOLERANCE = 1e-2          # KernelBench's atol and rtol


def kernelbench_problems(path, level=1):
    """{name: source} of KernelBench's level-`level` problems, e.g. "19_ReLU", from
    kernelbench.tar.gz or a directory holding KernelBench/level1/*.py."""
    import tarfile
    prefix = f"KernelBench/level{level}/"
    folder = os.path.join(path, prefix)
    if os.path.isdir(folder):
        problems = {name[:-3]: open(os.path.join(folder, name), encoding="utf-8").read()
                    for name in sorted(os.listdir(folder)) if name.endswith(".py")}
    elif os.path.isfile(path) and tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            problems = {member.name[len(prefix):-3]: tar.extractfile(member).read().decode("utf-8")
                        for member in sorted(tar.getmembers(), key=lambda m: m.name)
                        if member.isfile() and member.name.startswith(prefix) and member.name.endswith(".py")}
    elif not os.path.exists(path):
        fail(f"{path} does not exist: pass kernelbench.tar.gz or the directory that holds KernelBench/")
    else:
        problems = {}
    if not problems:
        fail(f"{path} holds no {prefix}*.py: pass kernelbench.tar.gz or the directory that holds KernelBench/")
    return problems


def problem_namespace(problem_source):
    """The globals of a KernelBench problem's source (Model, get_inputs, get_init_inputs) after running
    it: the benchmark's trusted reference code, never generated code."""
    namespace = {}
    exec(compile(problem_source, "problem.py", "exec"), namespace)
    return namespace


def kernelbench_trial(forward, model, inputs, extra, tolerance=TOLERANCE):
    """One correctness trial of a candidate forward (the compiled kernel, or a stand-in) on fresh
    inputs, guarding KernelBench's known exploits. The reference runs after the candidate, on copies
    taken before it: a candidate that returns a tensor cached from an earlier call (by pointer: the
    allocator hands new inputs the old addresses) or the reference's own output fails, and so does
    one that writes into its inputs or returns one of them. Returns "" if it passes, else why not."""
    import torch
    saved = [x.clone() if torch.is_tensor(x) else x for x in inputs]
    with torch.no_grad():
        out = forward(*inputs, *extra)
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # the whole device: work left on a side stream counts
        ref = model(*saved)
    if not torch.is_tensor(out) or out.shape != ref.shape or out.dtype != ref.dtype:
        return f"output {tuple(out.shape) if torch.is_tensor(out) else type(out).__name__} differs from the reference's " \
               f"{tuple(ref.shape)} {ref.dtype}"
    for x, before in zip(inputs, saved):
        if torch.is_tensor(x):
            if out.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
                return "the output is an input's memory"
            if not torch.equal(x, before):
                return "the candidate wrote into its input"
    if not torch.allclose(out, ref, atol=tolerance, rtol=tolerance):
        return f"wrong values: max abs error {(out.float() - ref.float()).abs().max().item():.3g}"
    return ""


def time_ms(function, args, device, repeats=20):
    """Median wall time of function(*args) in milliseconds, the whole device synchronised around
    each call (so work left on any stream is counted), after 3 warm-up calls."""
    import statistics
    import time
    import torch
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    times = []
    for i in range(3 + repeats):
        sync()
        start = time.perf_counter()
        function(*args)
        sync()
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def kernelbench_run(problem_source, forward, device, trials=3, seed=0):
    """Correctness over `trials` fresh input draws, then timing of candidate and reference:
    {"correct", "message", "ms", "ref_ms", "speedup"}. forward: the compiled extension's forward
    (or, in tests, a Python stand-in). Runs in the sandbox's subprocess for a compiled kernel."""
    import torch
    namespace = problem_namespace(problem_source)
    torch.manual_seed(seed)
    init = namespace["get_init_inputs"]()
    model = namespace["Model"](*init).to(device).eval()
    extra = [*init, *(p.detach() for p in model.parameters())]
    result = {"correct": False, "message": "", "ms": None, "ref_ms": None, "speedup": None}
    for trial in range(trials):
        torch.manual_seed(seed + 1 + trial)
        with torch.device(device):  # drawn where they are used: level 1's inputs are up to gigabytes
            inputs = [x.to(device) if torch.is_tensor(x) else x for x in namespace["get_inputs"]()]
        message = kernelbench_trial(forward, model, inputs, extra)
        if message:
            result["message"] = f"trial {trial + 1}: {message}"
            return result
    with torch.no_grad():
        result.update(correct=True, ms=time_ms(forward, [*inputs, *extra], device),
                      ref_ms=time_ms(model, inputs, device))
    result["speedup"] = result["ref_ms"] / result["ms"]
    return result


HARNESS = """import json, sys
sys.path.insert(0, sys.argv[1])
import code_check, torch
from torch.utils.cpp_extension import load_inline
source = open("kernel.cu").read()
if "PYBIND11_MODULE" not in source:
    source += '\\nPYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("forward", &forward); }\\n'
try:
    extension = load_inline("candidate", cpp_sources="", cuda_sources=source, build_directory=".", verbose=False)
except Exception as e:
    print(json.dumps({"correct": False, "compiled": False, "message": str(e).strip().splitlines()[-1][:500]}))
    raise SystemExit(0)
result = code_check.kernelbench_run(open("problem.py").read(), extension.forward, sys.argv[2])
print(json.dumps({"compiled": True, **result}))
"""


def run_harness(harness, files, device, timeout):
    """A harness (Python source) run in the sandbox beside files, as `harness.py <this folder>
    <device> <nvcc>`, with no memory limit (CUDA reserves terabytes of addresses); its verdict is the
    JSON object on its last line of output. Without CUDA, or when a file #includes outside the CUDA
    headers, it does not run. {"compiled", "correct", "message", "speedup", ...}"""
    import torch
    if not torch.cuda.is_available():
        return {"compiled": False, "correct": False, "message": "no CUDA device", "speedup": None}
    refused = "".join(refused_include(text) for name, text in files.items() if name.endswith(".cu"))
    if refused:
        return {"compiled": False, "correct": False, "message": refused, "speedup": None}
    nvcc = find_nvcc()
    env = {"PATH": os.pathsep.join([os.path.dirname(sys.executable), os.path.dirname(nvcc), "/usr/bin", "/bin"]),
           **{key: os.environ[key] for key in ("CUDA_HOME", "CUDA_VISIBLE_DEVICES") if key in os.environ}}
    done = run_sandboxed([sys.executable, "harness.py", os.path.dirname(os.path.abspath(__file__)), str(device), nvcc],
                         files={"harness.py": harness, **files}, timeout=timeout, memory_bytes=None,
                         max_processes=512, env=env)
    lines = done.stdout.strip().splitlines()
    why = f"timed out after {timeout} s" if done.timed_out else (done.stderr.strip().splitlines() or ["no output"])[-1]
    try:  # a kernel's printf also reaches stdout: no verdict is a failure, never a crash here
        verdict = json.loads(lines[-1]) if lines and not done.timed_out else None
    except ValueError:
        verdict = None
    if not isinstance(verdict, dict):
        return {"compiled": False, "correct": False, "message": why, "speedup": None}
    return verdict


def kernelbench_check(problem_source, cuda_source, device="cuda", timeout=600):
    """Build cuda_source with load_inline and run it against a KernelBench problem (its source
    text, from kernelbench_problems) on device, all in the sandbox (run_harness).
    {"compiled", "correct", "message", "ms", "ref_ms", "speedup"}."""
    return run_harness(HARNESS, {"problem.py": problem_source, "kernel.cu": cuda_source}, device, timeout)


def fast_p(results, p=1.0):
    """KernelBench's fast_p: the share of problems whose kernel is correct and more than p times as
    fast as the reference (fast_0 is the share correct, timed or not: the CPU's emulation is not)."""
    return sum(bool(r.get("correct")) and (p == 0 or (r["speedup"] or 0.0) > p) for r in results) / len(results)


# -----------------------------------------------------------------------------
# an execution reward for RL: KernelBench's elementwise problems as kernel bodies to write
#
# A whole KernelBench candidate (a torch extension with its host code) is far beyond a small model,
# and load_inline spends tens of seconds compiling each one against torch's headers. train_rl.py's
# execution reward asks for less: the body of one elementwise kernel of a fixed signature, behind a
# fixed launcher. nvcc builds the two into a plain shared library in a second or two, and the
# harness calls it through ctypes with the tensors' pointers.

ELEMENTWISE_SIGNATURE = "__global__ void {kernel}(const float* __restrict__ x, float* __restrict__ y, int64_t n) {{"
ELEMENTWISE_LAUNCHER = """

extern "C" int launch(const float* x, float* y, int64_t n, int device) {{
    cudaSetDevice(device);  // this library's CUDA runtime is its own: tell it the GPU torch's tensors are on
    {kernel}<<<(unsigned int)((n + 255) / 256), 256>>>(x, y, n);
    return (int)cudaGetLastError();
}}
"""


def elementwise(problem_source):
    """The forward's expression (self's numbers written in) if a KernelBench problem maps one float
    tensor to one of the same shape element by element, with no init inputs and no parameters (ReLU,
    GELU, ...), else None. Its get_inputs must return one tensor (read, not run: they are gigabytes);
    its Model runs here, on the CPU, on small inputs: it is the benchmark's trusted reference, not
    generated code. Element by element means y[i] depends on x[i] alone: mixing two inputs' elements
    mixes the outputs the same way (which a softmax or a norm fails)."""
    import inspect
    import torch
    tree = ast.parse(problem_source)
    functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    returns = [node for node in ast.walk(functions.get("get_inputs", ast.Pass())) if isinstance(node, ast.Return)]
    statements = [node for node in getattr(functions.get("forward"), "body", [])
                  if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]  # not the docstring
    if len(returns) != 1 or not (isinstance(returns[0].value, ast.List) and len(returns[0].value.elts) == 1) \
            or len(statements) != 1 or not isinstance(statements[0], ast.Return):
        return None  # one input, and a forward that is one return
    namespace = problem_namespace(problem_source)
    if namespace["get_init_inputs"]():
        return None
    model = namespace["Model"]()
    if list(model.parameters()) or list(model.buffers()) or len(inspect.signature(model.forward).parameters) != 1:
        return None
    generator = torch.Generator().manual_seed(0)
    x, z = torch.randn(8, 32, generator=generator), torch.randn(8, 32, generator=generator)
    mask = torch.rand(8, 32, generator=generator) < 0.5
    with torch.no_grad():
        y = model(x)
        if not torch.is_tensor(y) or y.shape != x.shape or y.dtype != torch.float32:
            return None
        if not torch.allclose(model(torch.where(mask, x, z)), torch.where(mask, y, model(z)), atol=1e-6, rtol=1e-6):
            return None
    numbers = {name: value for name, value in vars(model).items() if isinstance(value, (int, float))}
    return re.sub(r"self\.(\w+)", lambda m: repr(numbers.get(m.group(1), m.group(0))), ast.unparse(statements[0].value))


# no newline at the end: in the corpus a newline and the next line's indent are one token
ELEMENTWISE_SCAFFOLD = "\n    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;\n    if (i >= n) return;"


def kernelbench_tasks(problems, split, scaffold=False):
    """A Task for each elementwise problem of {name: source} (kernelbench_problems): the CUDA
    preamble, a comment giving the PyTorch expression, and a kernel of ELEMENTWISE_SIGNATURE up to
    its "{", then with scaffold ELEMENTWISE_SCAFFOLD (the thread's element and the bounds check:
    what is left to write is y[i]). Held out ("val"): the problems whose number is a multiple of 4;
    the rest are "train". No original body: the task's reference is empty, and its source is the
    problem's name."""
    tasks = []
    for name, source in problems.items():
        number = name.split("_")[0]
        if not number.isdigit():
            fail(f"KernelBench problem {name}.py: its name must start with its number, as 19_ReLU.py does")
        if (int(number) % 4 == 0) != (split == "val"):
            continue  # the other split's: not run
        try:
            expression = elementwise(source)
        except Exception as e:  # the problem's own code: a one-line error, not its traceback
            fail(f"KernelBench problem {name}.py does not run: {type(e).__name__}: {e}")
        if expression is None:
            continue
        kernel = re.sub(r"[^0-9a-z]", "", name.split("_", 1)[-1].lower()) + "_kernel"
        comment = f"// KernelBench level 1, {name}: y = {expression}, element by element over the n floats of x\n"
        prompt = PREAMBLE + comment + ELEMENTWISE_SIGNATURE.format(kernel=kernel) + (ELEMENTWISE_SCAFFOLD if scaffold else "")
        tasks.append(Task("cuda", kernel, prompt, "", name))
    return tasks


ELEMENTWISE_HARNESS = """import ctypes, json, subprocess, sys
sys.path.insert(0, sys.argv[1])
import code_check, torch
device, nvcc = sys.argv[2], sys.argv[3]
# device code for this GPU; on the CPU (the tests) for an A100's, and the launch then fails
major, minor = torch.cuda.get_device_capability(device) if device.startswith("cuda") else (8, 0)
build = subprocess.run([nvcc, "-shared", "-Xcompiler", "-fPIC", "-O3", f"-arch=sm_{major}{minor}",
                        "kernel.cu", "-o", "kernel.so"], capture_output=True, text=True)
if build.returncode != 0:
    errors = [line for line in (build.stdout + build.stderr).splitlines() if "error" in line] or ["nvcc failed"]
    print(json.dumps({"compiled": False, "correct": False, "message": errors[0][:500], "speedup": None}))
    raise SystemExit(0)
library = ctypes.CDLL("./kernel.so")
library.launch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int]

def forward(x):
    if x.dtype != torch.float32 or not x.is_contiguous():
        raise RuntimeError("the launcher takes a contiguous float32 tensor")
    y = torch.empty_like(x)
    status = library.launch(x.data_ptr(), y.data_ptr(), x.numel(), max(x.get_device(), 0))
    if status != 0:
        raise RuntimeError(f"the launch failed with CUDA error {status}")
    return y

try:
    result = code_check.kernelbench_run(open("problem.py").read(), forward, device)
except RuntimeError as e:  # a failed launch, or the kernel's own fault (an illegal address) at a synchronize
    result = {"correct": False, "message": str(e).strip().splitlines()[0][:500], "speedup": None}
print(json.dumps({"compiled": True, **result}))
"""


def preprocessor_line(body):
    """Whether a body (comments and literals blanked) holds a preprocessor line; %: is C++'s digraph of #."""
    return re.search(r"(?m)^\s*(#|%:)", body) is not None


def elementwise_source(task, text):
    """The CUDA file the execution check builds: the task's prompt, the body as cut, the launcher."""
    return task.prompt + cut_completion(task, text) + ELEMENTWISE_LAUNCHER.format(kernel=task.name)


def elementwise_check(problem_source, task, text, device="cuda", timeout=120):
    """The kernel body `text` (a continuation of a kernelbench_tasks prompt) built behind the fixed
    launcher with nvcc into a shared library and run against the problem through ctypes, all in the
    sandbox (run_harness): kernelbench_run's correctness trials and timing. A body with a
    preprocessor line is refused: a macro could rewrite the launcher into host code that runs in the
    harness's process (an atexit that prints a verdict of its own after the real one); without
    one, the body is device code, which can only print before the verdict.
    {"compiled", "correct", "message", "ms", "ref_ms", "speedup"}."""
    body = blank_comments_and_literals(cut_completion(task, text))
    if preprocessor_line(body):
        return {"compiled": False, "correct": False, "speedup": None,
                "message": "a preprocessor line in the body is refused: a macro could rewrite the launcher"}
    return run_harness(ELEMENTWISE_HARNESS, {"problem.py": problem_source, "kernel.cu": elementwise_source(task, text)},
                       device, timeout)


# -----------------------------------------------------------------------------
# the execution reward without a GPU: an elementwise kernel body emulated on the CPU
#
# The body nvcc compiled as device code is compiled again by the host's g++, behind a header that
# gives CUDA's names a CPU meaning (threadIdx and friends as plain variables, __expf as expf), and a
# main that launches ELEMENTWISE_LAUNCHER's grid with every thread of every block run one after
# another. For threads that never talk to each other, which is what an elementwise kernel is, that
# order is one CUDA allows, so the output is the GPU's up to rounding; a body using shared memory,
# barriers or warp intrinsics is refused rather than emulated wrongly. nvcc's check comes first
# (train_rl.py runs this only on bodies that compiled), so the body holds only device code: it
# cannot call exit, system or fopen, which g++ would otherwise take. No timing: an emulation's speed
# says nothing of a GPU's.

EMULATION_HEADER = r"""// CUDA's names with a CPU meaning, for a kernel whose threads run one after another
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dim3 { unsigned int x, y, z; };
static dim3 threadIdx, blockIdx, blockDim, gridDim;  // main sets them before each thread runs
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
template <typename T> static inline T __ldg(const T* p) { return *p; }
template <typename T> static inline T min(T a, T b) { return a < b ? a : b; }
template <typename T> static inline T max(T a, T b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
#define __expf expf  // CUDA's fast intrinsics: glibc declares these names already, so a macro
#define __logf logf
#define __sinf sinf
#define __cosf cosf
#define __tanf tanf
#define __powf powf
static inline float __fdividef(float a, float b) { return a / b; }
static inline float fdividef(float a, float b) { return a / b; }
static inline float __frcp_rn(float v) { return 1.0f / v; }
static inline float __fsqrt_rn(float v) { return sqrtf(v); }
static inline float rsqrtf(float v) { return 1.0f / sqrtf(v); }
static inline float __saturatef(float v) { return fminf(fmaxf(v, 0.0f), 1.0f); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float normcdff(float v) { return 0.5f * erfcf(-v * (float)M_SQRT1_2); }
static inline float __int_as_float(int v) { float f; memcpy(&f, &v, 4); return f; }
static inline int __float_as_int(float f) { int v; memcpy(&v, &f, 4); return v; }

"""
EMULATION_MAIN = r"""

// ELEMENTWISE_LAUNCHER's grid (blocks of 256 over n), thread after thread, for each input of x.txt
// ("n" then n hex floats). y starts as NaNs between two guards of a block each, so an element left
// unwritten or a write outside y shows. The last line printed: each y's n values, then 1 if a guard
// changed, else 0; a printf of the body's comes before it.
static const int64_t GUARD = 256;

int main() {{
    FILE* in = fopen("x.txt", "r");
    float* ys[4];
    long long ns[4];
    int outside[4];
    int count = 0;
    long long n;
    while (count < 4 && fscanf(in, "%lld", &n) == 1) {{
        float* x = (float*)calloc(n + GUARD, sizeof(float));  // reads a block past the end stay in x
        float* buffer = (float*)malloc((n + 2 * GUARD) * sizeof(float));
        for (long long i = 0; i < n; i++) fscanf(in, "%a", &x[i]);
        memset(buffer, 0xff, (n + 2 * GUARD) * sizeof(float));  // all bits set: a NaN
        float* y = buffer + GUARD;
        gridDim = {{(unsigned int)((n + 255) / 256), 1, 1}};
        blockDim = {{256, 1, 1}};
        for (unsigned int b = 0; b < gridDim.x; b++)
            for (unsigned int t = 0; t < blockDim.x; t++) {{
                blockIdx = {{b, 0, 0}};
                threadIdx = {{t, 0, 0}};
                {kernel}(x, y, (int64_t)n);
            }}
        unsigned int word;
        outside[count] = 0;
        for (int64_t i = 0; i < GUARD; i++) {{
            memcpy(&word, &buffer[i], 4);
            outside[count] |= word != 0xffffffffu;
            memcpy(&word, &y[n + i], 4);
            outside[count] |= word != 0xffffffffu;
        }}
        ys[count] = y;
        ns[count++] = n;
    }}
    printf("\n");
    for (int k = 0; k < count; k++) {{
        for (long long i = 0; i < ns[k]; i++) printf("%a ", (double)ys[k][i]);
        printf("%d ", outside[k]);
    }}
    printf("\n");
    return 0;
}}
"""
EMULATION_SIZES = (1000, 1)  # not a multiple of 256: the last block's threads past n must not write
NOT_EMULATED = re.compile(r"\b(__shared__|__syncthreads\w*|__syncwarp|__shfl\w*|__ballot_sync|__any_sync|__all_sync"
                          r"|__activemask|__threadfence\w*|cooperative_groups)\b")


def find_cxx():
    """The host's C++ compiler (g++, else c++), which nvcc needs too; a one-line error if none."""
    found = shutil.which("g++") or shutil.which("c++")
    if not found:
        fail("the CPU execution check compiles kernels as host C++ and needs g++: apt install g++")
    return found


def emulation_source(task, text):
    """The C++ file the emulation builds: EMULATION_HEADER in place of the CUDA headers, the kernel
    as the prompt has it, the body as cut, and EMULATION_MAIN."""
    return EMULATION_HEADER + task.prompt[len(PREAMBLE):] + cut_completion(task, text) + \
        EMULATION_MAIN.format(kernel=task.name)


def elementwise_emulate(problem_source, task, text, timeout=10):
    """elementwise_check on the CPU: the body compiled with g++ behind EMULATION_HEADER, run over
    ELEMENTWISE_LAUNCHER's grid one thread at a time in the sandbox on EMULATION_SIZES inputs
    (emulation_inputs: the same body always earns the same verdict), its output compared with the
    problem's Model at KernelBench's tolerance. Refused: a preprocessor line (as elementwise_check)
    and what one thread at a time cannot emulate (shared memory, barriers, warp intrinsics).
    {"compiled" (g++ built it), "correct", "share" (of all inputs' output elements, those within the
    tolerance, none of an input whose launch wrote outside y; 0 after a crash or a hang, and for a
    body that never reads x), "message", "speedup" (None: no timing)}."""
    body = blank_comments_and_literals(cut_completion(task, text))
    verdict = {"compiled": False, "correct": False, "share": 0.0, "message": "", "speedup": None}
    if preprocessor_line(body):
        return {**verdict, "message": "a preprocessor line in the body is refused: it could differ between nvcc and g++"}
    unsupported = NOT_EMULATED.search(body)
    if unsupported:
        return {**verdict, "message": f"{unsupported.group(1)} is not emulated: the CPU runs threads one after another"}
    result = {**verdict, **emulate(problem_source, emulation_source(task, text), timeout)}
    if not re.search(r"(?<!\.)(?<!->)\bx\b", body):  # not blockIdx.x; y[i] = 0.0f is right wherever the function is 0 (exploit 10, docs/rl.md)
        result["share"] = 0.0
    return result


@functools.lru_cache(maxsize=64)
def emulation_inputs(problem_source):
    """([x], [the problem's Model(x)]) for EMULATION_SIZES: randn * 3 from seed 0, and the reference
    run here, in this process (the benchmark's trusted code, not generated code)."""
    import torch
    namespace = problem_namespace(problem_source)
    model = namespace["Model"]()
    generator = torch.Generator().manual_seed(0)
    xs = [torch.randn(n, generator=generator) * 3 for n in EMULATION_SIZES]
    with torch.no_grad():
        return xs, [model(x) for x in xs]


@functools.lru_cache(maxsize=4096)
def emulate(problem_source, source, timeout):
    """elementwise_emulate's run of an emulation_source: its verdict's changed fields. Cached by
    text: an RL batch repeats itself."""
    import torch
    xs, refs = emulation_inputs(problem_source)
    inputs = "".join(f"{x.numel()} " + " ".join(float(v).hex() for v in x.tolist()) + "\n" for x in xs)
    done = run_sandboxed(["/bin/sh", "-c", f"{find_cxx()} -O1 -w kernel.cpp -o kernel -lm 2> build.log "
                          "|| { cat build.log >&2; exit 97; }; exec ./kernel"],
                         files={"kernel.cpp": source, "x.txt": inputs}, timeout=timeout)
    if done.returncode == 97:
        errors = [line for line in done.stderr.splitlines() if "error" in line] or ["g++ failed"]
        return {"message": f"not emulated: {errors[0][:500]}"}
    if done.timed_out or done.returncode != 0:
        why = f"timed out after {timeout} s" if done.timed_out else f"exit status {done.returncode}"
        return {"compiled": True, "message": f"the emulated kernel crashed or hung: {why}"}
    lines = done.stdout.strip().splitlines()
    values = lines[-1].split() if lines else []
    if len(values) != sum(x.numel() + 1 for x in xs):
        return {"compiled": True, "message": "the emulated kernel's output is garbled"}
    right, message = 0, ""
    for trial, (x, ref) in enumerate(zip(xs, refs)):
        out, outside, values = values[:x.numel()], values[x.numel()], values[x.numel() + 1:]
        out = torch.tensor([float.fromhex(v) for v in out])
        close = torch.isclose(out, ref, atol=TOLERANCE, rtol=TOLERANCE)
        right += int(close.sum()) if outside == "0" else 0
        if not message and outside != "0":
            message = f"input {trial + 1} (n={x.numel()}): it wrote outside y[0..n)"
        elif not message and out.isnan().any():
            message = f"input {trial + 1} (n={x.numel()}): {int(out.isnan().sum())} elements of y left unwritten"
        elif not message and not close.all():
            message = f"input {trial + 1} (n={x.numel()}): wrong values: max abs error {(out - ref).abs().max().item():.3g}"
    return {"compiled": True, "correct": not message, "share": right / sum(EMULATION_SIZES), "message": message}


if __name__ == "__main__" and sys.argv[1:2] == ["--sandbox"]:
    enter_sandbox(json.loads(sys.argv[2]), sys.argv[3:])
