"""
Train a GPT. With no arguments: a small character-level GPT on tiny Shakespeare, on whatever device
you have, that learns visibly in a few minutes on a laptop CPU.

    python train_gpt.py                                        # the defaults below
    python train_gpt.py config/shakespeare_char.py --compile=False --max_iters 500
    torchrun --standalone --nproc_per_node=8 train_gpt.py config/openwebtext.py

Settings are the module-level variables below; config files (plain Python assignments) and then
--key=value overrides replace them, in order.
"""

import difflib
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import configurator
import data
import optimizers
import training
from model_gpt import GPT, GPTConfig

# -----------------------------------------------------------------------------
# default config: nanoGPT's "baby GPT" on tiny Shakespeare, sized for a CPU
# I/O
out_dir = "out-shakespeare-char"
eval_interval = 250
log_interval = 10             # a progress line every this many iterations (0: none)
eval_iters = 100
eval_only = False             # evaluate once and exit
always_save_checkpoint = True  # write ckpt.pt at every eval (else only when the run stops or ends); best.pt is written whenever val loss improves
init_from = "scratch"         # 'scratch', 'resume' (from out_dir/ckpt.pt), 'auto' (resume if it exists) or 'gpt2*'
overwrite = False             # let a fresh run replace the trained model in out_dir
# logging
wandb_log = False
wandb_project = "tinyformers"
wandb_run_name = "gpt"
# data
data_dir = "data"
dataset = "shakespeare_char"  # data_dir/dataset/{train.bin, val.bin, meta.json}
gradient_accumulation_steps = 1  # micro-steps per optimizer step, summed over all processes
batch_size = 12               # sequences per micro-step per process
block_size = 64
# model
n_layer = 4
n_head = 4
n_embd = 128
dropout = 0.0
bias = False
flash = True                  # F.scaled_dot_product_attention; False = the explicit math
# architecture options (model_gpt.py; the defaults are GPT-2's)
pos_encoding = "learned"      # 'learned', 'sinusoidal', 'rope' or 'none'
rope_theta = 10000.0
norm = "layernorm"            # or 'rmsnorm'
norm_eps = 1e-5
norm_placement = "pre"        # or 'post' (the 2017 Transformer)
qk_norm = False
mlp = "gelu"                  # 'gelu', 'relu', 'relu2' or 'swiglu'
mlp_hidden = 0                # 0 = 4 * n_embd (swiglu: 2/3 of that)
tie_weights = True
# optimizer
optimizer = "adamw"           # or 'muon' (2-D block matrices; AdamW for the rest)
learning_rate = 2e-3          # measured: 2e-3 beats nanoGPT's 1e-3 for this small model (val 1.81 vs 1.89)
max_iters = 2000
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.99
grad_clip = 1.0               # clip the gradient norm at this (0 = off)
on_nonfinite = "stop"         # a NaN/inf loss or gradient: 'stop' the run, or 'skip' the step
export = ""                   # 'safetensors': also write the weights to out_dir/model.safetensors
# learning rate schedule
decay_lr = True
warmup_iters = 100
lr_decay_iters = 0            # where the cosine reaches min_lr (~ max_iters, per Chinchilla); 0 = max_iters
min_lr = 2e-4                 # ~ learning_rate / 10
# system
device = "auto"               # 'auto' (cuda, else mps, else cpu), 'cpu', 'cuda', 'cuda:1', 'mps'
dtype = "auto"                # 'float32', 'bfloat16', 'float16' or 'auto' (bf16 on modern GPUs and on CPUs with AMX/AVX512-BF16, else fp32)
compile = "auto"              # torch.compile the model: 'auto' = on CUDA only (minutes to compile, faster after)
peak_flops = 0.0              # your hardware's peak FLOP/s (e.g. 989e12 for H100 bf16) to log MFU
seed = 1337
# -----------------------------------------------------------------------------
config = configurator.configure(globals(), sys.argv[1:])
globals().update(config)
configurator.check_settings(
    config, at_least_1="batch_size block_size n_layer n_head n_embd eval_interval eval_iters gradient_accumulation_steps",
    at_least_0="max_iters warmup_iters lr_decay_iters min_lr weight_decay grad_clip mlp_hidden peak_flops log_interval",
    positive="learning_rate rope_theta norm_eps", below_1="beta1 beta2 dropout",
    choices={"optimizer": optimizers.OPTIMIZERS, "export": ("", "safetensors")})

