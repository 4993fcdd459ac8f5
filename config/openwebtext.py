# GPT-2 124M on OpenWebText, on one node of 8 GPUs:
#   python prepare/openwebtext.py
#   torchrun --standalone --nproc_per_node=8 train_gpt.py config/openwebtext.py
# ~0.5M tokens per step: 12 sequences x 1024 tokens x 40 micro-steps (5 per GPU) = 491,520.
# 600k steps = ~300B tokens, reaching val loss ~2.85 (about 4 days on 8 A100s).
out_dir = "out-openwebtext"
eval_interval = 1000
eval_iters = 200
log_interval = 10
wandb_run_name = "gpt2-124M"

dataset = "openwebtext"
batch_size = 12
block_size = 1024
gradient_accumulation_steps = 5 * 8

n_layer = 12
n_head = 12
n_embd = 768
dropout = 0.0
bias = True

learning_rate = 6e-4
max_iters = 600000
lr_decay_iters = 600000
min_lr = 6e-5
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.95
warmup_iters = 2000
compile = True
peak_flops = 989e12  # H100 SXM dense bf16, for the MFU column; set yours (A100: 312e12)
