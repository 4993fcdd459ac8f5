"""
Fine-tune a GPT to classify text: a linear head on the final hidden state of each text's last token
(model_gpt.GPTClassifier), trained with cross-entropy on labelled texts.

    python train_classifier.py config/classify_shakespeare_cpu.py    # who is speaking? a CPU run
    python train_classifier.py config/classify_sst2_gpt2.py          # SST-2 sentiment from GPT-2 small, one GPU
    python train_classifier.py --train_file=train.jsonl --val_file=val.jsonl --init_from=out-shakespeare-char
    python train_classifier.py --out_dir=out-speakers --predict="O Romeo, Romeo! wherefore art thou Romeo?"

The backbone (init_from): 'scratch' (a fresh GPT of the shape below, with the tokenizer named by
`tokenizer`), the out_dir of a train_gpt.py run (its best.pt, and the tokenizer of the dataset it
was trained on), or GPT-2's weights ('gpt2'... or a local Hugging Face GPT-2 directory).
'resume' / 'auto' continue this classifier's own out_dir/ckpt.pt.

Texts longer than block_size tokens keep their LAST block_size tokens: the head reads the last
token, so it then reads the text's true ending (where a review's verdict or a speech's cadence
usually is) with the most context before it. Each batch is padded to its longest text.
"""

import json
import math
import os
import sys
import time
from dataclasses import asdict

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import configurator
import data
import training
from analysis.common import save_figure
from analysis.metrics import classification_report, confusion_matrix, plot_confusion_matrix
from model_gpt import GPT, GPTClassifier, GPTConfig

# -----------------------------------------------------------------------------
# default config: a small GPT from scratch on your own JSONL files
# I/O
out_dir = "out-classifier"
eval_interval = 100           # evaluate on the whole validation set every this many iterations (and at the end)
log_interval = 10
init_from = "scratch"         # 'scratch', a train_gpt.py out_dir, 'gpt2*' or a local HF GPT-2 directory; 'resume' or 'auto' (resume if out_dir/ckpt.pt exists)
overwrite = False             # let a fresh run replace the trained classifier in out_dir
predict = ""                  # a text: print its class and the class probabilities (out_dir/best.pt), then exit
# logging
wandb_log = False
wandb_project = "tinyformers"
wandb_run_name = "classifier"
# data
dataset = ""                  # 'sst2', 'ag_news' or 'imdb' (Hugging Face datasets); '' = train_file and val_file
train_file = ""               # JSONL, one {"text": ..., "label": ...} per line; labels all ints, or all strings
val_file = ""
block_size = 256              # tokens per text at most (longer texts keep their end)
padding_side = "right"        # 'right' or 'left': where a batch pads its shorter texts (same results)
tokenizer = "gpt2"            # init_from=scratch only: 'gpt2', or 'char' (every character of the texts)
batch_size = 32               # texts per step per process
# model (init_from=scratch; a pretrained backbone brings its own shape)
n_layer = 4
n_head = 4
n_embd = 128
dropout = 0.0
bias = False
trainable_blocks = -1         # -1: train everything; N >= 0: freeze the backbone except its last N blocks and ln_f
# optimizer: AdamW, linear warmup then cosine decay
learning_rate = 1e-3
max_iters = 1000
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.99
grad_clip = 1.0               # clip the gradient norm at this (0 = off)
on_nonfinite = "stop"         # a NaN/inf loss or gradient: 'stop' the run, or 'skip' the step
decay_lr = True
warmup_iters = 50
lr_decay_iters = 0            # where the cosine reaches min_lr; 0 = max_iters
min_lr = 1e-4
# system
device = "auto"               # 'auto' (cuda, else mps, else cpu), 'cpu', 'cuda', 'cuda:1', 'mps'
dtype = "auto"                # 'float32', 'bfloat16', 'float16' or 'auto' (bf16 on modern GPUs and on CPUs with AMX/AVX512-BF16, else fp32)
compile = "auto"              # torch.compile the model: 'auto' = on CUDA only
seed = 1337
# -----------------------------------------------------------------------------
config = configurator.configure(globals(), sys.argv[1:])
globals().update(config)
configurator.check_settings(
    config, at_least_1="batch_size block_size n_layer n_head n_embd eval_interval",
    at_least_0="max_iters warmup_iters lr_decay_iters min_lr weight_decay grad_clip log_interval",
    positive="learning_rate", below_1="beta1 beta2 dropout",
    choices={"padding_side": ("right", "left"), "tokenizer": ("gpt2", "char")})