pretrained = init_from.startswith("gpt2") or os.path.isdir(init_from)  # OpenAI's weights, or a local HF copy
if init_from not in ("scratch", "resume", "auto") and not pretrained:
    training.fail(f"init_from must be scratch, resume, auto, gpt2/gpt2-medium/gpt2-large/gpt2-xl or a local "
                  f"Hugging Face GPT-2 directory, got '{init_from}'")
ckpt_path = training.checkpoint_path(out_dir, "last")
init_mode = init_from if init_from != "auto" else ("resume" if os.path.exists(ckpt_path) else "scratch")
if os.path.exists(out_dir) and not os.path.isdir(out_dir):  # before any work, not after the model is built
    training.fail(f"out_dir {out_dir} is a file, not a directory")

ddp = training.setup_distributed(device)  # ddp.device: the device this process runs on
device_type = ddp.device.split(":")[0]    # 'cuda', 'cpu' or 'mps'
precision = training.resolve_dtype(dtype, ddp.device)
compile_model = training.resolve_compile(compile, ddp.device)
guard = training.NonFiniteGuard(on_nonfinite, ddp.device, "iter", ckpt_path)
if optimizer == "muon" and precision == "float16":
    training.fail("optimizer=muon does not support float16's grad scaler; use --dtype=bfloat16")
if gradient_accumulation_steps % ddp.world_size != 0:
    training.fail(f"gradient_accumulation_steps={gradient_accumulation_steps} must be a multiple of "
                  f"the number of processes ({ddp.world_size})")
# each process does its share of the micro-steps; together they make the same global batch
micro_steps = gradient_accumulation_steps // ddp.world_size
tokens_per_iter = gradient_accumulation_steps * batch_size * block_size
if ddp.master:
    print(f"tokens per iteration: {tokens_per_iter:,} on {ddp.world_size} process(es), device {ddp.device}, {training.describe_dtype(dtype, precision)}")
torch.manual_seed(seed + ddp.rank)  # dropout differs per rank; batches come from batch_generator
if device_type == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores where any are left
    torch.backends.cudnn.allow_tf32 = True
amp = training.autocast(ddp.device, precision)

# -----------------------------------------------------------------------------
# data: a flat array of uint16 token ids per split, random windows of block_size + 1 tokens
data_path = os.path.join(data_dir, dataset)
prepare_script = os.path.join("prepare", f"{dataset}.py")
prepare_hint = (f"python {prepare_script}" if os.path.exists(prepare_script)
                else f"run a prepare/ script with --out_dir {data_path}")
if not os.path.exists(os.path.join(data_path, "meta.json")) and not os.path.exists(prepare_script):
    known = [name[:-3] for name in os.listdir("prepare") if name.endswith(".py")] if os.path.isdir("prepare") else []
    nearest = difflib.get_close_matches(dataset, known, n=1, cutoff=0.6)
    if nearest:
        prepare_hint += f" (did you mean --dataset={nearest[0]}?)"
if dataset == "shakespeare_char" and not os.path.exists(os.path.join(data_path, "meta.json")) and ddp.master:
    from prepare.shakespeare_char import prepare  # the default run prepares its own data
    prepare(data_path)
if ddp.enabled:
    dist.barrier()
meta = data.read_meta(data_path, prepare_hint)
meta_vocab_size = meta["vocab_size"]

data.check_token_bins(data_path, meta, block_size, prepare_hint)


