"""Tests for code_check.py: completion tasks cut from hand-written CUDA and Python files, the
compile / parse and non-trivial checks on hand-written kernels and functions (nvcc runs: install it
with pip install nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-cccl), the sandbox against the
accidents it guards against, and pass@k."""

import itertools
import math
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import code_check  # noqa: E402
from code_check import PREAMBLE, Task  # noqa: E402
from prepare import cuda_code  # noqa: E402

# -----------------------------------------------------------------------------
# CUDA tasks: brace matching and extraction

CUDA_FILE = r'''#include "project_header.cuh"   // not in the corpus: why tasks are kernels alone
#define LAUNCH_KERNEL(name) __global__ void name(float* p) { p[0] = 1; }

__global__ void declared_only(float* x, int n);

template <typename T,
          int BLOCK>
__global__ void __launch_bounds__(256) scale(T* __restrict__ out, const T* in, int n) {
    const char* s = "} not a brace {";   // nor is this }
    char c = '}';
    /* a comment with { in it */
    for (int i = threadIdx.x; i < n; i += BLOCK) {
        if (i < n) { out[i] = in[i] * (T)2; }
    }
}

__global__ void reads_only(const float* x, float* y) {
    float v = x[threadIdx.x];
}
'''


def test_a_brace_inside_a_string_comment_or_char_literal_does_not_count():
    code = code_check.blank_comments_and_literals('{ "}" /* } */ // }\n \'}\' { } }tail')
    assert code_check.matching_brace(code, 0) == len('{ "}" /* } */ // }\n \'}\' { } }')


def test_each_defined_kernel_is_a_task_with_its_template_line():
    tasks = code_check.cuda_tasks(CUDA_FILE, "f.cu")
    # the #define'd kernel and the declaration are not tasks
    assert [t.name for t in tasks] == ["scale", "reads_only"]
    scale = tasks[0]
    assert scale.prompt == PREAMBLE + CUDA_FILE[CUDA_FILE.index("template <typename T,"):CUDA_FILE.index("int n) {") + 8]
    body_start = CUDA_FILE.index("int n) {") + 8
    assert scale.reference == CUDA_FILE[body_start:CUDA_FILE.index("\n\n__global__ void reads_only")]
    assert scale.reference.endswith("    }\n}") and scale.source == "f.cu" and scale.language == "cuda"


KERNEL_TASK = Task("cuda", "k", PREAMBLE + "__global__ void k(float* x) {", "", "test")


def test_a_completion_is_cut_at_the_brace_that_closes_the_kernel():
    sample = "\n  if (i) { x[i] = '}'; } // }\n  y[0] = 1;\n}\n__global__ void next(float* z) {\n}"
    cut = code_check.cut_completion
    assert cut(KERNEL_TASK, sample) == sample[:sample.index("}\n__global__") + 1]
    assert cut(KERNEL_TASK, "\n x[0] = 1;\n<|endoftext|>}") == "\n x[0] = 1;\n"  # never closed
    assert cut(KERNEL_TASK, "\n}<|endoftext|>more") == "\n}"


def test_a_backslash_at_the_end_of_an_unfinished_string_is_blanked_not_an_error():
    assert code_check.blank_comments_and_literals(' printf("\\') == " printf(  "
    assert code_check.body_end(KERNEL_TASK, ' printf("\\') is None


# -----------------------------------------------------------------------------
# non-trivial kernels: a store through a pointer parameter

KERNEL = Task("cuda", "k", PREAMBLE + "__global__ void k(float* __restrict__ out, const float *in, Pair* pairs, "
              "int n, float scale[4]) {", "", "test")


def test_pointer_parameters_are_the_ones_declared_with_a_star_or_brackets():
    assert code_check.pointer_parameters(KERNEL.prompt) == {"out", "in", "pairs", "scale"}


@pytest.mark.parametrize("body", [
    "\n  int i = threadIdx.x;\n  out[i] = in[i] * 2.0f;\n}",
    "\n  int i = threadIdx.x;\n  out[i * n + 1] += in[i];\n}",
    "\n  int i = threadIdx.x;\n  *out = in[i] + 1.0f;\n}",
    "\n  int i = threadIdx.x;\n  *(out + i) = in[i];\n}",
    "\n  int i = threadIdx.x;\n  pairs[i].first = in[i];\n}",
    "\n  int i = threadIdx.x;\n  pairs->first = i;\n}",
    "\n  atomicAdd(&out[threadIdx.x % n], in[0]);\n}",
    "\n  float* row = out + blockIdx.x * n;\n  row[threadIdx.x] = 0.0f;\n}",
    "\n  reinterpret_cast<float4*>(out)[threadIdx.x] = make_float4(0, 0, 0, 0);\n}",
    "\n  int i = threadIdx.x;\n  out[i]++;\n}",
    "\n#ifdef DEBUG\n  int d = 0;\n#endif\n  out[threadIdx.x] = in[0];\n}",  # a store after a conditional
])
def test_a_body_that_stores_through_a_pointer_parameter_is_non_trivial(body):
    assert code_check.cuda_nontrivial(KERNEL, body)


@pytest.mark.parametrize("body", [
    "\n}",                                                              # empty
    "\n  int i = threadIdx.x;\n  float v = in[i] * 2.0f;\n}",            # reads only
    "\n  int i = threadIdx.x;\n  if (out[i] == in[i]) { return; }\n}",   # compares, stores nothing
    "\n  float buf[4];\n  buf[threadIdx.x % 4] = in[0];\n}",             # a local array, not memory it was given
    "\n  out = out + 1;\n  in = in + n;\n  n = n * 2;\n}",               # moves its own copy of the pointer
    "\n  int i = threadIdx.x; // out[i] = 1;\n  float v = 2.0f;\n}",     # the store is a comment
    "\n#if 0\n  out[threadIdx.x] = in[0];\n#endif\n}",                 # the preprocessor removes the store
    "\n#ifndef A\n#ifdef B\n#endif\n  out[0] = 1;\n#else\n#endif\n}",      # nested: still inside the outer one
])
def test_a_body_that_stores_nothing_through_a_parameter_is_trivial(body):
    assert not code_check.cuda_nontrivial(KERNEL, body)


# -----------------------------------------------------------------------------
# compiling: nvcc in the sandbox

