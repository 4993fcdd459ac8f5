"""
Training plumbing shared by the training scripts, kept in one small file so the scripts stay flat:
  - fail(): bad input ends in a one-line error, not a traceback;
  - devices, DDP (torchrun) and mixed precision;
  - the learning-rate schedule (linear warmup, cosine decay);
  - checkpoints that survive a crash (atomic writes, safe loads, exact RNG state for resume);
  - stop signals (SIGTERM, Ctrl-C) and the guard against non-finite steps;
  - metric logs (log.jsonl, log.csv, optionally Weights & Biases).
Settings live in configurator.py, datasets in data.py, optimizers in optimizers.py.
"""

import csv
import json
import math
import os
import pickle
import random
import re
import signal
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from zipfile import is_zipfile

import numpy as np
import torch
import torch.distributed as dist


def fail(message):
    """Stop with a one-line error instead of a traceback: bad input is the user's to fix, not a bug.
    Under torchrun every process finds the same bad input: only the first one (RANK 0) says so."""
    if int(os.environ.get("RANK", 0)) != 0:
        raise SystemExit(1)
    raise SystemExit(f"error: {message}")


# -----------------------------------------------------------------------------
# devices, distributed data parallel, mixed precision

def pick_device(device):
    """The device a setting names: 'auto' (cuda, else mps, else cpu), 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        fail(f"device must be auto, cpu, cuda, cuda:N or mps, got '{device}'")
    if device.startswith("cuda:") and torch.cuda.is_available() and int(device[5:]) >= torch.cuda.device_count():
        fail(f"device={device}, but PyTorch sees {torch.cuda.device_count()} CUDA GPU(s) here (cuda:0 ...)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        fail(f"device={device}, but PyTorch sees no CUDA GPU here; use --device=cpu or --device=auto")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        fail("device=mps, but PyTorch sees no Apple GPU here; use --device=cpu or --device=auto")
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def available_cores():
    """CPU cores this process may run on (a container or `taskset` may allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass
class Distributed:
    enabled: bool     # launched by torchrun with a process group
    rank: int         # global rank of this process
    local_rank: int   # rank on this node: picks the GPU
    world_size: int
    device: str       # the device this process runs on: 'cpu', 'cuda:3', 'mps' (never 'auto')
    master: bool      # rank 0 logs, evaluates the log lines and writes checkpoints
    cpu_group: object = None  # a gloo group over the same ranks, for small CPU-side agreements


def setup_distributed(device):
    """Join the torchrun process group if we were launched by torchrun (it sets RANK), else run alone."""
    device = pick_device(device)
    if int(os.environ.get("RANK", -1)) == -1:
        return Distributed(False, 0, 0, 1, device, True)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    # imported after the group exists (DDP imports it), torch._dynamo keeps references to the group
    # that stop cleanup_distributed from freeing it
    import torch._dynamo  # noqa: F401
    # a timeout, so a rank that died makes the others fail instead of hanging forever
    dist.init_process_group(backend, timeout=timedelta(minutes=10))
    # collectives on CPU tensors (the stop flag) go through gloo: under NCCL they would need a GPU
    # tensor, and reading its result back would wait for all the GPU work queued before it
    cpu_group = dist.new_group(backend="gloo") if backend == "nccl" else dist.group.WORLD
    return Distributed(True, rank, local_rank, world_size, device, rank == 0, cpu_group)


def cleanup_distributed(ddp):
    """Leave the process group and free it, which stops gloo's threads while Python is whole: left
    running until interpreter exit, they can abort a run that went well (SIGABRT). Freed only if
    nothing else refers to it: the caller drops its DDP wrapper first, this drops ddp.cpu_group, and
    setup_distributed keeps torch._dynamo from holding it."""
    if ddp.enabled:
        dist.barrier()  # no rank tears down its connections while another still talks to it
        ddp.cpu_group = None
        dist.destroy_process_group()


def cpu_flags():
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo ('avx2', 'amx_bf16', ...);
    empty where there is no such file (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((line for line in f if line.startswith("flags")), "flags:")
    except OSError:
        return set()
    return set(line.split(":", 1)[1].split())


def resolve_dtype(dtype, device):
    """'auto' means bf16 on GPUs that have it, fp16 on older GPUs, bf16 on CPUs that multiply bf16 in
    hardware (AMX or AVX512-BF16), fp32 elsewhere: other CPUs emulate bf16 through fp32, many
    times slower."""
    if dtype == "auto":
        if device.startswith("cuda"):
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        if device == "cpu" and cpu_flags() & {"amx_bf16", "avx512_bf16"}:
            return "bfloat16"
        return "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        fail(f"dtype must be float32, bfloat16, float16 or auto, got '{dtype}'")
    if dtype == "float16" and not device.startswith("cuda"):
        fail("dtype=float16 needs a CUDA GPU; use --dtype=bfloat16 or --dtype=float32")
    return dtype


def describe_dtype(dtype, precision):
    """What the run uses, and whether dtype=auto chose it: 'bfloat16 (dtype=auto)'."""
    return f"{precision} (dtype=auto)" if dtype == "auto" else precision


def resolve_compile(compile, device):
    """'auto' compiles on CUDA only: there it pays back its minutes soon; on a CPU it takes minutes
    and gains little (see the README). An explicit True or False is obeyed anywhere."""
    if compile == "auto":
        return device.startswith("cuda")
    if not isinstance(compile, bool):
        fail(f"compile must be True, False or auto, got {compile!r}")
    return compile


def autocast(device, dtype):
    """Mixed precision: matmuls in bf16/fp16, weights and optimizer state stay fp32."""
    if dtype == "float32":
        return nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, dtype))  # cuda, cpu or mps


