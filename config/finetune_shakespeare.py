# Fine-tune OpenAI's GPT-2 XL on tiny Shakespeare (GPT-2 tokens):
#   python prepare/shakespeare.py && python train_gpt.py config/finetune_shakespeare.py
# Use init_from="gpt2" on a smaller GPU.
out_dir = "out-shakespeare"
eval_interval = 5
eval_iters = 40
always_save_checkpoint = False  # only keep the best val loss

dataset = "shakespeare"
init_from = "gpt2-xl"

# 1 sequence x 32 micro-steps x 1024 tokens = 32,768 tokens per step; the dataset has ~300k,
# so one epoch is ~9 steps
batch_size = 1
gradient_accumulation_steps = 32
block_size = 1024
max_iters = 20

learning_rate = 3e-5  # fine-tune gently, at a constant rate
decay_lr = False
