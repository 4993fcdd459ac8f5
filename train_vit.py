"""
Train a Vision Transformer (model_vit.py) from scratch on CIFAR-10 or CIFAR-100.

With no config file the recipe suits the device: on a CPU the CPU speedrun (config/vit_speedrun_cpu.py,
minutes), on a GPU the full recipe below (200 epochs). The first line says which.
$ python train_vit.py

On a laptop CPU (a small model that visibly learns in minutes; then the 10-minute CPU speedrun):
$ python train_vit.py config/vit_cpu.py
$ python train_vit.py config/vit_speedrun_cpu.py

On one GPU (the seed model with the full recipe):
$ python train_vit.py config/vit_cifar10.py

On 8 GPUs of one node (batch_size is per GPU, so the global batch is 8x larger):
$ torchrun --standalone --nproc_per_node=8 train_vit.py config/vit_cifar10.py

Any setting below can be changed by a config file and then by --key=value, e.g. --epochs=50.
Resume after a stop or crash with --init_from=resume (same out_dir): it continues where ckpt.pt
left off (the end of an epoch, or the step where SIGTERM/Ctrl-C stopped it) and, on CPU, trains
exactly as if it had never stopped. best.pt holds the weights with the best top-1 after an epoch:
on the test split, or with --val_images=N on the last N training images, held out from training;
the test split is then read once, at the end, by best.pt (its result in out_dir/test.json).
"""

import copy
import dataclasses
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from torchvision import transforms
from torchvision.transforms import v2

import configurator
import data
import optimizers
import training
from model_vit import ViT, ViTConfig

# -----------------------------------------------------------------------------
# default config values: CIFAR-10, the seed model (8 layers, 6 heads, 192 wide, 4x4 patches)
# I/O
out_dir = "out-vit"
init_from = "scratch"  # "scratch", "resume" (from out_dir/ckpt.pt) or "auto" (resume if it exists)
overwrite = False      # let a fresh run replace the trained model in out_dir
eval_only = False      # evaluate the resumed checkpoint on the test set, then exit
log_interval = 50      # print a progress line every this many steps
wandb_log = False      # also log to Weights & Biases (works with WANDB_MODE=offline)
wandb_project = "tinyformers"
wandb_run_name = "vit"
# data
dataset = "cifar10"    # "cifar10" or "cifar100"
data_dir = "data"      # holds cifar-10-batches-py/ or cifar-100-python/
download = True        # fetch the dataset with torchvision if it is not in data_dir
verify_md5 = True      # check the files against torchvision's md5 sums; False for a copy you made yourself
num_workers = min(8, training.available_cores())  # DataLoader processes doing the augmentation (0: in the main process)
val_images = 0         # hold out the last val_images training images to evaluate every epoch and choose best.pt
                       # by; the test split is then read once, at the end (0: evaluate the test split every epoch)
batch_augment = False  # crop and flip whole batches in the training process, not image by image in DataLoader
                       # workers: far cheaper where cores are few (needs autoaugment="none", random_erasing=0)
