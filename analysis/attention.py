"""
Where a trained model looks: its attention probabilities, taken from its own forward pass.

    python analysis/attention.py --out_dir=out-shakespeare-char --start="ROMEO:"
    python analysis/attention.py --out_dir=out-vit-cpu --index=7 --data_dir=data --download=False --verify_md5=False
    python analysis/attention.py --out_dir=out-vit-cpu --image=cat.png

GPT: a grid of heatmaps, one per layer x head, over the prompt's tokens (row t: what token t reads),
and per head: its mean attention distance, its attention to the previous token and to the first
token (out_dir/attention.png, attention.json).
ViT: each head's attention from the CLS token to the patches, over the image, in the last layer,
and attention rollout (Abnar & Zuidema 2020) through the last layer alone and through all layers
(out_dir/attention_vit.png).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo's modules

import matplotlib
matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn import functional as F

import data
import training
from analysis import common

# -----------------------------------------------------------------------------
out_dir = "out-shakespeare-char"
ckpt = "best"           # 'best' (best.pt) or 'last' (ckpt.pt)
start = "ROMEO:"        # GPT: the prompt whose attention is drawn (at most block_size tokens)
index = 0               # ViT: which test image
image = ""              # ViT: an image file instead (any size; resized to the model's input)
device = "auto"
# -----------------------------------------------------------------------------
config, checkpoint = common.configure(globals(), sys.argv[1:])
globals().update(config)
run_device = training.pick_device(device)
model = common.load_model(checkpoint, run_device)
name = os.path.basename(os.path.abspath(out_dir))


def head_summaries(att):
    """att (n_head, T, T) causal attention of one layer -> per head: mean distance sum_s p[t,s] (t - s)
    averaged over queries t, and the mean attention of queries t >= 1 to token t - 1 and to token 0."""
    T = att.size(-1)
    distance = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).clamp(min=0).float()  # (T, T): t - s
    return {"mean_distance": (att * distance).sum(-1).mean(-1).tolist(),
            "previous_token": att.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1).tolist(),
            "first_token": att[:, 1:, 0].mean(-1).tolist()}


if checkpoint["kind"] == "gpt":
    _, _, encode, decode = common.text_data(config)
    ids = encode(start)
    if not ids or len(ids) > model.config.block_size:
        training.fail(f"the prompt must have 1 to {model.config.block_size} tokens (block_size), it has {len(ids)}")
    maps = [m[0].cpu() for m in common.attention_maps(model, torch.tensor([ids], device=run_device))]  # (nh, T, T) each
    pieces = [decode([i]).replace("\n", "\\n").replace(" ", "\u2423") for i in ids]  # show spaces and newlines
    n_layer, n_head, T = len(maps), maps[0].size(0), len(ids)
    cell = min(3.0, max(1.6, 0.15 * T))  # inches per heatmap: room for the labels, within a screen
    fig, axes = plt.subplots(n_layer, n_head, figsize=(cell * n_head, cell * n_layer), dpi=100, squeeze=False,
                             layout="constrained")
    for layer, att in enumerate(maps):
        for head in range(n_head):
            ax = axes[layer][head]
            ax.imshow(att[head].numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"layer {layer} head {head}", fontsize=8)
            labelled = T <= 40  # beyond that the labels overlap
            ax.set_xticks(range(T) if labelled else [], pieces if labelled else [], fontsize=6, rotation=90)
            ax.set_yticks(range(T) if labelled else [], pieces if labelled else [], fontsize=6)
    fig.suptitle(f"{name}: attention over {start!r} (row: the token reading, column: the token read)")
    common.save_figure(fig, os.path.join(out_dir, "attention.png"))

    summaries = [head_summaries(att) for att in maps]
    print(f"{'layer':>5} {'head':>4} {'mean distance':>14} {'to previous':>12} {'to first':>9}")
    for layer, summary in enumerate(summaries):
        for head in range(n_head):
            print(f"{layer:>5} {head:>4} {summary['mean_distance'][head]:>14.2f} "
                  f"{summary['previous_token'][head]:>12.1%} {summary['first_token'][head]:>9.1%}")
    with training.atomic_write(os.path.join(out_dir, "attention.json")) as tmp_path, open(tmp_path, "w") as f:
        json.dump({"prompt": start, "tokens": pieces, "layers": summaries}, f, indent=1)
else:
    from PIL import Image, UnidentifiedImageError
    size = model.config.img_size
    if image:
        try:
            picture = Image.open(image).convert("RGB").resize((size, size), Image.BICUBIC)
        except (OSError, UnidentifiedImageError) as e:
            training.fail(f"cannot read the image {image}: {e}")
        title, class_names = os.path.basename(image), None
    else:
        test_set = data.load_cifar(dataset, data_dir, False, download, verify_md5)
        if not 0 <= index < len(test_set):
            training.fail(f"index must be in [0, {len(test_set) - 1}] for the {len(test_set)} test images, got {index}")
        picture, label = test_set[index]
        title, class_names = f"test image {index}: {test_set.classes[label]}", test_set.classes
    from torchvision import transforms
    x = transforms.Compose(data.cifar_normalize(dataset))(picture)[None].to(run_device)   # (1, 3, H, W)
    maps = [m[0].cpu() for m in common.attention_maps(model, x)]   # (nh, N, N) each, N = patches (+ CLS)
    with torch.no_grad():
        probabilities = F.softmax(model(x)[0][0].float(), dim=-1).cpu()
    grid = size // model.config.patch_size
    cls = model.config.pool == "cls"

    def patch_map(rows):
        """(N,) attention over the tokens -> (grid, grid) over the patches. With a CLS token we read its
        row; mean-pooled models have none, so we average the rows of all patches."""
        return rows[1:].view(grid, grid) if cls else rows.view(grid, grid)

    # rollout: attention flows through the residual stream too, so each layer mixes by 0.5 A + 0.5 I
    # (A averaged over heads, rows renormalised), and the layers' mixing matrices multiply
    def rollout(layers):
        flow = torch.eye(maps[0].size(-1))
        for att in layers:
            mix = 0.5 * att.mean(0) + 0.5 * torch.eye(att.size(-1))
            flow = (mix / mix.sum(-1, keepdim=True)) @ flow
        return flow[0] if cls else flow.mean(0)

    last = maps[-1]
    heads = [patch_map(last[h, 0] if cls else last[h].mean(0)) for h in range(last.size(0))]
    panels = [(f"head {h}", m) for h, m in enumerate(heads)]
    panels += [("rollout, last layer", patch_map(rollout(maps[-1:]))), ("rollout, all layers", patch_map(rollout(maps)))]
    columns = min(4, len(panels) + 1)
    rows = -(-(len(panels) + 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), dpi=100, squeeze=False)
    axes = [ax for row in axes for ax in row]
    shown = np.asarray(picture, dtype=np.float32) / 255                 # (H, W, 3) in [0, 1]
    predicted = int(probabilities.argmax())
    axes[0].imshow(shown)
    axes[0].set_title(f"{title}\npredicted: {class_names[predicted] if class_names else predicted} "
                      f"({float(probabilities.max()):.0%})", fontsize=8)
    for ax, (label, attention) in zip(axes[1:], panels):
        upsampled = F.interpolate(attention[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        ax.imshow(shown)
        ax.imshow((upsampled / upsampled.max()).numpy(), cmap="inferno", alpha=0.6)
        ax.set_title(label, fontsize=8)
    for ax in axes:
        ax.axis("off")
    what = "CLS token's attention to the patches" if cls else "mean attention each patch receives"
    fig.suptitle(f"{name}: last layer, the {what}; rollout (Abnar & Zuidema 2020)", fontsize=9)
    common.save_figure(fig, os.path.join(out_dir, "attention_vit.png"))
