# GRPO on the GPU CUDA kernel model (config/cuda_code_gpu.py), on one GPU:
#   python train_gpt.py config/cuda_code_gpu.py
#   python train_rl.py config/rl_cuda_gpu.py
#   torchrun --standalone --nproc_per_node=8 train_rl.py config/rl_cuda_gpu.py   # 8 GPUs share the prompts
# Unmeasured. nvcc runs on the CPU cores (code_check.score_many: one thread per core), so the
# machine's cores, not the GPU, bound a step: more prompts per step only help with more cores.
out_dir = "out-rl-cuda-gpu"
base_dir = "out-cuda-code-gpu"
language = "cuda"

eval_interval = 50
eval_tasks = 200
eval_samples = 8
eval_iters = 100

tasks_per_step = 16
group_size = 16
max_new_tokens = 384
temperature = 1.0
reward_valid = 0.1
updates_per_batch = 2
kl_coef = 0.02
batch_size = 64

learning_rate = 5e-5
max_iters = 500
