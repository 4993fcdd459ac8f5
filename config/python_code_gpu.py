# The Python code model on one GPU: a bigger model and context over the same stdlib corpus
# (~10M tokens: several epochs, hence dropout). For more code add --site_packages when preparing.
#   python prepare/python_code.py
#   python train_gpt.py config/python_code_gpu.py
out_dir = "out-python-code-gpu"
eval_interval = 500
eval_iters = 100
log_interval = 50
always_save_checkpoint = False

dataset = "python_code"
batch_size = 64
block_size = 512

n_layer = 8
n_head = 8
n_embd = 512
dropout = 0.1

learning_rate = 1e-3
max_iters = 10000
lr_decay_iters = 10000
min_lr = 1e-4
warmup_iters = 500
weight_decay = 1e-1
beta2 = 0.95
compile = True
