# AdamW against Muon (model_gpt.py's optimizer="muon": model_gpt.Muon for the blocks' 2-D weight
# matrices, AdamW for the embeddings, norms and biases; one learning_rate and schedule for both
# parts). Tiny Shakespeare characters, train_gpt.py's CPU recipe (its defaults: 4 layers, 4 heads,
# 128 wide, context 64, 2000 iterations), each optimizer at its own learning rate:
# AdamW at train_gpt.py's 2e-3, measured against nanoGPT's 1e-3 (val loss 1.81 vs 1.89).
# Muon at 5e-3, the best of a one-seed sweep of this recipe (seed 1337, min_lr = learning_rate / 10,
# fp32 model, 1 thread, torch.optim.Muon's bfloat16 Newton-Schulz), val loss at iteration 2000:
#   learning_rate   2e-3     5e-3     1e-2     2e-2
#   val loss        1.6235   1.6003   1.6076   1.6311
# (one seed: the gap between 5e-3 and 1e-2, 0.007, may be within the spread over seeds)
# $ python train_gpt.py --optimizer=muon --learning_rate=5e-3 --min_lr=5e-4 --device=cpu
# $ python analysis/ablate.py config/ablations/optimizer.py
script = "train_gpt.py"
base_config = ""
base_overrides = {}
baseline = "adamw"
variants = {
    "adamw": {"optimizer": "adamw", "learning_rate": 2e-3, "min_lr": 2e-4},
    "muon": {"optimizer": "muon", "learning_rate": 5e-3, "min_lr": 5e-4},
}