# model
patch_size = 4
stem = "patch"         # "patch": one patch_size x patch_size conv (ViT); "conv": 3x3 stride-2 convs (Xiao et al. 2021)
n_layer = 8
n_head = 6
n_embd = 192
mlp_ratio = 4.0
dropout = 0.0
attn_dropout = 0.0
drop_path = 0.1        # stochastic depth of the last block (linearly less in earlier ones)
pool = "cls"           # "cls" or "mean"
norm = "layernorm"     # "layernorm" or "rmsnorm"
norm_placement = "pre" # "pre": x + f(norm(x)) (ViT) or "post": norm(x + f(x)) (the 2017 Transformer)
mlp = "gelu"           # the MLP's nonlinearity: "gelu", "relu" or "none"
bias = True
# augmentation and regularization
autoaugment = "trivialaugment"  # "trivialaugment", "randaugment" or "none"
mixup = 0.8            # MixUp alpha (0: off)
cutmix = 1.0           # CutMix alpha (0: off); with both on, each batch gets one of the two at random
random_erasing = 0.25  # probability of erasing a random rectangle of each image
label_smoothing = 0.1
tta_flip = False       # evaluate each image and its mirror image, predicting from the mean of their probabilities
# optimizer: AdamW, linear warmup then cosine decay, stepped every batch
optimizer = "adamw"    # or "muon" (the blocks' weight matrices; AdamW for the rest)
batch_size = 256       # images per step per process
learning_rate = 1e-3
min_lr = 1e-5
weight_decay = 0.05
beta1 = 0.9
beta2 = 0.999
grad_clip = 1.0        # clip the gradient norm at this value (0: off)
on_nonfinite = "stop"  # a NaN/inf loss or gradient: "stop" the run, or "skip" the step
epochs = 200           # length of the run; the learning rate reaches min_lr at its end
warmup_epochs = 5.0
stop_at_epoch = 0      # if > 0, stop after this many epochs (the schedule still spans `epochs`)
# system
device = "auto"        # "auto", "cpu", "cuda", "cuda:1", "mps"
dtype = "auto"         # "auto" (bf16 on GPUs that have it and on CPUs with AMX/AVX512-BF16), "bfloat16", "float16", "float32"
compile = "auto"       # torch.compile the model: "auto" = on CUDA only (minutes to compile, faster after)
seed = 1337
# -----------------------------------------------------------------------------
config = configurator.configure(globals(), sys.argv[1:])
recipe = "the settings as given"
if (not any(arg.endswith(".py") for arg in sys.argv[1:]) and config["device"] == "auto"
        and training.pick_device("auto") == "cpu"):
    # the full recipe would take about a day on a CPU: with no config file named and no GPU found,
    # train the CPU speedrun instead (--device=cpu, or any config file, keeps the settings as given)
    recipe = os.path.join("config", "vit_speedrun_cpu.py") + " (no GPU found, no config file named)"
    config = configurator.configure(globals(), [os.path.join(os.path.dirname(os.path.abspath(__file__)), "config",
                                                         "vit_speedrun_cpu.py"), *sys.argv[1:]])
globals().update(config)
configurator.check_settings(
    config, at_least_1="batch_size n_layer n_head n_embd patch_size epochs",
    at_least_0="min_lr weight_decay grad_clip warmup_epochs stop_at_epoch num_workers mixup cutmix log_interval",
    positive="learning_rate mlp_ratio", below_1="beta1 beta2 dropout attn_dropout drop_path label_smoothing",
    unit="random_erasing",
    choices={"dataset": tuple(data.CIFAR), "autoaugment": ("trivialaugment", "randaugment", "none"),
             "optimizer": optimizers.OPTIMIZERS})
if batch_augment and (autoaugment != "none" or random_erasing > 0):
    training.fail("batch_augment crops and flips only: add --autoaugment=none --random_erasing=0, or drop it")
if init_from not in ("scratch", "resume", "auto"):
    training.fail(f"init_from must be scratch, resume or auto, got '{init_from}'")
ckpt_path = training.checkpoint_path(out_dir, "last")
init_mode = init_from if init_from != "auto" else ("resume" if os.path.exists(ckpt_path) else "scratch")
if eval_only and init_mode != "resume":
    training.fail("eval_only evaluates a trained model: add --init_from=resume")

ddp = training.setup_distributed(device)  # ddp.device: the device this process runs on
device_type = ddp.device.split(":")[0]    # "cuda", "cpu" or "mps"
precision = training.resolve_dtype(dtype, ddp.device)
if optimizer == "muon" and precision == "float16":
    training.fail("optimizer=muon does not support float16's grad scaler; use --dtype=bfloat16")
compile_model = training.resolve_compile(compile, ddp.device)
guard = training.NonFiniteGuard(on_nonfinite, ddp.device, "step", ckpt_path)
torch.manual_seed(seed + ddp.rank)  # each rank its own DropPath and MixUp draws
if device_type == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores where any are left
    torch.backends.cudnn.allow_tf32 = True