def get_batch(split, generator):
    """Sample batch_size random windows. Every rank draws the same indices for the whole global batch
    from its own copy of the generator and keeps its slice, so N processes see exactly the batch
    one process with N times the gradient accumulation would."""
    x, y = data.random_windows(data_path, split, block_size, batch_size, generator, ddp.rank, ddp.world_size)
    if int(y.max()) >= meta_vocab_size:  # cheap on the CPU, and an embedding lookup would crash cryptically
        training.fail(f"{split}.bin holds token id {int(y.max())} but meta.json says vocab_size={meta_vocab_size}: "
                      f"the dataset and its meta.json disagree; prepare it again: {prepare_hint}")
    if device_type == "cuda":
        # pinned memory lets the copy to the GPU run asynchronously
        return x.pin_memory().to(ddp.device, non_blocking=True), y.pin_memory().to(ddp.device, non_blocking=True)
    return x.to(ddp.device), y.to(ddp.device)


# -----------------------------------------------------------------------------
# model
iter_num = 0
last_eval_iter = None  # the iteration whose eval is done: a resumed run does not repeat it
best_val_loss = 1e9
tokens_seen = 0
elapsed_before = 0.0  # training seconds of the run(s) this one resumes
checkpoint = None
# The embedding and the output head get the vocabulary rounded up to a multiple of 64, a shape GPUs'
# fastest matmul kernels handle (nanoGPT's largest single speed-up: GPT-2's 50257 -> 50304). The extra
# ids never occur in the data, so training pushes their logits down, and generate() never samples them.
padded_vocab_size = 64 * math.ceil(meta_vocab_size / 64)
model_args = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size, bias=bias,
                  vocab_size=padded_vocab_size, tokenizer_vocab_size=meta_vocab_size, dropout=dropout,
                  flash=flash, pos_encoding=pos_encoding, rope_theta=rope_theta, norm=norm, norm_eps=norm_eps,
                  norm_placement=norm_placement, qk_norm=qk_norm, mlp=mlp, mlp_hidden=mlp_hidden,
                  tie_weights=tie_weights)
if init_mode == "scratch":
    try:
        model = GPT(GPTConfig(**model_args))
    except ValueError as e:  # an unknown option value or a bad shape
        training.fail(str(e))
elif init_mode == "resume":
    checkpoint = training.load_checkpoint(ckpt_path, "GPT", hint="train first, or use --init_from=scratch", resume=True)
    training.check_resume_settings(config, checkpoint, ["n_layer", "n_head", "n_embd", "bias", "pos_encoding",
                                   "rope_theta", "norm", "norm_eps", "norm_placement", "qk_norm", "mlp",
                                   "mlp_hidden", "tie_weights"], ckpt_path)
    # the architecture comes from the checkpoint; only dropout may change when resuming
    model_args = {**checkpoint["model_args"], "dropout": dropout, "flash": flash}
    model = GPT(GPTConfig(**model_args))
    if model.config.tokenizer_vocab_size != meta_vocab_size:
        training.fail(f"{ckpt_path} was trained with vocab_size {model.config.tokenizer_vocab_size} but "
                      f"{data_path}/meta.json says {meta_vocab_size}: wrong --dataset?")
    model.load_state_dict(checkpoint["model"])
    iter_num = checkpoint["iter_num"]
    last_eval_iter = checkpoint["last_eval_iter"]
    best_val_loss = checkpoint["best_val_loss"]
    tokens_seen = checkpoint["tokens_seen"]
    elapsed_before = checkpoint["elapsed_s"]
    if ddp.master:
        print(f"resumed from {ckpt_path} at iter {iter_num}/{max_iters} (best val loss {best_val_loss:.4f})")
else:
    try:
        model = GPT.from_pretrained(init_from, dict(dropout=dropout))
    except (ValueError, RuntimeError, OSError) as e:
        training.fail(str(e))
    if meta.get("tokenizer") != "gpt2":
        training.fail(f"init_from={init_from} needs a dataset in GPT-2 tokens, but {data_path} uses the "
                      f"{meta.get('tokenizer')!r} tokenizer (e.g. prepare/shakespeare.py)")
    model_args = asdict(model.config)
if block_size > model.config.block_size:
    training.fail(f"block_size={block_size} is larger than the model's context of {model.config.block_size}")
if block_size < model.config.block_size:
    model.crop_block_size(block_size)
    model_args["block_size"] = block_size
