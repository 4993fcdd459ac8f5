# A Python code model on the standard library's own source, trained on a CPU in ~15 minutes:
#   python prepare/python_code.py            # no download: ~10M tokens, bpe.py vocab 2048
#   python train_gpt.py config/python_code.py
#   python analysis/syntax_check.py --out_dir=out-python-code --num_samples=50
# 6 layers x 192 wide (3.05M parameters), 256 tokens (~3 lines of code per 32 tokens) of context.
out_dir = "out-python-code"
eval_interval = 250
eval_iters = 20
log_interval = 50
always_save_checkpoint = False

dataset = "python_code"
batch_size = 16
block_size = 256

n_layer = 6
n_head = 6
n_embd = 192
dropout = 0.0

learning_rate = 2e-3
max_iters = 1100
lr_decay_iters = 1100
min_lr = 2e-4
warmup_iters = 100
dtype = "bfloat16"  # measured here: 530 ms/iter vs 720 in float32 (AMX matmuls)
