# What config/rl_python_cpu.py's language-model loss (lm_coef=1) does, on the Python code model over
# 10 steps: the recipe against the recipe without it (docs/rl.md). ~2 minutes a run on 2 cores.
# $ python analysis/ablate.py config/ablations/rl_lm.py
script = "train_rl.py"
base_config = "config/rl_python_cpu.py"
base_overrides = {"max_iters": 10, "eval_interval": 10, "eval_tasks": 24, "always_save_checkpoint": False}
baseline = "recipe"
variants = {
    "recipe": {},                      # lm_coef=1, updates_per_batch=2
    "no-lm": {"lm_coef": 0.0},
}
