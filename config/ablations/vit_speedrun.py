# What each idea of config/vit_speedrun_cpu.py contributes to its test top-1: the recipe (9 epochs),
# then one idea at a time put back to the seed ViT's choice (config/vit_cpu.py). Two seeds rather
# than three, as each run is a whole speedrun (README: "ViT speedrun" under Ablations). Flip TTA
# and whole-batch augmentation are not here: TTA changes only the evaluation (measure it on the
# recipe's checkpoint with --init_from=resume --eval_only=True --tta_flip=False), and batch
# augmentation only the speed.
# $ python analysis/ablate.py config/ablations/vit_speedrun.py --seeds=2 --data_dir=data --download=False --verify_md5=False
script = "train_vit.py"
base_config = "config/vit_speedrun_cpu.py"
baseline = "recipe"
variants = {
    "recipe": {},
    "adamw": {"optimizer": "adamw"},             # AdamW for every parameter, at the recipe's lr
    "patch-stem": {"stem": "patch"},             # one 8x8 stride-8 conv instead of the conv stem: same 16 tokens
    "gelu": {"mlp": "gelu"},
    "label-smoothing": {"label_smoothing": 0.1},
}