model.to(ddp.device)
if ddp.master:
    print(f"{model.get_num_params() / 1e6:.2f}M parameters")

scaler = training.grad_scaler(ddp.device, precision)
optim = optimizers.configure(model, optimizer, weight_decay, learning_rate, (beta1, beta2),
                             device_type)
batch_generator = torch.Generator().manual_seed(seed)  # identical on every rank: see get_batch
if checkpoint is not None:
    try:
        optim.load_state_dict(checkpoint["optimizer"])
    except ValueError as e:
        training.fail(f"{ckpt_path}: {e}")
    training.load_scaler_state(scaler, checkpoint["scaler"])
    batch_generator.set_state(checkpoint["batch_rng"])
    training.set_rng_state(checkpoint["rng"][min(ddp.rank, len(checkpoint["rng"]) - 1)])
checkpoint = None  # free the memory

# `model` stays the plain module (what we save); `fast_model` may be compiled; `train_model` adds DDP
fast_model = torch.compile(model) if compile_model else model
train_model = DDP(fast_model, device_ids=[ddp.local_rank] if device_type == "cuda" else None) if ddp.enabled else fast_model
if compile_model and ddp.master:
    print("torch.compile: the first evaluation and step compile the model (minutes on a CPU; --compile=False skips it)")

stop = training.StopRequest(ddp)  # SIGTERM / Ctrl-C: save and stop at the next step boundary
timer = training.Timer()
# the first batch; from then on each micro-step fetches the next one while the device computes
next_batch_rng = batch_generator.get_state()  # the generator before that batch: what a checkpoint saves
X, Y = get_batch("train", batch_generator)


@torch.no_grad()
def estimate_loss():
    """Mean loss over eval_iters batches of each split, the same batches every time (a fixed
    generator) so successive evals compare like with like; averaged over all processes."""
    fast_model.eval()
    out = {}
    for split in ("train", "val"):
        generator = torch.Generator().manual_seed(seed + 1)
        losses = torch.zeros(eval_iters, device=ddp.device)
        for k in range(eval_iters):
            if stop.agreed():  # a long eval must not outlive a preemption notice
                fast_model.train()
                return None
            X, Y = get_batch(split, generator)
            with amp:
                _, loss = fast_model(X, Y)
            losses[k] = loss
        mean = losses.mean()
        if ddp.enabled:
            dist.all_reduce(mean)  # a sum (gloo has no average)
            mean /= ddp.world_size
        out[split] = mean.item()
    fast_model.train()
    return out


def save(reason, last=True, best=False):
    """ckpt.pt (last: everything resume needs) and/or best.pt (best: the weights alone)."""
    training.save_run(ddp, guard, out_dir, last, best, model, optim, scaler, kind="gpt", model_args=model_args,
                      config=config, iter_num=iter_num, last_eval_iter=last_eval_iter, best_val_loss=best_val_loss,
                      tokens_seen=tokens_seen, elapsed_s=elapsed_before + timer.elapsed(),
                      batch_rng=next_batch_rng)  # the generator before the prefetched batch: resume draws it again
    if not ddp.master:
        return
    if last and export == "safetensors":
        training.export_safetensors(model, os.path.join(out_dir, "model.safetensors"))
    written = " and ".join(name for name, wanted in (("ckpt.pt", last), ("best.pt", best)) if wanted)
    print(f"saved {written} at iter {iter_num} in {out_dir} ({reason})")


# -----------------------------------------------------------------------------
# training loop
if init_mode != "resume" and not eval_only:
    training.check_fresh_out_dir(out_dir, overwrite)  # on every rank: none may wait for one that stopped
if ddp.master:
    training.make_dir(out_dir)
    training.remove_stale_temp_files(out_dir)
metrics = training.MetricsLog(out_dir, ddp.master, config, wandb_log, wandb_project, wandb_run_name)
if init_mode == "resume" and not eval_only:
    metrics.forget_after("iter", last_eval_iter)