if init_mode != "resume":
    training.check_fresh_out_dir(out_dir, overwrite)  # on every rank: none may wait for one that stopped
if ddp.master:
    training.make_dir(out_dir)
    training.remove_stale_temp_files(out_dir)

# -----------------------------------------------------------------------------
# data: torchvision's CIFAR loaders, augmentation seeded per image so resume is exact

def augment_seed(seed, epoch, i):
    """The seed of image (or batch) i's augmentation in an epoch: a function of (seed, epoch, i) alone,
    whatever the number of workers or when the run was resumed."""
    return (seed * 1_000_003 + epoch) * 1_000_003 + i


class SeededAugment(Dataset):
    """
    Apply a random transform to dataset[i] with randomness drawn from a generator seeded by
    (seed, epoch, i): the augmented images are a pure function of the epoch, whatever the number of
    DataLoader workers or when the run was resumed. `epoch` lives in shared memory so that the
    main process can advance it for (persistent) workers that were started long ago.
    """

    def __init__(self, base, transform, seed):
        self.base, self.transform, self.seed = base, transform, seed
        self.epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        image, label = self.base[index]
        # fork_rng: with num_workers=0 this runs in the main process, whose RNG must not be disturbed
        with torch.random.fork_rng(devices=[]):
            # (the CPU generator alone: torch.manual_seed would also reseed every GPU, ~0.2 ms per call)
            torch.default_generator.manual_seed(augment_seed(self.seed, int(self.epoch), index))
            return self.transform(image), label


if ddp.enabled and not ddp.master:
    dist.barrier()  # let rank 0 download alone, then read its copy
train_set = data.load_cifar(dataset, data_dir, True, download, verify_md5)
test_set = data.load_cifar(dataset, data_dir, False, download, verify_md5)
if ddp.enabled and ddp.master:
    dist.barrier()
n_classes = len(train_set.classes)
if not 0 <= val_images < len(train_set):
    training.fail(f"val_images must be in [0, {len(train_set)}) for {dataset}'s training images, got {val_images}")
n_train = len(train_set) - val_images  # the first n_train images train the model, the rest are held out

normalize = data.cifar_normalize(dataset)
augment = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
if autoaugment == "trivialaugment":
    augment.append(transforms.TrivialAugmentWide())  # one random op at a random strength per image
elif autoaugment == "randaugment":
    augment.append(transforms.RandAugment(num_ops=2, magnitude=9))
augment += normalize
if random_erasing > 0:
    augment.append(transforms.RandomErasing(p=random_erasing))
test_set.transform = transforms.Compose(normalize)
if batch_augment:  # the training images as one uint8 tensor on the device; the loader gives indices into it
    train_images = torch.from_numpy(train_set.data[:n_train]).permute(0, 3, 1, 2).to(ddp.device)  # (N, 3, 32, 32)
    train_labels = torch.tensor(train_set.targets[:n_train], device=ddp.device)
    mean, std = (torch.tensor(v, device=ddp.device)[:, None, None] for v in data.CIFAR[dataset][2:])
    train_data = range(n_train)
else:
    train_data = SeededAugment(Subset(train_set, range(n_train)), transforms.Compose(augment), seed)

# every rank takes an equal share of a fresh permutation each epoch (set_epoch reseeds it from
# seed + epoch); dropping the last partial batch keeps every step's shape the same for torch.compile


class ResumableSampler(DistributedSampler):
    """A DistributedSampler that can start one epoch part-way, after a run stopped mid-epoch: the
    epoch's order is a function of (seed, epoch), so leaving out the first `skip` indices of this
    rank's share resumes exactly where the stopped run was."""
    skip = 0  # for the next epoch only

    def __iter__(self):
        indices = list(super().__iter__())[self.skip:]
        self.skip = 0
        return iter(indices)