def grad_scaler(device, dtype):
    """fp16 gradients underflow without loss scaling; bf16 and fp32 have fp32's range and need none."""
    return torch.amp.GradScaler("cuda", enabled=(dtype == "float16"))


def load_scaler_state(scaler, state):
    """A run saved in bf16 or fp32 has a disabled scaler, whose state is empty; resumed in fp16 (as
    dtype=auto does on a GPU without bf16) it starts a fresh scaler, which finds its scale in a few steps."""
    if scaler.is_enabled() and not state:
        print("resuming in float16 from a run without loss scaling: starting a fresh grad scaler")
        return
    scaler.load_state_dict(state)


# -----------------------------------------------------------------------------
# learning rate: linear warmup, then cosine decay to min_lr

def learning_rate_at(it, learning_rate, warmup_iters, lr_decay_iters, min_lr):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    progress = (it - warmup_iters) / max(1, lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return min_lr + coeff * (learning_rate - min_lr)


# -----------------------------------------------------------------------------
# checkpoints: atomic writes, safe loads, and the RNG state that makes resume exact

@contextmanager
def atomic_write(path):
    """
    Yield a temp path in path's directory to write to; when the block ends, fsync it and os.replace
    it over path. Every file this project writes (checkpoints, token bins, meta.json) goes through
    here, so a crash at any moment leaves either the old file or the new one, never half of one.
    A write that fails (a full disk, a read-only folder, a file where a folder should be) is a
    one-line error naming the path.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp_path = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        os.makedirs(directory, exist_ok=True)
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as e:
        if os.path.isfile(tmp_path):
            os.remove(tmp_path)
        # only errors of this write (a full disk's names no file; making the directory names it or a
        # parent): reading an input inside the block can fail too, and that is not this path's problem
        if isinstance(e, OSError) and (e.filename is None or os.path.abspath(e.filename) == os.path.abspath(path)
                                       or (directory + os.sep).startswith(os.path.abspath(e.filename) + os.sep)
                                       or e.filename == tmp_path):
            fail(f"could not write {path}: {e.strerror or e}; free some space or write elsewhere (--out_dir)")
        raise
    dir_fd = os.open(directory, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def make_dir(path):
    """os.makedirs(path, exist_ok=True), failing in one line where a file is in the way or the
    directory cannot be made."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        reason = "a file has that name" if isinstance(e, FileExistsError) else e.strerror or str(e)
        fail(f"could not create the directory {path}: {reason}; choose another one")


def remove_stale_temp_files(directory):
    """Delete the .tmp-PID-* files atomic_write left behind when a process was killed mid-write
    (SIGKILL, power loss): their PID no longer runs. A live writer's file is left alone."""
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        pid = name.split("-")[1] if name.startswith(".tmp-") and name.count("-") >= 2 else ""
        if pid.isdigit() and not pid_alive(int(pid)):
            os.remove(os.path.join(directory, name))
            print(f"removed {os.path.join(directory, name)}, left by an interrupted write")


def pid_alive(pid):
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user's process
    return True


def save_checkpoint(checkpoint, path):
    with atomic_write(path) as tmp_path, open(tmp_path, "wb") as f:
        torch.save(checkpoint, f)


# A run keeps two checkpoints in its out_dir, for two different jobs:
#   ckpt.pt  the latest state: weights, optimizer, RNGs, position in the data. Resume reads it.
#   best.pt  the weights with the best validation score so far, and the settings that made them,
#            without the optimizer (what only resuming needs). sample.py and analysis/ read it.
CHECKPOINT_FILES = {"last": "ckpt.pt", "best": "best.pt"}
RESUME_ONLY_KEYS = ("optimizer", "scaler", "rng", "batch_rng")


def checkpoint_path(out_dir, which):
    if which not in CHECKPOINT_FILES:
        fail(f"ckpt must be 'best' (best.pt) or 'last' (ckpt.pt), got {which!r}")
    return os.path.join(out_dir, CHECKPOINT_FILES[which])


def save_run_checkpoints(checkpoint, out_dir, last, best):
    """Write ckpt.pt (if last) and best.pt (if best) from one full checkpoint dict."""
    if last:
        save_checkpoint(checkpoint, checkpoint_path(out_dir, "last"))
    if best:
        weights = {k: v for k, v in checkpoint.items() if k not in RESUME_ONLY_KEYS}
        save_checkpoint(weights, checkpoint_path(out_dir, "best"))


def save_run(ddp, guard, out_dir, last, best, model, optim, scaler, **state):
    """A training script's checkpoint: model (the plain module: compiled and DDP wrappers would prefix
    every key), optimizer, grad scaler, every rank's RNGs and the script's own `state`, as ckpt.pt (last)
    and/or best.pt (best). Never a model a non-finite step has poisoned. A collective: every rank
    calls it, rank 0 writes."""
    guard.check()
    all_rng = all_rng_states(ddp)
    if ddp.master:
        save_run_checkpoints({**state, "model": model.state_dict(), "optimizer": optim.state_dict(),
                              "scaler": scaler.state_dict(), "rng": all_rng}, out_dir, last, best)


def check_is_file(path, what, missing):
    """One line for a path that is a directory where `what` (a file) should be, or `missing` if nothing is there."""
    if os.path.isdir(path):
        fail(f"{path} is a directory, not {what}")
    if not os.path.isfile(path):
        fail(missing)


CHECKPOINT_KEYS = ("model", "model_args", "config")  # in every checkpoint the training scripts write


def load_checkpoint(path, model_name, hint="train first, or check --out_dir", resume=False):
    """A checkpoint of model_name ("GPT" or "ViT"; None: either), with the keys every checkpoint has
    (and, to resume from, the optimizer's and the RNGs' state, which best.pt lacks). weights_only=True:
    a checkpoint is data, and loading one must never run code from it."""
    check_is_file(path, "a checkpoint file", f"no checkpoint at {path}; {hint}")
    if not is_zipfile(path):  # torch.save writes a zip archive, whose index is at its very end
        fail(f"{path} is truncated or not a checkpoint (no intact zip archive): a copy or a save that was cut "
             f"short? Copy it again, or train again")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        fail(f"{path} was refused as unsafe: it holds Python objects other than tensors and plain data, and "
             f"loading those could run code. Use a checkpoint written by this project's training scripts")
    except Exception as e:
        fail(f"{path} is damaged ({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}); "
             f"copy it again, or train again")
    if not isinstance(checkpoint, dict) or checkpoint.get("kind") not in (
            ("gpt", "vit") if model_name is None else (model_name.lower(),)):
        kind = checkpoint.get("kind") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        fail(f"{path} is a {str(kind)[:40]!r} checkpoint, not a {model_name or 'GPT or ViT'}'s")
    missing = [key for key in CHECKPOINT_KEYS + (("optimizer", "rng") if resume else ()) if key not in checkpoint]
    if missing:
        fail(f"{path} lacks {', '.join(missing)}" + (": best.pt holds weights only, resume needs a ckpt.pt"
                                                     if resume and "model_args" not in missing else
                                                     ": it was not written by this project's training scripts"))
    if not all(isinstance(checkpoint[key], dict) for key in CHECKPOINT_KEYS):  # scripts unpack them: **model_args
        fail(f"{path} has a model, model_args or config that is not a table: it was not written by this "
             f"project's training scripts")
    return checkpoint


def check_fresh_out_dir(out_dir, overwrite):
    """A run that starts from scratch (or from GPT-2) must not silently replace a trained model."""
    trained = [name for name in CHECKPOINT_FILES.values() if os.path.exists(os.path.join(out_dir, name))]
    if trained and not overwrite:
        fail(f"{out_dir} already holds a trained model ({', '.join(trained)}): continue it with --init_from=resume, "
             f"train elsewhere with --out_dir, or replace it with --overwrite=True")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        fail(f"out_dir {out_dir} is a file, not a directory")


def check_resume_settings(config, checkpoint, keys, ckpt_path):
    """Resuming trains the checkpoint's model: a setting of that model given differently now would be
    ignored, then saved in the checkpoint's config as if it had been used. Refuse, naming them."""
    saved = checkpoint["config"]
    changed = [key for key in keys if key in saved and config[key] != saved[key]]
    if changed:
        given = ", ".join(f"--{key}={saved[key]} (now {config[key]})" for key in changed)
        fail(f"{ckpt_path} was trained with {given}: resume with the checkpoint's settings "
             f"({' '.join(f'--{key}={saved[key]}' for key in changed)}), or start a new run in another --out_dir")


def load_trained(out_dir, which, model_name=None):
    """The checkpoint that sampling and analysis read: best.pt (which='best') or ckpt.pt ('last')."""
    path = checkpoint_path(out_dir, which)
    hint = "train first, or check --out_dir"
    if which == "best" and os.path.isfile(checkpoint_path(out_dir, "last")):
        hint = "no evaluation has improved on the first one yet; --ckpt=last reads the latest, ckpt.pt"
    return load_checkpoint(path, model_name, hint)


def export_safetensors(model, path):
    """Model weights alone, in the safetensors format: loadable anywhere without pickle."""
    try:
        from safetensors.torch import save_model
    except ImportError:
        fail("exporting safetensors needs the safetensors package: pip install safetensors")
    with atomic_write(path) as tmp_path:
        save_model(model, tmp_path)  # unlike save_file, it handles tied weights (wte = lm_head)


def rng_state():
    """Every random number generator the training loop draws from, in a weights_only-safe form."""
    np_state = np.random.get_state()
    return {
        "python": list(random.getstate()[1]),
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def all_rng_states(ddp):
    """Every rank's rng_state() (dropout draws differ per rank), gathered for rank 0 to save.
    A collective: every rank must call it."""
    if not ddp.enabled:
        return [rng_state()]
    states = [None] * ddp.world_size
    dist.all_gather_object(states, rng_state())
    return states


def set_rng_state(state):
    random.setstate((3, tuple(state["python"]), None))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -----------------------------------------------------------------------------
# preemption: SIGTERM/SIGINT ask for a clean stop at the next step boundary

class StopRequest:
    """
    SIGTERM (a cluster's preemption notice) or Ctrl-C sets a flag; the training loop asks `.agreed()`
    at step boundaries and stops there, with a checkpoint. Under DDP all ranks must stop at the same
    step, so they compare flags, every `every` calls and over the CPU group: the check never waits
    for the GPU, and costs one small CPU collective every few steps.
    """

    def __init__(self, ddp, every=10):
        self.ddp, self.every, self.calls = ddp, every, 0
        self.requested = False  # this process got a signal
        self.stopping = False   # the ranks agreed to stop: from then on every call says so
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C means now
        self.requested = True

    def agreed(self):
        """True on every rank if any rank was asked to stop (so no rank waits forever on the others).
        Every rank must call it equally often: the calls are counted to decide when to compare."""
        if not self.ddp.enabled:
            return self.requested
        self.calls += 1
        if not self.stopping and self.calls % self.every == 0:
            flag = torch.tensor([float(self.requested)])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.ddp.cpu_group)
            self.stopping = bool(flag.item())
        return self.stopping


def ignore_stop_signals(worker_id):
    """DataLoader worker_init_fn. A cluster sends SIGTERM to the whole process group; a worker that
    died of it would crash the main process before it reached the step boundary where it saves.
    The main process owns the stop, and shuts its workers down itself."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class NonFiniteGuard:
    """
    A NaN/inf gradient poisons every weight it touches. Each step hands its gradient norm to
    `step_ok(grad_norm, step)`:
    on_nonfinite='stop': the test stays on the device (reading it every step would stall a GPU
    while it drains its queue); `check()`, called before every log line, evaluation and save, ends
    the run naming the first bad step, so a poisoned model is never logged as fine nor saved.
    on_nonfinite='skip': a step must be skipped before it is taken, so the norm is read every step
    (a host sync on GPUs: the price of skipping instead of stopping).
    """

    def __init__(self, on_nonfinite, device, step_name, checkpoint):
        if on_nonfinite not in ("stop", "skip"):
            fail(f"on_nonfinite must be 'stop' or 'skip', got '{on_nonfinite}'")
        self.skip = on_nonfinite == "skip"
        self.step_name, self.checkpoint = step_name, checkpoint
        self.first_bad_step = torch.full((), -1, dtype=torch.long, device=device)

    def step_ok(self, grad_norm, step):
        """False if this step must be skipped; grad_norm is a 0-d tensor (clip_grad_norm_'s result)."""
        finite = torch.isfinite(grad_norm)
        if self.skip:
            return bool(finite)
        self.first_bad_step = torch.where(finite | (self.first_bad_step >= 0), self.first_bad_step, step)
        return True

    def check(self):
        """End the run if a step so far had a non-finite gradient (reads one number from the device)."""
        bad_step = int(self.first_bad_step)
        if bad_step >= 0:
            fail(f"non-finite loss/gradient at {self.step_name} {bad_step}; the last good checkpoint "
                 f"{self.checkpoint} is untouched. Lower learning_rate, or --on_nonfinite=skip")


def optimizer_step(model, optim, scaler, grad_clip, guard, step, master):
    """The end of a training step: unscale the gradients (fp16), clip their norm (grad_clip=0: only
    measure it, for the guard), step unless the guard skips this step, and zero the gradients."""
    scaler.unscale_(optim)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip > 0 else float("inf"))
    # fp16's GradScaler skips its own overflowing steps; otherwise the guard watches the gradient
    if scaler.is_enabled() or guard.step_ok(grad_norm, step):
        scaler.step(optim)
    elif master:
        print(f"{guard.step_name} {step}: non-finite gradient, step skipped")
    scaler.update()
    optim.zero_grad(set_to_none=True)


# -----------------------------------------------------------------------------
# logging: one JSON line (and CSV row) per evaluation for plots, optionally Weights & Biases

class MetricsLog:
    def __init__(self, out_dir, enabled, config, wandb_log=False, wandb_project="", wandb_run_name=""):
        self.enabled = enabled
        self.jsonl_path = os.path.join(out_dir, "log.jsonl")
        self.csv_path = os.path.join(out_dir, "log.csv")
        self.csv_fields = None
        self.wandb = None
        if enabled and wandb_log:
            import wandb  # optional at run time: only imported when asked for
            self.wandb = wandb.init(project=wandb_project, name=wandb_run_name, config=config)

    def forget_after(self, key, value):
        """Drop the records whose `key` is past `value`. A resumed run calls it with its checkpoint's
        position: a run that crashed between logging an evaluation and saving its checkpoint would
        otherwise log that evaluation twice."""
        if not self.enabled or not os.path.exists(self.jsonl_path):
            return
        with open(self.jsonl_path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        kept = [r for r in records if value is not None and r.get(key, value) <= value]
        if len(kept) == len(records):
            return
        with atomic_write(self.jsonl_path) as tmp_path, open(tmp_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
        if os.path.exists(self.csv_path):
            with open(self.csv_path, newline="") as f:
                fields = next(csv.reader(f), list(kept[0]) if kept else [])
            with atomic_write(self.csv_path) as tmp_path, open(tmp_path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(kept)
        print(f"{self.jsonl_path}: dropped {len(records) - len(kept)} record(s) logged after the checkpoint")

    def log(self, record):
        if not self.enabled:
            return
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.csv_fields is None:
            new_file = not os.path.exists(self.csv_path)
            self.csv_fields = list(record)
            if not new_file:
                with open(self.csv_path, newline="") as f:
                    self.csv_fields = next(csv.reader(f), self.csv_fields)
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.csv_fields, extrasaction="ignore")
            if f.tell() == 0:
                writer.writeheader()
            writer.writerow(record)
        if self.wandb is not None:
            self.wandb.log(record)


def duration(seconds):
    """A time for a progress line: 45s, 3m10s, 2h05m."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Timer:
    """Wall seconds since the start of training, for logs and checkpoints."""

    def __init__(self):
        self.start = time.time()

    def elapsed(self):
        return time.time() - self.start
