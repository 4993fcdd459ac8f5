# The CPU speedrun: the fastest way found on a 2-core CPU to a tiny-Shakespeare character model
# whose loss over the whole val split is <= 1.886, what nanoGPT's CPU recipe reaches in 2,000
# iterations. Same model size and batch as that recipe (4 layers, 4 heads, 128 wide, context 64,
# batch 12), with the lab's best ideas from the ablations, and 320 iterations instead of 2,000.
# $ python train_gpt.py config/speedrun_cpu.py
# $ python bench/bench_speedrun.py --seeds=3     # against nanoGPT's recipe, timed back to back
out_dir = "out-speedrun-cpu"
eval_interval = 10_000        # evaluate at the start and the end only (wall time counts every eval)
eval_iters = 20
log_interval = 50
always_save_checkpoint = False

optimizer = "muon"            # the largest gain (see Ablations > Optimizer)
pos_encoding = "rope"
mlp = "swiglu"
qk_norm = True

learning_rate = 5e-3          # Muon's tuned rate; 3e-3 and 1e-2 were both worse at this length
max_iters = 320
lr_decay_iters = 320          # the whole cosine schedule fits into the short run
min_lr = 5e-4
warmup_iters = 30
device = "cpu"
dtype = "float32"             # bfloat16 only pays on CPUs with AMX or AVX512-BF16
compile = False               # compiling takes longer than the whole run
