"""Tests for analysis/syntax_check.py's functions on hand-written Python, valid and broken."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "analysis"))
from syntax_check import cut_to_last_statement, syntax_validity  # noqa: E402

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
    cut = cut_to_last_statement(CUT_OFF_CLASS)
    assert cut == CUT_OFF_CLASS[:CUT_OFF_CLASS.index("class A:")]
    assert syntax_validity([cut]) == 1.0


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
    assert cut_to_last_statement(text) == expected


def test_cut_stops_at_an_indentation_error_and_keeps_what_came_before():
    text = "a = 1\nb = 2\nif a:\n        c = 3\n    d = 4\ne = 5\n"  # d dedents to no known level
    assert cut_to_last_statement(text) == "a = 1\nb = 2\n"


def test_syntax_validity_counts_what_ast_parse_accepts():
    valid = ["x = 1\n", "def f(a, *b, **c):\n    return a\n", "class A(B):\n    '''doc'''\n", "import os\n"]
    invalid = ["x = = 1\n", "def f(:\n    pass\n", "if x:\npass\n", "return (\n", "x = 1\x00\n"]
    assert syntax_validity(valid) == 1.0
    assert syntax_validity(invalid) == 0.0
    assert syntax_validity(valid + invalid) == pytest.approx(4 / 9)


def test_a_text_without_statements_is_not_valid():
    assert syntax_validity(["", "\n\n", "# only a comment\n"]) == 0.0
    with pytest.raises(ValueError):
        syntax_validity([])
