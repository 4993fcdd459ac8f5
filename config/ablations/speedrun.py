# What each idea of config/speedrun_cpu.py contributes: the speedrun (320 iterations, 3 seeds), then
# one idea at a time put back to nanoGPT's choice. The val loss at the same budget is the measure;
# eval_iters=200 (a few seconds) makes the final estimate less noisy than the speedrun's own 20.
# $ python analysis/ablate.py config/ablations/speedrun.py
script = "train_gpt.py"
base_config = "config/speedrun_cpu.py"
base_overrides = {"eval_iters": 200}
baseline = "speedrun"
variants = {
    "speedrun": {},
    "adamw": {"optimizer": "adamw", "learning_rate": 2e-3, "min_lr": 2e-4},  # train_gpt.py's AdamW rate
    "learned-positions": {"pos_encoding": "learned"},
    "gelu": {"mlp": "gelu"},
    "no-qk_norm": {"qk_norm": False},
}
