"""
The README and the pages in docs/, checked as a reader would follow them: every link leads to a
file (and heading) that exists, every command runs a script that exists and has a command line, no
page sends anyone to a path outside the repository, and the README stays a front door: short, with
the commands CI runs, and a files table that names every top-level file.

    python -m pytest -p no:xdist -o addopts= tests/test_docs.py
"""

import glob
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 250
# .ci/run installs what every README line starting `pip install -r requirements...` installs, then
# runs this line exactly as written.
CI_TEST_COMMAND = "pip install -r requirements-dev.txt && python -m pytest"
CI_INSTALL_LINE = re.compile(r"^pip install -r requirements[-a-z]*\.txt")
# programs every Linux machine has: naming them is not naming a place on this project's machines
SYSTEM_PATHS = {"/usr/bin/time"}

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]+`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
SCRIPT = re.compile(r"\bpython3?\s+((?:[\w.-]+/)*[\w.-]+\.py)\b")
TORCHRUN_SCRIPT = re.compile(r"\btorchrun\b[^\n`]*?\s((?:[\w.-]+/)*[\w.-]+\.py)\b")
# a script or config in the repository's folders, named in a command (a code block, or a code span
# that runs python or torchrun) or at the start of a code span (`config/vit_cpu.py`); inside a quoted
# error message (`config file 'config/x.py' could not be run`) a path is an example, not a file
REPO_FILE = re.compile(r"(?<![\w./-])((?:prepare|analysis|bench|config|tests)/[\w./*-]+\.py)\b")
SPAN_START_FILE = re.compile(r"`((?:prepare|analysis|bench|config|tests)/[\w./*-]+\.py)\b")
ABSOLUTE_PATH = re.compile(r"(?:^|(?<=[\s`'\"(=]))(/[A-Za-z][\w.-]*(?:/[\w.-]+)+)", re.M)
OUTSIDE_MARKERS = ("../", "/work/", "shared/data")


def rel(path):
    return path.relative_to(REPO).as_posix()


def prose(text):
    """The text a markdown renderer turns into links: without code blocks and code spans."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading):
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page):
    """Every anchor GitHub gives the headings of a page (a repeated heading gets -1, -2, ...)."""
    seen, result = {}, set()
    for _, heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def links():
    for page in PAGES:
        for target in LINK.findall(prose(page.read_text())):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not ours
                yield pytest.param(page, target, id=f"{rel(page)}->{target}")


def is_placeholder(path):
    """`config/ablations/NAME.py`: a name in capitals stands for the reader's own."""
    return any(part.removesuffix(".py").isupper() for part in path.split("/"))


def commands():
    for page in PAGES:
        text = page.read_text()
        blocks = [m.group(0) for m in FENCE.finditer(text)]
        blocks += [span for span in CODE_SPAN.findall(FENCE.sub("", text)) if re.search(r"\b(python3?|torchrun) ", span)]
        blocks = "\n".join(blocks)
        named = {*SCRIPT.findall(text), *TORCHRUN_SCRIPT.findall(text), *REPO_FILE.findall(blocks),
                 *SPAN_START_FILE.findall(text)}
        for script in sorted(named):
            if not is_placeholder(script):
                yield pytest.param(page, script, id=f"{rel(page)}:{script}")


@pytest.mark.parametrize("page, target", links())
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page, target):
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.is_relative_to(REPO), f"{rel(page)} links {target}, outside the repository"
    assert file.exists(), f"{rel(page)} links {target}, but {rel(file)} does not exist"
    if anchor and file.suffix == ".md":
        assert anchor in anchors(file), f"{rel(page)} links {target}, but {rel(file)} has no heading with that anchor"


@pytest.mark.parametrize("page, script", commands())
def test_every_script_a_page_names_exists(page, script):
    path = (REPO / script).resolve()  # `config/eval_gpt2*.py` names every file it matches
    assert path.is_relative_to(REPO) and glob.glob(str(path)), f"{rel(page)} names {script}, which is not in the repository"


def programs():
    for page in PAGES:
        text = page.read_text()
        for script in sorted({*SCRIPT.findall(text), *TORCHRUN_SCRIPT.findall(text)}):
            if (REPO / script).exists():
                yield pytest.param(page, script, id=f"{rel(page)}:{script}")


@pytest.mark.parametrize("page, script", programs())
def test_every_script_a_page_runs_is_a_program_not_only_a_module(page, script):
    # `python model_gpt.py` would import the model and exit silently: a command must run something
    source = (REPO / script).read_text()
    assert re.search(r"__name__ == .__main__.|sys\.argv|parse_args\(", source), \
        f"{rel(page)} runs `python {script}`, but {script} has no command line (no __main__, sys.argv or argparse)"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_no_page_names_a_path_outside_the_repository(page):
    text = page.read_text()
    # links have their own test, which resolves them: ../assets/x.png from docs/ stays inside
    text = LINK.sub("", text)
    for marker in OUTSIDE_MARKERS:
        assert marker not in text, f"{rel(page)} names a path outside the repository: ...{marker}..."
    outside = sorted(set(ABSOLUTE_PATH.findall(text)) - SYSTEM_PATHS)
    assert not outside, f"{rel(page)} names absolute paths {outside}: a reader's machine has none of them"


def test_the_readme_is_a_front_door_of_at_most_250_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_readme_holds_the_commands_ci_runs_at_the_start_of_their_lines():
    lines = README.read_text().splitlines()
    assert CI_TEST_COMMAND in lines, f"README.md lacks the line {CI_TEST_COMMAND!r}, which .ci/run runs"
    installs = [line for line in lines if CI_INSTALL_LINE.match(line) and "pytest" not in line]
    assert any(line.startswith("pip install -r requirements.txt") for line in installs), \
        "README.md lacks a line starting 'pip install -r requirements.txt', which .ci/run installs"


def files_table():
    """The names in the first column of files of the README's table "The files, in the order to read them"."""
    section = README.read_text().split("## The files", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[2] for line in section.splitlines() if line.startswith("|") and line.count("|") >= 4]
    return {name.rstrip("/") for row in rows for name in re.findall(r"`([^`]+)`", row)}


def test_the_readme_files_table_names_every_top_level_file_and_only_those():
    # a new file at the top needs a reason a user would give, written in the table
    listed = files_table()
    try:
        tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                                 capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout to tell the repository's files from ignored outputs")
    top = {path.split("/")[0] for path in tracked if not path.startswith(".")}
    assert not top - listed, f"top-level files missing from README.md's files table: {sorted(top - listed)}"
    missing = sorted(name for name in listed if not (REPO / name).exists())
    assert not missing, f"README.md's files table names files that do not exist: {missing}"
