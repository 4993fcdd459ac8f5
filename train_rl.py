"""
Reinforcement learning from verifiable rewards (RLVR) with GRPO: a trained code GPT writes function
bodies (Python) or kernel bodies (CUDA) for prompts it has not seen, a checker scores them (does the
body parse / compile, and does it do something), and the policy is pushed toward what scored better
than its siblings. No reward model, no value network: the reward is a program's verdict.

    python train_gpt.py config/python_code.py                  # first, a code model to start from
    python train_rl.py config/rl_python_cpu.py                 # then RL on it, ~15 minutes on a CPU
    torchrun --standalone --nproc_per_node=8 train_rl.py config/rl_cuda_gpu.py
    python train_rl.py config/rl_kernelbench_gpu.py --kernelbench=kernelbench.tar.gz   # kernels run: correct, fast

Each step: draw tasks_per_step training tasks; sample group_size completions of each with the KV
cache; score them (code_check.py); turn the rewards into advantages, each completion's reward minus
its group's mean (GRPO, Shao et al. 2024); and raise the log-probability of every token of a
completion in proportion to its advantage, with PPO's clipped ratio when a batch serves several
updates and an optional KL penalty toward the frozen starting model. docs/rl.md has the equations.

Settings are the module-level variables below; config files and then --key=value overrides replace
them, in order (as for train_gpt.py).
"""

import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import replace

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

import code_check
import configurator
import data
import optimizers
import training
from model_gpt import GPT, GPTConfig, KVCache


# -----------------------------------------------------------------------------
# the algorithm, in four functions (tests/test_rl.py checks each against hand-computed values)

def group_advantages(rewards, std_normalize, kept=None, eps=1e-6):
    """rewards (N, G): the rewards of G completions of each of N prompts. A completion's advantage is
    its reward minus its group's mean: better than its siblings is positive, worse is negative, and a
    group whose completions all scored the same teaches nothing (all zeros). std_normalize divides by
    the group's standard deviation (GRPO): every group with any spread gets unit variance, so one
    success in 16 pushes as hard in all as 8 in 16 (that one success about 4x harder). Without it
    (Dr. GRPO, Liu et al. 2025), a group pushes in proportion to its spread of rewards. kept (N, G),
    bool: the completions that count; the others get advantage 0 and stay out of the mean and std."""
    kept = torch.ones_like(rewards) if kept is None else kept.float()
    count = kept.sum(dim=1, keepdim=True).clamp(min=1)
    mean = (rewards * kept).sum(dim=1, keepdim=True) / count                                  # (N, 1)
    advantages = (rewards - mean) * kept                                                      # (N, G)
    if std_normalize:
        std = (((rewards - mean) ** 2 * kept).sum(dim=1, keepdim=True) / count).sqrt()
        advantages = advantages / (std + eps)
    return advantages


def kl_k3(logp, ref_logp):
    """Per-token estimate of KL(policy || reference) from tokens the policy sampled (Schulman's "k3"):
    with r = p_ref(token) / p_policy(token), k3 = r - 1 - log r. It is >= 0 for every token (unlike
    -log r, whose mean is the KL but which is negative half the time), and unbiased: E[r] = 1 under
    the policy, so E[k3] = E[-log r] = KL. Its gradient pulls the policy toward the reference."""
    log_ratio = ref_logp - logp
    return torch.exp(log_ratio) - 1 - log_ratio


def loss_weights(mask, average, total):
    """Each token's weight in the loss (B, T), from mask (B, T): 1 on completion tokens, 0 on the
    prompt and padding. average 'token': every completion token of the global batch weighs the same,
    1 / total, total being the batch's completion tokens (DAPO's token-level mean: a completion
    weighs in proportion to its length). 'completion': each completion's tokens share 1 / total,
    total being the batch's completions (GRPO as published: every completion weighs the same, so a
    long wrong answer is pushed down less per token than a short one)."""
    if average == "token":
        return mask / total
    return mask / (mask.sum(dim=-1, keepdim=True).clamp(min=1) * total)


def policy_loss(logp, old_logp, ref_logp, advantages, weights, clip_eps, kl_coef):
    """The GRPO loss of a batch of completions, all (B, T) but advantages (B, 1):
    logp: log-probabilities of the sampled tokens under the policy being trained (with gradients);
    old_logp: under the policy that sampled them (equal to logp's values on a batch's first update);
    ref_logp: under the frozen starting model (only read when kl_coef > 0);
    weights: each token's weight in the sum (loss_weights), 0 off the completions.
    Per token: -min(ratio * A, clip(ratio, 1 - clip_eps, 1 + clip_eps) * A) + kl_coef * k3, with
    ratio = p / p_old, then the weighted sum."""
    ratio = torch.exp(logp - old_logp)
    # the pessimistic of the two: once the ratio has moved clip_eps in the direction the advantage
    # wants, the clipped term is constant and that token stops pulling (PPO, Schulman et al. 2017)
    per_token = -torch.minimum(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages)
    if kl_coef > 0:
        per_token = per_token + kl_coef * kl_k3(logp, ref_logp)
    return (per_token * weights).sum()


