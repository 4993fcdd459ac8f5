"""
Tests for model_vit.py and train_vit.py. CPU only, small models, small CIFAR-format files.

The data files are written here in CIFAR-10's on-disk layout (data_batch_1..5, test_batch,
batches.meta: pickled dicts with "data" as uint8 (N, 3072) rows of R, G, B planes, "labels" as
a list of ints, "label_names" in the meta file) and read back through torchvision's own CIFAR10
loading code. The real files are Python 2 pickles whose str keys torchvision decodes as latin-1 to
"data", "labels", ...; pickling Python 3 str keys gives torchvision the same dicts. The md5 sums of
these files are not the real ones, so the scripts run with --verify_md5=False.
"""

import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import optimizers  # noqa: E402
import data  # noqa: E402
from model_vit import ViT, ViTConfig  # noqa: E402
from conftest import run_scripts  # noqa: E402

TINY_MODEL = ["--n_layer=2", "--n_head=2", "--n_embd=32", "--compile=False", "--num_workers=0",
              "--dtype=float32", "--device=cpu", "--log_interval=0"]


def write_cifar10(root, make_split, n_per_batch):
    """Write CIFAR-10-format files into root/cifar-10-batches-py; make_split(n) -> (uint8 (n, 32, 32, 3), labels)."""
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images, labels = make_split(n_per_batch)
        rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)  # HWC -> planar R, G, B rows
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({"batch_label": name, "labels": [int(y) for y in labels], "data": rows,
                         "filenames": [f"{name}_{i}.png" for i in range(len(rows))]}, f, protocol=2)
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": n_per_batch,
                     "num_vis": 3072}, f, protocol=2)
    return str(root)


def random_split(rng):
    def make(n):
        return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)
    return make


PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [128, 128, 128], [0, 0, 0]], dtype=np.int64)


def dominant_colour_split(rng):
    """Class c: 60% of the pixels (a random set) have palette colour c, the rest random colours."""
    def make(n):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 256, (n, 32, 32, 3))
        mask = rng.random((n, 32, 32)) < 0.6
        images[mask] = PALETTE[np.broadcast_to(labels[:, None, None], mask.shape)[mask]]
        images += rng.integers(-20, 21, images.shape)  # so no two pixels of a class are identical
        return np.clip(images, 0, 255).astype(np.uint8), labels
    return make


