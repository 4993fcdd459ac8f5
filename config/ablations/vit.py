# Five ViT design choices, one at a time, on CIFAR-10 with config/vit_cpu.py (4 layers, 4 heads,
# 128 wide, crop + flip only, batch 128, fp32) at a CPU budget: one epoch per run instead of two, one
# seed. (--dtype=bfloat16 runs ~3x faster on CPUs with AMX, and far slower on CPUs without native
# bfloat16: 14 images/s on a 2-core AVX2 EPYC.) At one epoch this measures how fast each
# variant learns, not where it would end up: DropPath, a regularizer, pays off (if at all) only over
# many epochs.
# $ python analysis/ablate.py config/ablations/vit.py --seeds=1 --data_dir=data --download=False --verify_md5=False
script = "train_vit.py"
base_config = "config/vit_cpu.py"
base_overrides = {"epochs": 1}
baseline = "base"
variants = {
    "base": {"patch_size": 4, "pool": "cls", "drop_path": 0.0, "norm_placement": "pre", "mlp": "gelu"},  # vit_cpu.py's
    "patch8": {"patch_size": 8},              # 16 patches of 8x8 instead of 64 of 4x4: ~4x fewer tokens
    "mean-pool": {"pool": "mean"},            # classify from the average token instead of a CLS token
    "drop-path": {"drop_path": 0.1},          # stochastic depth, 0.1 in the last block
    "post-norm": {"norm_placement": "post"},  # norm(x + f(x)), as the 2017 Transformer
    "relu": {"mlp": "relu"},
    "no-activation": {"mlp": "none"},         # the MLP's two matrices with nothing between: one linear map
}
