"""
The GPU acceptance run: every claim of this project that only a GPU can prove, checked in one
command (a few minutes on one GPU). Each check prints PASS, FAIL or SKIP with its figure, and all of
them go to a JSON report; the exit status is 1 if any check failed.

  gpt2_loss    GPT-2 small (124M) in bf16 (fp16 on GPUs without bf16) with torch.compile, trained
               300 steps on tiny Shakespeare in GPT-2's tokens: the loss falls
  gpt2_speed   that run's tokens/s, and its MFU against the GPU's dense peak
  kv_cache     greedy generation from the trained model with the KV cache gives exactly the
               uncached tokens (fp32)
  fp16_scaler  GPT-2 small in fp16 with the grad scaler: the loss falls, the scale stays finite
  torchrun     train_gpt.py under `torchrun --standalone --nproc_per_node=1` (NCCL on a GPU) ends
               with the weights of the same run in a plain process
  vit_speed    the ViT recipe's (config/vit_cifar10.py) training step: images/s and MFU
  kernelbench  code_check's KernelBench execution check: its reference ReLU kernel, compiled, against
               KernelBench's ReLU problem (--kernelbench=kernelbench.tar.gz), both as a load_inline
               extension and as train_rl's execution reward builds it (the body behind a launcher),
               and its body in the CPU emulation the execution reward uses without a GPU

    python bench/gpu_check.py --kernelbench=kernelbench.tar.gz  # the peak is looked up from the GPU's name
    python bench/gpu_check.py --peak_flops=312e12       # or given: one device's dense bf16 FLOP/s
    python bench/gpu_check.py --device=cpu --tiny=True  # every check on tiny models, on a CPU

--tiny=True runs each check on models and step counts small enough for a CPU (tests/test_gpu_check.py
does), so that the day this first meets a GPU only the GPU can fail. On a CPU the ranks talk through
gloo instead of NCCL, compile is skipped unless --compile=True, bf16 stands in for fp16 (with a CPU
grad scaler), and KernelBench's harness runs with torch.relu standing in for the kernel (the
emulation runs as on a GPU).

Data: data_dir/shakespeare, prepared on first use from tiny Shakespeare (downloaded, or offline
--shakespeare=a local input.txt) with GPT-2's tokenizer (offline: GPT2_TIKTOKEN_FILE=a local
gpt2.tiktoken). The ViT's images/s leaves out its per-image augmentation on the CPU (the DataLoader
workers): if a real run is slower, the workers are the limit (train_vit.py's img/s shows it).
"""

import json
import os
import re
import runpy
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from torchvision.transforms import v2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the repo's modules
import code_check  # noqa: E402
import configurator  # noqa: E402
import optimizers  # noqa: E402
import training  # noqa: E402
from model_gpt import GPT, GPTConfig  # noqa: E402
from model_vit import ViT, ViTConfig  # noqa: E402

# -----------------------------------------------------------------------------
device = "cuda"
tiny = False             # tiny models and few steps: every check on a CPU in well under a minute
dtype = "auto"           # of gpt2_loss and vit_speed: bf16 where the device has it, fp16 on older GPUs
compile = "auto"         # torch.compile gpt2_loss and vit_speed: 'auto' = on CUDA only (minutes on a CPU)
peak_flops = 0.0         # one device's dense peak for dtype; 0 = look it up from the GPU's name
min_gpt_mfu = 0.20       # gpt2_speed passes at this MFU or more
min_vit_mfu = 0.10       # vit_speed likewise (docs/vit.md estimates 15-25% on an H100)
data_dir = "data"        # the GPT-2 tokens of tiny Shakespeare are in data_dir/shakespeare
shakespeare = ""         # a local copy of tiny Shakespeare's input.txt, to prepare the data offline
kernelbench = ""         # KernelBench's problems: kernelbench.tar.gz, or a directory holding KernelBench/level1
report = "gpu_check.json"
# -----------------------------------------------------------------------------
config = configurator.configure(globals(), sys.argv[1:])
globals().update(config)
configurator.check_settings(config, at_least_0="peak_flops min_gpt_mfu min_vit_mfu")

