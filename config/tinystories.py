# TinyStories on one GPU: llama2.c's 15M model shape (6 layers, 288 wide, 6 heads, context 256) with
# a 4096-token bpe.py vocabulary trained on the train split. ~32K tokens per step.
#   python prepare/tinystories.py            # data/tinystories, vocab 4096
#   python train_gpt.py config/tinystories.py
out_dir = "out-tinystories"
eval_interval = 1000
eval_iters = 100
log_interval = 50
always_save_checkpoint = False

dataset = "tinystories"
batch_size = 128
block_size = 256
gradient_accumulation_steps = 1

n_layer = 6
n_head = 6
n_embd = 288
dropout = 0.0

learning_rate = 1e-3
max_iters = 30000
lr_decay_iters = 30000
min_lr = 1e-4
warmup_iters = 1000
weight_decay = 1e-1
beta2 = 0.95
compile = True
