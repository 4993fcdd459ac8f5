# A wider ViT on CIFAR-100: 8 layers, 12 heads of 32, 384 wide, 4x4 patches, RMSNorm in pre-norm
# blocks, label smoothing 0.1; about 14M parameters.
# $ python train_vit.py config/vit_cifar100.py
# 100 classes of 500 training images each overfit even faster than CIFAR-10, so the regularization
# is a little stronger (DropPath 0.2) than in vit_cifar10.py.
out_dir = "out-vit-cifar100"
wandb_run_name = "vit-cifar100"
dataset = "cifar100"
num_workers = 16

n_layer = 8
n_head = 12
n_embd = 384
patch_size = 4
mlp_ratio = 4.0
drop_path = 0.2
pool = "cls"
norm = "rmsnorm"

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

dtype = "auto"
compile = True
