# Evaluate OpenAI's GPT-2-large (774M) on OpenWebText:
#   python train_gpt.py config/eval_gpt2-large.py
batch_size = 8
eval_iters = 500  # use more iterations for a good estimate
eval_only = True
wandb_log = False
dataset = "openwebtext"
block_size = 1024
init_from = "gpt2-large"
out_dir = "out-eval-gpt2-large"