# the three Hugging Face datasets: (hub name, validation split, text column); label names come from the hub
HF_DATASETS = {"sst2": ("stanfordnlp/sst2", "validation", "sentence"),  # its test split has no labels
               "ag_news": ("fancyzhx/ag_news", "test", "text"),
               "imdb": ("stanfordnlp/imdb", "test", "text")}
if dataset and dataset not in HF_DATASETS:
    training.fail(f"dataset must be '' (train_file/val_file) or one of {', '.join(HF_DATASETS)}, got '{dataset}'")
if not predict and not dataset and not (train_file and val_file):
    training.fail("name the data: --dataset=sst2|ag_news|imdb, or --train_file=X.jsonl --val_file=Y.jsonl")
ckpt_path = training.checkpoint_path(out_dir, "last")
init_mode = init_from if init_from != "auto" else ("resume" if os.path.exists(ckpt_path) else "scratch")
if init_mode not in ("scratch", "resume"):
    if os.path.isfile(training.checkpoint_path(init_from, "best")):
        init_mode = "ours"  # a train_gpt.py out_dir
    elif init_from.startswith("gpt2") or os.path.isdir(init_from):
        init_mode = "gpt2"
    else:
        training.fail(f"init_from must be scratch, resume, auto, a train_gpt.py out_dir (with best.pt), "
                      f"gpt2/gpt2-medium/gpt2-large/gpt2-xl or a local Hugging Face GPT-2 directory, got '{init_from}'")


ddp = training.setup_distributed(device)  # ddp.device: the device this process runs on
device_type = ddp.device.split(":")[0]    # 'cuda', 'cpu' or 'mps'
precision = training.resolve_dtype(dtype, ddp.device)
compile_model = training.resolve_compile(compile, ddp.device)
guard = training.NonFiniteGuard(on_nonfinite, ddp.device, "iter", ckpt_path)
torch.manual_seed(seed + ddp.rank)  # dropout differs per rank; batches come from train_batch
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
amp = training.autocast(ddp.device, precision)


def classifier_from_checkpoint(checkpoint):
    """The GPTClassifier and its tokenizer's encode function, as a classifier checkpoint saved them."""
    model = GPTClassifier(GPT(GPTConfig(**checkpoint["model_args"])), len(checkpoint["class_names"]))
    model.load_state_dict(checkpoint["model"])
    encode, _ = data.load_tokenizer(checkpoint["tokenizer_meta"], checkpoint["tokenizer_dir"])
    return model, encode


