# Who is speaking? Fine-tune the small character-level GPT of the default `python train_gpt.py` run
# (out-shakespeare-char) to tell six of tiny Shakespeare's speakers apart, on a CPU. First:
#   python prepare/shakespeare_speakers.py     # data/shakespeare_speakers/{train,val}.jsonl
#   python train_gpt.py                        # out-shakespeare-char/best.pt, the backbone
# From scratch instead, for comparison: --init_from=scratch --tokenizer=char --out_dir=out-speakers-scratch
out_dir = "out-speakers"
init_from = "out-shakespeare-char"
train_file = "data/shakespeare_speakers/train.jsonl"
val_file = "data/shakespeare_speakers/val.jsonl"
block_size = 64       # the backbone's context: each speech keeps its last 64 characters
batch_size = 32
eval_interval = 50
log_interval = 50
learning_rate = 1e-3
max_iters = 300       # ~12 passes over the 819 training speeches
lr_decay_iters = 300
warmup_iters = 30
min_lr = 1e-4
