# GRPO's choices on the Python code model (config/rl_python_cpu.py, shortened to 10 steps): the group
# size at the same 64 completions per step (4 prompts x 16, 8 x 8, 16 x 4), the small KL penalty
# toward the starting model vs none, and advantages divided by the group's std (GRPO) vs not
# (Dr. GRPO). ablate.py's table gives each run's last held-out evaluation: reward, non-trivial rate,
# length, KL and LM loss (docs/rl.md). 10 steps of 64 completions, ~2 minutes a run on 2 cores.
# $ OMP_WAIT_POLICY=PASSIVE python analysis/ablate.py config/ablations/rl.py
script = "train_rl.py"
base_config = "config/rl_python_cpu.py"
# lm_coef 0 and one update per batch: the recipe as it was when this table was measured (docs/rl.md);
# config/ablations/rl_lm.py ablates those two on today's recipe
base_overrides = {"max_iters": 10, "eval_interval": 10, "eval_tasks": 24, "always_save_checkpoint": False,
                  "lm_coef": 0.0, "updates_per_batch": 1}
baseline = "G16"
variants = {
    "G16": {},                                          # config/rl_python_cpu.py: 4 prompts x 16
    "G8": {"group_size": 8, "tasks_per_step": 8},
    "G4": {"group_size": 4, "tasks_per_step": 16},
    "no-kl": {"kl_coef": 0.0},
    "no-std": {"std_normalize": False},
}
