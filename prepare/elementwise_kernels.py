"""
Generated elementwise kernels, to train a CUDA model on code closer to KernelBench's elementwise
tasks than the corpus's: random PyTorch expressions of one tensor x, each followed by the kernel that
computes it, in the prompts' own format (code_check.kernelbench_tasks: the expression as a comment,
the kernel's signature, the thread's element and the bounds check, then the one line that stores
y[i]); with --varied, a share of them as the corpus writes kernels instead: no comment, names, types
and index idioms of their own, some in place, so that a model learns to read a signature it has not
seen and store through its pointer (the corpus's tasks are such signatures). A model that has seen
torch.tanh read as tanhf and torch.clamp as fminf(fmaxf(..)) can compose the body of an expression
it never saw. The functions of KernelBench's held-out problems (leaky_relu, hardsigmoid, hardtanh)
are never generated, so those tasks stay held out.
Writes data/elementwise_kernels.tar.gz, one .cu file a kernel, for prepare/cuda_code.py's --train_only;
with --problems, KernelBench-format problems of new expressions instead, for train_rl.py's tasks.

    python prepare/elementwise_kernels.py                        # 40,000 kernels
    python prepare/elementwise_kernels.py --varied=0.5 --out data/varied_kernels.tar.gz   # half of them varied
    python prepare/elementwise_kernels.py --problems data/generated_problems --count=400 --seed=1 \\
        --exclude data/elementwise_kernels.tar.gz                # 400 problems none of those kernels computes
    python prepare/cuda_code.py cuda-kernels.tar.gz --weight NVIDIA+cutlass=0 NVIDIA+cuda-samples=3 \\
        karpathy+llm.c=3 ggml-org+ggml=3 --train_only data/elementwise_kernels.tar.gz --out_dir data/cuda_elementwise
"""

import argparse
import ast
import io
import math
import os
import random
import re
import shutil
import sys
import tarfile

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import code_check  # noqa: E402
import training  # noqa: E402

HELD_OUT = ("leaky_relu", "hardsigmoid", "hardtanh")  # KernelBench's held-out problems: never generated


# PyTorch -> CUDA, one call at a time. A CUDA expression is built as a Python AST whose names are C
# text ("x[i]", "0.5f", "tanhf"), so ast.unparse writes it with the fewest parentheses: C and Python
# agree on the precedence of + - * / and unary minus. A C conditional is a name holding its text.

def c_name(text):
    return ast.Name(id=text)


def c_float(value):
    return c_name(f"{float(value)!r}f")


def c_call(function, *args):
    return ast.Call(func=c_name(function), args=list(args), keywords=[])


def c_binary(left, op, right):
    return ast.BinOp(left=left, op=op, right=right)


def c_negate(a):
    return ast.UnaryOp(op=ast.USub(), operand=a)


def c_conditional(condition, then, otherwise):
    return c_name(f"({ast.unparse(condition)} ? {ast.unparse(then)} : {ast.unparse(otherwise)})")


def c_sigmoid(a):
    return c_binary(c_float(1), ast.Div(), c_binary(c_float(1), ast.Add(), c_call("expf", c_negate(a))))


def c_clamp(a, low=None, high=None):
    a = c_call("fmaxf", a, low) if low is not None else a
    return c_call("fminf", a, high) if high is not None else a


# name -> (its CUDA, from the CUDA of its positional and keyword arguments)
CALLS = {
    "torch.relu": lambda a: c_call("fmaxf", a, c_float(0)),
    "torch.sigmoid": c_sigmoid,
    "torch.tanh": lambda a: c_call("tanhf", a),
    "torch.abs": lambda a: c_call("fabsf", a),
    "torch.exp": lambda a: c_call("expf", a),
    "torch.sin": lambda a: c_call("sinf", a),
    "torch.cos": lambda a: c_call("cosf", a),
    "torch.erf": lambda a: c_call("erff", a),
    "torch.atan": lambda a: c_call("atanf", a),
    "torch.sqrt": lambda a: c_call("sqrtf", a),
    "torch.log1p": lambda a: c_call("log1pf", a),
    "torch.square": lambda a: c_binary(a, ast.Mult(), a),
    "torch.pow": lambda a, b: c_call("powf", a, b),
    "torch.clamp": lambda a, min=None, max=None: c_clamp(a, min, max),
    "torch.where": c_conditional,
    "F.silu": lambda a: c_binary(a, ast.Div(), c_binary(c_float(1), ast.Add(), c_call("expf", c_negate(a)))),
    "F.softsign": lambda a: c_binary(a, ast.Div(), c_binary(c_float(1), ast.Add(), c_call("fabsf", a))),
    "F.relu6": lambda a: c_clamp(a, c_float(0), c_float(6)),
    "F.elu": lambda a, alpha=c_float(1): c_conditional(ast.Compare(left=a, ops=[ast.Gt()], comparators=[c_float(0)]),
                                                        a, c_binary(alpha, ast.Mult(), c_binary(c_call("expf", a), ast.Sub(), c_float(1)))),
    "math.sqrt": lambda a: c_call("sqrtf", a),
}
CONSTANTS = {"math.pi": c_float(3.14159265)}