def pad_batch(token_lists, side):
    """(idx, attention_mask), both (B, longest): token lists padded with 0 on the given side."""
    longest = max(len(tokens) for tokens in token_lists)
    idx = torch.zeros(len(token_lists), longest, dtype=torch.long)
    mask = torch.zeros(len(token_lists), longest, dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        start = 0 if side == "right" else longest - len(tokens)
        idx[row, start:start + len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[row, start:start + len(tokens)] = 1
    return idx, mask


if predict:  # classify one text with out_dir/best.pt and exit
    checkpoint = training.load_trained(out_dir, "best", "Classifier")
    model, encode = classifier_from_checkpoint(checkpoint)
    tokens = encode(predict)[-model.gpt.config.block_size:]
    if not tokens:
        training.fail("--predict needs a non-empty text")
    with torch.no_grad():
        logits, _ = model.to(ddp.device).eval()(torch.tensor([tokens], device=ddp.device))
    probs = torch.softmax(logits[0].float(), dim=-1)
    names = checkpoint["class_names"]
    print(f"{names[int(probs.argmax())]}")
    for i in probs.argsort(descending=True).tolist():
        print(f"  {probs[i]:.4f}  {names[i]}")
    sys.exit(0)

# -----------------------------------------------------------------------------
# data: texts and integer labels, with the class names in label order


def label_ids(train_labels, val_labels):
    """(train ids, val ids, class names). Int labels are their own ids (names '0', '1', ...); string
    labels are numbered in sorted order, so the numbering does not depend on the order of the file."""
    kinds = {type(label) for label in train_labels + val_labels}
    if len(kinds) > 1:
        training.fail("labels must be all ints or all strings, not a mix")
    if kinds == {int}:
        names = [str(i) for i in range(max(train_labels) + 1)]
        ids = {i: i for i in range(len(names))}
    else:
        names = sorted(set(train_labels))
        ids = {name: i for i, name in enumerate(names)}
    unseen = sorted({str(label) for label in val_labels if label not in ids})
    if unseen:
        training.fail(f"validation labels {', '.join(unseen)} never occur in the training data")
    return [ids[label] for label in train_labels], [ids[label] for label in val_labels], names


def load_hf_dataset(name):
    """(train texts, train labels, val texts, val labels, class names) of sst2, ag_news or imdb."""
    hub_name, val_split, column = HF_DATASETS[name]
    try:
        from datasets import load_dataset
        data = load_dataset(hub_name)
    except Exception as e:  # offline, or the hub is down
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        training.fail(f"could not load {hub_name} from the Hugging Face hub ({first_line}); "
                      f"write it as JSONL and pass --train_file/--val_file")
    names = data["train"].features["label"].names  # e.g. ['negative', 'positive']
    return (list(data["train"][column]), list(data["train"]["label"]),
            list(data[val_split][column]), list(data[val_split]["label"]), names)


if dataset:
    train_texts, train_labels, val_texts, val_labels, class_names = load_hf_dataset(dataset)
else:
    train_texts, train_labels = data.read_jsonl(train_file)
    val_texts, val_labels = data.read_jsonl(val_file)
    train_labels, val_labels, class_names = label_ids(train_labels, val_labels)
n_classes = len(class_names)
if n_classes < 2:
    training.fail(f"classification needs at least 2 classes, the training data has {n_classes}")

# -----------------------------------------------------------------------------
# backbone, head and tokenizer
iter_num = 0
last_eval_iter = 0              # the iteration whose eval is done: a resumed run does not repeat it
best_accuracy = -1.0
loss_sum, loss_count = 0.0, 0   # this process's training losses since the last evaluation, for its log record
elapsed_before = 0.0            # training seconds of the run(s) this one resumes
checkpoint = None
if init_mode == "resume":
    checkpoint = training.load_checkpoint(ckpt_path, "Classifier", hint="train first, or use another --init_from", resume=True)
    if len(checkpoint["class_names"]) != n_classes:
        training.fail(f"{ckpt_path} has {len(checkpoint['class_names'])} classes, the data has {n_classes}: "
                      f"resume with the data it was trained on")
    if checkpoint["class_names"] != class_names:
        training.fail(f"{ckpt_path} has the classes {checkpoint['class_names']}, the data has {class_names}")
    if checkpoint["config"]["trainable_blocks"] != trainable_blocks:
        training.fail(f"resume with the checkpoint's --trainable_blocks={checkpoint['config']['trainable_blocks']}")
    model_args = {**checkpoint["model_args"], "dropout": dropout}
    tokenizer_meta, tokenizer_dir = checkpoint["tokenizer_meta"], checkpoint["tokenizer_dir"]
    gpt = GPT(GPTConfig(**model_args))
elif init_mode == "ours":
    backbone = training.load_trained(init_from, "best", "GPT")
    model_args = {**backbone["model_args"], "dropout": dropout}
    gpt = GPT(GPTConfig(**model_args))
    gpt.load_state_dict(backbone["model"])
    tokenizer_dir = os.path.join(backbone["config"]["data_dir"], backbone["config"]["dataset"])
    tokenizer_meta = data.read_meta(tokenizer_dir, f"the backbone {init_from} was trained on it; prepare it again")
    del backbone
elif init_mode == "gpt2":
    try:
        gpt = GPT.from_pretrained(init_from, dict(dropout=dropout))
    except (ValueError, RuntimeError, OSError) as e:
        training.fail(str(e))
    model_args = asdict(gpt.config)
    tokenizer_meta, tokenizer_dir = {"tokenizer": "gpt2", "vocab_size": 50257}, ""
else:
    if tokenizer == "char":  # every character of the texts, in a fixed order
        itos = sorted(set("".join(train_texts) + "".join(val_texts)))
        tokenizer_meta = {"tokenizer": "char", "itos": itos, "vocab_size": len(itos)}
    else:
        tokenizer_meta = {"tokenizer": "gpt2", "vocab_size": 50257}
    tokenizer_dir = ""
    # the vocabulary rounded up to a multiple of 64, as in train_gpt.py
    model_args = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size, bias=bias,
                      vocab_size=64 * math.ceil(tokenizer_meta["vocab_size"] / 64),
                      tokenizer_vocab_size=tokenizer_meta["vocab_size"], dropout=dropout)
    try:
        gpt = GPT(GPTConfig(**model_args))
    except ValueError as e:
        training.fail(str(e))
if block_size > gpt.config.block_size:
    training.fail(f"block_size={block_size} is larger than the backbone's context of {gpt.config.block_size}")
if block_size < gpt.config.block_size:
    gpt.crop_block_size(block_size)
    model_args["block_size"] = block_size
model = GPTClassifier(gpt, n_classes)
if checkpoint is not None:
    model.load_state_dict(checkpoint["model"])
model.freeze(trainable_blocks)
model.to(ddp.device)
encode, _ = data.load_tokenizer(tokenizer_meta, tokenizer_dir)

# every text as token ids, cut to its last block_size tokens
train_tokens = [encode(text)[-block_size:] for text in train_texts]
val_tokens = [encode(text)[-block_size:] for text in val_texts]
global_batch = batch_size * ddp.world_size
steps_per_epoch = len(train_tokens) // global_batch
if steps_per_epoch == 0:
    training.fail(f"batch_size={batch_size} x {ddp.world_size} process(es) is more than the "
                  f"{len(train_tokens)} training texts")
if ddp.master:
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"{len(train_tokens):,} train and {len(val_tokens):,} val texts, {n_classes} classes; "
          f"{model.gpt.get_num_params() / 1e6:.2f}M backbone parameters, {n_trainable / 1e6:.2f}M trained; "
          f"device {ddp.device}, {training.describe_dtype(dtype, precision)}")