def compiled(body, signature="__global__ void k(float* out, const float* in, int n) {", **kwargs):
    return code_check.compile_cuda(PREAMBLE + signature + body, **kwargs)


def test_a_correct_kernel_compiles():
    body = "\n  int i = blockIdx.x * blockDim.x + threadIdx.x;\n  if (i < n) out[i] = __expf(in[i]);\n}"
    assert compiled(body) == (True, "", 0)  # compiles, with no error


@pytest.mark.parametrize("body, error, count", [
    ("\n  int i = threadIdx.x\n  out[i] = in[i];\n}", "expected a \";\"", None),  # syntax error: uncounted
    ("\n  out[threadIdx.x] = undeclared_name;\n}", "undefined", 1),               # undeclared name
    ("\n  out[0] = 1;\n", "expected a \"}\"", None),                              # never closed: syntax
])
def test_a_broken_kernel_does_not_compile_and_says_why(body, error, count):
    ok, message, errors = compiled(body)
    assert not ok and error in message and errors == count


def test_an_empty_body_compiles_but_scores_nothing():
    task = Task("cuda", "k", PREAMBLE + "__global__ void k(float* out) {", "", "test")
    for body in ("\n}", "\n  int i = threadIdx.x;\n  float v = 2.0f * i;\n}"):  # empty; writes nothing
        result = code_check.score(task, body + "\n// whatever follows the kernel")
        assert result.ok and not result.nontrivial and result.reward == 0.0
    # partial credit pays a body that compiles and holds code, never the empty one (RL's first exploit)
    assert code_check.score(task, "\n}", partial_credit=0.25).reward == 0.0
    assert code_check.score(task, "\n  int i = threadIdx.x;\n}", partial_credit=0.25).reward == 0.25
    # ... nor code under #if 0, which compiles because nvcc never sees it (exploit 3, docs/rl.md)
    hidden = code_check.score(task, "\n#if 0\n  int sum = 0;\n#endif\n}", partial_credit=0.25)
    assert hidden.ok and hidden.reward == 0.0
    assert code_check.score(task, "\n  out[threadIdx.x] = 1.0f;\n}").reward == 1.0


def test_store_credit_pays_a_kernel_that_stores_but_does_not_compile_by_its_compiler_errors():
    task = Task("cuda", "k", PREAMBLE + "__global__ void k(float* out, int n) {", "", "test")
    one_error = code_check.score(task, "\n  out[threadIdx.x] = undeclared_name;\n}", 0.1, 0.2)
    assert not one_error.ok and not one_error.nontrivial and one_error.reward == 0.2
    # nvcc reports 3 errors here (a, b and c undeclared): a third of the credit
    assert code_check.compile_cuda(task.prompt + "\n  out[a] = b + c;\n}")[2] == 3
    assert code_check.score(task, "\n  out[a] = b + c;\n}", 0.1, 0.2).reward == pytest.approx(0.2 / 3)
    assert code_check.score(task, "\n  int i = threadIdx.x;\n  x[i] = 1;\n}", 0.1, 0.2).reward == 0.0  # x: no parameter
    assert code_check.score(task, "\n  int i = threadIdx.x;\n}", 0.1, 0.2).reward == 0.1  # compiles, stores nothing
    assert code_check.score(task, "\n  out[threadIdx.x] = 1.0f;\n}", 0.1, 0.2).reward == 1.0
    # a stray #endif stops the preprocessor at one error, hiding the rest: nothing counted, nothing paid
    assert code_check.compile_cuda(task.prompt + "\n  out[a] = b + c;\n#endif\n}")[2] is None
    assert code_check.score(task, "\n  out[a] = b + c;\n#endif\n}", 0.1, 0.2).reward == 0.0
    # a syntax error makes nvcc's parser skip ahead unchecked: out[a] = b + c after it counts no error
    skipped = task.prompt + "\n  out[0] = 1; n += 1) {\n  out[a] = b + c;\n  }\n}"
    ok, message, errors = code_check.compile_cuda(skipped)
    assert 'expected a ";"' in message and errors is None
    assert code_check.score(task, skipped.removeprefix(task.prompt), 0.1, 0.2).reward == 0.0
    python = Task("python", "f", "def f(x):\n", "", "test")
    assert code_check.score(python, "    return x +\n", 0.1, 0.2).reward == 0.0  # unparsed: nothing to check


def test_prefix_credit_pays_a_python_body_that_does_not_parse_by_the_share_of_its_lines_before_the_error():
    task = Task("python", "f", "def f(x, y):\n", "", "test")
    # four lines, the fourth cut mid-statement (as at max_new_tokens): three of four sound
    cut = "    total = x + y\n    total = total * 2\n    print(total, y)\n    return total +\n"
    assert code_check.parsing_share(task, cut) == pytest.approx(3 / 4)
    result = code_check.score(task, cut, 0.1, 0.0, 0.4)
    assert not result.ok and result.reward == pytest.approx(0.4 * 3 / 4)
    # a line that opens a block, or a bracket, and the error after it: dropped until the rest parses
    opened = "    total = x + y * 2\n    if total:\n        z = (total,\n    return ]\n"
    assert code_check.parsing_share(task, opened) == pytest.approx(1 / 4)
    # sound lines that read no parameter do nothing: no credit, as a body that parses would get none
    assert code_check.parsing_share(task, "    total = 1 + 2 + 3\n    return total +\n") == 0.0
    assert code_check.parsing_share(task, "    return ) x\n    total = x + y\n") == 0.0  # wrong from line one
    # the prompt may end open (code_check.open_ended): the body's lines are counted the same
    open_task = code_check.open_ended(task)
    assert code_check.parsing_share(open_task, "\n" + cut) == pytest.approx(3 / 4)
    # a statement written again counts once, and blank lines not at all (exploit 12: padding to the cap)
    padded = "    total = x + y\n\n" + "    print(total, y)\n" * 8 + "    return total +\n"
    assert code_check.parsing_share(task, padded) == pytest.approx(2 / 10)
    # off by default, and a body that parses keeps its own reward
    assert code_check.score(task, cut).reward == 0.0
    assert code_check.score(task, "    return x + y + 1\n", 0.1, 0.0, 0.4).reward == 1.0


