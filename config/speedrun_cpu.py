# The CPU speedrun: the fastest way found on a 2-core CPU to a tiny-Shakespeare character model
# whose loss over the whole val split is <= 1.886, nanoGPT's CPU recipe's result.
# $ python train_gpt.py config/speedrun_cpu.py
# $ python bench/bench_speedrun.py     # against nanoGPT's recipe, timed back to back
out_dir = "out-speedrun-cpu"
eval_interval = 10_000        # no evaluation but at the start and the end: wall time counts them
eval_iters = 20
log_interval = 50
always_save_checkpoint = False

pos_encoding = "rope"
mlp = "swiglu"
qk_norm = True
optimizer = "muon"

learning_rate = 5e-3
max_iters = 500
lr_decay_iters = 500
min_lr = 5e-4
warmup_iters = 50
device = "cpu"
dtype = "float32"
compile = False