# the sizes of each check: GPT-2 small on a GPU, or small enough for a CPU (--tiny=True)
FULL = dict(gpt={}, gpt_batch=8, lr=6e-4, gpt2_steps=300, fp16_steps=100, warmup=10, prompt=32, new_tokens=64,
            torchrun=["--n_layer=4", "--n_head=4", "--n_embd=256", "--block_size=256", "--batch_size=8",
                      "--max_iters=20"],
            vit={}, vit_batch=512, vit_steps=20)
TINY = dict(gpt=dict(n_layer=2, n_head=2, n_embd=64, block_size=32), gpt_batch=4, lr=6e-3, gpt2_steps=40,
            fp16_steps=40, warmup=2, prompt=16, new_tokens=16,
            torchrun=["--n_layer=1", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=4",
                      "--max_iters=4"],
            vit=dict(n_layer=2, n_head=2, n_embd=48), vit_batch=32, vit_steps=3)
size = TINY if tiny else FULL
# dense tensor-core peaks (no sparsity) from NVIDIA's data sheets, bf16/fp16 with fp32 accumulation
PEAKS = [("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12), ("L40S", 362e12),
         ("L4", 121e12), ("V100", 125e12), ("T4", 65e12)]

device = training.pick_device(device)
device_type = device.split(":")[0]
precision = training.resolve_dtype(dtype, device)
compile_model = training.resolve_compile(compile, device)
device_name = torch.cuda.get_device_name(device) if device_type == "cuda" else device
peak = peak_flops or next((flops for key, flops in PEAKS if key in device_name), 0.0)
print(f"{device_name}, torch {torch.__version__}, {precision}, compile {compile_model}, "
      + (f"peak {peak / 1e12:.0f} TFLOP/s" if peak else "peak unknown (--peak_flops=... for MFU)"), flush=True)
torch.backends.cuda.matmul.allow_tf32 = True  # as the training scripts
torch.backends.cudnn.allow_tf32 = True

# read before any check runs, so that a wrong --kernelbench fails at once, not minutes in
relu_problem = code_check.kernelbench_problems(kernelbench).get(code_check.RELU_PROBLEM) if kernelbench else None
if kernelbench and relu_problem is None:
    training.fail(f"{kernelbench} holds no KernelBench/level1/{code_check.RELU_PROBLEM}.py, the problem the kernelbench check runs")

data_path = os.path.join(data_dir, "shakespeare")
if not os.path.exists(os.path.join(data_path, "meta.json")):
    from prepare.shakespeare import prepare
    prepare(data_path, shakespeare or None)


def sync():
    if device_type == "cuda":
        torch.cuda.synchronize()


def get_batch(split, batch_size, block_size, generator):
    """batch_size random windows of the split, as train_gpt.py samples them: inputs and targets (B, T)."""
    tokens = np.memmap(os.path.join(data_path, f"{split}.bin"), dtype=np.uint16, mode="r")
    ix = torch.randint(len(tokens) - block_size, (batch_size,), generator=generator)
    windows = torch.stack([torch.from_numpy(tokens[i: i + block_size + 1].astype(np.int64)) for i in ix])
    return windows[:, :-1].to(device), windows[:, 1:].contiguous().to(device)


def train_gpt(precision, compiled, steps, scaled):
    """Train a fresh GPT (GPT-2 small, or tiny) `steps` steps from scratch, as train_gpt.py does: AdamW,
    warmup then cosine decay, clip 1.0, and with scaled=True the grad scaler. Returns the model, the
    losses (steps,), seconds per step after the first `warmup` (compilation happens there), and the
    steps the scaler skipped."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(**size["gpt"])).to(device)  # GPT-2 small: its vocabulary padded to 50304
    optim = optimizers.configure(model, "adamw", 0.1, size["lr"], (0.9, 0.95), device_type)
    if device_type == "cuda":
        scaler = training.grad_scaler(device, precision)  # train_gpt.py's: on in fp16
    else:
        scaler = torch.amp.GradScaler("cpu", enabled=scaled)  # the same scaler, for CPU tensors
    guard = training.NonFiniteGuard("stop", device, "step", "")
    fast_model = torch.compile(model) if compiled else model
    generator = torch.Generator().manual_seed(0)
    losses = torch.zeros(steps, device=device)  # read once at the end: no device sync per step
    skipped = 0
    for step in range(steps):
        if step == size["warmup"]:
            sync()
            start = time.perf_counter()
        for group in optim.param_groups:
            group["lr"] = training.learning_rate_at(step, size["lr"], steps // 10, steps, size["lr"] / 10)
        inputs, targets = get_batch("train", size["gpt_batch"], model.config.block_size, generator)
        with training.autocast(device, precision):
            _, loss = fast_model(inputs, targets)
        scaler.scale(loss).backward()
        scale = scaler.get_scale() if scaler.is_enabled() else 1.0  # a device sync, in fp16 only
        training.optimizer_step(model, optim, scaler, 1.0, guard, step, False)
        skipped += scaler.is_enabled() and scaler.get_scale() < scale  # the scaler halves on an overflow
        losses[step] = loss.detach()
    losses = losses.tolist()  # waits for the device
    seconds = (time.perf_counter() - start) / (steps - size["warmup"])
    if int(guard.first_bad_step) >= 0:
        raise RuntimeError(f"non-finite gradient at step {int(guard.first_bad_step)}")
    return model, losses, seconds, skipped


def loss_fell(losses):
    """The loss of the first step against the mean of the last tenth: (verdict, figure)."""
    first, last = losses[0], sum(losses[-len(losses) // 10:]) / (len(losses) // 10)
    return last < 0.7 * first, f"loss {first:.2f} -> {last:.2f} in {len(losses)} steps (PASS: below 70%)"


results = {}  # check name -> its status, figure, seconds and numbers: the JSON report


def check(name, function):
    """Run one check: function() returns (status, figure, numbers). A crash is this check's FAIL,
    not the end of the run: on a new GPU every finding counts."""
    start = time.perf_counter()
    try:
        status, figure, numbers = function()
    except (Exception, SystemExit) as e:  # SystemExit: a one-line error from the code a check calls
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        status, figure, numbers = "FAIL", f"{type(e).__name__}: {message}", {}
    seconds = time.perf_counter() - start
    results[name] = dict(status=status, figure=figure, seconds=round(seconds, 1), **numbers)
    print(f"{status:4s} {name:11s} {figure} ({seconds:.0f} s)", flush=True)
    if device_type == "cuda":
        torch.cuda.empty_cache()


def speed(per_second, unit, estimate_mfu, floor):
    """A speed check's verdict: the MFU (estimate_mfu(peak)) against its floor; SKIP if the peak is unknown."""
    if not peak:
        return "SKIP", f"{per_second:,.0f} {unit}/s; MFU needs the peak: --peak_flops=...", {unit + "_per_s": per_second}
    mfu = estimate_mfu(peak)
    verdict = "PASS" if mfu >= floor else "FAIL"
    return verdict, f"{per_second:,.0f} {unit}/s, MFU {mfu:.1%} (PASS: {floor:.0%} or more)", {
        unit + "_per_s": per_second, "mfu": mfu}


trained = {}  # gpt2_loss's model and timing, for gpt2_speed and kv_cache


def check_gpt2_loss():
    model, losses, seconds, _ = train_gpt(precision, compile_model, size["gpt2_steps"], precision == "float16")
    trained.update(model=model, seconds=seconds)
    fell, figure = loss_fell(losses)
    how = f"{precision}, " + ("compiled" if compile_model else f"not compiled (compile={compile}: on CUDA only)")
    return "PASS" if fell else "FAIL", f"{how}: {figure}", {"losses": losses}


def check_gpt2_speed():
    if "model" not in trained:
        return "SKIP", "gpt2_loss did not train a model", {}
    model, seconds = trained["model"], trained["seconds"]
    tokens = size["gpt_batch"] * model.config.block_size
    return speed(tokens / seconds, "tokens", lambda peak: model.estimate_mfu(tokens, seconds, peak), min_gpt_mfu)


def check_kv_cache():
    if "model" not in trained:
        return "SKIP", "gpt2_loss did not train a model", {}
    model = trained["model"].eval()
    # 2 prompts; prompt + new tokens fit the context, past which the cache is rebuilt every step
    prompt, _ = get_batch("val", 2, size["prompt"], torch.Generator().manual_seed(1))
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 throughout: a near-tie must not flip with the kernel
    try:
        cached = model.generate(prompt, size["new_tokens"], temperature=0, use_cache=True)[:, size["prompt"]:]
        uncached = model.generate(prompt, size["new_tokens"], temperature=0, use_cache=False)[:, size["prompt"]:]
    finally:
        torch.backends.cuda.matmul.allow_tf32 = True
    same = int((cached == uncached).sum())
    return ("PASS" if same == cached.numel() else "FAIL",
            f"{same}/{cached.numel()} greedy tokens equal with and without the cache", {"equal_tokens": same})


def check_fp16_scaler():
    # a CPU without AVX512-FP16 multiplies fp16 in software (minutes for this check): bf16 stands in there
    half = "float16" if device_type == "cuda" else "bfloat16"
    _, losses, _, skipped = train_gpt(half, False, size["fp16_steps"], True)
    fell, figure = loss_fell(losses)
    ok = fell and skipped < len(losses) // 4
    return "PASS" if ok else "FAIL", f"{half}, {skipped} overflowing steps skipped (PASS: under 1/4): {figure}", {
        "losses": losses, "skipped_steps": skipped}


def check_torchrun():
    """train_gpt.py twice, in float32 without compile so that nothing but the launcher differs."""
    out = tempfile.mkdtemp(prefix="gpu_check_")
    common = ["train_gpt.py", *size["torchrun"], f"--device={device}", "--dtype=float32", "--compile=False",
              f"--data_dir={os.path.abspath(data_dir)}", "--dataset=shakespeare", "--eval_iters=2", "--log_interval=0",
              "--always_save_checkpoint=False"]
    launchers = {"plain": [sys.executable],
                 "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]}
    # the same threads for both: torchrun would otherwise set 1, and a CPU matmul's sums depend on them
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(torch.get_num_threads()))}
    weights = {}
    for run, launcher in launchers.items():
        done = subprocess.run([*launcher, *common, f"--out_dir={os.path.join(out, run)}"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            lines = (done.stdout + done.stderr).strip().splitlines() or [""]
            return "FAIL", f"the {run} run failed: {lines[-1]}", {}
        weights[run] = torch.load(os.path.join(out, run, "ckpt.pt"), map_location="cpu", weights_only=True)["model"]
    diff = max((weights["plain"][k] - weights["torchrun"][k]).abs().max().item() for k in weights["plain"])
    backend = "nccl" if device_type == "cuda" else "gloo"
    return ("PASS" if diff <= 1e-5 else "FAIL", f"{backend}, 1 process: max |weight difference| from the plain "
            f"run {diff:.1e} (PASS: 1e-5 or less; CUDA's embedding backward adds in any order)", {"max_abs_diff": diff})


def check_vit_speed():
    recipe = runpy.run_path(os.path.join(ROOT, "config", "vit_cifar10.py"))
    shape = {key: recipe[key] for key in ("n_layer", "n_head", "n_embd", "patch_size", "mlp_ratio", "drop_path",
                                          "pool", "norm")}
    torch.manual_seed(0)
    model = ViT(ViTConfig(**{**shape, **size["vit"]})).to(device)
    optim = optimizers.configure(model, "adamw", recipe["weight_decay"], recipe["learning_rate"], (0.9, 0.999),
                                 device_type)
    scaler = training.grad_scaler(device, precision) if device_type == "cuda" else torch.amp.GradScaler("cpu", enabled=False)
    guard = training.NonFiniteGuard("stop", device, "step", "")
    fast_model = torch.compile(model) if compile_model else model
    mix = v2.RandomChoice([v2.MixUp(alpha=recipe["mixup"], num_classes=10),
                           v2.CutMix(alpha=recipe["cutmix"], num_classes=10)])
    batch = size["vit_batch"]
    for step in range(size["warmup"] + size["vit_steps"]):
        if step == size["warmup"]:
            sync()
            start = time.perf_counter()
        images, targets = mix(torch.randn(batch, 3, 32, 32, device=device),
                              torch.randint(0, 10, (batch,), device=device))  # targets: (B, 10) mixed labels
        with training.autocast(device, precision):
            _, loss = fast_model(images, targets, label_smoothing=recipe["label_smoothing"])
        scaler.scale(loss).backward()
        training.optimizer_step(model, optim, scaler, recipe["grad_clip"], guard, step, False)
    loss.item()  # waits for the device
    seconds = (time.perf_counter() - start) / size["vit_steps"]
    if int(guard.first_bad_step) >= 0:
        return "FAIL", f"non-finite gradient at step {int(guard.first_bad_step)}", {}
    return speed(batch / seconds, "images", lambda peak: model.estimate_mfu(batch, seconds, peak), min_vit_mfu)


def check_kernelbench():
    """code_check's reference ReLU kernel, compiled and run against KernelBench's ReLU problem, and its
    body in the CPU emulation that train_rl's execution reward uses without a GPU (the two must
    agree). Without CUDA there is nothing to compile for: the same harness runs with torch.relu
    standing in, beside the emulation."""
    if not kernelbench:
        return "SKIP", "no --kernelbench=PATH (kernelbench.tar.gz, or a directory holding KernelBench/level1)", {}
    problem = relu_problem
    if tiny:  # its module-level sizes (batch_size = 4096, dim = 393216: 6 GB) cut to 64
        problem = re.sub(r"(?m)^(\w+) = \d+$", r"\1 = 64", problem)
    (relu,) = code_check.cuda_tasks(code_check.RELU_KERNEL)
    (task,) = code_check.kernelbench_tasks({code_check.RELU_PROBLEM: problem}, "train")
    emulated = code_check.elementwise_emulate(problem, task, relu.reference)
    if device_type != "cuda":
        result = {**code_check.kernelbench_run(problem, torch.relu, device), "emulated": emulated}
        passed = result["correct"] and emulated["correct"]
        return ("SKIP" if passed else "FAIL", f"{code_check.RELU_PROBLEM}: no CUDA to compile for; the harness with "
                f"torch.relu standing in for the kernel: correct {result['correct']}; the kernel's body emulated on "
                f"the CPU: correct {emulated['correct']}", result)
    result = code_check.kernelbench_check(problem, code_check.RELU_KERNEL, device)
    # train_rl's execution reward: the same kernel's body behind the fixed launcher, through ctypes
    result["execution_reward"] = code_check.elementwise_check(problem, task, relu.reference, device)
    result["emulated"] = emulated
    figures = []
    for name, run in (("load_inline", result), ("execution reward", result["execution_reward"]),
                      ("emulated on the CPU", emulated)):
        figure = f"{name}: compiled {run['compiled']}, correct {run['correct']}"
        if run.get("speedup"):
            figure += f", {run['speedup']:.2f}x PyTorch's speed"
        if run.get("message"):
            figure += f" ({run['message']})"
        figures.append(figure)
    passed = all(run["compiled"] and run["correct"] for run in (result, result["execution_reward"], emulated))
    return "PASS" if passed else "FAIL", f"{code_check.RELU_PROBLEM}: " + "; ".join(figures), result


run_start = time.perf_counter()
for check_name, function in [("gpt2_loss", check_gpt2_loss), ("gpt2_speed", check_gpt2_speed),
                             ("kv_cache", check_kv_cache), ("fp16_scaler", check_fp16_scaler),
                             ("torchrun", check_torchrun), ("vit_speed", check_vit_speed),
                             ("kernelbench", check_kernelbench)]:
    check(check_name, function)
counts = {status: sum(r["status"] == status for r in results.values()) for status in ("PASS", "FAIL", "SKIP")}
summary = dict(device=device_name, torch=torch.__version__, dtype=precision, compile=compile_model, peak_flops=peak,
               tiny=tiny, seconds=round(time.perf_counter() - run_start, 1), **counts, checks=results)
with training.atomic_write(report) as tmp_path, open(tmp_path, "w") as f:
    json.dump(summary, f, indent=1)
print(f"{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP in {summary['seconds']:.0f} s; "
      f"report in {report}")
sys.exit(1 if counts["FAIL"] else 0)