def test_a_template_kernel_is_instantiated_so_that_its_body_is_compiled():
    task = Task("cuda", "k", PREAMBLE + "template <typename T, int BLOCK, bool FAST = false>\n"
                "__global__ void k(T* out, int n) {", "", "test")
    assert code_check.template_arguments(task.prompt.removeprefix(PREAMBLE)) == ["float", "32", "true"]
    garbage = " x y z = ;; }"
    assert code_check.compile_cuda(task.prompt + garbage)[0]  # uninstantiated, nvcc lets it through
    assert not code_check.score(task, garbage).ok
    assert code_check.score(task, "\n  if (threadIdx.x < n) out[threadIdx.x] = (T)BLOCK;\n}").reward == 1.0


def test_a_macro_that_expands_forever_is_stopped_by_the_timeout():
    # each level doubles: 2^40 tokens to expand
    macros = "#define A0 x x\n" + "".join(f"#define A{i} A{i - 1} A{i - 1}\n" for i in range(1, 41))
    started = time.time()
    ok, message, _ = code_check.compile_cuda(PREAMBLE + macros + "__global__ void k(float* x) { A40; }", timeout=3)
    assert not ok and "timed out" in message and time.time() - started < 10


@pytest.mark.parametrize("include", ['#include "/etc/passwd"', "#include </dev/zero>", '#include "../../secret.h"',
                                     "#include __FILE__"])
def test_an_include_reaching_outside_the_cuda_headers_is_refused_before_compiling(include):
    ok, message, _ = code_check.compile_cuda(PREAMBLE + include + "\n__global__ void k(float* x) { x[0] = 1; }")
    assert not ok and message.startswith(f"#include {include.split()[1]} refused")


def test_missing_nvcc_is_one_line_naming_the_pip_command(monkeypatch):
    monkeypatch.setattr(code_check.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "nvidia", None)  # import nvidia fails: no wheel
    with pytest.raises(SystemExit, match="^error: nvcc .* pip install nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-cccl$"):
        code_check.find_nvcc()


# -----------------------------------------------------------------------------
# Python tasks

PYTHON_FILE = '''import os


def documented(a, b=1):
    """Add.

    With a blank line inside the docstring."""
    total = a + b
    return total


class A:
    @staticmethod
    def method(x):
        if x:
            return {"}": x}
        return None

    def only_doc(self):
        """Nothing after me."""


def one_line(): return 1
'''


def test_each_function_with_a_body_is_a_task_prompted_with_its_signature_and_docstring():
    tasks = {t.name: t for t in code_check.python_tasks(PYTHON_FILE, "m.py")}
    assert sorted(tasks) == ["documented", "method"]  # only_doc and one_line have no body lines to complete
    assert tasks["documented"].prompt == 'def documented(a, b=1):\n    """Add.\n\n    With a blank line inside the docstring."""\n'
    assert tasks["documented"].reference == "    total = a + b\n    return total\n"
    assert tasks["method"].prompt == "@staticmethod\ndef method(x):\n"  # dedented to column 0
    assert tasks["method"].reference == '    if x:\n        return {"}": x}\n    return None\n'


FUNCTION_TASK = Task("python", "f", 'def f(x):\n    """Doc."""\n', "", "test")


def test_a_python_completion_is_cut_at_the_dedent():
    sample = "    x = 1\n\n    if x:\n        y = 2\n    return y\ndef next_function():\n    pass\n"
    cut = code_check.cut_completion
    assert cut(FUNCTION_TASK, sample) == "    x = 1\n\n    if x:\n        y = 2\n    return y\n"
    assert cut(FUNCTION_TASK, "    return 1\n<|endoftext|>x = 2\n") == "    return 1\n"


@pytest.mark.parametrize("text, end", [
    # a method's body indented 8 (the model knows it for one), then the class's next method at 4
    ("\n        x = 1\n\n        return x\n\n    def g(self):", len("\n        x = 1\n\n        return x\n\n")),
    ("\n    return 1\ndef", len("\n    return 1\n")),
    (" # the prompt's last line\n    y = 2\n", None),  # not ended yet: the next line may continue it
    ("\nx = 1", 1),                                   # an empty body
])
def test_a_body_prompted_without_its_last_newline_ends_at_the_first_line_indented_less_than_its_own(text, end):
    task = code_check.open_ended(FUNCTION_TASK)
    assert task.prompt == FUNCTION_TASK.prompt[:-1]
    assert code_check.body_end(task, text) == end


@pytest.mark.parametrize("body, nontrivial", [
    ("    total = a + b\n    return total\n", True),
    ("    print(a, b, sep=', ')\n", True),
    ("    return max(a, b) + min(a, b)\n", True),
    ("    pass\n", False),
    ("    ...\n", False),
    ("    return\n", False),
    ("    return None\n", False),
    ("    '''another string'''\n    pass\n", False),
    ("    x = 1\n", False),                           # does something, but too short to mean it
    ("    return super().f(1, 2)\n", False),           # a call that ignores both parameters (RL's exploit)
    ("    return super().f(b, 2)\n", True),
    # a body that only defines a nested function does nothing when f runs (RL's exploit 11) ...
    ("    def g(self, a, b):\n        return a + b + 1\n", False),
    ("    class Inner:\n        total = a + b + 1\n", False),
    # ... and a nested function's own parameter hides f's: this returns a function that reads neither
    ("    def add(a, b):\n        return a + b\n    return add\n", False),
    ("    def add(x):\n        return x + a + b\n    return add\n", True),  # a closure over f's a and b
    ("    return sorted(b, key=lambda a: -a)\n", True),
    ("    return lambda a: a + 1\n", False),
])
def test_a_python_body_is_non_trivial_if_it_does_more_than_pass_or_return(body, nontrivial):
    task = Task("python", "f", 'def f(a, b):\n    """Doc."""\n', "", "test")
    assert code_check.parses(task.prompt + body)[0]
    assert code_check.python_nontrivial(task, body) == nontrivial
    assert code_check.score(task, body + "def g():\n").nontrivial == nontrivial


def test_a_method_without_parameters_of_its_own_need_not_read_any():
    task = Task("python", "close", "def close(self):\n", "", "test")
    assert code_check.python_nontrivial(task, "    return super().close()\n")
    assert not code_check.python_nontrivial(Task("python", "g", "def g(self, x):\n", "", "test"),
                                            "    return super().close()\n")


