# The number of attention heads at a fixed width of 128 (head size 128, 64, 32, 16): the parameters
# and the FLOPs stay the same, only how the width is split into heads changes. Tiny Shakespeare
# characters, train_gpt.py's CPU recipe (its defaults: 4 layers, 4 heads, 128 wide, 2000 iterations).
# $ python analysis/ablate.py config/ablations/heads.py
script = "train_gpt.py"
base_config = ""
base_overrides = {"n_embd": 128}
baseline = "4-heads"
variants = {
    "1-head": {"n_head": 1},
    "2-heads": {"n_head": 2},
    "4-heads": {"n_head": 4},  # the recipe's
    "8-heads": {"n_head": 8},
}
