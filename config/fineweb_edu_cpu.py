# FineWeb-Edu on a CPU: the first 20M GPT-2 tokens of sample-10BT and a small model.
#   python prepare/fineweb_edu.py --max_tokens 20_000_000 --out_dir data/fineweb_edu20M
#   python train_gpt.py config/fineweb_edu_cpu.py
out_dir = "out-fineweb-edu-cpu"
eval_interval = 500
eval_iters = 50
log_interval = 50
always_save_checkpoint = False

dataset = "fineweb_edu20M"
batch_size = 16
block_size = 256

n_layer = 4
n_head = 4
n_embd = 192
dropout = 0.0

learning_rate = 2e-3
max_iters = 4000
lr_decay_iters = 4000
min_lr = 2e-4
warmup_iters = 200
dtype = "bfloat16"