def test_code_size_counts_distinct_pairs_of_code_tokens_leaving_out_comments_and_strings():
    python = Task("python", "f", "def f(a):", "", "test")
    body = '\n    # a long comment, not code\n    b = a + 1  # nor this\n    s = "nor a long string"\n    return b\n'
    assert code_check.code_size(python, body) == 8  # b = a + 1 s = return b: 9 tokens, 8 pairs
    cuda = Task("cuda", "k", "__global__ void k(float *y) {", "", "test")
    assert code_check.code_size(cuda, '\n  // padding\n  y[0] = 1; /* more */ printf("%d");\n}') == 11  # 12 tokens


def test_code_size_does_not_grow_with_repeated_code():
    python = Task("python", "f", "def f(a):", "", "test")
    once = "\n    return f(a)\n"
    assert code_check.code_size(python, once) == 4  # return f, f (, ( a, a )
    assert code_check.code_size(python, "\n    return f(a, a, a, a)\n") == 6  # adds a , and , a only
    assert code_check.code_size(python, once + "    return f(a)\n") == 5  # adds ) return only


def test_distinct_line_share_is_the_share_of_non_blank_lines_not_written_before():
    task = Task("python", "f", "def f(x, y):\n", "", "test")
    body = "    total = x + y\n\n    print(total)\n    return total\n"
    assert code_check.distinct_line_share(task, body) == 1.0
    # one statement written four times: 3 distinct lines of 6
    padded = "    total = x + y\n" + "    print(total)\n" * 4 + "    return total\n"
    assert code_check.distinct_line_share(task, padded) == pytest.approx(3 / 6)
    # counted on the body as the checks cut it: what comes after the dedent is not the body
    assert code_check.distinct_line_share(task, body + "def g():\n    return 1\n    return 1\n") == 1.0
    assert code_check.distinct_line_share(task, "\n") == 1.0


def test_a_python_body_that_does_not_parse_fails():
    task = Task("python", "f", "def f(a):\n", "", "test")
    result = code_check.score(task, "    return (a +\n")
    assert not result.ok and not result.nontrivial and "SyntaxError" in result.message


# -----------------------------------------------------------------------------
# free samples cut at the last complete statement (moved from analysis/syntax_check.py)

CUT_OFF_CLASS = '''"""A module docstring.
x = 1 at column 0 inside a string is not a statement
"""
import os

@decorator
@another(1,
2)
def f(a,
b):
    if a:
        return 1
    else:
        return 2
try:
    pass
except ValueError:
    pass
finally:
    pass
X = [
1,
]
# a comment
class A:
    def g(self):
        retu'''


def test_cut_keeps_every_complete_top_level_statement():
    cut = code_check.cut_to_last_statement(CUT_OFF_CLASS)
    assert cut == CUT_OFF_CLASS[:CUT_OFF_CLASS.index("class A:")]
    assert code_check.syntax_validity([cut]) == 1.0


@pytest.mark.parametrize("text, expected", [
    ("x = 1\ny = 2\nz = 3", "x = 1\ny = 2\n"),                       # the last line may be cut off
    ("x = 1\ny = (2,\n3", "x = 1\n"),                               # open bracket: y is unfinished
    ("x = 1\ny = 2\ns = '''abc\nd", "x = 1\ny = 2\n"),              # unterminated string
    ("def f():\n    return 1\nif x:\n    pass\nelse:\n    pass\n", "def f():\n    return 1\n"),  # else continues if
    ("@dec\ndef f():\n    pass\n", ""),                             # the decorator belongs to the def
    ("x = 1\n", ""),                                                # nothing is known complete
    ("", ""),
])
def test_cut_to_last_statement(text, expected):
    assert code_check.cut_to_last_statement(text) == expected


def test_cut_stops_at_an_indentation_error_and_keeps_what_came_before():
    text = "a = 1\nb = 2\nif a:\n        c = 3\n    d = 4\ne = 5\n"  # d dedents to no known level
    assert code_check.cut_to_last_statement(text) == "a = 1\nb = 2\n"


def test_syntax_validity_counts_what_ast_parse_accepts():
    valid = ["x = 1\n", "def f(a, *b, **c):\n    return a\n", "class A(B):\n    '''doc'''\n", "import os\n"]
    invalid = ["x = = 1\n", "def f(:\n    pass\n", "if x:\npass\n", "return (\n", "x = 1\x00\n"]
    assert code_check.syntax_validity(valid) == 1.0
    assert code_check.syntax_validity(invalid) == 0.0
    assert code_check.syntax_validity(valid + invalid) == pytest.approx(4 / 9)


def test_a_text_without_statements_is_not_valid():
    assert code_check.syntax_validity(["", "\n\n", "# only a comment\n"]) == 0.0
    with pytest.raises(ValueError):
        code_check.syntax_validity([])


# -----------------------------------------------------------------------------
# hints: the reference's first statements in the prompt (train_rl.py's reverse curriculum)

HINTED_KERNEL = Task("cuda", "k", PREAMBLE + "__global__ void k(float* out, const float* in, int n) {",
                     "\n    int i = blockIdx.x * blockDim.x + threadIdx.x;  // one thread per row"
                     "\n    if (i >= n) { return; }"
                     "\n#if 0\n    float unused = 0.0f;\n#endif"
                     "\n    for (int j = 0; j < 4; j++) {"
                     "\n        out[i * 4 + j] = in[i];"
                     "\n    }"
                     "\n}", "test")
HINTED_FUNCTION = Task("python", "f", 'def f(x, n):\n    """Doc."""\n',
                       "    total = x * n\n    for i in range(n):\n        total += i\n    return total + x * 2\n", "test")


def test_hints_cut_after_top_level_statements_whose_rest_still_does_something():
    # not inside the for's parentheses or braces, nor under #if 0, nor after the loop: the rest,
    # "}", stores nothing; likewise after the return
    kernel, function = HINTED_KERNEL.reference, HINTED_FUNCTION.reference
    assert code_check.hint_cuts(HINTED_KERNEL) == [0, kernel.index("\n    if"), kernel.index("\n#if 0")]
    assert code_check.hint_cuts(HINTED_FUNCTION) == [0, function.index("\n    for"), function.index("\n    return")]


