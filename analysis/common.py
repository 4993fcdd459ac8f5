"""
What the analysis scripts share: settings that start from the run's own training settings, the
trained model and its data, a ViT run's test.json, the attention probabilities a model computes,
and saving figures.
"""

import io
import json
import os

import torch

import configurator
import data
import training
from model_gpt import GPT, GPTConfig
from model_vit import ViT, ViTConfig


def peek(argv, key, default):
    """The value of --key=VALUE or --key VALUE in argv, before the full settings can be known."""
    for i, arg in enumerate(argv):
        if arg == f"--{key}" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"--{key}="):
            return arg.split("=", 1)[1]
    return default


def configure(defaults, argv):
    """
    Load the run in --out_dir (best.pt, or --ckpt=last for ckpt.pt) and return (settings, checkpoint).
    The settings are the run's own training settings (data_dir, dataset, download, ...), then the
    script's defaults, then argv: so `--data_dir=elsewhere` works as it does for the training script.
    """
    if "-h" in argv or "--help" in argv:
        configurator.configure(defaults, argv)  # prints the settings and exits, without a checkpoint
    out_dir, which = peek(argv, "out_dir", defaults["out_dir"]), peek(argv, "ckpt", defaults["ckpt"])
    checkpoint = training.load_trained(out_dir, which)
    return configurator.configure({**checkpoint["config"], **defaults}, argv), checkpoint


def load_model(checkpoint, device):
    """The trained GPT or ViT of a checkpoint, on device, in eval mode."""
    if checkpoint["kind"] == "gpt":
        model = GPT(GPTConfig(**checkpoint["model_args"]))
    else:
        model = ViT(ViTConfig(**checkpoint["model_args"]))
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


def text_data(config):
    """(data_path, meta, encode, decode) of the dataset a GPT was trained on."""
    data_path = data.dataset_path(config, config["out_dir"])
    meta = data.read_meta(data_path, "prepare it, or pass --data_dir/--dataset where it is")
    encode, decode = data.load_tokenizer(meta, data_path)
    return data_path, meta, encode, decode


def read_test_json(run_dir):
    """The test.json of a train_vit.py run with --val_images (best.pt's one read of the test split:
    loss, top1, top5, elapsed_s, ...), or None where the run has none."""
    path = os.path.join(run_dir, "test.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            test = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError):
        test = None
    if not (isinstance(test, dict)
            and all(isinstance(test.get(key), (int, float)) for key in ("loss", "top1", "elapsed_s"))):
        training.fail(f"{path} is not train_vit.py's test.json; delete it to compare the run from its log")
    return test


@torch.no_grad()
def attention_maps(model, *inputs):
    """
    Run model(*inputs) once and return every layer's attention probabilities, each (B, n_head, T, T):
    row t holds how much token t reads from every token. They come from the model's own forward: each
    attention module is switched to its explicit math path (flash=False), whose softmax output goes
    through the module's attn_dropout, and a forward hook on that dropout records its input.
    """
    blocks = model.transformer.h if isinstance(model, GPT) else model.blocks
    maps, flash = [], [block.attn.flash for block in blocks]
    hooks = [block.attn.attn_dropout.register_forward_hook(lambda module, args, out: maps.append(args[0].float()))
             for block in blocks]
    try:
        for block in blocks:
            block.attn.flash = False
        model(*inputs)
    finally:
        for block, was_flash, hook in zip(blocks, flash, hooks):
            block.attn.flash = was_flash
            hook.remove()
    return maps


def save_figure(fig, path):
    """Write a matplotlib figure as a PNG, atomically, and close it."""
    import matplotlib.pyplot as plt
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
    plt.close(fig)
    with training.atomic_write(path) as tmp_path, open(tmp_path, "wb") as f:
        f.write(buffer.getvalue())
    print(f"wrote {path}")