step_seconds, steps_since_log = 0.0, 0  # training steps since the last log line, and their time (evals excluded)
flops_per_token = model.estimate_flops_per_token()
eval_seconds, tokens_at_eval = 0.0, tokens_seen  # training time and tokens since the last eval: its throughput
while True:
    lr = (training.learning_rate_at(iter_num, learning_rate, warmup_iters, lr_decay_iters or max_iters, min_lr)
          if decay_lr else learning_rate)
    for group in optim.param_groups:
        group["lr"] = lr

    due = (iter_num % eval_interval == 0 or iter_num == max_iters) and iter_num != last_eval_iter
    if due or eval_only:
        guard.check()  # a poisoned model is neither evaluated as fine nor saved
    losses = estimate_loss() if due or eval_only else None
    if losses is not None:
        last_eval_iter = iter_num
        if ddp.master:
            print(f"iter {iter_num}/{max_iters}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        metrics.log({"iter": iter_num, "train_loss": losses["train"], "val_loss": losses["val"], "lr": lr,
                     "tokens_seen": tokens_seen, "flops": tokens_seen * flops_per_token,
                     "tokens_per_s": round((tokens_seen - tokens_at_eval) / eval_seconds, 1) if eval_seconds else None,
                     "elapsed_s": round(elapsed_before + timer.elapsed(), 3)})
        eval_seconds, tokens_at_eval = 0.0, tokens_seen
        improved = losses["val"] < best_val_loss
        best_val_loss = min(best_val_loss, losses["val"])
        if not math.isfinite(losses["val"]):
            if ddp.master:
                print(f"val loss is {losses['val']}: not saving this model over the last good checkpoint")
        elif not eval_only and iter_num > 0 and (improved or always_save_checkpoint):
            save("best val loss" if improved else "always_save_checkpoint", last=always_save_checkpoint, best=improved)
    if eval_only:
        break
    if iter_num >= max_iters:
        if not always_save_checkpoint:
            save("end of training")
        break
    if stop.agreed():
        save("stop requested")
        if ddp.master:
            print(f"stopped at iter {iter_num}; continue with the same command and --init_from=resume")
        break

    # one optimizer step = gradient_accumulation_steps micro-steps, micro_steps on each process
    step_start = time.time()
    for micro_step in range(micro_steps):
        last = micro_step == micro_steps - 1
        # DDP all-reduces gradients in backward; only the last micro-step needs to
        with train_model.no_sync() if ddp.enabled and not last else nullcontext():
            with amp:
                _, loss = train_model(X, Y)
                loss = loss / micro_steps  # the mean over micro-steps, not the sum
            # fetch the next batch on the CPU while the GPU runs this forward (it runs asynchronously)
            next_batch_rng = batch_generator.get_state()
            X, Y = get_batch("train", batch_generator)
            scaler.scale(loss).backward()
    training.optimizer_step(model, optim, scaler, grad_clip, guard, iter_num, ddp.master)

    iter_num += 1
    tokens_seen += tokens_per_iter
    log_now = log_interval > 0 and iter_num % log_interval == 0
    if log_now:
        guard.check()
        loss_value = loss.item() * micro_steps  # waits for the device: the time below is real
    step_time = time.time() - step_start
    step_seconds += step_time
    steps_since_log += 1
    eval_seconds += step_time
    if log_now and ddp.master:
        # per step since the last line (a resumed run's first line covers fewer than log_interval)
        dt, step_seconds, steps_since_log = step_seconds / steps_since_log, 0.0, 0
        # per device: peak_flops is one device's peak, and each process does 1/world_size of the tokens
        mfu = model.estimate_mfu(tokens_per_iter / ddp.world_size, dt, peak_flops)
        mfu_text = f", mfu {mfu * 100:.1f}%" if peak_flops else ""
        print(f"iter {iter_num}/{max_iters}: loss {loss_value:.4f}, {dt * 1000:.1f} ms/iter, "
              f"{tokens_per_iter / dt:,.0f} tokens/s{mfu_text}, ~{training.duration((max_iters - iter_num) * dt)} left")

del train_model  # it holds the process group, which cleanup_distributed must be able to free
training.cleanup_distributed(ddp)
