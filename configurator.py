"""
Settings, the way every script people run takes them (nanoGPT's configurator, with checks): the
script's module-level variables are its settings and their defaults; config files (plain Python
assignments) and then --key=value overrides replace them, each checked against its default's type;
each script then states its settings' ranges (check_settings); -h / --help prints them all, read
from where the script declares them, with their comments.

    config = configurator.configure(globals(), sys.argv[1:])
    globals().update(config)
"""

import ast
import difflib
import glob
import io
import os
import runpy
import tokenize

from training import fail



SETTING_TYPES = (int, float, bool, str, type(None))


def configure(defaults, argv):
    """
    Return the config: `defaults` (the script's globals(): its module-level settings) updated by each
    config file in argv (a .py file of plain assignments) and then each --key=value / --key value.
    Values are parsed with ast.literal_eval (falling back to the raw string) and must have the type
    of the default, so `--batch_size=1e3` or `--compile=yes` fail loudly instead of training wrong.
    -h or --help prints the settings, as the script declares them, and exits.
    """
    config = {k: v for k, v in defaults.items() if not k.startswith("_") and isinstance(v, SETTING_TYPES)}
    if "-h" in argv or "--help" in argv:
        print(script_help(defaults.get("__file__"), defaults.get("__doc__"), config))
        raise SystemExit(0)

    def set_key(key, value, source):
        if key not in config:
            nearest = difflib.get_close_matches(key, list(config), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(nearest)}?" if nearest else "; --help lists the settings"
            fail(f"unknown config key '{key}' (from {source}){hint}")
        default = config[key]
        if default is None or value is None:
            pass
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                fail(f"config key '{key}' must be True or False, got {value!r} (from {source})")
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif default == "auto" and isinstance(value, bool):
            pass  # e.g. compile="auto" (on for CUDA) also takes an explicit True or False
        elif type(value) is not type(default):
            fail(f"config key '{key}' must be {type(default).__name__} like its default "
                 f"{default!r}, got {value!r} (from {source})")
        config[key] = value

    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--"):
            if not os.path.isfile(arg):
                fail(f"config file '{arg}' does not exist (config files are in config/; --help lists them)")
            # run the config file in its own namespace (not exec'd into the script's globals) and
            # take every public assignment
            try:
                namespace = runpy.run_path(arg)
            except Exception as e:  # a syntax error, a failing import: the file's problem, in one line
                where = f" (line {e.lineno})" if isinstance(e, SyntaxError) else ""
                fail(f"config file '{arg}' could not be run{where}: {type(e).__name__}: {e}")
            for key, value in namespace.items():
                if not key.startswith("_") and not callable(value) and not hasattr(value, "__spec__"):
                    set_key(key, value, arg)
            continue
        key, eq, text = arg[2:].partition("=")
        if not eq:  # --key value
            if not args or args[0].startswith("--"):
                fail(f"config override '{arg}' has no value; write --{key}=VALUE")
            text = args.pop(0)
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare word such as --device=cpu is a string
        if isinstance(config.get(key), str) and not isinstance(value, str) and not (
                config[key] == "auto" and isinstance(value, bool)):
            value = text  # --start=42 is the text "42" where a string is expected
        set_key(key, value, "command line")
    return config


def check_settings(config, at_least_1="", at_least_0="", positive="", below_1="", unit="", choices=None):
    """The ranges of a script's numeric settings (names separated by spaces) and the allowed values
    of its string settings (choices: {name: allowed}), which each script states right after its
    settings: the first one out of range ends the run in one line, before anything is read or written."""
    rules = [(at_least_1, lambda v: v >= 1, "at least 1"), (at_least_0, lambda v: v >= 0, ">= 0"),
             (positive, lambda v: v > 0, "> 0"), (below_1, lambda v: 0 <= v < 1, "in [0, 1)"),
             (unit, lambda v: 0 <= v <= 1, "in [0, 1]")]
    for names, ok, allowed in rules:
        for key in names.split():
            if not ok(config[key]):
                fail(f"{key} must be {allowed}, got {config[key]}")
    for key, allowed in (choices or {}).items():
        if config[key] not in allowed:
            listed = ", ".join(map(repr, allowed[:-1])) + f" or {allowed[-1]!r}"
            fail(f"{key} must be {listed}, got {config[key]!r}")


def read_settings(path):
    """A script's settings as it declares them, read without running it (that would train): each
    module-level assignment before `config = configurator.configure(...)`, as (name, default, comment,
    group): default is the literal (None where it is computed, e.g. min(8, cores)), comment the
    line's trailing comment, group the comment line above a block of settings ("# optimizer")."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    lines = source.splitlines()
    trailing = {tok.start[0]: tok.string.lstrip("# ").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT and lines[tok.start[0] - 1][:tok.start[1]].strip()}
    settings, group = [], ""
    for node in ast.parse(source).body:
        if not isinstance(node, ast.Assign):
            continue
        if "config" in {n.id for target in node.targets for n in ast.walk(target) if isinstance(n, ast.Name)}:
            break  # config = configurator.configure(...), or config, checkpoint = ...: the settings end here
        if not (len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        above, row = [], node.lineno - 2
        while row >= 0 and lines[row].startswith("#"):
            above.insert(0, lines[row].strip("#- ").strip())
            row -= 1
        group = next((line for line in reversed(above) if line), group)
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            default = None  # computed: any type goes
        settings.append((name, default, trailing.get(node.end_lineno, ""), group))
    return settings


def script_settings(path):
    """{name: default} of a script's settings (read_settings), e.g. to check a config file for it."""
    return {name: default for name, default, _, _ in read_settings(path)}


def script_help(path, doc, config):
    """--help: the script's docstring, every setting with its default and its comment, grouped as the
    script declares them, and the config files whose every key is one of this script's settings."""
    repo = os.path.dirname(os.path.abspath(__file__))
    configs = sorted(glob.glob(os.path.join(repo, "config", "*.py")))
    mine = [os.path.relpath(c, repo) for c in configs if set(config_keys(c)) <= set(config)]
    script = os.path.relpath(path, repo) if path else "SCRIPT"
    out = [f"usage: python {script} {'[config/FILE.py ...] ' if mine else ''}[--key=value ...]", "",
           (doc or "").strip(), "", "settings (their defaults; config files, then --key=value, replace them):"]
    settings = read_settings(path) if path else [(k, v, "", "") for k, v in config.items()]
    width = max(len(f"--{name}={config.get(name, default)!r}") for name, default, _, _ in settings)
    group = None
    for name, default, comment, this_group in settings:
        if name not in config:
            continue
        if this_group != group:
            out.append(f"{this_group}:" if this_group else "")
            group = this_group
        out.append(f"  {f'--{name}={config[name]!r}':<{width}}  {comment}".rstrip())
    if mine:
        out += ["", "config files: " + " ".join(mine)]
    return "\n".join(out)


def config_keys(path):
    """The names a config file assigns, read without running it."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)]
