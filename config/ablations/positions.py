# How the model knows where a token is (model_gpt.py's pos_encoding), on tiny Shakespeare characters
# with train_gpt.py's CPU recipe (its defaults: 4 layers, 4 heads, 128 wide, context 64, 2000 iterations).
# $ python analysis/ablate.py config/ablations/positions.py
script = "train_gpt.py"
base_config = ""
base_overrides = {}
baseline = "learned"
variants = {
    "learned": {"pos_encoding": "learned"},        # GPT-2: a learned table added to the token embeddings
    "sinusoidal": {"pos_encoding": "sinusoidal"},  # the fixed sin/cos table of the 2017 Transformer
    "rope": {"pos_encoding": "rope"},              # rotary: q and k turned by position, scores see offsets only
    "none": {"pos_encoding": "none"},              # only the causal mask tells positions apart
}
