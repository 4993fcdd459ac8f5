# GRPO on the GPU Python code model (config/python_code_gpu.py), on one GPU:
#   python train_gpt.py config/python_code_gpu.py
#   python train_rl.py config/rl_python_gpu.py
#   torchrun --standalone --nproc_per_node=8 train_rl.py config/rl_python_gpu.py   # 8 GPUs share the prompts
# Unmeasured: sized from the CPU run (docs/rl.md), with more prompts per step, longer bodies and
# two updates per batch (the clipped ratio then matters).
out_dir = "out-rl-python-gpu"
base_dir = "out-python-code-gpu"
language = "python"

eval_interval = 50
eval_tasks = 400
eval_samples = 8
eval_iters = 100

tasks_per_step = 32
group_size = 16
max_new_tokens = 256
temperature = 1.0
updates_per_batch = 2
kl_coef = 0.01
batch_size = 64

learning_rate = 5e-5
max_iters = 500
