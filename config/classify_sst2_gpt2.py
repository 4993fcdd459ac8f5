# SST-2 sentiment (positive / negative movie-review sentences) from GPT-2 small, on one GPU.
# The whole model is fine-tuned; --trainable_blocks=2 trains only the last two blocks, ln_f and the
# head (faster, less memory). Downloads GPT-2 and SST-2 from the Hugging Face hub.
# Not run in this project yet (no GPU here): the settings are the usual ones for GPT-2 on SST-2.
out_dir = "out-sst2"
init_from = "gpt2"
dataset = "sst2"      # 67,349 train / 872 validation sentences
block_size = 128      # SST-2's longest sentence is under 100 GPT-2 tokens; each batch pads to its longest
batch_size = 32
dropout = 0.1
eval_interval = 500
log_interval = 50
learning_rate = 3e-5
max_iters = 6000      # ~3 epochs
lr_decay_iters = 6000
warmup_iters = 200
min_lr = 3e-6
weight_decay = 0.01