def train_batch(it):
    """This process's share of iteration it's batch, padded: (idx, attention_mask, labels) on the device.
    Every epoch is a fresh permutation of the training set drawn from (seed, epoch), so the batches
    are a pure function of the iteration: a resumed run draws exactly those the stopped one would have."""
    epoch, step = divmod(it, steps_per_epoch)
    order = torch.randperm(len(train_tokens), generator=torch.Generator().manual_seed(seed + epoch))
    rows = order[step * global_batch: (step + 1) * global_batch][ddp.rank * batch_size: (ddp.rank + 1) * batch_size]
    idx, mask = pad_batch([train_tokens[i] for i in rows], padding_side)
    labels = torch.tensor([train_labels[i] for i in rows])
    return idx.to(ddp.device), mask.to(ddp.device), labels.to(ddp.device)


# -----------------------------------------------------------------------------
# optimizer: weight decay on matrices only, as in optimizers.configure
trainable = [p for p in model.parameters() if p.requires_grad]
optim = torch.optim.AdamW([{"params": [p for p in trainable if p.dim() >= 2], "weight_decay": weight_decay},
                           {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0}],
                          lr=learning_rate, betas=(beta1, beta2))
scaler = training.grad_scaler(ddp.device, precision)
if checkpoint is not None:
    optim.load_state_dict(checkpoint["optimizer"])
    training.load_scaler_state(scaler, checkpoint["scaler"])
    training.set_rng_state(checkpoint["rng"][min(ddp.rank, len(checkpoint["rng"]) - 1)])
    iter_num, last_eval_iter, best_accuracy = checkpoint["iter_num"], checkpoint["last_eval_iter"], checkpoint["best_accuracy"]
    loss_sum, loss_count, elapsed_before = checkpoint["loss_sum"], checkpoint["loss_count"], checkpoint["elapsed_s"]
