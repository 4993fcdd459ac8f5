# WikiText-2 (GPT-2 tokens, ~2.4M train tokens) on a CPU: a small model; most of its parameters are
# the 50,257 x 128 token embedding.
#   python prepare/wikitext.py
#   python train_gpt.py config/wikitext_cpu.py
out_dir = "out-wikitext-cpu"
eval_interval = 250
eval_iters = 50
log_interval = 50
always_save_checkpoint = False

dataset = "wikitext2"
batch_size = 16
block_size = 128

n_layer = 4
n_head = 4
n_embd = 128
dropout = 0.1

learning_rate = 2e-3
max_iters = 3000
lr_decay_iters = 3000
min_lr = 2e-4
warmup_iters = 100
dtype = "bfloat16"
