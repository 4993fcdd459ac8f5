# The ViT CPU speedrun: the best CIFAR-10 test top-1 found for a ViT trained in 10 minutes of wall
# time on a 2-core CPU, everything included (README, "ViT CPU speedrun"). The ViT of
# config/vit_cpu.py (4 layers, 4 heads, 128 wide) with a convolutional stem (Xiao et al. 2021) down
# to 8x8 patches: 16 tokens instead of 64, a quarter of the FLOPs per image. Muon for the blocks'
# matrices, crop + flip done on whole batches, no worker processes, best.pt chosen on 5,000
# held-out training images, and the test split read once at the end, each image with its mirror.
# $ python train_vit.py config/vit_speedrun_cpu.py --data_dir=data --download=False --verify_md5=False
out_dir = "out-vit-speedrun-cpu"
wandb_run_name = "vit-speedrun-cpu"
dataset = "cifar10"
device = "cpu"
dtype = "float32"        # without AMX or AVX512-BF16, bfloat16 matmuls are emulated and far slower
compile = False          # a compile's minutes would come out of the 10
num_workers = 0          # no worker processes competing with training for the 2 cores
batch_augment = True     # crop + flip of whole batches in the training process
val_images = 5000        # best.pt is chosen on these; the test split is read once, at the end
tta_flip = True
log_interval = 50

stem = "conv"
patch_size = 8
n_layer = 4
n_head = 4
n_embd = 128
mlp_ratio = 4.0
drop_path = 0.0
pool = "cls"
mlp = "relu"

autoaugment = "none"
mixup = 0.0
cutmix = 0.0
random_erasing = 0.0
label_smoothing = 0.0

optimizer = "muon"
batch_size = 128
learning_rate = 2e-3
min_lr = 1e-4
weight_decay = 0.05
epochs = 9
warmup_epochs = 0.5
