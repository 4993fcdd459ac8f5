# The MLP's nonlinearity at equal parameters. Tiny Shakespeare characters, train_gpt.py's CPU recipe
# (its defaults: 4 layers, 4 heads, 128 wide, no biases, 2000 iterations).
# GELU, ReLU and squared ReLU have two matrices, 128 x 512 and 512 x 128: 2 * 128 * 512 = 131,072
# parameters per layer. SwiGLU has three 128 x h matrices, so equal parameters need 3h = 2 * 512,
# h = 341.3: mlp_hidden = 341 gives 130,944, 128 fewer per layer (512 in a model of ~0.8M, 0.06%).
# (Left at 0, SwiGLU's width would be LLaMA's rounding up to a multiple of 64: 384, +66,560 parameters.)
# $ python analysis/ablate.py config/ablations/mlp.py
script = "train_gpt.py"
base_config = ""
base_overrides = {"n_embd": 128, "bias": False}
baseline = "gelu"
variants = {  # mlp_hidden's default, 0, is 4 x n_embd = 512: the recipe's own gelu run is this ablation's baseline
    "gelu": {"mlp": "gelu"},    # GPT-2 (tanh approximation)
    "relu": {"mlp": "relu"},
    "relu2": {"mlp": "relu2"},  # squared ReLU (Primer)
    "swiglu": {"mlp": "swiglu", "mlp_hidden": 341},
}
