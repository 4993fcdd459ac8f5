# GRPO on the Python code model of config/python_code.py, on a 2-core CPU in <= 15 minutes:
#   python train_gpt.py config/python_code.py        # the model to start from (~14 min)
#   python train_rl.py config/rl_python_cpu.py       # on a busy machine: OMP_WAIT_POLICY=PASSIVE (docs/rl.md)
# The reward: 1 for a function body that parses and does something (code_check.py), else 0.
# 4 functions x 16 bodies per step: a group of 16 is one batch of the KV-cached sampler, and a
# bigger group finds a success more often where they are rare.
out_dir = "out-rl-python"
base_dir = "out-python-code"
language = "python"

eval_interval = 20
eval_tasks = 48
eval_samples = 4
eval_iters = 20

tasks_per_step = 4
group_size = 16
max_new_tokens = 128
temperature = 1.0
std_normalize = True
kl_coef = 0.05  # without it the bodies shrink fast: short code parses more often (docs/rl.md)
lm_coef = 1.0   # without it the held-out LM loss rose 0.14 nats in 60 steps; with it, none (docs/rl.md)
updates_per_batch = 2  # each sampled batch serves twice (the clipped ratio): more learning per sample
batch_size = 32

learning_rate = 5e-4
max_iters = 70

device = "cpu"
dtype = "float32"  # bfloat16 is faster only on CPUs with AMX or AVX512-BF16