@torch.no_grad()
def sample_groups(model, prompts, n, max_new_tokens, temperature, generators, enders):
    """n completions of each prompt (lists of token ids), all sampled as one batch: the prompts,
    left-padded to the longest, run through the model once into a KV cache, then each step runs only
    the newest token of every row. Prompt i's rows draw from generators[i] alone, so its completions
    do not depend on which other prompts share the batch. enders[i](ids) says whether a completion
    of prompt i already holds a whole answer; sampling stops when every row's does, or after
    max_new_tokens. Returns len(prompts) * n lists of ids, prompt by prompt, each cut after the token
    that ended it, and as many bools: which ended (the others ran out of tokens). The caller keeps
    the longest prompt + max_new_tokens within the context, so the cache never has to slide."""
    device = next(model.parameters()).device
    longest = max(len(p) for p in prompts)
    padded = [[0] * (longest - len(p)) + p for p in prompts for _ in range(n)]
    real = [[0] * (longest - len(p)) + [1] * len(p) for p in prompts for _ in range(n)]
    idx = torch.tensor(padded, dtype=torch.long, device=device)              # (B, longest), B = P * n
    attention_mask = torch.tensor(real, dtype=torch.long, device=device)     # (B, tokens so far)
    cache = KVCache(model.config)
    out = [[] for _ in padded]
    open_rows = set(range(len(padded)))
    for _ in range(max_new_tokens):
        logits, _ = model(idx, attention_mask=attention_mask, kv_cache=cache)  # (B, 1, vocab)
        logits = logits[:, -1, :].float() / temperature
        logits[:, model.config.tokenizer_vocab_size:] = -float("inf")      # padding ids are no tokens
        probs = F.softmax(logits, dim=-1)
        idx = torch.cat([torch.multinomial(probs[i * n:(i + 1) * n], 1, generator=g)
                         for i, g in enumerate(generators)])                 # (B, 1)
        attention_mask = F.pad(attention_mask, (0, 1), value=1)
        for row, token in enumerate(idx[:, 0].tolist()):
            if row in open_rows:
                out[row].append(token)
                if enders[row // n](out[row]):
                    open_rows.discard(row)
        if not open_rows:
            break
    return out, [row not in open_rows for row in range(len(out))]


def length_credit(task, completion, original, floor):
    """The share of its reward a completion (text) keeps under the length reward: 1 if its code
    (code_check.code_size: distinct pairs of code tokens, so that padding counts for nothing) is at
    least floor x the original body's, less in proportion below that. Paid only on top of a passing
    check, it asks for bodies as long as real ones; a length target in the reward is L1's (Aggarwal &
    Welleck 2025)."""
    wanted = floor * code_check.code_size(task, original)
    written = code_check.code_size(task, code_check.cut_completion(task, completion))
    return min(1.0, written / wanted) if wanted > 0 else 1.0


def add_originals(completions, finished, originals, group_size, max_new_tokens):
    """Each prompt's group_size sampled completions (token id lists, prompt by prompt) and their
    finished flags, with the prompt's original body (ids; a code_check.Task's reference) after them
    as one more member of the group: cut at max_new_tokens, and finished only if it fits, as a
    sample would be."""
    out, ended = [], []
    for i, body in enumerate(originals):
        out += completions[i * group_size:(i + 1) * group_size] + [body[:max_new_tokens]]
        ended += finished[i * group_size:(i + 1) * group_size] + [len(body) <= max_new_tokens]
    return out, ended


# -----------------------------------------------------------------------------
# default config: RL on the Python code model of config/python_code.py
# I/O
out_dir = "out-rl-python"
base_dir = "out-python-code"  # the trained GPT RL starts from (its best.pt), and the reference of the KL
eval_interval = 25
log_interval = 1              # a progress line every this many steps (0: none)
eval_tasks = 100              # held-out tasks per evaluation: a fixed sample of the val split's (0: all)
eval_samples = 4              # completions per held-out task
eval_temperature = 0.8        # sampling temperature of the evaluations
eval_iters = 20               # val.bin batches for the held-out LM loss (does RL make it forget?)
eval_only = False             # evaluate once and exit
eval_split = "val"            # the tasks evaluations sample: 'val' (held out) or, with eval_only, 'train' (those RL trains on)
always_save_checkpoint = True  # write ckpt.pt at every eval (else only when the run stops or ends); best.pt when the held-out reward improves
init_from = "base"            # 'base' (base_dir's best.pt), 'resume' (out_dir/ckpt.pt) or 'auto' (resume if it exists)
overwrite = False             # let a fresh run replace the trained model in out_dir
# logging
wandb_log = False
wandb_project = "tinyformers"
wandb_run_name = "rl"
# tasks and rewards (code_check.py)
language = "python"           # 'python' (parses) or 'cuda' (compiles with nvcc)
kernelbench = ""              # KernelBench (kernelbench.tar.gz or its folder): tasks are its elementwise level-1 kernels
                              # (code_check.kernelbench_tasks), not the dataset's; the folder holds KernelBench/
kernelbench_scaffold = False  # kernelbench's prompts also give the thread's element i and the bounds check: the model
                              # writes what y[i] is (code_check.ELEMENTWISE_SCAFFOLD)
execution_reward = False      # with kernelbench: +1 for a correct kernel, +1 more if faster than PyTorch; the kernel runs
                              # on the GPU (code_check.elementwise_check), or without one is emulated on the CPU, untimed
                              # (code_check.elementwise_emulate); both in the sandbox
train_only_tasks = 0          # also train on the tasks of this many generated files, the first of the dataset's train_only
                              # ones (prepare/cuda_code.py --train_only); they are never held out (0: none)
max_new_tokens = 128          # the longest completion; one still open then is scored as it stands
fitting_tasks_only = False    # only tasks whose original body fits in max_new_tokens: a completion as long as
                              # the original could not finish, and an unfinished body is scored as it stands
hint_iters = 0                # reverse curriculum (R3, Xi et al. 2024): a training prompt holds the start of its original
                              # body, all code_check.hint_cuts allows at step 0, less each step, none from hint_iters on (0: off)
original_in_group = False     # each task's original body joins its group as one more completion, scored like the
                              # samples (off-policy guidance, LUFFY: Yan et al. 2025)
reward_valid = 0.0            # partial credit for a body that parses / compiles but does nothing (non-trivial and valid: 1)
reward_store = 0.0            # CUDA: partial credit / nvcc's error count for a body that stores but does not compile
                              # (stores through a pointer parameter; the fewer errors, the nearer it is to compiling)
reward_prefix = 0.0           # Python: partial credit x the share of a body's distinct lines before its first syntax error, for a
                              # body that does not parse but whose lines up to there do something (code_check.parsing_share)
reward_share = 0.0            # with execution_reward: partial credit x the share of output elements right, for a kernel
                              # that is not correct (counted by the CPU emulation, code_check.elementwise_emulate)
length_floor = 0.0            # a body whose code is shorter than length_floor x its original body's (cut at max_new_tokens)
                              # keeps only that share of its reward (length_credit; 0: off)
repeat_discount = False       # Python: a body that parses keeps only the share of its non-blank lines that are distinct
                              # (code_check.distinct_line_share): a line written again costs, as in reward_prefix's share
# GRPO
tasks_per_step = 8            # prompts per step, over all processes
group_size = 8                # completions sampled per prompt (G): the group whose mean is the baseline
temperature = 1.0             # sampling temperature; the policy trained is softmax(logits / temperature)
std_normalize = True          # divide each group's advantages by its reward std (GRPO) or not (Dr. GRPO)
overlong_filter = True        # a completion still open at max_new_tokens gets no advantage (DAPO): its
                              # score judges a body it never finished, and a 0 for it would reward short code
loss_average = "token"        # 'token': every completion token weighs the same (DAPO); 'completion': every completion (GRPO)
updates_per_batch = 1         # optimizer steps per sampled batch: > 1 reuses it, with the clipped ratio
clip_eps = 0.2                # PPO's clip range of the ratio p / p_old
kl_coef = 0.0                 # weight of the k3 KL penalty toward the starting model (0: none)
lm_coef = 0.0                 # weight of a language-model loss on train.bin windows, one per completion,
                              # added to each update (InstructGPT's PPO-ptx): keeps the model of code RL does not sample
batch_size = 16               # sequences per forward/backward per process (memory, not maths)
# optimizer
optimizer = "adamw"           # or 'muon'
learning_rate = 1e-4
max_iters = 100
weight_decay = 0.0
beta1 = 0.9
beta2 = 0.99
grad_clip = 1.0               # clip the gradient norm at this (0 = off)
on_nonfinite = "stop"         # a NaN/inf loss or gradient: 'stop' the run, or 'skip' the step
# learning rate schedule
decay_lr = False
warmup_iters = 0
lr_decay_iters = 0            # where the cosine reaches min_lr; 0 = max_iters
min_lr = 1e-5
# system
device = "auto"               # 'auto' (cuda, else mps, else cpu), 'cpu', 'cuda', 'cuda:1', 'mps'
dtype = "auto"                # 'float32', 'bfloat16', 'float16' or 'auto' (bf16 on modern GPUs and on CPUs with AMX/AVX512-BF16, else fp32)
seed = 1337
# -----------------------------------------------------------------------------
config = configurator.configure(globals(), sys.argv[1:])
globals().update(config)
configurator.check_settings(
    config, at_least_1="eval_interval eval_samples eval_iters max_new_tokens tasks_per_step updates_per_batch batch_size",
    at_least_0="eval_tasks train_only_tasks log_interval hint_iters length_floor kl_coef lm_coef max_iters weight_decay grad_clip warmup_iters lr_decay_iters min_lr",
    positive="temperature eval_temperature clip_eps learning_rate",
    below_1="reward_valid reward_store reward_prefix reward_share clip_eps beta1 beta2",
    choices={"init_from": ("base", "resume", "auto"), "language": ("python", "cuda"), "eval_split": ("val", "train"),
             "optimizer": optimizers.OPTIMIZERS, "loss_average": ("token", "completion")})
if group_size < 2:
    training.fail(f"group_size must be at least 2 (a group of one has no mean to compare with), got {group_size}")
if eval_split == "train" and not eval_only:
    training.fail("eval_split=train measures the tasks RL trains on, for --eval_only=True: a run's evaluations "
                  "and its best.pt are on held-out tasks")
if reward_store and language != "cuda":
    training.fail("reward_store pays a kernel that stores through a pointer but does not compile: "
                  "it needs --language=cuda")
if reward_prefix and language != "python":
    training.fail("reward_prefix pays a Python body by the share of its lines that parse: it needs --language=python")
if repeat_discount and language != "python":
    training.fail("repeat_discount charges a Python body for the lines it writes again (a kernel repeats its closing "
                  "braces): it needs --language=python")
if kernelbench and language != "cuda":
    training.fail("kernelbench's tasks are CUDA kernels: add --language=cuda")
if kernelbench and train_only_tasks:
    training.fail("kernelbench's tasks are its problems, not a dataset's files: leave train_only_tasks at 0")
if kernelbench and (original_in_group or hint_iters or length_floor):
    training.fail("kernelbench's tasks have no original body to add, hint or measure against: "
                  "leave original_in_group, hint_iters and length_floor off")
if kernelbench_scaffold and not kernelbench:
    training.fail("kernelbench_scaffold is part of KernelBench's prompts: pass --kernelbench=kernelbench.tar.gz")
if execution_reward and not kernelbench:
    training.fail("execution_reward runs KernelBench's problems: pass --kernelbench=kernelbench.tar.gz")
if reward_share and not execution_reward:
    training.fail("reward_share pays a share of a kernel's output elements right, which needs the kernels run: "
                  "add --execution_reward=True")
ckpt_path = training.checkpoint_path(out_dir, "last")
init_mode = init_from if init_from != "auto" else ("resume" if os.path.exists(ckpt_path) else "base")

ddp = training.setup_distributed(device)
device_type = ddp.device.split(":")[0]
precision = training.resolve_dtype(dtype, ddp.device)
guard = training.NonFiniteGuard(on_nonfinite, ddp.device, "iter", ckpt_path)
if optimizer == "muon" and precision == "float16":
    training.fail("optimizer=muon does not support float16's grad scaler; use --dtype=bfloat16")
if tasks_per_step % ddp.world_size != 0:
    training.fail(f"tasks_per_step={tasks_per_step} must be a multiple of the number of processes ({ddp.world_size})")
tasks_per_rank = tasks_per_step // ddp.world_size  # each process samples and scores its share of the prompts
if ddp.master:
    print(f"{tasks_per_step} tasks x {group_size} completions per step on {ddp.world_size} process(es), "
          f"device {ddp.device}, {training.describe_dtype(dtype, precision)}")
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
amp = training.autocast(ddp.device, precision)

# -----------------------------------------------------------------------------
# the starting model, its tokenizer and its held-out tokens

base_path = training.checkpoint_path(base_dir, "best")
base = training.load_checkpoint(base_path, "GPT", hint="train a code model first, e.g. python train_gpt.py config/python_code.py")
model_args = base["model_args"]
data_path = data.dataset_path(base["config"], base_dir)
meta = data.read_meta(data_path, f"prepare the dataset {base_dir} was trained on")
encode, decode = data.load_tokenizer(meta, data_path)
start = data.start_ids(meta, data_path, encode)
block_size = model_args["block_size"]
data.check_token_bins(data_path, meta, block_size, f"prepare the dataset {base_dir} was trained on")

model = GPT(GPTConfig(**model_args))   # the policy
model.load_state_dict(base["model"])
reference = GPT(GPTConfig(**model_args))  # the starting model, frozen: the KL penalty's anchor, and what "before" means
reference.load_state_dict(base["model"])
reference.requires_grad_(False)
base = None  # free the memory

# -----------------------------------------------------------------------------
# tasks: the start of a function or kernel whose body the model writes, and the checks that score
# the body (code_check.py). Training tasks come from the training split's files, held-out ones from
# the val split's: the model is evaluated on code it never trained on.

def load_tasks(split):
    """The split's tasks, each with its prompt's token ids; a prompt that leaves fewer than
    max_new_tokens of the context is left out (the cache would have to slide past the prompt's start),
    and with fitting_tasks_only a task whose original body is longer than max_new_tokens.
    Prompts are code_check.open_ended's (a Python prompt without its last newline), each after
    <|endoftext|>, where the model learned files begin (as analysis/code_eval.py prompts it)."""
    if kernelbench:
        tasks = code_check.kernelbench_tasks(problems, split, kernelbench_scaffold)
    else:
        # code_check builds a split's tasks once and caches them in the dataset's directory: rank 0
        # builds, the other ranks wait for it and read them
        if ddp.enabled and not ddp.master:
            dist.barrier()
        tasks = code_check.dataset_tasks(data_path, split, language)
        if ddp.enabled and ddp.master:
            dist.barrier()
    extra = []
    if split == "train" and train_only_tasks:
        extra = code_check.train_only_tasks(data_path, train_only_tasks, language)
        if not extra:
            training.fail(f"train_only_tasks={train_only_tasks}: {data_path} has no train_only files that hold "
                          f"{language} tasks (prepare/cuda_code.py --train_only adds them), or set it to 0")
        tasks = tasks + extra
    tasks = [code_check.open_ended(t) for t in tasks]
    kept = [(task, start + encode(task.prompt)) for task in tasks]
    kept = [(task, ids) for task, ids in kept if len(ids) + max_new_tokens <= block_size]
    too_long = len(tasks) - len(kept)
    if fitting_tasks_only:
        kept = [(task, ids) for task, ids in kept if len(encode(task.reference)) <= max_new_tokens]
    if not kept:
        training.fail(f"none of the {len(tasks)} {language} {split} tasks in {kernelbench or data_path} has a prompt "
                      f"short enough for max_new_tokens={max_new_tokens} in a context of {block_size} tokens"
                      + (" and a body that fits in max_new_tokens" if fitting_tasks_only else ""))
    if ddp.master:
        generated = f"{len(extra)} from train_only files, " if extra else ""
        print(f"{len(kept)} {split} tasks ({generated}{too_long} with a longer prompt left out"
              + (f", {len(tasks) - too_long - len(kept)} with a longer body)" if fitting_tasks_only else ")"))
    return kept


def with_hint(task, ids):
    """A training task (task, prompt ids) at this step of the reverse curriculum: its prompt extended
    with its original body's start up to one of code_check.hint_cuts, the latest of the first
    1 - iter_num / hint_iters of them that leaves max_new_tokens of the context. Hinted or not, the
    reward pays only for the completion, and a body that is non-trivial without the hint's code
    remains to be written."""
    if iter_num >= hint_iters:
        return task, ids
    cuts = code_check.hint_cuts(task)
    for cut in reversed(cuts[:round((1 - iter_num / hint_iters) * (len(cuts) - 1)) + 1]):
        hinted = code_check.hinted(task, cut)
        hinted_ids = start + encode(hinted.prompt)
        if cut == 0 or len(hinted_ids) + max_new_tokens <= block_size:  # cut 0: the task itself, which fits (load_tasks)
            return hinted, hinted_ids


def score(tasks, texts):
    """code_check's Result for each (task, completion text): reward 1 for a body that parses /
    compiles and does something, reward_valid for one that only parses / compiles, reward_store / nvcc's
    errors for a kernel that stores through a pointer but does not compile, reward_prefix x the share of
    its lines before the first syntax error for a Python body that does not parse, 0 otherwise.
    With execution_reward, a kernel that compiled and stores something is also run against its
    problem: +1 if correct, +1 more if faster than PyTorch (on a GPU; the CPU's emulation is untimed),
    else reward_share x the share of its output elements the emulation finds right.
    nvcc and the kernels run in code_check's sandbox (subprocesses); nothing the model wrote ever runs
    in this process."""
    results = code_check.score_many(tasks, texts, reward_valid, reward_store, reward_prefix)
    if not execution_reward:
        return results

    def execute(i):
        problem, task, text = problems[tasks[i].source], tasks[i], texts[i]
        if device_type != "cuda":
            return code_check.elementwise_emulate(problem, task, text)
        run = code_check.elementwise_check(problem, task, text, ddp.device)
        if reward_share and not run["correct"]:  # the GPU's check counts no share: the emulation does
            run["share"] = code_check.elementwise_emulate(problem, task, text)["share"]
        return run

    runnable = [i for i, result in enumerate(results) if result.nontrivial]
    # on a GPU one at a time (kernels side by side time each other); emulated, one per core
    with ThreadPoolExecutor(1 if device_type == "cuda" else os.cpu_count()) as pool:
        runs = list(pool.map(execute, runnable))
    for i, run in zip(runnable, runs):
        correct, speedup = bool(run["correct"]), run["speedup"] or 0.0
        partial = 0.0 if correct else reward_share * run.get("share", 0.0)
        results[i] = replace(results[i], reward=results[i].reward + correct + (correct and speedup > 1) + partial,
                             correct=correct, speedup=speedup)
    return results


def ender(task):
    """ended(ids) for sample_groups: the completion holds a whole body (code_check.body_end), or the
    model ended the file."""
    def ended(ids):
        text = decode(ids)
        return code_check.EOT in text or code_check.body_end(task, text) is not None
    return ended


problems = code_check.kernelbench_problems(kernelbench) if kernelbench else {}  # {name: source}
train_tasks = [] if eval_only else load_tasks("train")  # (CUDA: the first run compiles every reference once)
val_tasks = load_tasks(eval_split)
evaluated = "held-out" if eval_split == "val" else "training-task"  # what the evaluations' lines call their tasks
# the held-out tasks of every evaluation: a fixed sample of eval_tasks (a split's tasks come file by
# file, and the first ones would be a few files' functions), the same whatever the run's seed
val_tasks = random.Random(0).sample(val_tasks, min(eval_tasks or len(val_tasks), len(val_tasks)))
if ddp.master and not kernelbench:  # what a completion's length compares with: a body as long as the original's
    original_length = sum(min(len(encode(task.reference)), max_new_tokens) for task, _ in val_tasks) / len(val_tasks)
    print(f"{len(val_tasks)} held-out tasks: their original bodies, cut at max_new_tokens, are "
          f"{original_length:.1f} tokens long on average")

# -----------------------------------------------------------------------------
# the run's state: fresh from the base model, or resumed

iter_num = 0
last_eval_iter = None  # the iteration whose eval is done: a resumed run does not repeat it
best_reward = -1.0
completion_tokens_seen = 0
elapsed_before = 0.0
checkpoint = None
if init_mode == "resume":
    checkpoint = training.load_checkpoint(ckpt_path, "GPT", hint="start with --init_from=base", resume=True)
    training.check_resume_settings(config, checkpoint, ["base_dir", "language", "kernelbench", "kernelbench_scaffold",
                                                         "train_only_tasks", "max_new_tokens", "fitting_tasks_only"],
                                   ckpt_path)
    model.load_state_dict(checkpoint["model"])
    iter_num = checkpoint["iter_num"]
    last_eval_iter = checkpoint["last_eval_iter"]
    best_reward = checkpoint["best_reward"]
    completion_tokens_seen = checkpoint["tokens_seen"]
    elapsed_before = checkpoint["elapsed_s"]
model.to(ddp.device)
reference.to(ddp.device).eval()
if ddp.master:
    print(f"{model.get_num_params() / 1e6:.2f}M parameters, from {base_path}")

scaler = training.grad_scaler(ddp.device, precision)
optim = optimizers.configure(model, optimizer, weight_decay, learning_rate, (beta1, beta2), device_type)
# draws each step's tasks and each task's sampling seed; identical on every rank, so a task's
# completions are the same whichever process samples them (N processes == one process)
batch_generator = torch.Generator().manual_seed(seed)
if checkpoint is not None:
    try:
        optim.load_state_dict(checkpoint["optimizer"])
    except ValueError as e:
        training.fail(f"{ckpt_path}: {e}")
    training.load_scaler_state(scaler, checkpoint["scaler"])
    batch_generator.set_state(checkpoint["batch_rng"])
    training.set_rng_state(checkpoint["rng"][min(ddp.rank, len(checkpoint["rng"]) - 1)])
checkpoint = None

train_model = DDP(model, device_ids=[ddp.local_rank] if device_type == "cuda" else None) if ddp.enabled else model
stop = training.StopRequest(ddp)
timer = training.Timer()


def sampler(seed_value):
    """A generator for one task's completions, on the device the sampling runs on."""
    return torch.Generator(device=ddp.device).manual_seed(seed_value)


def pack(prompts, completions):
    """Prompt + completion token rows, right-padded into x (B, T) with the next tokens y (B, T) and
    mask (B, T), 1 where y is a completion token. Right padding changes nothing before it: attention
    is causal."""
    rows = [p + c for p, c in zip(prompts, completions)]
    T = max(len(r) for r in rows) - 1
    x = torch.zeros(len(rows), T, dtype=torch.long)
    y = torch.full((len(rows), T), -1, dtype=torch.long)
    mask = torch.zeros(len(rows), T)
    for i, (p, row) in enumerate(zip(prompts, rows)):
        x[i, :len(row) - 1] = torch.tensor(row[:-1])
        y[i, :len(row) - 1] = torch.tensor(row[1:])
        mask[i, len(p) - 1:len(row) - 1] = 1  # y[len(p) - 1] is the completion's first token
    return x.to(ddp.device), y.to(ddp.device), mask.to(ddp.device)


def token_logprobs(net, x, y, temp):
    """Log-probabilities (B, T) of the tokens y under net at temperature temp, and the logits' log-softmax
    (B, T, vocab). -1 targets (prompt, padding) get 0. Through `net` (the DDP wrapper when training),
    which needs targets to return every position's logits; its own loss is not used."""
    with amp:
        logits, _ = net(x, y)
    logprobs = F.log_softmax(logits.float() / temp, dim=-1)                          # (B, T, vocab)
    return logprobs.gather(-1, y.clamp(min=0)[..., None])[..., 0] * (y >= 0), logprobs


def all_ranks_sum(values):
    """The sum of a list of numbers over all processes."""
    t = torch.tensor(values, dtype=torch.float64)
    if ddp.enabled:
        dist.all_reduce(t, group=ddp.cpu_group)
    return t.tolist()


def all_ranks_list(items):
    """Every process's list, concatenated in rank order."""
    if not ddp.enabled:
        return items
    gathered = [None] * ddp.world_size
    dist.all_gather_object(gathered, items, group=ddp.cpu_group)
    return [item for part in gathered for item in part]


def distinct_n(sequences, n):
    """Distinct n-grams over all n-grams of the sequences (Li et al. 2016): near 0 when the samples
    repeat each other or themselves, the mark of a policy collapsing onto one answer."""
    grams = [tuple(s[i:i + n]) for s in sequences for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def lm_batch(split, generator, n):
    """This process's n of a global batch of n * world_size random context windows of split.bin:
    x, y (n, block_size). Every rank draws the whole batch's positions and keeps its share."""
    x, y = data.random_windows(data_path, split, block_size, n, generator, ddp.rank, ddp.world_size)
    return x.to(ddp.device), y.to(ddp.device)


@torch.no_grad()
def val_lm_loss():
    """The language-model loss on eval_iters batches of random windows of val.bin, the same windows
    every time and in every run: what RL costs the model as a model of code."""
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(eval_iters):
        with amp:
            _, loss = model(*lm_batch("val", generator, batch_size))
        losses.append(loss.item())
    return all_ranks_sum([sum(losses) / len(losses)])[0] / ddp.world_size


@torch.no_grad()
def evaluate():
    """The held-out tasks, eval_samples completions each (the same seeds every evaluation, so two
    evaluations differ only by the model), each process its share of the tasks. Returns the record
    to log and three samples to print, or None if a stop was requested meanwhile."""
    model.eval()
    records = []  # per completion: (task number, Result, ids, summed KL, summed entropy, ended)
    # tasks are dealt to the processes in turn, and sampled in batches of as many rows as a training step's
    chunk = max(1, tasks_per_rank * group_size // eval_samples) * ddp.world_size
    for first in range(0, len(val_tasks), chunk):
        if stop.agreed():  # every rank asks equally often: see StopRequest
            model.train()
            return None
        numbers = list(range(first + ddp.rank, min(first + chunk, len(val_tasks)), ddp.world_size))
        if not numbers:
            continue
        tasks = [val_tasks[t][0] for t in numbers]
        prompts = [val_tasks[t][1] for t in numbers]
        with amp:
            completions, ended = sample_groups(model, prompts, eval_samples, max_new_tokens, eval_temperature,
                                               [sampler(seed + 1_000_003 * (t + 1)) for t in numbers],
                                               [ender(task) for task in tasks])
        rows = [i for i in range(len(numbers)) for _ in range(eval_samples)]  # each completion's task
        x, y, mask = pack([prompts[i] for i in rows], completions)
        results = score([tasks[i] for i in rows], [decode(ids) for ids in completions])
        for s in range(0, len(x), batch_size):
            sl = slice(s, s + batch_size)
            _, logprobs = token_logprobs(model, x[sl], y[sl], temperature)           # (b, T, vocab)
            _, ref_logprobs = token_logprobs(reference, x[sl], y[sl], temperature)
            # exact, over the whole vocabulary at each completion token: KL(policy || start) and entropy
            kl = ((logprobs.exp() * (logprobs - ref_logprobs)).sum(-1) * mask[sl]).sum(-1)  # (b,)
            entropy = (-(logprobs.exp() * logprobs).sum(-1) * mask[sl]).sum(-1)              # (b,)
            records += [(numbers[rows[s + j]], results[s + j], completions[s + j], float(k), float(e), ended[s + j])
                        for j, (k, e) in enumerate(zip(kl, entropy))]
    records = sorted(all_ranks_list(records), key=lambda r: r[0])  # task by task, whatever the processes
    model.train()
    numbers, results, completions, kls, entropies, ended = zip(*records)  # one column per figure
    n = len(records)
    n_tokens = sum(len(ids) for ids in completions)
    per_task = {}
    for t, r in zip(numbers, results):
        per_task.setdefault(t, []).append(r.nontrivial)
    result = {
        "reward": sum(r.reward for r in results) / n,
        "valid_rate": sum(r.ok for r in results) / n,                        # parses / compiles
        "nontrivial_rate": sum(r.nontrivial for r in results) / n,           # ... and does something
        # pass@k over tasks, from eval_samples completions each (code_check's unbiased estimator)
        "pass_at_1": sum(code_check.pass_at_k(len(s), sum(s), 1) for s in per_task.values()) / len(per_task),
        "pass_at_k": sum(code_check.pass_at_k(len(s), sum(s), len(s)) for s in per_task.values()) / len(per_task),
        "kl_to_start": sum(kls) / n_tokens,                                  # nats per completion token
        "entropy": sum(entropies) / n_tokens,                                # nats per completion token
        "length": n_tokens / n,                                              # tokens per completion
        "finished_rate": sum(ended) / n,                                     # ended within max_new_tokens
        # tokens per completion that ended: unlike length, not inflated by bodies cut at the cap
        "finished_length": sum(len(ids) for ids, f in zip(completions, ended) if f) / max(1, sum(ended)),
        # tokens per completion that passed: how long the code is that the reward pays for
        "nontrivial_length": sum(len(ids) for ids, r in zip(completions, results) if r.nontrivial)
                             / max(1, sum(r.nontrivial for r in results)),
        "distinct_1": distinct_n(completions, 1),
        "distinct_2": distinct_n(completions, 2),
    }
    if execution_reward:  # KernelBench's fast_0 and fast_1 (timed on a GPU only), over completions
        runs = [vars(r) for r in results]
        result["correct_rate"] = code_check.fast_p(runs, 0.0)
        if device_type == "cuda":
            result["fast_1"] = code_check.fast_p(runs, 1.0)
    samples = [(val_tasks[t][0].prompt, code_check.cut_completion(val_tasks[t][0], decode(ids)), r.reward)
               for t, r, ids, *_ in records[:3 * eval_samples:eval_samples]]
    return result, samples


def save(reason, last=True, best=False):
    """ckpt.pt (last: everything resume needs) and/or best.pt (best: the weights alone, for sample.py
    and code_check's evaluation: a GPT checkpoint like train_gpt.py's)."""
    training.save_run(ddp, guard, out_dir, last, best, model, optim, scaler, kind="gpt", model_args=model_args,
                      config={**config, "data_dir": os.path.dirname(data_path), "dataset": os.path.basename(data_path)},
                      iter_num=iter_num, last_eval_iter=last_eval_iter, best_reward=best_reward,
                      tokens_seen=completion_tokens_seen,
                      elapsed_s=elapsed_before + timer.elapsed(), batch_rng=batch_generator.get_state())
    if ddp.master:
        written = " and ".join(name for name, wanted in (("ckpt.pt", last), ("best.pt", best)) if wanted)
        print(f"saved {written} at iter {iter_num} in {out_dir} ({reason})")


# -----------------------------------------------------------------------------
# training loop
if init_mode != "resume" and not eval_only:
    training.check_fresh_out_dir(out_dir, overwrite)
if ddp.master:
    training.make_dir(out_dir)
    training.remove_stale_temp_files(out_dir)
metrics = training.MetricsLog(out_dir, ddp.master, config, wandb_log, wandb_project, wandb_run_name)
if init_mode == "resume" and not eval_only:
    metrics.forget_after("iter", last_eval_iter)
log_stats = []  # per step since the last log line: (reward, nontrivial rate, length, hint tokens per prompt, credit, correct, seconds)
while True:
    lr = (training.learning_rate_at(iter_num, learning_rate, warmup_iters, lr_decay_iters or max_iters, min_lr)
          if decay_lr else learning_rate)
    for group in optim.param_groups:
        group["lr"] = lr

    due = (iter_num % eval_interval == 0 or iter_num == max_iters) and iter_num != last_eval_iter
    if due or eval_only:
        guard.check()
    evaluation = evaluate() if due or eval_only else None
    if evaluation is not None:
        result, samples = evaluation
        val_loss = val_lm_loss()
        last_eval_iter = iter_num
        if ddp.master:
            print(f"step {iter_num}: {evaluated} reward {result['reward']:.3f}, non-trivial {result['nontrivial_rate']:.1%} "
                  f"({result['nontrivial_length']:.1f} long), valid {result['valid_rate']:.1%}, pass@{eval_samples} {result['pass_at_k']:.1%}, "
                  f"length {result['length']:.1f} ({result['finished_rate']:.0%} finished, {result['finished_length']:.1f} long), KL {result['kl_to_start']:.4f}, entropy {result['entropy']:.3f}, "
                  f"distinct-2 {result['distinct_2']:.3f}, val loss {val_loss:.4f}"
                  + (f", correct {result['correct_rate']:.1%}" if execution_reward else "")
                  + (f", fast_1 {result['fast_1']:.1%}" if "fast_1" in result else ""))
            for prompt, text, reward in samples:
                print(f"--- a {evaluated} sample (reward {reward}):\n{prompt[-200:]}{text}\n---")
        metrics.log({"iter": iter_num, "val_loss": val_loss, **result, "lr": lr,
                     "tokens_seen": completion_tokens_seen, "elapsed_s": round(elapsed_before + timer.elapsed(), 3)})
        improved = result["reward"] > best_reward
        best_reward = max(best_reward, result["reward"])
        if not eval_only and iter_num > 0 and (improved or always_save_checkpoint):
            save("best held-out reward" if improved else "always_save_checkpoint", last=always_save_checkpoint, best=improved)
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

    step_start = time.time()
    # 1. this step's tasks and their sampling seeds, the same draw on every rank; this rank's share
    picks = torch.randint(len(train_tasks), (tasks_per_step,), generator=batch_generator)
    seeds = torch.randint(2 ** 62, (tasks_per_step,), generator=batch_generator)
    mine = range(ddp.rank * tasks_per_rank, (ddp.rank + 1) * tasks_per_rank)
    # 2. sample group_size completions of each task, and score them
    model.eval()
    picked = [train_tasks[int(picks[i])] for i in mine]
    tasks, task_prompts = zip(*[with_hint(*task) for task in picked])
    hint_tokens = sum(len(ids) for ids in task_prompts) - sum(len(ids) for _, ids in picked)
    with amp:
        completions, finished = sample_groups(model, list(task_prompts), group_size, max_new_tokens, temperature,
                                              [sampler(int(seeds[i])) for i in mine], [ender(task) for task in tasks])
    members = group_size + original_in_group  # completions per task
    # each task's original body (ids), for the groups and the length reward; encoded only where one is on
    originals = [encode(task.reference) for task in tasks] if original_in_group or length_floor > 0 else []
    if original_in_group:
        # the original body shows the policy code of the length and shape it would not have sampled
        completions, finished = add_originals(completions, finished, originals, group_size, max_new_tokens)
    prompts = [prompt for prompt in task_prompts for _ in range(members)]  # one per completion
    texts = [decode(ids) for ids in completions]
    results = score([task for task in tasks for _ in range(members)], texts)
    credits = [1.0] * len(completions)
    if length_floor > 0:
        original_texts = [decode(ids[:max_new_tokens]) for ids in originals]
        credits = [length_credit(tasks[j // members], text, original_texts[j // members], length_floor)
                   for j, text in enumerate(texts)]
    if repeat_discount:
        credits = [c * (code_check.distinct_line_share(tasks[j // members], text) if r.ok else 1.0)
                   for j, (text, r, c) in enumerate(zip(texts, results, credits))]
    model.train()
    # 3. advantages within each group, one per completion, shared by all its tokens
    rewards = torch.tensor([r.reward * c for r, c in zip(results, credits)]).view(tasks_per_rank, members)  # (N, members)
    kept = torch.tensor(finished).view(tasks_per_rank, members) if overlong_filter else None
    advantages = group_advantages(rewards, std_normalize, kept).view(-1, 1).to(ddp.device)  # (B, 1)
    x, y, mask = pack(prompts, completions)                                                         # (B, T)
    num_tokens = all_ranks_sum([mask.sum().item()])[0]  # the global batch's completion tokens
    # DDP averages the processes' gradients: each divides by its share of the global batch's total
    weights = loss_weights(mask, loss_average, num_tokens / ddp.world_size if loss_average == "token" else len(x))
    # 4. the log-probabilities the loss compares against, computed once per batch
    with torch.no_grad():
        ref_logp = torch.cat([token_logprobs(reference, x[s:s + batch_size], y[s:s + batch_size], temperature)[0]
                              for s in range(0, len(x), batch_size)]) if kl_coef > 0 else None
        old_logp = torch.cat([token_logprobs(model, x[s:s + batch_size], y[s:s + batch_size], temperature)[0]
                              for s in range(0, len(x), batch_size)]) if updates_per_batch > 1 else None
    # train.bin windows for the LM loss (lm_coef), as many as this process has completions: the
    # same global batch whatever the number of processes
    x_lm, y_lm = lm_batch("train", batch_generator, len(x)) if lm_coef > 0 else (None, None)
    # 5. updates_per_batch optimizer steps on the batch, each accumulated over micro-batches
    starts = list(range(0, len(x), batch_size))
    micro_steps = [(kind, s) for kind in (("rl", "lm") if lm_coef > 0 else ("rl",)) for s in starts]
    for _ in range(updates_per_batch):
        for kind, s in micro_steps:
            sl = slice(s, s + batch_size)
            # DDP all-reduces (averages) gradients in backward; only the last micro-step needs to
            with train_model.no_sync() if ddp.enabled and (kind, s) != micro_steps[-1] else nullcontext():
                if kind == "rl":
                    logp, _ = token_logprobs(train_model, x[sl], y[sl], temperature)
                    # on the first update the sampling policy is this one: ratio 1, REINFORCE's gradient
                    old = logp.detach() if old_logp is None else old_logp[sl]
                    loss = policy_loss(logp, old, None if ref_logp is None else ref_logp[sl], advantages[sl], weights[sl],
                                       clip_eps, kl_coef)
                else:  # the mean over all the windows, once DDP has averaged the processes
                    with amp:
                        _, lm_loss = train_model(x_lm[sl], y_lm[sl])
                    loss = lm_coef * lm_loss * len(x_lm[sl]) / len(x_lm)
                scaler.scale(loss).backward()
        training.optimizer_step(model, optim, scaler, grad_clip, guard, iter_num, ddp.master)

    iter_num += 1
    completion_tokens_seen += int(num_tokens)
    sampled = [(r, ids, c) for j, (r, ids, c) in enumerate(zip(results, completions, credits)) if j % members < group_size]  # not the originals
    totals = all_ranks_sum([sum(r.reward for r, _, _ in sampled), sum(r.nontrivial for r, _, _ in sampled), len(sampled),
                            sum(len(ids) for _, ids, _ in sampled), hint_tokens, sum(c for _, _, c in sampled),
                            sum(r.correct for r, _, _ in sampled)])
    log_stats.append((totals[0] / totals[2], totals[1] / totals[2], totals[3] / totals[2], totals[4] / tasks_per_step,
                      totals[5] / totals[2], totals[6] / totals[2], time.time() - step_start))
    if log_interval > 0 and iter_num % log_interval == 0:
        guard.check()
        if ddp.master:
            reward_mean, rate, length, hint, credit, correct, seconds = (sum(col) / len(log_stats) for col in zip(*log_stats))
            print(f"iter {iter_num}: reward {reward_mean:.3f}, non-trivial {rate:.1%}, length {length:.1f}, "
                  + (f"correct {correct:.1%}, " if execution_reward else "")
                  + (f"hint {hint:.1f} tokens, " if hint_iters > 0 else "")
                  + (f"credit {credit:.2f}, " if length_floor > 0 or repeat_discount else "") + f"{seconds:.2f} s/iter")
        log_stats = []

del train_model  # it holds the process group, which cleanup_distributed must be able to free
training.cleanup_distributed(ddp)