@pytest.mark.parametrize("task", [HINTED_KERNEL, HINTED_FUNCTION])
def test_a_hinted_prompt_ends_as_an_open_ended_one_and_the_rest_of_the_reference_earns_the_full_reward(task):
    prompted = code_check.open_ended(task)
    assert prompted.prompt + prompted.reference == task.prompt + task.reference
    for cut in code_check.hint_cuts(prompted)[1:]:
        hinted = code_check.hinted(prompted, cut)
        assert hinted.prompt + hinted.reference == task.prompt + task.reference
        assert not hinted.prompt.endswith("\n")  # the model writes the newline with the next line's indentation
        assert code_check.score(hinted, hinted.reference).reward == 1.0


def test_a_hinted_task_pays_only_for_the_code_the_model_wrote():
    kernel = Task("cuda", "k", PREAMBLE + "__global__ void k(float* out, const float* in, int n) {"
                  "\n    int i = threadIdx.x;\n    if (i > 0) { out[i] = in[i]; }", "", "test")  # a hint that stores
    assert code_check.pointer_parameters(kernel.prompt) == {"out", "in"}  # the signature's, not the if's
    assert code_check.score(kernel, "\n}").reward == 0.0                   # the hint's store is not the model's
    assert code_check.score(kernel, "\n    out[0] = in[1];\n}").reward == 1.0
    function = code_check.hinted(code_check.open_ended(HINTED_FUNCTION), len("\n    total = x * n"))
    assert function.prompt.endswith("total = x * n")
    assert code_check.score(function, "\n    return total if total else None\n").reward == 0.0  # reads no parameter itself
    assert code_check.score(function, "\n    return total + x * 2\n").reward == 1.0


# -----------------------------------------------------------------------------
# the split: by file

def test_the_split_is_by_file_and_weights_repeat_only_train_files(tmp_path):
    for repo in ("big+repo", "kernels+repo"):
        for i in range(40):
            path = tmp_path / repo / f"f{i}.cu"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"// Copyright {i} Someone, MIT licence\n__global__ void {repo[:3]}{i}(float* x) {{ x[{i}] = {i}; }}\n")
    (tmp_path / "kernels+repo" / "copy.cu").write_text((tmp_path / "kernels+repo" / "f3.cu").read_text())
    names = {"train": [], "val": []}
    documents = list(cuda_code.cuda_corpus([str(tmp_path)], {"big+repo": 0, "kernels+repo": 2}, 0.3, names)())
    train, val = set(names["train"]), set(names["val"])
    assert train and val and not train & val                    # no file in both
    assert len({"kernels+repo/copy.cu", "kernels+repo/f3.cu"} & (train | val)) == 1  # a copy's text once
    assert not any(name.startswith("big+repo") for name in train)  # weight 0: out of train...
    assert any(name.startswith("big+repo") for name in val)        # ...but still held out
    assert len(names["train"]) == 2 * len(train)                 # weight 2: twice
    assert all(text.startswith("__global__") for _, text in documents)  # the licence line is dropped


# -----------------------------------------------------------------------------
# the sandbox

def run_python(code, **kwargs):
    return code_check.run_sandboxed([sys.executable, "-c", code], **kwargs)


def test_the_sandbox_runs_a_program_in_an_empty_directory_with_a_minimal_environment():
    done = run_python("import os, sys; print(os.listdir('.'), sorted(os.environ), sys.stdin.read() == '')",
                      files={"input.txt": "hello"})
    assert done.returncode == 0 and not done.timed_out
    assert done.stdout.split("] ")[0] + "]" == "['input.txt']"
    assert "HOME" in done.stdout and "SECRET_TOKEN" not in done.stdout and done.stdout.strip().endswith("True")


def test_the_sandbox_stops_an_infinite_loop():
    started = time.time()
    done = run_python("while True: pass", timeout=2)
    assert done.timed_out and time.time() - started < 6


def test_the_sandbox_stops_a_memory_bomb():
    done = run_python("x = bytearray(16 << 30)\nprint('allocated')", memory_bytes=1 << 30)
    assert done.returncode != 0 and "MemoryError" in done.stderr and "allocated" not in done.stdout


def test_the_sandbox_kills_every_process_of_a_fork_bomb():
    marker = uuid.uuid4().hex  # in every bomb process's command line
    bomb = f"import os, time  # {marker}\nfor _ in range(50):\n    if os.fork() == 0:\n        time.sleep(60)\n"
    done = run_python(bomb, timeout=2, max_processes=16)
    survivors = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                survivors.append(pid)
        except OSError:
            pass
    # a non-root user's fork fails past max_processes (RLIMIT_NPROC); root's forks are stopped by the timeout
    assert done.timed_out or "BlockingIOError" in done.stderr
    assert survivors == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Landlock is Linux's")
def test_the_sandbox_refuses_a_write_outside_its_directory(tmp_path):
    outside = tmp_path / "written_by_the_sandbox.txt"
    done = run_python(f"open('inside.txt', 'w').write('ok')\nprint(open('inside.txt').read())\nopen({str(outside)!r}, 'w')")
    assert done.stdout.strip() == "ok"  # inside its own directory: allowed
    assert "PermissionError" in done.stderr and not outside.exists()


# -----------------------------------------------------------------------------
# pass@k

def pass_at_k_by_enumeration(n, c, k):
    """The share of all k-subsets of n samples (c of them passing) that hold a passing one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    return sum(any(s) for s in subsets) / len(subsets)


def test_pass_at_k_by_hand():
    assert code_check.pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)   # 1 - C(3,2)/C(4,2)
    assert code_check.pass_at_k(4, 0, 4) == 0.0
    assert code_check.pass_at_k(4, 1, 1) == pytest.approx(0.25)


@pytest.mark.parametrize("n, c, k", [(5, 2, 3), (10, 3, 1), (10, 3, 4), (8, 0, 2), (8, 8, 2), (12, 5, 7)])
def test_pass_at_k_is_the_chance_that_a_k_subset_holds_a_pass(n, c, k):
    assert code_check.pass_at_k(n, c, k) == pytest.approx(pass_at_k_by_enumeration(n, c, k))
    assert math.isclose(code_check.pass_at_k(n, c, k), 1 - math.comb(n - c, k) / math.comb(n, k))


# -----------------------------------------------------------------------------
# the KernelBench execution check: every part but the GPU, with Python stand-ins for the kernel

KERNELBENCH = REPO.parent / "shared" / "data" / "cuda" / "kernelbench.tar.gz"  # beside the checkout, read by path
TINY_RELU = """import torch
class Model(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x)
def get_inputs():
    return [torch.randn(4, 8)]
