# TinyStories on a CPU: the size of llama2.c's smallest model (5 layers, 64 wide, 8 heads, ~0.26M
# parameters with a 512-token vocabulary). llama2.c reports val loss 1.30 for it (their number,
# with their tokenizer and a longer run; not measured here).
#   python prepare/tinystories.py --vocab_size=512 --out_dir data/tinystories512
#   python train_gpt.py config/tinystories_cpu.py
out_dir = "out-tinystories-cpu"
eval_interval = 500
eval_iters = 50
log_interval = 50
always_save_checkpoint = False

dataset = "tinystories512"
batch_size = 32
block_size = 256

n_layer = 5
n_head = 8
n_embd = 64
dropout = 0.0

learning_rate = 2e-3
max_iters = 5000
lr_decay_iters = 5000
min_lr = 2e-4
warmup_iters = 200
dtype = "bfloat16"
