# A CUDA kernel model on the seven repositories of cuda-kernels.tar.gz (docs/cuda.md), trained on a
# 2-core CPU in ~15 minutes (1,000 steps of 4,096 tokens):
#   python prepare/cuda_code.py cuda-kernels.tar.gz --weight NVIDIA+cutlass=0 NVIDIA+cuda-samples=3 karpathy+llm.c=3 ggml-org+ggml=3
#   python train_gpt.py config/cuda_code.py
#   python analysis/code_eval.py --out_dir=out-cuda-code --num_tasks=120 --num_samples=4
# The weights: cutlass (18 MB, mostly C++ template tests) is left out of training, and the three
# repositories that hold most plain __global__ kernels come three times. Half of the files are held
# out, which gives >= 100 kernels that compile alone to complete. The shape of config/python_code.py
# (6 layers x 128 wide, 1.5M parameters, Muon, RoPE, SwiGLU, qk_norm), with 512 tokens of context:
# a kernel's body is often longer than 256.
out_dir = "out-cuda-code"
eval_interval = 500
eval_iters = 20
log_interval = 50
always_save_checkpoint = False

dataset = "cuda_code"
batch_size = 8
block_size = 512

n_layer = 6
n_head = 4
n_embd = 128
dropout = 0.0
optimizer = "muon"
pos_encoding = "rope"
mlp = "swiglu"
qk_norm = True

learning_rate = 5e-3
max_iters = 1000
lr_decay_iters = 1000
min_lr = 5e-4
warmup_iters = 100
device = "cpu"
dtype = "float32"  # bfloat16 is faster only on CPUs with AMX or AVX512-BF16
compile = False