train_sampler = ResumableSampler(train_data, num_replicas=ddp.world_size, rank=ddp.rank,
                                 shuffle=True, seed=seed, drop_last=True)
# each loader draws its workers' base seed from its own generator, never from the global RNG, so
# the global RNG (DropPath, MixUp) follows the same sequence whatever num_workers is
loader_args = dict(num_workers=num_workers, pin_memory=(device_type == "cuda"),
                   persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(seed),
                   worker_init_fn=training.ignore_stop_signals)
train_loader = DataLoader(train_data, batch_size=batch_size, sampler=train_sampler, drop_last=True,
                          **(dict(generator=loader_args["generator"]) if batch_augment else loader_args))
# evaluation images are split rank::world_size without padding, so the summed counts are exact
test_loader = DataLoader(test_set, batch_size=2 * batch_size, sampler=range(ddp.rank, len(test_set), ddp.world_size),
                         **loader_args)
# evaluated after every epoch: the held-out images, or the test split
eval_loader = test_loader
if val_images > 0:
    held_out = copy.copy(train_set)  # the same images, without augmentation
    held_out.transform = test_set.transform
    eval_loader = DataLoader(held_out, batch_size=2 * batch_size,
                             sampler=range(n_train + ddp.rank, len(train_set), ddp.world_size), **loader_args)
steps_per_epoch = len(train_loader)
if steps_per_epoch == 0:
    training.fail(f"batch_size={batch_size} x {ddp.world_size} process(es) is more than the "
                  f"{n_train} training images")


def train_batches(epoch, start_step):
    """The (images, labels) of one epoch from start_step on, augmented, on the device."""
    train_sampler.set_epoch(epoch)
    if not batch_augment:
        train_data.epoch.fill_(epoch)
        for images, labels in train_loader:
            yield images.to(ddp.device, non_blocking=True), labels.to(ddp.device, non_blocking=True)
        return
    for step_in_epoch, indices in enumerate(train_loader, start=start_step):
        # seeded per (epoch, step, rank), as SeededAugment per image: a resumed run draws the same crops
        batch_id = step_in_epoch * ddp.world_size + ddp.rank
        generator = torch.Generator().manual_seed(augment_seed(seed, epoch, batch_id))
        indices = indices.to(ddp.device)
        images = data.random_crop_flip(train_images[indices], 4, generator)  # (B, 3, 32, 32) uint8
        yield (images.float() / 255 - mean) / std, train_labels[indices]

# MixUp / CutMix blend pairs of images in a batch and their labels (targets become class
# probabilities); done on the device, batch by batch, after the per-image augmentation
batch_mixes = []
if mixup > 0:
    batch_mixes.append(v2.MixUp(alpha=mixup, num_classes=n_classes))
if cutmix > 0:
    batch_mixes.append(v2.CutMix(alpha=cutmix, num_classes=n_classes))
mix_batch = v2.RandomChoice(batch_mixes) if batch_mixes else None

# -----------------------------------------------------------------------------
# model, optimizer, and the state of a resumed run

epoch, best_top1 = 0, 0.0
elapsed_before = 0.0  # training seconds of the run(s) this one resumes
start_step, resumed_loss_sum = 0, 0.0  # where in the first epoch to start, and its train loss so far
if init_mode == "resume":
    checkpoint = training.load_checkpoint(ckpt_path, "ViT", "train first with --init_from=scratch, or check --out_dir", resume=True)
    training.check_resume_settings(config, checkpoint, ["val_images", "optimizer", "patch_size", "stem", "n_layer", "n_head", "n_embd", "mlp_ratio", "dropout",
                                   "attn_dropout", "drop_path", "pool", "norm", "norm_placement", "mlp", "bias"], ckpt_path)
    model_config = ViTConfig(**checkpoint["model_args"])  # the shape is the checkpoint's, not the flags'
    if model_config.n_classes != n_classes:
        training.fail(f"the checkpoint has {model_config.n_classes} classes, {dataset} has {n_classes}")
    if checkpoint["config"]["batch_size"] != batch_size:  # a mid-epoch position is counted in batches
        training.fail(f"resume with the checkpoint's --batch_size={checkpoint['config']['batch_size']}")
