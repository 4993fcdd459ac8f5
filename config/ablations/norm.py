# Where the norms sit (pre-norm as GPT-2, or post-norm as the 2017 Transformer) and which norm
# (LayerNorm or RMSNorm), all four combinations. Tiny Shakespeare characters, train_gpt.py's CPU
# recipe (its defaults: 4 layers, 4 heads, 128 wide, context 64, 2000 iterations).
# $ python analysis/ablate.py config/ablations/norm.py
script = "train_gpt.py"
base_config = ""
base_overrides = {}
baseline = "pre-layernorm"
variants = {
    "pre-layernorm": {"norm_placement": "pre", "norm": "layernorm"},  # GPT-2
    "pre-rmsnorm": {"norm_placement": "pre", "norm": "rmsnorm"},      # LLaMA
    "post-layernorm": {"norm_placement": "post", "norm": "layernorm"},
    "post-rmsnorm": {"norm_placement": "post", "norm": "rmsnorm"},
}