def train_vit(*args):
    """Run train_vit.py in a subprocess; return (returncode, stdout, stderr)."""
    # one thread: these models are tiny, so more threads only add synchronization, and on a machine
    # shared with other jobs, spinning OpenMP threads slow a run down many times over
    env = dict(os.environ, WANDB_MODE="offline", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "train_vit.py", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout, result.stderr


def read_log(out_dir):
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def read_test_json(out_dir):
    with open(os.path.join(out_dir, "test.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def random_cifar(tmp_path_factory):
    return write_cifar10(tmp_path_factory.mktemp("cifar-random"), random_split(np.random.default_rng(0)), 64)


# -----------------------------------------------------------------------------
# the model

@pytest.mark.parametrize("pool, norm, stem", [("cls", "layernorm", "patch"), ("mean", "rmsnorm", "patch"),
                                              ("cls", "layernorm", "conv")])
def test_forward_gives_one_logit_per_class_and_the_cross_entropy_loss(pool, norm, stem):
    torch.manual_seed(0)
    config = ViTConfig(n_layer=2, n_head=2, n_embd=32, n_classes=7, pool=pool, norm=norm, stem=stem)
    model = ViT(config)
    images, targets = torch.randn(3, 3, 32, 32), torch.tensor([0, 6, 3])
    logits, loss = model(images, targets)
    assert logits.shape == (3, 7)
    assert torch.allclose(loss, F.cross_entropy(logits, targets))
    n_tokens = 64 + (1 if pool == "cls" else 0)  # (32 / 4)^2 patches, plus the CLS token
    assert model.pos_embed.shape == (1, n_tokens, 32)
    assert model(images)[1] is None


def test_attention_matches_pytorch_scaled_dot_product_attention():
    # on CPU the model writes attention out by hand (it is faster there); it must equal SDPA
    torch.manual_seed(0)
    model = ViT(ViTConfig(n_layer=1, n_head=4, n_embd=64)).eval()
    attn = model.blocks[0].attn
    x = torch.randn(2, 65, 64)
    q, k, v = attn.c_attn(x).split(64, dim=2)
    q, k, v = (t.view(2, 65, 4, 16).transpose(1, 2) for t in (q, k, v))
    expected = attn.c_proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 65, 64))
    assert torch.allclose(attn(x), expected, atol=1e-5)


def test_bad_shapes_raise_value_errors():
    with pytest.raises(ValueError, match="not divisible by patch size"):
        ViTConfig(img_size=32, patch_size=5)
    with pytest.raises(ValueError, match="does not divide"):
        ViTConfig(n_head=5, n_embd=192)
    with pytest.raises(ValueError, match="patch_size must be a power of 2"):
        ViTConfig(img_size=36, patch_size=6, stem="conv")


@pytest.mark.parametrize("stem, patch_size, pool", [("patch", 4, "cls"), ("conv", 4, "mean"), ("conv", 8, "cls")])
def test_flops_per_image_are_three_times_the_forward_flops_torch_counts(stem, patch_size, pool):
    from torch.utils.flop_counter import FlopCounterMode
    model = ViT(ViTConfig(n_layer=2, n_head=2, n_embd=32, patch_size=patch_size, stem=stem, pool=pool,
                          bias=False, flash=False))
    with FlopCounterMode(display=False) as counter:  # every matmul and conv of one forward
        model(torch.randn(1, 3, 32, 32))
    # backward costs twice the forward; the estimate also counts the norms' gains as if they multiplied
    assert model.estimate_flops_per_image() == pytest.approx(3 * counter.get_total_flops(), rel=0.01)


def hand_block(block, x, norm_placement, mlp):
    """A Block's output written out from its weights: LayerNorm, attention, MLP and the residual
    adds, in the order norm_placement puts them."""
    B, N, C = x.shape
    nh = block.attn.n_head

    def layernorm(norm, h):
        mean, var = h.mean(-1, keepdim=True), ((h - h.mean(-1, keepdim=True)) ** 2).mean(-1, keepdim=True)
        return (h - mean) / torch.sqrt(var + 1e-6) * norm.weight + norm.bias

    def linear(layer, h):
        return h @ layer.weight.T + layer.bias

    def attention(h):
        q, k, v = (t.view(B, N, nh, C // nh).transpose(1, 2) for t in linear(block.attn.c_attn, h).split(C, dim=-1))
        probs = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(C // nh), dim=-1)
        return linear(block.attn.c_proj, (probs @ v).transpose(1, 2).reshape(B, N, C))

    activation = {"gelu": lambda h: 0.5 * h * (1 + torch.erf(h / math.sqrt(2))),  # exact GELU, as nn.GELU()
                  "relu": lambda h: torch.where(h > 0, h, torch.zeros_like(h)),
                  "none": lambda h: h}[mlp]

    def feed_forward(h):
        return linear(block.mlp.c_proj, activation(linear(block.mlp.c_fc, h)))

    if norm_placement == "pre":
        h = x + attention(layernorm(block.ln_1, x))
        return h + feed_forward(layernorm(block.ln_2, h))
    h = layernorm(block.ln_1, x + attention(x))
    return layernorm(block.ln_2, h + feed_forward(h))


@pytest.mark.parametrize("norm_placement", ["pre", "post"])
@pytest.mark.parametrize("mlp", ["gelu", "relu", "none"])
def test_block_equals_its_formula_written_out(norm_placement, mlp):
    torch.manual_seed(0)
    model = ViT(ViTConfig(n_layer=1, n_head=2, n_embd=16, norm_placement=norm_placement, mlp=mlp)).eval()
    with torch.no_grad():
        for param in model.parameters():  # away from the init's ones and zeros, so every term shows
            param.copy_(torch.randn_like(param) * 0.5)
    x = torch.randn(2, 65, 16)
    assert torch.allclose(model.blocks[0](x), hand_block(model.blocks[0], x, norm_placement, mlp), atol=1e-5)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_post_norm_has_no_final_norm_and_pre_norm_does(pool):
    """Post-norm blocks end in a norm, so the head reads the pooled block output as it is; pre-norm
    normalizes it first (ln_f)."""
    torch.manual_seed(0)
    images = torch.randn(2, 3, 32, 32)
    for norm_placement in ("pre", "post"):
        model = ViT(ViTConfig(n_layer=2, n_head=2, n_embd=16, pool=pool, norm_placement=norm_placement)).eval()
        x = model.patch_embed(images)
        if pool == "cls":
            x = torch.cat([model.cls_token.expand(2, -1, -1), x], dim=1)
        x = x + model.pos_embed
        for block in model.blocks:
            x = block(x)
        pooled = x[:, 0] if pool == "cls" else x.mean(dim=1)
        if norm_placement == "pre":
            pooled = F.layer_norm(pooled, (16,), model.ln_f.weight, model.ln_f.bias, eps=1e-6)
        else:
            assert not any(name.startswith("ln_f") for name, _ in model.named_parameters())
        assert torch.allclose(model(images)[0], model.head(pooled), atol=1e-5)


@pytest.mark.parametrize("field, value, valid", [("norm_placement", "middle", "pre, post"),
                                                 ("mlp", "swish", "gelu, relu, none"),
                                                 ("stem", "hybrid", "patch, conv")])
def test_unknown_option_values_raise_value_errors_listing_the_valid_ones(field, value, valid):
    with pytest.raises(ValueError, match=f"{field}='{value}' is not one of {valid}"):
        ViTConfig(**{field: value})


def test_weight_decay_only_on_weight_matrices():
    model = ViT(ViTConfig(n_layer=2, n_head=2, n_embd=32))
    decay, no_decay = optimizers.configure(model, "adamw", 0.05, 1e-3, (0.9, 0.999), "cpu").param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    not_decayed = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert decayed | not_decayed == set(names.values()) and not decayed & not_decayed
    assert "pos_embed" in not_decayed and "cls_token" in not_decayed
    assert all(name.endswith(("bias", "ln_1.weight", "ln_2.weight", "ln_f.weight"))
               for name in not_decayed - {"pos_embed", "cls_token"})
    assert "blocks.0.attn.c_attn.weight" in decayed and "patch_embed.proj.weight" in decayed


def test_muon_takes_the_blocks_weight_matrices_and_adamw_everything_else():
    model = ViT(ViTConfig(n_layer=2, n_head=2, n_embd=32, stem="conv", patch_size=8))
    optimizer = optimizers.configure(model, "muon", 0.05, 1e-3, (0.9, 0.999), "cpu")
    names = {id(p): n for n, p in model.named_parameters()}
    by_muon = {names[id(p)] for group in optimizer.optimizers["muon"].param_groups for p in group["params"]}
    by_adamw = {names[id(p)] for group in optimizer.optimizers["adamw"].param_groups for p in group["params"]}
    assert by_muon | by_adamw == set(names.values()) and not by_muon & by_adamw
    # 2 blocks x (c_attn, attn.c_proj, c_fc, mlp.c_proj)
    assert by_muon == {f"blocks.{i}.{m}.weight" for i in range(2) for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}


# -----------------------------------------------------------------------------
# the training script

def test_random_crop_flip_gives_each_image_one_of_torchvisions_crops_and_flips():
    from torchvision.transforms import functional as TF
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = data.random_crop_flip(images, 4, torch.Generator().manual_seed(0))
    seen = set()
    for image, result in zip(images, out):
        padded = TF.pad(image, 4)  # what RandomCrop(32, padding=4) crops from
        matches = [(top, left, flip) for top in range(9) for left in range(9) for flip in (False, True)
                   if torch.equal(result, (TF.hflip if flip else lambda x: x)(TF.crop(padded, top, left, 32, 32)))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 48  # 64 draws of 162 choices: each image its own
    assert torch.equal(out, data.random_crop_flip(images, 4, torch.Generator().manual_seed(0)))


@pytest.fixture(scope="module")
def first_epoch(random_cifar, tmp_path_factory):
    """One epoch of a 2-epoch schedule, stopped there: the first half of the resume test."""
    out_dir = str(tmp_path_factory.mktemp("vit-stopped"))
    args = [f"--data_dir={random_cifar}", "--download=False", "--verify_md5=False", "--batch_size=32",
            "--epochs=2", *TINY_MODEL]
    code, out, err = train_vit(*args, f"--out_dir={out_dir}", "--stop_at_epoch=1")
    assert code == 0, err
    return out_dir, args


def test_one_epoch_writes_both_checkpoints_without_wrapper_prefixes(first_epoch):
    out_dir, _ = first_epoch
    for name in ("ckpt.pt", "best.pt"):
        checkpoint = torch.load(os.path.join(out_dir, name), weights_only=True)
        assert checkpoint["kind"] == "vit" and checkpoint["epoch"] == 1
        model = ViT(ViTConfig(**checkpoint["model_args"]))
        model.load_state_dict(checkpoint["model"])  # strict: fails on _orig_mod. / module. prefixes
    # best.pt is for evaluation: the weights, not a second copy of the optimizer
    assert "optimizer" in torch.load(os.path.join(out_dir, "ckpt.pt"), weights_only=True)
    assert "optimizer" not in torch.load(os.path.join(out_dir, "best.pt"), weights_only=True)
    assert [record["epoch"] for record in read_log(out_dir)] == [1]


def test_resume_trains_bit_identically_to_a_straight_run(first_epoch, tmp_path):
    stopped_dir, args = first_epoch
    straight_dir = str(tmp_path / "straight")
    code, _, err = train_vit(*args, f"--out_dir={straight_dir}")
    assert code == 0, err
    # resume with a DataLoader worker this time: augmentation is seeded per image, not per process
    code, out, err = train_vit(*args, f"--out_dir={stopped_dir}", "--init_from=resume", "--num_workers=1")
    assert code == 0, err
    assert [r["epoch"] for r in read_log(stopped_dir)] == [1, 2]  # continued at epoch 2, didn't redo epoch 1
    assert_same_run(straight_dir, stopped_dir)


@pytest.mark.parametrize("on_nonfinite", ["stop", "skip"])
def test_a_diverging_run_never_saves_over_the_last_good_checkpoint(first_epoch, tmp_path, on_nonfinite):
    stopped_dir, args = first_epoch
    out_dir = shutil.copytree(stopped_dir, tmp_path / "out")
    before = {name: (out_dir / name).read_bytes() for name in ("ckpt.pt", "best.pt")}
    code, out, err = train_vit(*args, f"--out_dir={out_dir}", "--init_from=resume", "--learning_rate=1e30",
                               f"--on_nonfinite={on_nonfinite}", "--log_interval=1", "--epochs=4")
    if on_nonfinite == "stop":
        assert_one_line_error(code, err, "non-finite loss/gradient at step ")
        assert f"the last good checkpoint {out_dir / 'ckpt.pt'} is untouched" in err
    else:
        assert code == 0, err
        assert "non-finite gradient, step skipped" in out
    assert {name: (out_dir / name).read_bytes() for name in before} == before


def test_evaluation_creates_no_float64_tensor(first_epoch):
    # MPS has no float64: a float64 tensor anywhere in evaluation crashes a Mac's first eval
    out_dir, args = first_epoch
    wrapper = ("import runpy, sys, torch\n"
               "from torch.utils._python_dispatch import TorchDispatchMode\n"
               "class NoFloat64(TorchDispatchMode):\n"
               "    def __torch_dispatch__(self, func, types, args=(), kwargs=None):\n"
               "        out = func(*args, **(kwargs or {}))\n"
               "        if any(isinstance(t, torch.Tensor) and t.dtype == torch.float64\n"
               "               for t in torch.utils._pytree.tree_leaves(out)):\n"
               "            raise SystemExit(f'float64 from {func}')\n"
               "        return out\n"
               "sys.argv = ['train_vit.py', *sys.argv[1:]]\n"
               "with NoFloat64():\n"
               "    runpy.run_path('train_vit.py', run_name='__main__')\n")
    env = dict(os.environ, WANDB_MODE="offline", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", wrapper, *args, f"--out_dir={out_dir}", "--init_from=resume",
                             "--eval_only=True"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert ": val loss" in result.stdout


def test_by_default_a_cpu_run_does_not_compile_and_starts_a_worker_per_core(first_epoch):
    out_dir, args = first_epoch
    defaults = [arg for arg in args if not arg.startswith(("--compile", "--num_workers"))]
    code, out, err = train_vit(*defaults, f"--out_dir={out_dir}", "--init_from=resume", "--eval_only=True")
    assert code == 0, err
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert f"compile False, {min(8, cores)} data workers" in out


@pytest.fixture(scope="module")
def straight_two_epochs(first_epoch, tmp_path_factory):
    """Two epochs, with MixUp and DropPath so the per-step RNG matters, never stopped: the reference
    that stopped-and-resumed runs must match exactly."""
    _, args = first_epoch
    args = [*args, "--mixup=0.8", "--drop_path=0.1", "--log_interval=1"]
    out_dir = str(tmp_path_factory.mktemp("vit-straight"))
    code, _, err = train_vit(*args, f"--out_dir={out_dir}")
    assert code == 0, err
    return out_dir, args


def assert_same_run(straight_dir, resumed_dir):
    for key in ("epoch", "train_loss", "val_loss", "top1", "lr", "step"):
        assert [r[key] for r in read_log(straight_dir)] == [r[key] for r in read_log(resumed_dir)], key
    straight_weights = torch.load(os.path.join(straight_dir, "ckpt.pt"), weights_only=True)["model"]
    resumed_weights = torch.load(os.path.join(resumed_dir, "ckpt.pt"), weights_only=True)["model"]
    assert all(torch.equal(straight_weights[k], resumed_weights[k]) for k in straight_weights)


def preempt(args, out_dir, at_line, whole_group=False):
    """Start train_vit.py, send SIGTERM when it prints a line starting with at_line (to the whole
    process group, DataLoader workers included, as SLURM and Kubernetes do), return its output."""
    env = dict(os.environ, WANDB_MODE="offline", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "train_vit.py", *args, f"--out_dir={out_dir}"], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=whole_group)
    for line in process.stdout:
        if line.startswith(at_line):
            if whole_group:
                os.killpg(process.pid, signal.SIGTERM)
            else:
                process.send_signal(signal.SIGTERM)
            break
    output = process.stdout.read()
    assert process.wait(timeout=120) == 0, output
    assert "continue with the same command and --init_from=resume" in output
    return output


@pytest.mark.parametrize("workers", [0, 2])
def test_sigterm_mid_epoch_saves_and_the_resumed_run_matches_a_straight_run(straight_two_epochs, tmp_path, workers):
    straight_dir, args = straight_two_epochs
    args = [*args, f"--num_workers={workers}"]
    preempted_dir = str(tmp_path / "preempted")
    # with workers, the whole process group gets the signal: the workers must not die of it
    preempt(args, preempted_dir, "epoch 0 step 4/", whole_group=workers > 0)
    stopped = torch.load(os.path.join(preempted_dir, "ckpt.pt"), weights_only=True)
    assert stopped["epoch"] == 0 and 4 <= stopped["step_in_epoch"] < 10

    code, _, err = train_vit(*args, f"--out_dir={preempted_dir}", "--init_from=resume")
    assert code == 0, err
    assert_same_run(straight_dir, preempted_dir)


@pytest.fixture(scope="module")
def held_out_run(random_cifar, tmp_path_factory):
    """Three epochs holding out the last 64 of the 320 training images, augmented a batch at a time,
    with Muon (whose state a resumed run must restore too)."""
    args = [f"--data_dir={random_cifar}", "--download=False", "--verify_md5=False", "--batch_size=32",
            "--epochs=3", "--val_images=64", "--batch_augment=True", "--autoaugment=none", "--random_erasing=0",
            "--mixup=0.8", "--optimizer=muon", *TINY_MODEL, "--log_interval=1"]
    out_dir = str(tmp_path_factory.mktemp("vit-held-out"))
    code, out, err = train_vit(*args, f"--out_dir={out_dir}")
    assert code == 0, err
    return out_dir, args, out


def accuracy(checkpoint, images, labels, mirrored_too=False):
    """(top-1, cross-entropy) of a checkpoint on uint8 (N, 32, 32, 3) images; mirrored_too: from the
    mean of the probabilities for each image and its mirror image."""
    model = ViT(ViTConfig(**checkpoint["model_args"]))
    model.load_state_dict(checkpoint["model"])
    model.eval()
    mean, std = (torch.tensor(v) for v in data.CIFAR["cifar10"][2:])
    x = (torch.from_numpy(images).float().permute(0, 3, 1, 2) / 255 - mean[:, None, None]) / std[:, None, None]
    with torch.no_grad():
        probs = model(x)[0].softmax(-1)
        if mirrored_too:
            probs = probs + model(x.flip(-1))[0].softmax(-1)
        probs = probs / probs.sum(-1, keepdim=True)
    labels = torch.tensor(labels)
    return (probs.argmax(-1) == labels).float().mean().item(), F.nll_loss(probs.log(), labels).item()


def test_held_out_images_choose_best_pt_and_the_test_split_is_read_once_by_it(random_cifar, held_out_run):
    out_dir, _, out = held_out_run
    train_set = data.load_cifar("cifar10", random_cifar, True, False, False)
    test_set = data.load_cifar("cifar10", random_cifar, False, False, False)
    epochs, test = read_log(out_dir), read_test_json(out_dir)
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    # each epoch was evaluated on the 64 held-out images, the last model as ckpt.pt holds it
    last = torch.load(os.path.join(out_dir, "ckpt.pt"), weights_only=True)
    assert epochs[-1]["top1"] == pytest.approx(accuracy(last, train_set.data[-64:], train_set.targets[-64:])[0])
    # best.pt is the epoch with the best held-out top-1, and the test split was read by it alone
    best = torch.load(os.path.join(out_dir, "best.pt"), weights_only=True)
    assert best["epoch"] == test["epoch"] == max(epochs, key=lambda r: r["top1"])["epoch"]
    assert test["top1"] == pytest.approx(accuracy(best, test_set.data, test_set.targets)[0])
    assert out.count("test split, best.pt") == 1 and "on the held-out images" in out


def test_tta_flip_predicts_from_each_image_and_its_mirror_image(random_cifar, first_epoch):
    out_dir, args = first_epoch
    code, out, err = train_vit(*args, f"--out_dir={out_dir}", "--init_from=resume", "--eval_only=True", "--tta_flip=True")
    assert code == 0, err
    test_set = data.load_cifar("cifar10", random_cifar, False, False, False)
    checkpoint = torch.load(os.path.join(out_dir, "ckpt.pt"), weights_only=True)
    top1, loss = accuracy(checkpoint, test_set.data, test_set.targets, mirrored_too=True)
    assert f"val loss {loss:.4f}, top-1 {top1:.2%}" in out, out
    _, loss_without = accuracy(checkpoint, test_set.data, test_set.targets)
    assert f"{loss:.4f}" != f"{loss_without:.4f}"  # the mirror images did change the predictions


def test_batch_augment_and_muon_resume_mid_epoch_exactly(held_out_run, tmp_path):
    straight_dir, args, _ = held_out_run
    preempted_dir = str(tmp_path / "preempted")
    preempt(args, preempted_dir, "epoch 1 step 10/")
    code, _, err = train_vit(*args, f"--out_dir={preempted_dir}", "--init_from=resume")
    assert code == 0, err
    assert_same_run(straight_dir, preempted_dir)
    straight, resumed = read_test_json(straight_dir), read_test_json(preempted_dir)
    assert [straight[k] for k in ("epoch", "loss", "top1")] == [resumed[k] for k in ("epoch", "loss", "top1")]


def test_a_run_stopped_after_an_epochs_last_step_resumes(random_cifar, tmp_path):
    # one step per epoch (320 images, batch 320): a stop always lands on an epoch's last step,
    # where the resumed epoch has no step left to run, only its evaluation
    args = [f"--data_dir={random_cifar}", "--download=False", "--verify_md5=False", "--batch_size=320",
            "--epochs=3", *TINY_MODEL, "--log_interval=1"]
    straight_dir, stopped_dir = str(tmp_path / "straight"), str(tmp_path / "stopped")
    code, _, err = train_vit(*args, f"--out_dir={straight_dir}")
    assert code == 0, err
    preempt(args, stopped_dir, "epoch 0 step 1/")
    stopped = torch.load(os.path.join(stopped_dir, "ckpt.pt"), weights_only=True)
    assert stopped["step_in_epoch"] == 1  # = steps per epoch
    code, _, err = train_vit(*args, f"--out_dir={stopped_dir}", "--init_from=resume")
    assert code == 0, err
    assert_same_run(straight_dir, stopped_dir)


def test_pipeline_learns_the_dominant_colour(tmp_path):
    data_dir = write_cifar10(tmp_path / "data", dominant_colour_split(np.random.default_rng(1)), 200)
    out_dir = str(tmp_path / "out")
    code, out, err = train_vit(f"--data_dir={data_dir}", "--download=False", "--verify_md5=False",
                               f"--out_dir={out_dir}", *TINY_MODEL, "--patch_size=8", "--pool=mean",
                               "--batch_size=32", "--epochs=8", "--warmup_epochs=1.0", "--learning_rate=3e-3",
                               "--autoaugment=none", "--mixup=0.0", "--cutmix=0.0", "--random_erasing=0.0",
                               "--label_smoothing=0.0", "--drop_path=0.0")
    assert code == 0, err
    # 1000 training images / 32 = 31 steps per epoch, 248 steps; chance is 10%
    assert read_log(out_dir)[-1]["top1"] >= 0.9, out


# -----------------------------------------------------------------------------
# errors are one line, not tracebacks

def assert_one_line_error(code, err, expected):
    assert code != 0
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert err.strip().startswith("error: ") and expected in err, err


@pytest.mark.parametrize("flags, expected", [
    (["--init_from=resume", "--n_layer=3"], "was trained with --n_layer=2 (now 3): resume with the checkpoint's settings (--n_layer=2)"),
    (["--epochs=5"], "already holds a trained model (ckpt.pt, best.pt): continue it with --init_from=resume"),
    (["--init_from=resume", "--label_smoothing=1.5"], "label_smoothing must be in [0, 1), got 1.5"),
])
def test_resuming_or_restarting_a_trained_run_wrongly_is_a_one_line_error(first_epoch, flags, expected):
    out_dir, args = first_epoch
    code, _, err = train_vit(*args, f"--out_dir={out_dir}", *flags)
    assert_one_line_error(code, err, expected)


def test_a_cifar_file_that_would_run_code_is_refused(tmp_path):
    data_dir = write_cifar10(tmp_path / "data", random_split(np.random.default_rng(0)), 8)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(os.path.join(data_dir, "cifar-10-batches-py", "batches.meta"), "wb") as f:
        pickle.dump({"label_names": Exploit()}, f, protocol=2)
    code, _, err = train_vit(f"--data_dir={data_dir}", "--download=False", "--verify_md5=False", *TINY_MODEL)
    assert_one_line_error(code, err, "batches.meta is not a CIFAR batch file (refused as unsafe or damaged: it names")
    assert not marker.exists()


def test_missing_dataset_with_download_off_is_a_one_line_error(tmp_path):
    code, _, err = train_vit(f"--data_dir={tmp_path}", "--download=False", *TINY_MODEL)
    assert_one_line_error(code, err, f"CIFAR-10 not found in {tmp_path}; run with --download=True")


def test_files_failing_the_md5_check_are_a_one_line_error(random_cifar):
    code, _, err = train_vit(f"--data_dir={random_cifar}", "--download=False", *TINY_MODEL)
    assert_one_line_error(code, err, "--verify_md5=False")


BAD_SETTINGS = {"--patch_size=5": "image size 32 is not divisible by patch size 5",
                "--n_head=5": "n_head=5 does not divide n_embd=32",
                "--mlp=swish": "mlp='swish' is not one of gelu, relu, none",
                "--norm_placement=middle": "norm_placement='middle' is not one of pre, post",
                "--val_images=320": "val_images must be in [0, 320)",
                "--batch_augment=True": "batch_augment crops and flips only: add --autoaugment=none",
                "--optimizer=sgd": "optimizer must be 'adamw' or 'muon', got 'sgd'"}


@pytest.fixture(scope="module")
def bad_settings(random_cifar):
    """train_vit.py with each of BAD_SETTINGS, all in one process (conftest.run_scripts)."""
    flags = list(BAD_SETTINGS)
    results = run_scripts([["train_vit.py", f"--data_dir={random_cifar}", "--download=False", "--verify_md5=False",
                            *TINY_MODEL, flag] for flag in flags])
    return dict(zip(flags, results))


@pytest.mark.parametrize("flag", list(BAD_SETTINGS))
def test_bad_setting_is_a_one_line_error(bad_settings, flag):
    result = bad_settings[flag]
    assert_one_line_error(result.returncode, result.stderr, BAD_SETTINGS[flag])