else:
    try:
        model_config = ViTConfig(img_size=32, patch_size=patch_size, in_chans=3, n_classes=n_classes,
                                 n_layer=n_layer, n_head=n_head, n_embd=n_embd, mlp_ratio=mlp_ratio,
                                 dropout=dropout, attn_dropout=attn_dropout, drop_path=drop_path, stem=stem,
                                 pool=pool, norm=norm, norm_placement=norm_placement, mlp=mlp, bias=bias)
    except ValueError as e:
        training.fail(str(e))
model = ViT(model_config).to(ddp.device)
optim = optimizers.configure(model, optimizer, weight_decay, learning_rate, (beta1, beta2),
                             device_type)
scaler = training.grad_scaler(ddp.device, precision)
if init_mode == "resume":
    model.load_state_dict(checkpoint["model"])
    optim.load_state_dict(checkpoint["optimizer"])
    training.load_scaler_state(scaler, checkpoint["scaler"])
    epoch, best_top1, elapsed_before = checkpoint["epoch"], checkpoint["best_top1"], checkpoint["elapsed_s"]
    # a run stopped mid-epoch continues at the step after the last one it trained
    start_step, resumed_loss_sum = checkpoint["step_in_epoch"], checkpoint["loss_sum"]
    train_sampler.skip = start_step * batch_size
    if ddp.master:
        print(f"resumed from {ckpt_path} at epoch {epoch}/{epochs}, step {start_step} of {steps_per_epoch} "
              f"(best top-1 {best_top1:.2%})")
    training.set_rng_state(checkpoint["rng"][min(ddp.rank, len(checkpoint["rng"]) - 1)])
    del checkpoint
# `model` stays the plain module (what we save); `fast_model` may be compiled; `train_model` adds DDP
fast_model = torch.compile(model) if compile_model else model
train_model = DDP(fast_model, device_ids=[ddp.local_rank] if device_type == "cuda" else None) if ddp.enabled else fast_model
if ddp.master:
    print(f"recipe: {recipe}, {epochs} epochs")
    print(f"ViT: {model.get_num_params() / 1e6:.2f}M parameters, {model_config.n_patches} patches of "
          f"{model_config.patch_size}x{model_config.patch_size}, {model.estimate_flops_per_image() / 1e9:.2f} GFLOP per "
          f"training image; {dataset}: {n_train} train / {val_images} held-out / {len(test_set)} test images; "
          f"{steps_per_epoch} steps per epoch of {batch_size} x {ddp.world_size} images; "
          f"device {ddp.device}, {training.describe_dtype(dtype, precision)}, compile {compile_model}, {num_workers} data workers")
    if compile_model:
        print("torch.compile: the first step compiles the model (minutes on a CPU; --compile=False skips it)")
stop = training.StopRequest(ddp)  # SIGTERM / Ctrl-C: save and stop at the next step boundary
timer = training.Timer()  # seconds since the start, for the logs


@torch.no_grad()
def evaluate(loader):
    """Loss and top-1/top-5 accuracy on the loader's images, summed over every rank's share of them."""
    fast_model.eval()
    # loss sum, top-1 hits, top-5 hits, images. float32 (MPS has no float64): counts stay exact up to
    # 2^24 images, and a loss sum over a test set needs no more than float32's 7 digits
    totals = torch.zeros(4, device=ddp.device)
    for images, labels in loader:
        images = images.to(ddp.device, non_blocking=True)
        labels = labels.to(ddp.device, non_blocking=True)
        with training.autocast(ddp.device, precision):
            logits, _ = fast_model(images)
            if tta_flip:  # and its mirror image: the prediction is the mean of the two probabilities
                mirrored, _ = fast_model(images.flip(-1))
                logits = torch.logaddexp(logits.float().log_softmax(-1), mirrored.float().log_softmax(-1)) - math.log(2)
        loss_sum = torch.nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
        top5 = logits.topk(min(5, n_classes), dim=1).indices   # (B, 5), best first
        hits = top5 == labels[:, None]                          # (B, 5): at most one True per row
        totals += torch.stack([loss_sum, hits[:, 0].sum().float(), hits.any(dim=1).sum().float(),
                               torch.tensor(float(len(labels)), device=ddp.device)])
    if ddp.enabled:
        dist.all_reduce(totals)
    fast_model.train()
    loss_sum, top1, top5, count = totals.tolist()
    return loss_sum / count, top1 / count, top5 / count


