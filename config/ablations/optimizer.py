# AdamW against Muon (model_gpt.py's optimizer="muon": torch.optim.Muon for the blocks' 2-D weight
# matrices, AdamW for the embeddings, norms and biases; one learning_rate and schedule for both
# parts). Tiny Shakespeare characters, train_gpt.py's CPU recipe (its defaults: 4 layers, 4 heads,
# 128 wide, context 64, 2000 iterations). AdamW runs at train_gpt.py's learning rate, measured
# against nanoGPT's (2e-3: val 1.81 vs 1.89 for 1e-3). Muon's is NOT tuned: it runs at AdamW's 2e-3
# (its updates are scaled to AdamW's size, match_rms_adamw, so that is a fair starting point).
# $ python analysis/ablate.py config/ablations/optimizer.py
script = "train_gpt.py"
base_config = ""
base_overrides = {}
baseline = "adamw"
variants = {
    "adamw": {"optimizer": "adamw", "learning_rate": 2e-3, "min_lr": 2e-4},
    "muon": {"optimizer": "muon", "learning_rate": 2e-3, "min_lr": 2e-4},  # untuned
}