def to_cuda(node):
    """The CUDA of a PyTorch expression's AST (x the input tensor), as a C-text AST for ast.unparse."""
    if isinstance(node, ast.Name) and node.id == "x":
        return c_name("x[i]")
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return c_float(node.value)
    if isinstance(node, ast.Attribute) and ast.unparse(node) in CONSTANTS:
        return CONSTANTS[ast.unparse(node)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        return c_binary(to_cuda(node.left), node.op, to_cuda(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return c_negate(to_cuda(node.operand))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Gt, ast.Lt)):
        return ast.Compare(left=to_cuda(node.left), ops=node.ops, comparators=[to_cuda(node.comparators[0])])
    if isinstance(node, ast.Call) and ast.unparse(node.func) in CALLS:
        keywords = {k.arg: to_cuda(k.value) for k in node.keywords}
        return CALLS[ast.unparse(node.func)](*map(to_cuda, node.args), **keywords)
    raise ValueError(f"no CUDA for {ast.unparse(node)}")


def cuda_body(expression):
    """The line that stores y[i] for a PyTorch expression of x, e.g. "torch.relu(x)" ->
    "y[i] = fmaxf(x[i], 0.0f);"."""
    return f"y[i] = {ast.unparse(to_cuda(ast.parse(expression, mode='eval').body))};"


# Random expressions: a tree of the calls above, arithmetic and constants over x, written with every
# parenthesis and then as ast.unparse writes it (as KernelBench's forward reads in the prompts).

UNARY = ["torch.relu", "torch.sigmoid", "torch.tanh", "torch.abs", "torch.exp", "torch.sin", "torch.cos",
         "torch.erf", "torch.atan", "torch.square", "F.silu", "F.softsign", "F.relu6"]


def constant(rng):
    return rng.choice(["0.5", "2.0", "3.0", "1.0", "1", "2", "0.1", "0.2", "6.0", "-1.0",
                       f"{rng.uniform(0.01, 5):.{rng.choice([1, 2, 3, 6])}f}", "math.pi",
                       f"math.sqrt({rng.choice(['2.0', '3.0', '0.5'])} / math.pi)", "math.sqrt(2.0)"])


def random_expression(rng, depth):
    if depth == 0:
        return "x" if rng.random() < 0.85 else f"({constant(rng)} * x)"
    a = random_expression(rng, depth - 1)
    kind = rng.choice(["unary", "unary", "unary", "scale", "shift", "binary", "divide", "root", "pow",
                       "clamp", "where", "elu"])
    if kind == "unary":
        return f"{rng.choice(UNARY)}({a})"
    if kind == "scale":
        return f"({constant(rng)} * {a})"
    if kind == "shift":
        return f"({a} {rng.choice('+-')} {constant(rng)})"
    if kind == "binary":
        return f"({a} {rng.choice('+-*')} {random_expression(rng, rng.randrange(depth))})"
    if kind == "divide":
        b = random_expression(rng, rng.randrange(depth))
        return f"({a} / ({rng.choice(['1', '1.0', '2.0'])} + {rng.choice(['torch.abs', 'torch.exp'])}({b})))"
    if kind == "root":
        return f"{rng.choice(['torch.sqrt', 'torch.log1p'])}(torch.abs({a}))"
    if kind == "pow":
        return f"torch.pow({a}, {rng.choice(['2.0', '3.0', '2', '3'])})"
    if kind == "clamp":
        low, high = sorted(rng.sample([-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 6.0], 2))
        bounds = rng.choice([f"min={low}, max={high}", f"min={low}", f"max={high}"])
        return f"torch.clamp({a}, {bounds})"
    if kind == "where":
        return f"torch.where(x {rng.choice('<>')} {rng.choice(['0', '0.0', '1.0', '-1.0'])}, {a}, " \
               f"{random_expression(rng, rng.randrange(depth))})"
    return f"F.elu({a}, alpha={rng.choice(['0.5', '1.0', '2.0', '0.1'])})"


def usable(expression, x):
    """An expression worth a kernel: it reads x, and on x it is finite, of moderate size (exp of exp
    overflows) and not constant."""
    if not any(isinstance(node, ast.Name) and node.id == "x" for node in ast.walk(ast.parse(expression))):
        return False
    y = eval(expression, {"torch": torch, "F": F, "math": math, "x": x})  # our own generated PyTorch
    return bool(torch.isfinite(y).all()) and float(y.abs().max()) < 1e4 and float(y.std()) > 1e-3


def kernel_source(number, expression):
    """A generated kernel's file: KernelBench's prompt for the expression, the store, the closing brace."""
    name = f"generated{number}_kernel"
    comment = f"// Generated elementwise kernel {number}: y = {expression}, element by element over the n floats of x\n"
    return (code_check.PREAMBLE + comment + code_check.ELEMENTWISE_SIGNATURE.format(kernel=name) +
            code_check.ELEMENTWISE_SCAFFOLD + f"\n    {cuda_body(expression)}\n}}\n")


# The varied forms: what the corpus's simple kernels look like (vectorAdd, squareArray, sequence_gpu).
INPUTS = ["x", "in", "input", "src", "a", "data", "inp", "d_in", "d_input", "values"]
OUTPUTS = ["y", "out", "output", "dst", "b", "result", "d_out", "d_output", "res", "z"]
SIZES = ["n", "N", "size", "count", "numElements", "num_elems", "len", "total", "length", "elements"]
INDICES = ["i", "idx", "tid", "index", "gid", "id", "k", "elem"]
SIZE_TYPES = ["int", "int", "int64_t", "size_t", "unsigned int", "const int", "long", "const size_t"]
NAMES = ["{op}_kernel", "{op}Kernel", "k_{op}", "{op}", "{op}_f32"]
OPS = ["apply", "map", "elementwise", "transform", "activation", "pointwise", "compute", "fused", "unary", "eval"]


def varied_kernel_source(number, expression, rng):
    """A kernel of the expression as a corpus file might write it: the preamble, no comment, a random
    name, parameter names and order, size type, index idiom and brace style; a quarter in place."""
    name = rng.choice(NAMES).format(op=rng.choice(OPS)) + str(number)
    size, index, size_type = rng.choice(SIZES), rng.choice(INDICES), rng.choice(SIZE_TYPES)
    star = rng.choice(["* ", " *"])
    if rng.random() < 0.25:  # in place: one pointer, read and written
        x = y = rng.choice(INPUTS + OUTPUTS)
        pointers = [f"float{star}{x}"]
    else:
        x, y = rng.choice(INPUTS), rng.choice(OUTPUTS)
        restrict = rng.choice(["", "__restrict__ "])
        pointers = [f"const float{star}{restrict}{x}", f"float{star}{restrict}{y}"]
        if rng.random() < 0.4:
            pointers.reverse()  # the output first, as llm.c writes them
    signature = f"__global__ void {name}({', '.join(pointers)}, {size_type} {size})"
    body = re.sub(r"\bx\[i\]", f"{x}[{index}]", cuda_body(expression).replace("y[i]", f"{y}[{index}]", 1))
    start = rng.choice(["blockIdx.x * blockDim.x + threadIdx.x", "threadIdx.x + blockIdx.x * blockDim.x",
                        "blockDim.x * blockIdx.x + threadIdx.x", "blockIdx.x * (int64_t)blockDim.x + threadIdx.x"])
    index_type = rng.choice(["int", "int", "int64_t", "size_t", "const int", "unsigned int"])
    idiom = rng.choice(["return", "if", "if", "loop"])
    if idiom == "loop":  # grid-stride
        text = (f"    for ({index_type.removeprefix('const ')} {index} = {start}; {index} < {size}; "
                f"{index} += blockDim.x * gridDim.x) {{\n        {body}\n    }}")
    elif idiom == "if":
        text = f"    {index_type} {index} = {start};\n    if ({index} < {size}) {{\n        {body}\n    }}"
    else:
        text = f"    {index_type} {index} = {start};\n    if ({index} >= {size}) return;\n    {body}"
    return code_check.PREAMBLE + signature + rng.choice([" {\n", "\n{\n"]) + text + "\n}\n"


def problem_source(expression):
    """A KernelBench-format problem (code_check.kernelbench_tasks reads it) whose Model returns the
    expression of x."""
    return (f"import math\nimport torch\nimport torch.nn.functional as F\n\n\nclass Model(torch.nn.Module):\n"
            f"    def forward(self, x):\n        return {expression}\n\n\ndef get_inputs():\n"
            f"    return [torch.randn(16, 16384)]\n\n\ndef get_init_inputs():\n    return []\n")


EXPRESSIONS = "elementwise_kernels/expressions.txt"  # in the tarball: what each kernel computes, one a line


def expressions_in(tarball):
    """The expressions of a tarball of generated kernels (a varied kernel's file does not say its own),
    or None if it is not one."""
    if not (os.path.isfile(tarball) and tarfile.is_tarfile(tarball)):
        return None
    with tarfile.open(tarball) as tar:
        try:
            return set(tar.extractfile(EXPRESSIONS).read().decode("utf-8").splitlines())
        except KeyError:  # no list: not written by this script (or by one from before --varied)
            return None


def generate(count, seed, exclude=frozenset(), varied=0.0):
    """count distinct (expression, kernel source) pairs, none of whose expressions is in exclude; the
    share varied of the kernels in varied forms (drawn from a second generator, so that the
    expressions are the same whatever the share)."""
    rng, form_rng = random.Random(seed), random.Random(f"varied {seed}")
    x = torch.randn(1000, generator=torch.Generator().manual_seed(seed)) * 3
    seen = set()
    while len(seen) < count:
        expression = ast.unparse(ast.parse(random_expression(rng, rng.choice([1, 1, 2, 2, 3]))))
        if expression in seen or expression in exclude or any(name in expression for name in HELD_OUT) \
                or not usable(expression, x):
            continue
        seen.add(expression)
        number = len(seen) - 1
        yield expression, (varied_kernel_source(number, expression, form_rng) if form_rng.random() < varied
                           else kernel_source(number, expression))


def add_file(tar, name, text):
    encoded = text.encode("utf-8")
    member = tarfile.TarInfo(name)
    member.size = len(encoded)
    tar.addfile(member, io.BytesIO(encoded))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=40000, help="kernels to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="data/elementwise_kernels.tar.gz")
    parser.add_argument("--problems", metavar="DIR", help="write KernelBench-format problems instead, as "
                        "DIR/KernelBench/level1/N_Generated.py (N from 1; train_rl.py holds out every fourth), "
                        "for train_rl.py --kernelbench=DIR")
    parser.add_argument("--exclude", nargs="*", default=[], metavar="TARBALL",
                        help="tarballs of generated kernels whose expressions are not written again: the problems "
                             "of a model trained on them are new to it")
    parser.add_argument("--varied", type=float, default=0.0, metavar="SHARE",
                        help="the share of kernels written as the corpus writes them (no comment, names and index "
                             "idioms of their own) instead of in KernelBench's prompt format")
    args = parser.parse_args()
    if args.count < 1:
        training.fail(f"--count must be at least 1, got {args.count}")
    if not 0.0 <= args.varied <= 1.0:
        training.fail(f"--varied is a share of the kernels, from 0 to 1; got {args.varied}")
    exclude = set()
    for tarball in args.exclude:
        expressions = expressions_in(tarball)
        if expressions is None:
            training.fail(f"--exclude {tarball}: not a tarball of generated kernels; write one with this script first")
        exclude |= expressions
    if args.problems:
        folder = os.path.join(args.problems, "KernelBench", "level1")
        if os.path.isdir(folder) and any(not name.endswith("_Generated.py") for name in os.listdir(folder)):
            training.fail(f"--problems {args.problems}: {folder} holds problems this script did not write "
                          "(KernelBench's own?), which it would replace; give another directory")
        staging = folder + ".tmp"  # written aside and swapped in whole: never half a problem set
        shutil.rmtree(staging, ignore_errors=True)
        training.make_dir(staging)
        for number, (expression, _) in enumerate(generate(args.count, args.seed, exclude), start=1):
            with open(os.path.join(staging, f"{number}_Generated.py"), "w") as f:
                f.write(problem_source(expression))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
        print(f"{args.count:,} problems in {folder}")
        return
    training.make_dir(os.path.dirname(args.out) or ".")
    expressions = []
    with training.atomic_write(args.out) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for number, (expression, source) in enumerate(generate(args.count, args.seed, exclude, args.varied)):
            add_file(tar, f"elementwise_kernels/{number:05d}.cu", source)
            expressions.append(expression)
        add_file(tar, EXPRESSIONS, "".join(e + "\n" for e in expressions))
    print(f"{args.count:,} kernels in {args.out}")


if __name__ == "__main__":
    main()
