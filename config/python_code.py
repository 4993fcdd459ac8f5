# A Python code model on the standard library's own source, trained on a 2-core CPU in ~14 minutes:
#   python prepare/python_code.py            # no download: ~10M tokens, bpe.py vocab 2048
#   python train_gpt.py config/python_code.py
#   python analysis/code_eval.py --out_dir=out-python-code --free_samples=50 --num_tasks=0
# 6 layers x 128 wide (1.5M parameters), 256 tokens (~3 lines of code per 32 tokens) of context,
# with the CPU speedrun's ideas (Muon, RoPE, SwiGLU, qk_norm): 1,500 steps of 4,096 tokens in float32,
# sized to fit the time on a 2-core AVX2 CPU (README, "A Python code model").
out_dir = "out-python-code"
eval_interval = 500
eval_iters = 20
log_interval = 50
always_save_checkpoint = False

dataset = "python_code"
batch_size = 16
block_size = 256

n_layer = 6
n_head = 4
n_embd = 128
dropout = 0.0
optimizer = "muon"
pos_encoding = "rope"
mlp = "swiglu"
qk_norm = True

learning_rate = 5e-3
max_iters = 1500
lr_decay_iters = 1500
min_lr = 5e-4
warmup_iters = 100
device = "cpu"
dtype = "float32"  # bfloat16 is faster only on CPUs with AMX or AVX512-BF16
compile = False
