# GPT-2 124M on FineWeb-Edu sample-10BT (~10B GPT-2 tokens), on one node of 8 GPUs: the model and
# optimizer of config/openwebtext.py (given first), one pass over the data (~0.5M tokens/step).
#   python prepare/fineweb_edu.py
#   torchrun --standalone --nproc_per_node=8 train_gpt.py config/openwebtext.py config/fineweb_edu.py
out_dir = "out-fineweb-edu"
eval_interval = 1000
eval_iters = 100
wandb_run_name = "gpt2-124M-fineweb-edu"

dataset = "fineweb_edu"
batch_size = 16
gradient_accumulation_steps = 4 * 8  # 16 x 1024 x 32 = 524,288 tokens per step

max_iters = 19000  # x 524,288 = ~10B tokens
lr_decay_iters = 19000
warmup_iters = 700
