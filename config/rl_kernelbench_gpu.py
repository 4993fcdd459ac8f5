# GRPO with an execution reward on one GPU: the CUDA kernel model (config/cuda_code_gpu.py) writes the
# body of an elementwise kernel for KernelBench's level-1 problems (ReLU, Sigmoid, GELU, ...), and
# each body that compiles and stores something runs against PyTorch's reference (docs/rl.md):
#   python train_gpt.py config/cuda_code_gpu.py
#   python train_rl.py config/rl_kernelbench_gpu.py --kernelbench=kernelbench.tar.gz
# Reward: 1 for a body that compiles and stores through y, +1 if its output is the reference's on
# three random draws, +1 more if it is also faster. Unmeasured: no GPU has run it. The kernels run
# one at a time, each in its own sandboxed process (torch's import, nvcc, three trials, the timing),
# so a step's time grows with the share of bodies that compile.
out_dir = "out-rl-kernelbench-gpu"
base_dir = "out-cuda-code-gpu"
language = "cuda"
execution_reward = True

eval_interval = 25
eval_tasks = 0     # all 4 held-out problems
eval_samples = 16
eval_iters = 100

tasks_per_step = 8  # of 8 training problems, drawn with replacement
group_size = 16
max_new_tokens = 128
temperature = 1.0
reward_valid = 0.1
updates_per_batch = 2
kl_coef = 0.02
batch_size = 64

learning_rate = 5e-5
max_iters = 200
