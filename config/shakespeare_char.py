# nanoGPT's "baby GPT" on tiny Shakespeare characters, sized for one GPU (~3 min on an A100,
# val loss ~1.47). On a CPU use train_gpt.py's defaults instead (4 layers, 128 wide).
out_dir = "out-shakespeare-char"
eval_interval = 250
eval_iters = 200
log_interval = 10
always_save_checkpoint = False  # it overfits this small dataset: keep the best val loss only

dataset = "shakespeare_char"
gradient_accumulation_steps = 1
batch_size = 64
block_size = 256  # characters of context

n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.2

learning_rate = 1e-3  # small models can take a higher learning rate
max_iters = 5000
lr_decay_iters = 5000
min_lr = 1e-4
beta2 = 0.99  # a bit larger because there are few tokens per iteration
warmup_iters = 100
compile = True