if eval_only:  # evaluate on the test split, then skip the training loop below
    val_loss, top1, top5 = evaluate(test_loader)
    if ddp.master:
        print(f"epoch {epoch}: val loss {val_loss:.4f}, top-1 {top1:.2%}, top-5 {top5:.2%}")

def save(step_in_epoch, loss_sum, last=True, best=False):
    """ckpt.pt (last: everything resume needs) and/or best.pt (best: the weights alone): `epoch` full
    epochs done, plus `step_in_epoch` steps of the next one."""
    training.save_run(ddp, guard, out_dir, last, best, model, optim, scaler, kind="vit",
                      model_args=dataclasses.asdict(model_config), config=config, epoch=epoch,
                      step_in_epoch=step_in_epoch, loss_sum=loss_sum, best_top1=best_top1,
                      elapsed_s=elapsed_before + timer.elapsed())


# -----------------------------------------------------------------------------
# training loop: one pass over the training set per epoch, evaluation and checkpoints after each

metrics = training.MetricsLog(out_dir, ddp.master, config, wandb_log, wandb_project, wandb_run_name)
if init_mode == "resume" and not eval_only:
    metrics.forget_after("epoch", epoch)
last_log_time, steps_since_log = time.time(), 0  # a resumed run's first line covers fewer than log_interval
total_steps = epochs * steps_per_epoch
warmup_steps = int(warmup_epochs * steps_per_epoch)
images_per_step = batch_size * ddp.world_size
last_epoch = min(epochs, stop_at_epoch) if stop_at_epoch > 0 else epochs


def lr_at(step):
    return training.learning_rate_at(step, learning_rate, warmup_steps, total_steps, min_lr)


if epoch >= last_epoch and not eval_only and ddp.master:
    print(f"nothing to do: {epoch} epochs are done (epochs={epochs}, stop_at_epoch={stop_at_epoch})")