checkpoint = None  # free the memory
loss_sum = torch.tensor(loss_sum, device=ddp.device)  # float32, as the losses it sums

# `model` stays the plain module (what we save); `fast_model` may be compiled; `train_model` adds DDP
fast_model = torch.compile(model, dynamic=True) if compile_model else model  # batches vary in length
train_model = DDP(fast_model, device_ids=[ddp.local_rank] if device_type == "cuda" else None) if ddp.enabled else fast_model
stop = training.StopRequest(ddp)  # SIGTERM / Ctrl-C: save and stop at the next step boundary
timer = training.Timer()


@torch.no_grad()
def evaluate():
    """Loss, predictions and confusion matrix over the whole validation set. The texts go in order of
    length (so each batch has little padding), each process taking every world_size-th one; the
    predictions are merged by an all-reduce (max) over a vector that is -1 where a process did not look."""
    fast_model.eval()
    by_length = sorted(range(len(val_tokens)), key=lambda i: len(val_tokens[i]))[ddp.rank::ddp.world_size]
    predictions = torch.full((len(val_tokens),), -1, dtype=torch.long, device=ddp.device)
    total_loss = torch.zeros((), device=ddp.device)
    for start in range(0, len(by_length), 2 * batch_size):
        rows = by_length[start: start + 2 * batch_size]
        idx, mask = pad_batch([val_tokens[i] for i in rows], padding_side)
        labels = torch.tensor([val_labels[i] for i in rows], device=ddp.device)
        with amp:
            logits, loss = fast_model(idx.to(ddp.device), mask.to(ddp.device), labels)
        total_loss += loss * len(rows)
        predictions[torch.tensor(rows, device=ddp.device)] = logits.argmax(dim=-1)
    if ddp.enabled:
        dist.all_reduce(total_loss)
        dist.all_reduce(predictions, op=dist.ReduceOp.MAX)
    fast_model.train()
    predictions = predictions.cpu()
    matrix = confusion_matrix(predictions, torch.tensor(val_labels), n_classes)
    return total_loss.item() / len(val_tokens), predictions, matrix


def write_eval(val_loss, predictions, matrix):
    """out_dir/eval.json and confusion_matrix.png: the metrics of the model in best.pt."""
    report = classification_report(matrix)
    per_class = {name: {"precision": report["precision"][i], "recall": report["recall"][i],
                        "f1": report["f1"][i], "support": int(matrix[i].sum())} for i, name in enumerate(class_names)}
    result = {"iter": iter_num, "checkpoint": "best.pt", "n_val": len(val_tokens), "val_loss": val_loss,
              "accuracy": report["accuracy"], "macro_precision": report["macro_precision"],
              "macro_recall": report["macro_recall"], "macro_f1": report["macro_f1"],
              # always answering the most frequent validation class: what a classifier must beat
              "majority_baseline_accuracy": matrix.sum(dim=1).max().item() / len(val_tokens),
              "class_names": class_names, "per_class": per_class, "confusion_matrix": matrix.tolist(),
              "predictions": predictions.tolist()}  # in val file order, as class ids
    with training.atomic_write(os.path.join(out_dir, "eval.json")) as tmp_path, open(tmp_path, "w") as f:
        json.dump(result, f, indent=1)
    fig = plot_confusion_matrix(matrix, class_names, f"validation, iter {iter_num}: accuracy {report['accuracy']:.1%}, "
                                                     f"macro F1 {report['macro_f1']:.3f}")
    save_figure(fig, os.path.join(out_dir, "confusion_matrix.png"))
    return report