def get_init_inputs():
    return []
"""
TINY_LINEAR = """import torch
class Model(torch.nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out)
    def forward(self, x):
        return self.linear(x)
def get_inputs():
    return [torch.randn(3, 8)]
def get_init_inputs():
    return [8, 4]
"""


@pytest.mark.skipif(not KERNELBENCH.exists(), reason="kernelbench.tar.gz is not on this machine")
def test_level_1_holds_a_hundred_problems_with_a_model_and_inputs():
    problems = code_check.kernelbench_problems(str(KERNELBENCH))
    assert len(problems) == 100 and code_check.RELU_PROBLEM in problems
    assert all("class Model" in source and "def get_inputs" in source for source in problems.values())


def test_the_reference_relu_kernel_compiles_as_device_code():
    (task,) = code_check.cuda_tasks(code_check.RELU_KERNEL)
    assert task.name == "relu_kernel" and code_check.score(task, task.reference).reward == 1.0


def test_a_correct_stand_in_passes_and_is_timed():
    import torch
    result = code_check.kernelbench_run(TINY_RELU, torch.relu, "cpu")
    assert result["correct"] and result["message"] == "" and result["speedup"] == result["ref_ms"] / result["ms"]


def test_the_candidate_gets_the_inputs_then_the_init_inputs_then_the_parameters():
    def linear(x, n_in, n_out, weight, bias):
        assert (n_in, n_out, weight.shape) == (8, 4, (4, 8))
        return x @ weight.T + bias
    assert code_check.kernelbench_run(TINY_LINEAR, linear, "cpu")["correct"]


def first_answer_forever():
    cache = []  # what a kernel caching its output by input pointer does once the pointer repeats
    return lambda x: cache[0] if cache else cache.append(torch_relu(x)) or cache[0]


def torch_relu(x):
    import torch
    return torch.relu(x)


def zero_input_after(x):
    y = torch_relu(x)
    x.zero_()  # the reference, run after on the same tensor, would agree with a zero output
    return y


@pytest.mark.parametrize("make_candidate, why", [
    (lambda: lambda x: x.clamp_(min=0), "the output is an input's memory"),
    (lambda: zero_input_after, "the candidate wrote into its input"),
    (first_answer_forever, "trial 2: wrong values"),
    (lambda: lambda x: 2 * torch_relu(x), "trial 1: wrong values"),
    (lambda: lambda x: torch_relu(x).sum(), "output () differs"),
])
def test_each_known_exploit_fails_the_check(make_candidate, why):
    result = code_check.kernelbench_run(TINY_RELU, make_candidate(), "cpu")
    assert not result["correct"] and why in result["message"] and result["speedup"] is None


def test_without_a_gpu_the_check_says_so():
    assert code_check.kernelbench_check(TINY_RELU, code_check.RELU_KERNEL, "cuda")["message"] == "no CUDA device"


def test_the_harness_is_python_that_binds_forward_and_runs_the_check():
    import ast
    ast.parse(code_check.HARNESS)
    assert 'm.def("forward", &forward)' in code_check.HARNESS and "kernelbench_run" in code_check.HARNESS


def test_fast_p_counts_correct_kernels_faster_than_p():
    results = [{"correct": True, "speedup": 2.0}, {"correct": True, "speedup": 0.5}, {"correct": False, "speedup": None},
               {"correct": True, "speedup": 1.0}]
    assert code_check.fast_p(results, 1.0) == 1 / 4   # only the 2x one: 1.0x is not faster
    assert code_check.fast_p(results, 0.0) == 3 / 4   # fast_0: the share correct
    untimed = [{"correct": True, "speedup": 0.0}, {"correct": False, "speedup": 0.0}]  # the CPU's emulation times nothing
    assert code_check.fast_p(untimed, 0.0) == 1 / 2 and code_check.fast_p(untimed, 1.0) == 0.0


# -----------------------------------------------------------------------------
# the execution reward's tasks: KernelBench's elementwise problems, one kernel body to write

RELU_BODY = "\n    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;\n    if (i < n) y[i] = fmaxf(x[i], 0.0f);\n}"


def test_the_tasks_are_the_elementwise_problems_with_every_fourth_number_held_out(kernelbench_dir):
    problems = code_check.kernelbench_problems(str(kernelbench_dir))
    (train,) = code_check.kernelbench_tasks(problems, "train")  # not softmax, a norm, ELU (init input), matmul
    (val,) = code_check.kernelbench_tasks(problems, "val")
    assert (train.name, train.source, train.reference) == ("relu_kernel", "19_ReLU", "")
    assert train.prompt.startswith(PREAMBLE) and train.prompt.endswith(
        "__global__ void relu_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {")
    assert "y = torch.relu(x)" in train.prompt
    assert val.source == "20_LeakyReLU" and "leaky_relu(x, negative_slope=0.01)" in val.prompt  # self's value written in


def test_a_problem_that_does_not_run_or_has_no_number_is_a_one_line_error():
    broken = TINY_RELU.replace("import torch", "import torch\nimport no_such_module")
    for problems, message in [({"19_ReLU": broken}, "19_ReLU.py does not run: ModuleNotFoundError"),
                              ({"ReLU": TINY_RELU}, "ReLU.py: its name must start with its number")]:
        with pytest.raises(SystemExit) as exit_:
            code_check.kernelbench_tasks(problems, "train")
        assert str(exit_.value).startswith("error: KernelBench problem") and message in str(exit_.value)
        assert "\n" not in str(exit_.value)


@pytest.mark.skipif(not KERNELBENCH.exists(), reason="kernelbench.tar.gz is not on this machine")
def test_level_1_holds_twelve_elementwise_problems_eight_for_training():
    problems = code_check.kernelbench_problems(str(KERNELBENCH))
    train, val = (code_check.kernelbench_tasks(problems, split) for split in ("train", "val"))
    assert [t.source for t in val] == ["20_LeakyReLU", "28_HardSigmoid", "32_HardTanh", "88_MinGPTNewGelu"]
    assert len(train) == 8 and "19_ReLU" in [t.source for t in train] and "23_Softmax" not in [t.source for t in train]


def test_a_written_body_compiles_and_builds_behind_the_launcher_into_a_library_that_exports_it(kernelbench_dir, tmp_path):
    import ctypes
    import subprocess
    (task,) = code_check.kernelbench_tasks(code_check.kernelbench_problems(str(kernelbench_dir)), "train")
    assert code_check.score(task, RELU_BODY + "\n// after the body").reward == 1.0
    (tmp_path / "kernel.cu").write_text(code_check.elementwise_source(task, RELU_BODY + "\n// after the body"))
    subprocess.run([code_check.find_nvcc(), "-shared", "-Xcompiler", "-fPIC", "-arch=sm_80", "kernel.cu", "-o", "kernel.so"],
                   cwd=tmp_path, check=True)
    assert ctypes.CDLL(str(tmp_path / "kernel.so")).launch  # what the harness calls


def run_elementwise_harness(kernelbench_dir, body):
    """The harness as elementwise_check runs it, but on the CPU: everything up to the launch."""
    import json
    problems = code_check.kernelbench_problems(str(kernelbench_dir))
    (task,) = code_check.kernelbench_tasks(problems, "train")
    done = code_check.run_sandboxed([sys.executable, "harness.py", str(REPO), "cpu", code_check.find_nvcc()], files={
        "harness.py": code_check.ELEMENTWISE_HARNESS, "problem.py": problems[task.source],
        "kernel.cu": code_check.elementwise_source(task, body)}, timeout=120, memory_bytes=None, max_processes=512)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_harness_builds_the_kernel_in_the_sandbox_and_reports_the_launch_that_fails_without_a_gpu(kernelbench_dir):
    verdict = run_elementwise_harness(kernelbench_dir, RELU_BODY)
    assert verdict["compiled"] and not verdict["correct"] and "the launch failed with CUDA error" in verdict["message"]


def test_the_harness_reports_nvccs_first_error_for_a_body_that_does_not_compile(kernelbench_dir):
    verdict = run_elementwise_harness(kernelbench_dir, "\n    y[0] = ;\n}")
    assert not verdict["compiled"] and "error" in verdict["message"] and "kernel.cu" in verdict["message"]


def test_a_body_with_a_macro_is_refused_before_anything_runs(kernelbench_dir):
    # the exploit it closes: host code smuggled into the launcher, printing a verdict after the harness's
    problems = code_check.kernelbench_problems(str(kernelbench_dir))
    (task,) = code_check.kernelbench_tasks(problems, "train")
    forged = '\n  # define cudaGetLastError() (atexit([] { puts("{\\"correct\\": true}"); }), 0)' + RELU_BODY
    for body in (forged, forged.replace("#", "%:")):  # %: is C++'s other spelling of #
        result = code_check.elementwise_check(problems[task.source], task, body)
        assert not result["compiled"] and "preprocessor line in the body is refused" in result["message"]
    commented = "\n    // # not a directive" + RELU_BODY  # a comment is not a preprocessor line
    assert "refused" not in code_check.elementwise_check(problems[task.source], task, commented)["message"]


def test_without_a_gpu_the_elementwise_check_says_so(kernelbench_dir):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: test_on_a_gpu_a_correct_body_passes_and_a_wrong_one_fails runs instead")
    problems = code_check.kernelbench_problems(str(kernelbench_dir))
    (task,) = code_check.kernelbench_tasks(problems, "train")
    assert code_check.elementwise_check(problems[task.source], task, RELU_BODY)["message"] == "no CUDA device"


def test_on_a_gpu_a_correct_body_passes_and_a_wrong_one_fails(kernelbench_dir):
    import torch
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    problems = code_check.kernelbench_problems(str(kernelbench_dir))
    (task,) = code_check.kernelbench_tasks(problems, "train")
    right = code_check.elementwise_check(problems[task.source], task, RELU_BODY)
    assert right["compiled"] and right["correct"] and right["speedup"] > 0
    wrong = code_check.elementwise_check(problems[task.source], task, RELU_BODY.replace("fmaxf(x[i], 0.0f)", "x[i]"))
    assert wrong["compiled"] and not wrong["correct"] and "wrong values" in wrong["message"]


# -----------------------------------------------------------------------------
# the execution reward without a GPU: a kernel body emulated on the CPU, thread after thread

def relu_task(kernelbench_dir):
    problems = code_check.kernelbench_problems(str(kernelbench_dir))
    (task,) = code_check.kernelbench_tasks(problems, "train")
    return problems[task.source], task


BOUNDED = "\n    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;\n    if (i < n) "
CORRECT_BODIES = {  # one hand-written body for each of level 1's twelve elementwise problems
    "19_ReLU": "y[i] = fmaxf(x[i], 0.0f);",
    "20_LeakyReLU": "y[i] = x[i] > 0.0f ? x[i] : 0.01f * x[i];",
    "21_Sigmoid": "y[i] = 1.0f / (1.0f + __expf(-x[i]));",
    "22_Tanh": "y[i] = tanhf(x[i]);",
    "25_Swish": "y[i] = x[i] / (1.0f + expf(-x[i]));",
    "26_GELU_": "y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678f));",
    "27_SELU_": "y[i] = 1.0507009873554805f * (x[i] > 0.0f ? x[i] : 1.6732632423543772f * expm1f(x[i]));",
    "28_HardSigmoid": "y[i] = min(max(x[i] / 6.0f + 0.5f, 0.0f), 1.0f);",
    "29_Softplus": "y[i] = log1pf(expf(x[i]));",
    "30_Softsign": "y[i] = x[i] / (1.0f + fabsf(x[i]));",
    "32_HardTanh": "y[i] = __saturatef((x[i] + 1.0f) / 2.0f) * 2.0f - 1.0f;",
    "88_MinGPTNewGelu": "{ float v = x[i]; y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v))); }",
}


@pytest.mark.skipif(not KERNELBENCH.exists(), reason="kernelbench.tar.gz is not on this machine")
def test_each_elementwise_problem_passes_its_own_hand_written_body_and_fails_the_next_ones():
    problems = code_check.kernelbench_problems(str(KERNELBENCH))
    tasks = {t.source: t for split in ("train", "val") for t in code_check.kernelbench_tasks(problems, split)}
    assert sorted(tasks) == sorted(CORRECT_BODIES)
    names = list(CORRECT_BODIES)
    for name, other in zip(names, names[1:] + names[:1]):  # PyTorch's Model is the reference for both
        body = BOUNDED + CORRECT_BODIES[name] + "\n}"
        assert code_check.score(tasks[name], body).reward == 1.0  # nvcc takes it as device code
        right = code_check.elementwise_emulate(problems[name], tasks[name], body)
        assert (right["compiled"], right["correct"], right["share"], right["speedup"]) == (True, True, 1.0, None), name
        wrong = code_check.elementwise_emulate(problems[other], tasks[other], body)
        assert not wrong["correct"] and "wrong values" in wrong["message"] and wrong["share"] < 1, (name, other)


def test_the_share_right_is_the_elements_where_the_function_agrees_with_the_reference(kernelbench_dir):
    import torch
    problem, task = relu_task(kernelbench_dir)
    identity = code_check.elementwise_emulate(problem, task, BOUNDED + "y[i] = x[i];\n}")
    xs, _ = code_check.emulation_inputs(problem)
    x = torch.cat(xs)  # y = x is right where relu(x) is x within the tolerance (0.01 + 0.01 * 0): x >= -0.01
    assert identity["share"] == (x >= -0.01).sum().item() / x.numel() and 0.4 < identity["share"] < 0.6
    assert not identity["correct"] and "wrong values" in identity["message"]



def test_a_body_that_never_reads_x_earns_no_share_though_a_constant_is_sometimes_right(kernelbench_dir):
    problem, task = relu_task(kernelbench_dir)
    zero = code_check.elementwise_emulate(problem, task, BOUNDED + "y[i] = 0.0f; // x\n}")  # a comment reads nothing
    assert zero["compiled"] and not zero["correct"] and zero["share"] == 0.0  # relu(x) is 0 for half of x
    times_zero = code_check.elementwise_emulate(problem, task, BOUNDED + "y[i] = x[i] * 0.0f;\n}")
    assert 0.4 < times_zero["share"] < 0.6  # reads x: the emulation counts its share


def test_a_body_without_a_bounds_check_writes_past_the_end_of_y_and_fails(kernelbench_dir):
    problem, task = relu_task(kernelbench_dir)
    unbounded = "\n    int i = blockIdx.x * blockDim.x + threadIdx.x;\n    y[i] = fmaxf(x[i], 0.0f);\n}"
    result = code_check.elementwise_emulate(problem, task, unbounded)
    assert not result["correct"] and result["message"] == "input 1 (n=1000): it wrote outside y[0..n)"
    assert result["share"] == 0.0  # no input's elements count: each launch wrote outside y


def test_an_element_left_unwritten_is_reported(kernelbench_dir):
    problem, task = relu_task(kernelbench_dir)
    result = code_check.elementwise_emulate(problem, task, BOUNDED.replace("i < n", "i < n && i % 2 == 0")
                                            + "y[i] = fmaxf(x[i], 0.0f);\n}")
    assert result["message"] == "input 1 (n=1000): 500 elements of y left unwritten" and result["share"] == 501 / 1001


def test_a_grid_stride_loop_and_a_printf_still_pass(kernelbench_dir):
    problem, task = relu_task(kernelbench_dir)
    body = ('\n    printf("0 0 0\\n");\n    for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; '
            "i += (int64_t)blockDim.x * gridDim.x) y[i] = max(x[i], 0.0f);\n}")
    assert code_check.elementwise_emulate(problem, task, body)["correct"]


@pytest.mark.parametrize("body, message", [
    ("\n    __shared__ float s[256];\n    s[threadIdx.x] = x[0];\n    __syncthreads();\n    y[0] = s[0];\n}",
     "__shared__ is not emulated"),
    ("\n    y[0] = __shfl_down_sync(0xffffffff, x[0], 1);\n}", "__shfl_down_sync is not emulated"),
    ("\n#define X 0\n    y[X] = x[X];\n}", "a preprocessor line in the body is refused"),
    ("\n    y[0] = __nv_undefined(x[0]);\n}", "not emulated: kernel.cpp:"),  # g++'s first error
])
def test_what_one_thread_at_a_time_cannot_emulate_is_refused_with_why(kernelbench_dir, body, message):
    problem, task = relu_task(kernelbench_dir)
    result = code_check.elementwise_emulate(problem, task, body)
    assert not result["compiled"] and not result["correct"] and result["message"].startswith(message)


def test_a_kernel_that_never_ends_is_stopped_at_the_timeout(kernelbench_dir):
    problem, task = relu_task(kernelbench_dir)
    start = time.time()
    result = code_check.elementwise_emulate(problem, task, "\n    while (1) {}\n}", timeout=3)
    assert result["message"] == "the emulated kernel crashed or hung: timed out after 3 s" and time.time() - start < 10


def test_on_a_gpu_the_emulation_agrees_with_the_kernel_run(kernelbench_dir):
    import torch
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    problem, task = relu_task(kernelbench_dir)
    for body in (BOUNDED + "y[i] = fmaxf(x[i], 0.0f);\n}", BOUNDED + "y[i] = x[i];\n}"):
        gpu = code_check.elementwise_check(problem, task, body)
        assert gpu["correct"] == code_check.elementwise_emulate(problem, task, body)["correct"]


def test_a_scaffolded_prompt_gives_the_element_and_bounds_check_and_the_body_writes_y_i(kernelbench_dir):
    problems = code_check.kernelbench_problems(str(kernelbench_dir))
    (task,) = code_check.kernelbench_tasks(problems, "train", scaffold=True)
    assert task.prompt.endswith("int64_t n) {" + code_check.ELEMENTWISE_SCAFFOLD)
    body = "\n    y[i] = fmaxf(x[i], 0.0f);\n}"
    assert code_check.score(task, body).reward == 1.0  # nvcc compiles the scaffold and the body together
    assert code_check.elementwise_emulate(problems[task.source], task, body)["correct"]
    assert not code_check.elementwise_emulate(problems[task.source], task, "\n    y[i + 1] = 0.0f;\n}")["correct"]
