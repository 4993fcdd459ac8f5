# The seed ViT on CIFAR-10 with a strong from-scratch recipe for one GPU:
# $ python train_vit.py config/vit_cifar10.py
# 8 layers, 6 heads of 32, 192 wide, 4x4 patches (64 patches + CLS), 3.6M parameters.
# ViTs have no built-in locality prior, so on 50k images they need heavy augmentation and
# regularization (TrivialAugment, MixUp/CutMix, random erasing, label smoothing, DropPath, weight
# decay) and many epochs to generalize; this is the DeiT recipe scaled down to CIFAR.
# On 8 GPUs keep the global batch: torchrun --standalone --nproc_per_node=8 train_vit.py
#   config/vit_cifar10.py --batch_size=64  (or scale learning_rate with the batch).
out_dir = "out-vit-cifar10"
wandb_run_name = "vit-cifar10"
dataset = "cifar10"
num_workers = 16         # CPU augmentation feeds the GPU: use every core you have

n_layer = 8
n_head = 6
n_embd = 192
patch_size = 4
mlp_ratio = 4.0
drop_path = 0.1
pool = "cls"
norm = "layernorm"

autoaugment = "trivialaugment"
mixup = 0.8
cutmix = 1.0
random_erasing = 0.25
label_smoothing = 0.1

batch_size = 512
learning_rate = 1e-3
min_lr = 1e-5
weight_decay = 0.05
grad_clip = 1.0
epochs = 300
warmup_epochs = 10.0

dtype = "auto"           # bf16 on Ampere and newer
compile = True
