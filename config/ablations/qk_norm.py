# Normalising each head's queries and keys before their dot product (model_gpt.py's qk_norm), which
# bounds the attention logits. Tiny Shakespeare characters, train_gpt.py's CPU recipe (its defaults:
# 4 layers, 4 heads, 128 wide, context 64, LayerNorm, 2000 iterations).
# $ python analysis/ablate.py config/ablations/qk_norm.py
script = "train_gpt.py"
base_config = ""
base_overrides = {}
baseline = "off"
variants = {
    "off": {"qk_norm": False},  # GPT-2
    "on": {"qk_norm": True},
}
