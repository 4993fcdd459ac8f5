# The CUDA kernel model on one GPU: a bigger model and context over the same corpus, prepared as for
# config/cuda_code.py (~7M train tokens with the weights: 2,000 steps of 32K tokens are ~9 epochs, hence dropout; unmeasured).
#   python prepare/cuda_code.py cuda-kernels.tar.gz --weight NVIDIA+cutlass=0 NVIDIA+cuda-samples=3 karpathy+llm.c=3 ggml-org+ggml=3
#   python train_gpt.py config/cuda_code_gpu.py
#   python analysis/code_eval.py --out_dir=out-cuda-code-gpu --num_tasks=1000 --num_samples=16 --k=8   # every task
out_dir = "out-cuda-code-gpu"
eval_interval = 500
eval_iters = 100
log_interval = 50
always_save_checkpoint = False

dataset = "cuda_code"
batch_size = 32
block_size = 1024

n_layer = 8
n_head = 8
n_embd = 512
dropout = 0.1

learning_rate = 1e-3
max_iters = 2000
lr_decay_iters = 2000
min_lr = 1e-4
warmup_iters = 200
weight_decay = 1e-1
beta2 = 0.95
compile = True
