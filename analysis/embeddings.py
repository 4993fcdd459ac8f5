"""
What a trained model's embedding tables learned.

    python analysis/embeddings.py --out_dir=out-shakespeare-char
    python analysis/embeddings.py --out_dir=out-vit-cpu

GPT (out_dir/embeddings.png): the token embeddings in 2-D, by PCA (the two directions of largest
variance) and by t-SNE (scikit-learn; neighbours stay neighbours), labelled with the characters of a
char model or the most frequent tokens of a larger vocabulary; and the cosine similarity of every
pair of position embeddings (learned or sinusoidal).
ViT (out_dir/embeddings_vit.png): the similarity of each patch's position embedding to every other
patch's, laid out on the image grid (the ViT paper's figure 7), and the principal components of the
patch-embedding filters.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo's modules

import matplotlib
matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn import functional as F

import training
from analysis import common

# -----------------------------------------------------------------------------
out_dir = "out-shakespeare-char"
ckpt = "best"           # 'best' (best.pt) or 'last' (ckpt.pt)
n_tokens = 1000         # GPT: the most frequent tokens to map (all of them for a smaller vocabulary)
n_labels = 80           # GPT: how many of them get a text label
seed = 1337             # t-SNE's random start
# -----------------------------------------------------------------------------
config, checkpoint = common.configure(globals(), sys.argv[1:])
globals().update(config)
if n_tokens < 5 or n_labels < 0:
    training.fail(f"n_tokens must be at least 5 and n_labels at least 0, got {n_tokens} and {n_labels}")
model = common.load_model(checkpoint, "cpu")
name = os.path.basename(os.path.abspath(out_dir))


def pca_2d(x):
    """(n, d) -> (n, 2): the coordinates along the two directions of largest variance."""
    centred = x - x.mean(dim=0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)  # rows of v: principal directions
    return centred @ v[:2].T


def cosine_similarity(x):
    """(n, d) -> (n, n) cosine similarity of every pair of rows."""
    unit = F.normalize(x, dim=-1)
    return unit @ unit.T


if checkpoint["kind"] == "gpt":
    from sklearn.manifold import TSNE
    data_path, meta, _, decode = common.text_data(config)
    vocab = model.config.tokenizer_vocab_size  # rows beyond it are padding, never a token
    # the most frequent tokens in (the first 10M tokens of) the training split
    train = np.memmap(os.path.join(data_path, "train.bin"), dtype=np.uint16, mode="r")[:10_000_000]
    counts = np.bincount(train, minlength=vocab)[:vocab]
    chosen = np.argsort(-counts, kind="stable")[:min(n_tokens, vocab)]
    chosen = chosen[counts[chosen] > 0] if (counts[chosen] > 0).sum() >= 5 else chosen
    vectors = model.transformer.wte.weight.detach()[torch.from_numpy(chosen.copy())].float()   # (n, C)
    labels = [repr(decode([int(i)]))[1:-1] for i in chosen]  # '\n' and ' ' stay visible
    pca = pca_2d(vectors).numpy()
    print(f"t-SNE of {len(chosen)} token embeddings...")
    tsne = TSNE(n_components=2, perplexity=min(30.0, (len(chosen) - 1) / 3), init="pca",
                random_state=seed).fit_transform(vectors.numpy())

    positions = None
    if model.config.pos_encoding == "learned":
        positions, kind = model.transformer.wpe.weight.detach(), "learned"
    elif model.config.pos_encoding == "sinusoidal":
        positions, kind = model.sinusoidal_pe, "sinusoidal (fixed)"
    panels = 3 if positions is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 6.5), dpi=100, layout="constrained")
    for ax, points, title in ((axes[0], pca, "PCA"), (axes[1], tsne, "t-SNE")):
        ax.scatter(points[:, 0], points[:, 1], s=12, c=np.log1p(counts[chosen]), cmap="viridis")
        for i in range(min(n_labels, len(chosen))):  # the most frequent first
            ax.annotate(labels[i], points[i], fontsize=9, alpha=0.85)
        ax.set_title(f"{title} of {len(chosen)} token embeddings (colour: log frequency)")
        ax.set_xticks([])
        ax.set_yticks([])
    if positions is not None:
        image = axes[2].imshow(cosine_similarity(positions.float()).numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        axes[2].set_title(f"cosine similarity of the {kind} position embeddings")
        axes[2].set_xlabel("position")
        axes[2].set_ylabel("position")
        fig.colorbar(image, ax=axes[2], fraction=0.046)
    else:
        print(f"pos_encoding={model.config.pos_encoding}: no position embeddings to compare")
    fig.suptitle(f"{name}: what the embeddings learned")
    common.save_figure(fig, os.path.join(out_dir, "embeddings.png"))
else:
    cfg = model.config
    grid = cfg.img_size // cfg.patch_size
    positions = model.pos_embed.detach()[0, 1:] if cfg.pool == "cls" else model.pos_embed.detach()[0]  # (N, C)
    similarity = cosine_similarity(positions).view(grid, grid, grid, grid)  # [row, col] -> a (grid, grid) map

    filters = model.patch_embed.proj.weight.detach().flatten(1)  # (C, 3 * p * p): one filter per channel
    centred = filters - filters.mean(dim=0)
    _, _, components = torch.linalg.svd(centred, full_matrices=False)  # rows: principal filters
    n_components = min(28, components.size(0))

    fig = plt.figure(figsize=(15, 7.5), dpi=100, layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1])
    axes = left.subplots(grid, grid)
    for r in range(grid):
        for c in range(grid):
            axes[r][c].imshow(similarity[r, c].numpy(), cmap="viridis", vmin=-1, vmax=1)
            axes[r][c].axis("off")
    left.suptitle("position embedding similarity: each patch (at its place) vs all patches")
    columns = 7
    axes = right.subplots(-(-n_components // columns), columns, squeeze=False)
    for i, ax in enumerate(ax for row in axes for ax in row):
        ax.axis("off")
        if i < n_components:
            picture = components[i].view(3, cfg.patch_size, cfg.patch_size).permute(1, 2, 0)
            picture = (picture - picture.min()) / (picture.max() - picture.min() + 1e-12)  # each to [0, 1]
            ax.imshow(picture.numpy(), interpolation="nearest")
            ax.set_title(f"PC {i + 1}", fontsize=7)
    right.suptitle(f"the first {n_components} principal components of the {filters.size(0)} patch-embedding filters (RGB)")
    fig.suptitle(f"{name}: what the embeddings learned")
    common.save_figure(fig, os.path.join(out_dir, "embeddings_vit.png"))
