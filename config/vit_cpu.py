# A small ViT that visibly learns CIFAR-10 in minutes on a laptop CPU (2 epochs):
# $ python train_vit.py config/vit_cpu.py
# 4 layers, 4 heads of 32, 128 wide, 4x4 patches: 0.8M parameters, ~0.33 GFLOP per training image.
# Light augmentation (crop + flip) and no MixUp/CutMix: heavy regularization pays off only over
# hundreds of epochs, while here we want a fast rise in accuracy from the first epoch.
out_dir = "out-vit-cpu"
wandb_run_name = "vit-cpu"
dataset = "cifar10"
device = "cpu"
dtype = "float32"        # --dtype=bfloat16 is ~2x faster on CPUs with AVX512-BF16 or AMX, slower without
compile = False          # compiling on CPU takes minutes and needs a C++ compiler
num_workers = 2
log_interval = 20

n_layer = 4
n_head = 4
n_embd = 128
patch_size = 4
mlp_ratio = 4.0
drop_path = 0.0
pool = "cls"

autoaugment = "none"
mixup = 0.0
cutmix = 0.0
random_erasing = 0.0
label_smoothing = 0.0

batch_size = 128
learning_rate = 2e-3
min_lr = 1e-4
weight_decay = 0.05
epochs = 2
warmup_epochs = 0.2
