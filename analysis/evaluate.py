"""
Evaluate a trained model on held-out data, print a table and write out_dir/eval.json.

    python analysis/evaluate.py --out_dir=out-shakespeare-char
    python analysis/evaluate.py --out_dir=out-vit-cpu --data_dir=data --download=False --verify_md5=False

It reads out_dir/best.pt (--ckpt=last: ckpt.pt) and knows a GPT from a ViT. The data settings are
the run's own training settings, and the training script's keys override them (--data_dir, --dataset, ...).
GPT: loss, perplexity, bits per byte, next-token top-1/top-5 accuracy over eval_tokens tokens.
ViT: loss, top-1/top-5, per-class precision/recall/F1, their macro averages, and the confusion matrix
(out_dir/confusion_matrix.png).
"""

import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo's modules

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

import configurator
import data
import training
from analysis import common, metrics

# -----------------------------------------------------------------------------
out_dir = "out-shakespeare-char"
ckpt = "best"           # 'best' (best.pt) or 'last' (ckpt.pt)
split = "val"           # 'val' (GPT: val.bin; ViT: the test set) or 'train'
eval_tokens = 100_000   # GPT: tokens to score, in consecutive windows from the start of the split
syntax_samples = 0      # GPT on code: also sample this many files and report the share Python parses
batch_size = 64         # sequences or images per forward pass
device = "auto"
dtype = "float32"       # or 'bfloat16' for speed, at a small cost in precision
# -----------------------------------------------------------------------------
config, checkpoint = common.configure(globals(), sys.argv[1:])
globals().update(config)
configurator.check_settings(config, at_least_1="batch_size eval_tokens", at_least_0="syntax_samples",
                        choices={"split": ("val", "train")})
run_device = training.pick_device(device)
precision = training.resolve_dtype(dtype, run_device)
model = common.load_model(checkpoint, run_device)
amp = training.autocast(run_device, precision)
where = f"{training.checkpoint_path(out_dir, ckpt)} ({'iter ' + str(checkpoint['iter_num']) if 'iter_num' in checkpoint else 'epoch ' + str(checkpoint['epoch'])})"

