"""prepare/cuda_code.py's command line on a directory of hand-written kernels, and the completion
tasks code_check builds from the dataset it writes: held-out files only, compiling references only;
prepare/elementwise_kernels.py's generated kernels, each checked against PyTorch."""

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import code_check  # noqa: E402
from conftest import run_scripts  # noqa: E402
from prepare import cuda_code, elementwise_kernels  # noqa: E402

COMPILES = "__global__ void scale{i}(float* x, int n) {{\n    int j = threadIdx.x;\n    if (j < n) x[j] *= {i}.0f;\n}}\n"
NEEDS_PROJECT_HEADER = "__global__ void fused{i}(Params p) {{\n    p.out[threadIdx.x] = {i};\n}}\n"


def test_prepare_splits_by_file_and_the_tasks_are_the_held_out_kernels_that_compile(tmp_path):
    for i in range(8):
        path = tmp_path / "kernels" / f"repo+{i % 2}" / f"k{i}.cu"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"// Copyright {i}, MIT License\n#include \"params.h\"\n\n" + COMPILES.format(i=i) + "\n"
                        + NEEDS_PROJECT_HEADER.format(i=i) + '\nconst char *eot = "<|endoftext|>";  // as llm.c\'s code holds\n')
    out = tmp_path / "data"
    done = subprocess.run([sys.executable, "prepare/cuda_code.py", str(tmp_path / "kernels"), "--out_dir", str(out),
                           "--vocab_size=300", "--val_fraction=0.5", "--num_proc=1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    files = json.loads((out / "files.json").read_text())
    assert files["train"] and files["val"] and not set(files["train"]) & set(files["val"])
    assert json.loads((out / "meta.json").read_text())["language"] == "cuda"
    for split in ("train", "val"):  # each file is one document, named as it is, though it holds "<|endoftext|>"
        documents = code_check.documents(str(out), split)
        assert [name for name, _ in documents] == files[split]
        assert all(f"scale{name[-4]}(" in text and text.count(code_check.EOT) == 1 for name, text in documents)

    tasks = code_check.dataset_tasks(str(out), "val")
    # one task per held-out file: its scale kernel; fused needs a type from a header the corpus lacks
    assert sorted(t.source for t in tasks) == sorted(files["val"])
    assert all(t.name.startswith("scale") and t.prompt.startswith(code_check.PREAMBLE) for t in tasks)
    assert code_check.dataset_tasks(str(out), "val") == tasks  # read back from tasks_val.jsonl


def test_code_eval_writes_the_table_with_its_two_anchors(tmp_path):
    (tmp_path / "kernels").mkdir()
    for i in range(8):
        (tmp_path / "kernels" / f"k{i}.cu").write_text(COMPILES.format(i=i))
    data = tmp_path / "data" / "tiny_cuda"
    run = {"cwd": REPO, "capture_output": True, "text": True, "timeout": 300}
    done = subprocess.run([sys.executable, "prepare/cuda_code.py", str(tmp_path / "kernels"), "--out_dir", str(data),
                           "--vocab_size=300", "--val_fraction=0.5", "--num_proc=1"], **run)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "train_gpt.py", "config/cuda_code.py", f"--data_dir={data.parent}",
                           "--dataset=tiny_cuda", f"--out_dir={out}", "--n_layer=1", "--block_size=64", "--max_iters=4",
                           "--lr_decay_iters=4", "--warmup_iters=1", "--eval_interval=4", "--eval_iters=1"], **run)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "analysis/code_eval.py", f"--out_dir={out}", "--num_tasks=2",
                           "--num_samples=2", "--k=2", "--max_new_tokens=8", "--device=cpu"], **run)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "code_eval.json").read_text())
    assert not (out / "eval.json").exists()  # analysis/evaluate.py's name, which compare.py reads
    assert report["tasks"] == 2 and report["samples_per_task"] == 2 and len(report["samples"]) == 2
    assert report["rows"]["references"]["ok_rate"] == 1.0 == report["rows"]["references"]["pass@2"]
    assert report["rows"]["empty body"]["ok_rate"] == 1.0 and report["rows"]["empty body"]["nontrivial_rate"] == 0.0
    assert "| model |" in done.stdout and "| empty body | 100.0% | 0.0% |" in done.stdout


