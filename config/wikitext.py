# WikiText on one GPU: 6 layers, 384 wide, context 512, dropout against overfitting WikiText-2's
# ~2.4M tokens (WikiText-103, ~120M tokens: --dataset=wikitext103 --dropout=0.0 --max_iters=50000).
#   python prepare/wikitext.py
#   python train_gpt.py config/wikitext.py
out_dir = "out-wikitext"
eval_interval = 500
eval_iters = 100
log_interval = 50
always_save_checkpoint = False

dataset = "wikitext2"
batch_size = 32
block_size = 512

n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.2

learning_rate = 6e-4
max_iters = 5000
lr_decay_iters = 5000
min_lr = 6e-5
warmup_iters = 200
weight_decay = 1e-1
beta2 = 0.95
compile = True