if checkpoint["kind"] == "gpt":
    # consecutive windows of block_size targets: every scored token sees a context of 0..T-1 tokens
    # of its own window, the same for every model of this block_size, so runs compare like with like
    data_path, meta, encode, decode = common.text_data(config)
    tokens = np.memmap(os.path.join(data_path, f"{split}.bin"), dtype=np.uint16, mode="r")
    T = model.config.block_size
    n_windows = min(math.ceil(eval_tokens / T), (len(tokens) - 1) // T)
    if n_windows == 0:
        training.fail(f"{data_path}/{split}.bin has {len(tokens)} tokens, fewer than one window of block_size + 1 = {T + 1}")
    vocab = model.config.tokenizer_vocab_size  # the padding ids above it are never predicted (as in generate)
    nats, top1_hits, top5_hits, n_bytes = 0.0, 0, 0, 0
    with torch.no_grad():
        for first in tqdm(range(0, n_windows, batch_size), desc=f"evaluating {split}", unit="batch"):
            rows = range(first, min(first + batch_size, n_windows))
            x = torch.stack([torch.from_numpy(tokens[r * T: r * T + T].astype(np.int64)) for r in rows])
            y = torch.stack([torch.from_numpy(tokens[r * T + 1: r * T + T + 1].astype(np.int64)) for r in rows])
            with amp:
                logits, _ = model(x.to(run_device), y.to(run_device))        # targets: every position's logits
            logits, y = logits.float()[..., :vocab].reshape(-1, vocab), y.to(run_device).reshape(-1)
            nats += F.cross_entropy(logits, y, reduction="sum").item()
            top5 = logits.topk(min(5, vocab), dim=-1).indices                 # (B*T, 5), best first
            top1_hits += (top5[:, 0] == y).sum().item()
            top5_hits += (top5 == y[:, None]).any(dim=-1).sum().item()
            # bytes of the text the targets spell: bits per byte compares models with any tokenizer
            n_bytes += sum(len(decode(row.tolist()).encode("utf-8")) for row in y.view(len(rows), T).cpu())
    tokens = n_windows * T
    loss = nats / tokens
    results = {"kind": "gpt", "split": split, "tokens": tokens, "loss": loss, "perplexity": math.exp(loss),
               "bits_per_byte": nats / math.log(2) / n_bytes, "top1": top1_hits / tokens, "top5": top5_hits / tokens}
    print(f"\n{where}, {split} split of {data_path}: {tokens:,} tokens ({n_bytes:,} bytes)")
    if syntax_samples > 0:  # a code model's samples, cut at their last complete statement
        from analysis.code_eval import code_samples
        from code_check import syntax_validity
        torch.manual_seed(0)
        samples = code_samples(model, meta, data_path, syntax_samples, 250, 0.8, 200, run_device)
        results["syntax_validity"] = syntax_validity(samples)
    for name, label in (("loss", "loss (nats/token)"), ("perplexity", "perplexity"), ("bits_per_byte", "bits per byte"),
                        ("top1", "next-token top-1"), ("top5", "next-token top-5"), ("syntax_validity", "syntax validity")):
        if name in results:
            value = results[name]
            print(f"  {label:<20} {value:.4f}" if name in ("loss", "perplexity", "bits_per_byte") else f"  {label:<20} {value:.2%}")
else:
    from torchvision import transforms
    images = data.load_cifar(dataset, data_dir, split == "train", download, verify_md5)
    images.transform = transforms.Compose(data.cifar_normalize(dataset))  # no augmentation
    loader = torch.utils.data.DataLoader(images, batch_size=batch_size, num_workers=num_workers,
                                         worker_init_fn=training.ignore_stop_signals)
    n_classes = model.config.n_classes
    loss_sum, predictions, top5_hits, labels = 0.0, [], 0, []
    with torch.no_grad():
        for x, y in tqdm(loader, desc=f"evaluating {split}", unit="batch"):
            with amp:
                logits, _ = model(x.to(run_device))
            logits, y = logits.float(), y.to(run_device)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            top5 = logits.topk(min(5, n_classes), dim=-1).indices
            top5_hits += (top5 == y[:, None]).any(dim=-1).sum().item()
            predictions.append(top5[:, 0].cpu())
            labels.append(y.cpu())
    del loader  # its workers ignore SIGTERM: let them finish before Python's exit would wait on them
    matrix = metrics.confusion_matrix(torch.cat(predictions), torch.cat(labels), n_classes)
    report = metrics.classification_report(matrix)
    n_images = int(matrix.sum())
    results = {"kind": "vit", "split": split, "images": n_images, "loss": loss_sum / n_images,
               "top1": report["accuracy"], "top5": top5_hits / n_images,
               **{key: report[key] for key in ("macro_precision", "macro_recall", "macro_f1")},
               "per_class": {name: {"precision": report["precision"][i], "recall": report["recall"][i],
                                    "f1": report["f1"][i]} for i, name in enumerate(images.classes)},
               "confusion_matrix": matrix.tolist()}
    print(f"\n{where}, {dataset} {'test' if split == 'val' else 'train'} images: {n_images:,}")
    print(f"  loss {results['loss']:.4f}, top-1 {results['top1']:.2%}, top-5 {results['top5']:.2%}, macro "
          f"precision {results['macro_precision']:.2%}, recall {results['macro_recall']:.2%}, F1 {results['macro_f1']:.2%}")
    print(f"  {'class':<16} {'precision':>9} {'recall':>9} {'F1':>9}")
    for name, row in results["per_class"].items():
        print(f"  {name:<16} {row['precision']:>9.2%} {row['recall']:>9.2%} {row['f1']:>9.2%}")
    fig = metrics.plot_confusion_matrix(matrix, images.classes, f"{os.path.basename(os.path.abspath(out_dir))}: "
                                        f"top-1 {results['top1']:.1%} on {n_images:,} images")
    common.save_figure(fig, os.path.join(out_dir, "confusion_matrix.png"))

with training.atomic_write(os.path.join(out_dir, "eval.json")) as tmp_path, open(tmp_path, "w") as f:
    json.dump({"checkpoint": where, **results}, f, indent=1)
print(f"wrote {os.path.join(out_dir, 'eval.json')}")
