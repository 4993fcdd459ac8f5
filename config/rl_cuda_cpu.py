# GRPO on the CUDA kernel model of config/cuda_code.py, on a 2-core CPU in <= 15 minutes:
#   python train_gpt.py config/cuda_code.py           # the model to start from (~15 min)
#   python train_rl.py config/rl_cuda_cpu.py         # on a busy machine: OMP_WAIT_POLICY=PASSIVE (docs/rl.md)
# The reward: 1 for a kernel body that compiles (nvcc -ptx, in code_check's sandbox) and writes
# memory through a pointer parameter; reward_valid for one that only compiles and holds at least
# code_check.MIN_TOKENS tokens. Non-trivial bodies are rare at the start (a few in a hundred), so
# most groups of 16 would score all zeros and teach nothing: the small credit for compiling code
# gives them a signal. It never pays the empty body `}`, which compiles: an earlier run, paid for
# it, wrote nothing else after 10 steps (docs/rl.md). The first run compiles every training
# kernel's reference once (~1,000 nvcc calls, a few minutes; cached in data/cuda_code).
out_dir = "out-rl-cuda"
base_dir = "out-cuda-code"
language = "cuda"

eval_interval = 10
eval_tasks = 24
eval_samples = 4
eval_iters = 10

tasks_per_step = 4
group_size = 16
max_new_tokens = 160
temperature = 1.0
reward_valid = 0.1
kl_coef = 0.05
batch_size = 16

learning_rate = 5e-4
max_iters = 30

device = "cpu"
dtype = "float32"  # bfloat16 is faster only on CPUs with AMX or AVX512-BF16