train_model.train()
first_step, stopped, trained = True, False, False
while epoch < last_epoch and not (eval_only or stopped):
    loss_sum = torch.full((), resumed_loss_sum, device=ddp.device)  # summed on the device: no GPU sync every step
    epoch_start, epoch_first_step = time.time(), start_step  # for the epoch's training throughput
    # (a run stopped after an epoch's last step resumes with nothing left of it: straight to its evaluation)
    for step_in_epoch, (images, labels) in enumerate(train_batches(epoch, start_step), start=start_step):
        step = epoch * steps_per_epoch + step_in_epoch
        lr = lr_at(step)
        for group in optim.param_groups:
            group["lr"] = lr
        if mix_batch is not None:
            images, labels = mix_batch(images, labels)  # labels: (B,) indices -> (B, n_classes) probabilities
        with training.autocast(ddp.device, precision):
            _, loss = train_model(images, labels, label_smoothing=label_smoothing)
        scaler.scale(loss).backward()
        training.optimizer_step(model, optim, scaler, grad_clip, guard, step, ddp.master)
        loss_sum += loss.detach()
        steps_since_log += 1

        if first_step and ddp.master:
            print(f"first step done in {time.time() - last_log_time:.1f}s" + (" (compile included)" if compile_model else ""))
            first_step = False
        if log_interval > 0 and (step + 1) % log_interval == 0:
            guard.check()
            loss_value = loss.item()  # waits for the GPU, so the time below is real
            dt = (time.time() - last_log_time) / steps_since_log  # seconds per step
            last_log_time, steps_since_log = time.time(), 0
            if ddp.master:
                left = (last_epoch * steps_per_epoch - step - 1) * dt  # evaluations not counted
                print(f"epoch {epoch} step {step + 1}/{total_steps}: loss {loss_value:.4f}, lr {lr:.2e}, "
                      f"{images_per_step / dt:,.0f} img/s, ~{training.duration(left)} left")
        if stop.agreed():
            save(step_in_epoch + 1, loss_sum.item())
            if ddp.master:
                print(f"stopped in epoch {epoch} after step {step + 1}; continue with the same command "
                      f"and --init_from=resume")
            stopped = True
            break
    if stopped:
        break

    start_step, resumed_loss_sum = 0, 0.0
    epoch += 1  # the epoch is done: what follows describes the model after `epoch` epochs
    trained = True
    guard.check()
    if ddp.enabled:
        dist.all_reduce(loss_sum)
    train_loss = loss_sum.item() / (steps_per_epoch * ddp.world_size)  # .item() waits for the device
    images_per_s = (steps_per_epoch - epoch_first_step) * images_per_step / (time.time() - epoch_start)
    val_loss, top1, top5 = evaluate(eval_loader)
    is_best = top1 > best_top1 and math.isfinite(val_loss)
    best_top1 = top1 if is_best else best_top1
    if ddp.master:
        print(f"epoch {epoch}/{epochs}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
              f"top-1 {top1:.2%}, top-5 {top5:.2%} (best {best_top1:.2%}) on the {'held-out' if val_images else 'test'} "
              f"images, {elapsed_before + timer.elapsed():.0f}s")
        metrics.log({"epoch": epoch, "step": epoch * steps_per_epoch, "train_loss": train_loss,
                     "val_loss": val_loss, "top1": top1, "top5": top5, "lr": lr_at(epoch * steps_per_epoch - 1),
                     "images_seen": epoch * steps_per_epoch * images_per_step,
                     "flops": epoch * steps_per_epoch * images_per_step * model.estimate_flops_per_image(),
                     "images_per_s": round(images_per_s, 1), "elapsed_s": round(elapsed_before + timer.elapsed(), 3)})
    if math.isfinite(val_loss):
        save(0, 0.0, best=is_best)
    elif ddp.master:
        print(f"val loss is {val_loss}: not saving this model over the last good checkpoint")
    last_log_time, steps_since_log = time.time(), 0  # evaluation and checkpoints don't count in the next img/s

if val_images > 0 and trained and epoch == epochs:
    # the held-out images chose best.pt; the test split is read once, now, by that model
    if ddp.enabled:
        dist.barrier()  # rank 0 has written best.pt
    best_path = training.checkpoint_path(out_dir, "best")
    if os.path.exists(best_path):
        best = training.load_checkpoint(best_path, "ViT")
        model.load_state_dict(best["model"])
        test_loss, test_top1, test_top5 = evaluate(test_loader)
        if ddp.master:
            print(f"test split, best.pt (epoch {best['epoch']}): loss {test_loss:.4f}, top-1 {test_top1:.2%}, "
                  f"top-5 {test_top5:.2%}, {elapsed_before + timer.elapsed():.0f}s")
            with training.atomic_write(os.path.join(out_dir, "test.json")) as tmp_path, open(tmp_path, "w") as f:
                json.dump({"checkpoint": "best.pt", "epoch": best["epoch"], "images": len(test_set), "loss": test_loss,
                           "top1": test_top1, "top5": test_top5, "elapsed_s": round(elapsed_before + timer.elapsed(), 3)}, f)

# The DataLoader workers ignore SIGTERM, which is how Python ends its daemon processes at exit: drop
# the loaders (and with them their iterators) first, which asks their workers to finish. The DDP
# wrapper holds the process group, which cleanup_distributed must be able to free.
del train_loader, test_loader, eval_loader, train_model
training.cleanup_distributed(ddp)