def test_prepare_without_sources_is_one_line():
    done = subprocess.run([sys.executable, "prepare/cuda_code.py", "no/such/kernels.tar.gz"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "error: no/such/kernels.tar.gz does not exist: give the tarball, a directory or .cu/.cuh files"]


# prepare/elementwise_kernels.py: generated kernels, each checked against PyTorch by the CPU emulation

ONE_OF_EACH = ["torch.relu(x)", "torch.sigmoid(x)", "torch.tanh(x)", "torch.abs(x)", "torch.exp(x)", "torch.sin(x)",
               "torch.cos(x)", "torch.erf(x)", "torch.atan(x)", "torch.sqrt(torch.abs(x))", "torch.log1p(torch.abs(x))",
               "torch.square(x - 1)", "torch.pow(x, 3.0)", "torch.clamp(x, min=-1.0, max=2.0)", "torch.clamp(x, max=0.5)",
               "torch.where(x > 0, x, 0.5 * x)", "F.silu(x)", "F.softsign(x)", "F.relu6(x)", "F.elu(x, alpha=0.5)",
               "-x / (1 + torch.exp(2.0 * x))", "torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0)))"]


def emulated(expression):
    problem = elementwise_kernels.problem_source(expression)
    (task,) = code_check.kernelbench_tasks({"1_Generated": problem}, "train", scaffold=True)
    return code_check.elementwise_emulate(problem, task, f"\n    {elementwise_kernels.cuda_body(expression)}\n}}")


def test_every_call_the_generator_writes_reads_in_cuda_as_pytorch_computes_it():
    for expression in ONE_OF_EACH:
        assert emulated(expression)["correct"], (expression, elementwise_kernels.cuda_body(expression))
    written = " ".join(ONE_OF_EACH)
    assert all(name in written for name in elementwise_kernels.CALLS)  # each call is checked above


def test_generated_expressions_are_distinct_compute_right_and_leave_the_held_out_functions_out():
    pairs = list(elementwise_kernels.generate(400, seed=3))
    expressions = [expression for expression, _ in pairs]
    assert len(set(expressions)) == 400
    assert not any(name in expression for expression in expressions for name in ("leaky_relu", "hardsigmoid", "hardtanh"))
    for expression in expressions[:12]:  # random compositions, not only single calls
        assert emulated(expression)["correct"], expression


def test_a_generated_kernel_is_the_scaffolded_prompt_then_one_store():
    assert elementwise_kernels.kernel_source(7, "torch.relu(x) * 0.5") == (
        code_check.PREAMBLE
        + "// Generated elementwise kernel 7: y = torch.relu(x) * 0.5, element by element over the n floats of x\n"
        "__global__ void generated7_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {\n"
        "    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;\n"
        "    if (i >= n) return;\n"
        "    y[i] = fmaxf(x[i], 0.0f) * 0.5f;\n"
        "}\n")


def test_varied_kernels_read_their_own_signature_compile_and_store_the_same_expression():
    pairs = list(elementwise_kernels.generate(40, seed=5, varied=1.0))
    assert [e for e, _ in pairs] == [e for e, _ in elementwise_kernels.generate(40, seed=5)]  # only the form varies
    tasks = [task for _, source in pairs for task in code_check.cuda_tasks(source, "varied")]
    assert len(tasks) == 40 and not any("// Generated" in source for _, source in pairs)  # no comment, as the corpus
    assert all(r.reward == 1.0 for r in code_check.score_many(tasks, [t.reference for t in tasks]))  # nvcc, stores
    forms = set()
    for expression, source in pairs:
        signature = source[source.index("__global__"):source.index(")")]
        inputs = re.findall(r"const float\s*\*\s*(?:__restrict__\s*)?(\w+)", signature)
        (y,) = re.findall(r"(?<!const )float\s*\*\s*(?:__restrict__\s*)?(\w+)", signature)
        x = inputs[0] if inputs else y  # in place: one pointer, read and written
        store = next(line.strip() for line in source.splitlines() if line.strip().startswith(f"{y}["))
        index = store[len(y) + 1:store.index("]")]
        assert store.replace(f"{y}[{index}]", "y[i]", 1).replace(f"{x}[{index}]", "x[i]") == \
            elementwise_kernels.cuda_body(expression), source
        forms.add("in place" if not inputs else "loop" if "for (" in source else "return" if "return;" in source else "if")
    assert forms == {"in place", "loop", "return", "if"}


def test_generated_kernels_compile_and_prepare_trains_on_them_holds_none_out_and_rl_may_ask_for_them(tmp_path):
    run = {"cwd": REPO, "capture_output": True, "text": True, "timeout": 300}
    done = subprocess.run([sys.executable, "prepare/elementwise_kernels.py", "--count=30",
                           f"--out={tmp_path / 'generated.tar.gz'}"], **run)
    assert done.returncode == 0, done.stderr
    generated = dict(cuda_code.source_files([str(tmp_path / "generated.tar.gz")]))
    assert len(generated) == 30
    for text in list(generated.values())[:3]:  # nvcc takes the body after its prompt
        prompt, body = text.split("if (i >= n) return;")
        task = code_check.Task("cuda", "k", prompt + "if (i >= n) return;", "", "generated")
        assert code_check.score(task, body.rstrip("\n")).reward == 1.0

    (tmp_path / "kernels").mkdir()
    for i in range(8):
        (tmp_path / "kernels" / f"k{i}.cu").write_text(COMPILES.format(i=i))
    done = subprocess.run([sys.executable, "prepare/cuda_code.py", str(tmp_path / "kernels"), "--train_only",
                           str(tmp_path / "generated.tar.gz"), "--out_dir", str(tmp_path / "data"),
                           "--vocab_size=300", "--val_fraction=0.5", "--num_proc=1"], **run)
    assert done.returncode == 0, done.stderr
    files = json.loads((tmp_path / "data" / "files.json").read_text())
    assert set(generated) <= set(files["train"]) and not set(generated) & set(files["val"])
    assert files["val"] and set(files["train"]) - set(generated)  # the other kernels are split as before
    assert sorted(files["train_only"]) == sorted(generated)
    tasks = code_check.dataset_tasks(str(tmp_path / "data"), "train")  # training data, not the split's tasks
    assert tasks and not {t.source for t in tasks} & set(generated)
    listed = [name for name, _ in code_check.documents(str(tmp_path / "data"), "train", train_only=True)]
    assert sorted(listed) == sorted(generated)
    extra = code_check.train_only_tasks(str(tmp_path / "data"), 5)  # ... which RL may ask for: the first five files'
    assert [t.source for t in extra] == listed[:5]


def test_generated_problems_are_kernelbench_tasks_new_to_a_model_trained_on_the_kernels(tmp_path):
    run = {"cwd": REPO, "capture_output": True, "text": True, "timeout": 300}
    kernels, problems = tmp_path / "kernels.tar.gz", tmp_path / "problems"
    assert subprocess.run([sys.executable, "prepare/elementwise_kernels.py", "--count=300", "--varied=0.5",
                           f"--out={kernels}"], **run).returncode == 0  # half the files do not say their expression
    done = subprocess.run([sys.executable, "prepare/elementwise_kernels.py", "--count=40", "--seed=1",
                           f"--problems={problems}", f"--exclude={kernels}"], **run)
    assert done.returncode == 0, done.stderr
    seen = elementwise_kernels.expressions_in(kernels)
    assert len(seen) == 300
    sources = code_check.kernelbench_problems(str(problems))
    tasks = {split: code_check.kernelbench_tasks(sources, split, scaffold=True) for split in ("train", "val")}
    assert len(tasks["train"]) == 30 and len(tasks["val"]) == 10  # every fourth number held out
    expressions = {code_check.elementwise(source) for source in sources.values()}
    assert len(expressions) == 40 and not expressions & seen
    # without the exclusion the same seed writes some of the kernels' expressions: the exclusion did the work
    assert {e for e, _ in elementwise_kernels.generate(40, seed=1)} & seen


def test_generator_bad_input_is_one_line(tmp_path):
    with tarfile.open(tmp_path / "old.tar.gz", "w:gz") as tar:  # kernels, but no list of their expressions
        tar.add(REPO / "prepare" / "elementwise_kernels.py", "elementwise_kernels/00000.cu")
    (tmp_path / "kb" / "KernelBench" / "level1").mkdir(parents=True)
    (tmp_path / "kb" / "KernelBench" / "level1" / "19_ReLU.py").write_text("# KernelBench's own\n")
    script = "prepare/elementwise_kernels.py"
    count, varied, missing, old, problems = run_scripts([
        [script, "--count=0", f"--out={tmp_path / 'x.tar.gz'}"],
        [script, "--varied=1.5", f"--out={tmp_path / 'x.tar.gz'}"],
        [script, f"--problems={tmp_path}", "--exclude=no.tar.gz"],
        [script, f"--problems={tmp_path}", f"--exclude={tmp_path / 'old.tar.gz'}"],
        [script, f"--problems={tmp_path / 'kb'}", "--count=2"]])
    assert count.returncode == 1 and count.stderr.strip() == "error: --count must be at least 1, got 0"
    assert varied.returncode == 1 and varied.stderr.strip() == "error: --varied is a share of the kernels, from 0 to 1; got 1.5"
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        "error: --exclude no.tar.gz: not a tarball of generated kernels; write one with this script first"]
    assert old.returncode == 1 and old.stderr.strip().endswith("not a tarball of generated kernels; write one with this script first")
    assert problems.returncode == 1 and problems.stderr.strip().startswith(f"error: --problems {tmp_path / 'kb'}: ")
    assert (tmp_path / "kb" / "KernelBench" / "level1" / "19_ReLU.py").exists()  # left as it was