def save(reason, best=False):
    """ckpt.pt (everything resume needs) and, if best, best.pt (the weights, for --predict)."""
    training.save_run(ddp, guard, out_dir, True, best, model, optim, scaler, kind="classifier", model_args=model_args,
                      class_names=class_names, tokenizer_meta=tokenizer_meta, tokenizer_dir=tokenizer_dir,
                      config=config, iter_num=iter_num, last_eval_iter=last_eval_iter, best_accuracy=best_accuracy,
                      loss_sum=loss_sum.item(), loss_count=loss_count, elapsed_s=elapsed_before + timer.elapsed())
    if ddp.master:
        print(f"saved ckpt.pt{' and best.pt' if best else ''} at iter {iter_num} in {out_dir} ({reason})")


# -----------------------------------------------------------------------------
# training loop
if init_mode != "resume":
    training.check_fresh_out_dir(out_dir, overwrite)  # on every rank: none may wait for one that stopped
if ddp.master:
    training.make_dir(out_dir)
    training.remove_stale_temp_files(out_dir)
metrics = training.MetricsLog(out_dir, ddp.master, config, wandb_log, wandb_project, wandb_run_name)
if init_mode == "resume":
    metrics.forget_after("iter", last_eval_iter)
log_start = time.time()
while True:
    lr = (training.learning_rate_at(iter_num, learning_rate, warmup_iters, lr_decay_iters or max_iters, min_lr)
          if decay_lr else learning_rate)
    for group in optim.param_groups:
        group["lr"] = lr

    if (iter_num % eval_interval == 0 or iter_num == max_iters) and iter_num != last_eval_iter:
        guard.check()
        val_loss, predictions, matrix = evaluate()
        last_eval_iter = iter_num
        report = classification_report(matrix)
        train_loss = loss_sum.item() / max(1, loss_count)
        loss_sum, loss_count = torch.zeros((), device=ddp.device), 0
        improved = report["accuracy"] > best_accuracy and math.isfinite(val_loss)
        best_accuracy = max(best_accuracy, report["accuracy"]) if improved else best_accuracy
        if ddp.master:
            print(f"step {iter_num}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
                  f"accuracy {report['accuracy']:.2%}, macro F1 {report['macro_f1']:.4f}")
            metrics.log({"iter": iter_num, "train_loss": train_loss, "val_loss": val_loss,
                         "accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "lr": lr,
                         "elapsed_s": round(elapsed_before + timer.elapsed(), 3)})
            if improved:
                write_eval(val_loss, predictions, matrix)
        if math.isfinite(val_loss):
            save("best val accuracy" if improved else "evaluation", best=improved)
        elif ddp.master:
            print(f"val loss is {val_loss}: not saving this model over the last good checkpoint")
    if iter_num >= max_iters:
        break
    if stop.agreed():
        save("stop requested")
        if ddp.master:
            print(f"stopped at iter {iter_num}; continue with the same command and --init_from=resume")
        break

    idx, mask, labels = train_batch(iter_num)
    with amp:
        _, loss = train_model(idx, mask, labels)
    scaler.scale(loss).backward()
    training.optimizer_step(model, optim, scaler, grad_clip, guard, iter_num, ddp.master)
    loss_sum += loss.detach()  # summed on the device: no host sync every step
    loss_count += 1
    iter_num += 1
    if iter_num % log_interval == 0:
        guard.check()
    if iter_num % log_interval == 0 and ddp.master:
        dt, log_start = (time.time() - log_start) / log_interval, time.time()
        print(f"iter {iter_num}: loss {loss.item():.4f}, lr {lr:.2e}, {dt * 1000:.1f} ms/iter")

del train_model  # it holds the process group, which cleanup_distributed must be able to free
training.cleanup_distributed(ddp)
