"""
Sample text from a trained GPT (or from OpenAI's GPT-2 weights).

    python sample.py --start "ROMEO:"                        # out_dir/best.pt (the default run's)
    python sample.py --out_dir=out-shakespeare --start=FILE:prompt.txt --num_samples=3
    python sample.py --init_from=gpt2 --start "Hello, I'm a language model,"
    python sample.py --out_dir=out-python-code --chat=True     # interactive: prompts from stdin
"""

import os
import sys

import torch

import configurator
import data
import training
from model_gpt import GPT, GPTConfig

# -----------------------------------------------------------------------------
init_from = "out_dir"          # 'out_dir' (the trained run there: --ckpt picks best.pt or ckpt.pt) or 'gpt2', 'gpt2-medium', ...
out_dir = "out-shakespeare-char"
ckpt = "best"                  # 'best' (best.pt: the lowest val loss) or 'last' (ckpt.pt: the latest)
start = "\n"                   # the prompt, or FILE:path to read it from a file
num_samples = 2
max_new_tokens = 500
temperature = 0.8              # < 1 sharpens the distribution, > 1 flattens it, 0 is greedy
top_k = 200                    # sample only among the k most likely tokens (0 = all)
top_p = 0.0                    # nucleus sampling: only the likeliest tokens adding up to top_p (0 = off)
use_cache = True               # keep keys/values of earlier tokens (KV cache): much faster, same tokens
stream = False                 # print each token as it is generated
chat = False                   # interactive: read prompts from stdin, stream replies (type help)
seed = 1337
device = "auto"
dtype = "auto"
compile = False                # torch.compile the model, as training does ('auto' = on CUDA only); off by default: generation's growing shapes recompile
# -----------------------------------------------------------------------------
config = configurator.configure(globals(), sys.argv[1:])
globals().update(config)
configurator.check_settings(config, at_least_1="num_samples", at_least_0="max_new_tokens temperature top_k", unit="top_p")

run_device = training.pick_device(device)
precision = training.resolve_dtype(dtype, run_device)
torch.manual_seed(seed)
torch.cuda.manual_seed(seed)

if init_from == "out_dir":
    checkpoint = training.load_trained(out_dir, ckpt, "GPT")
    print(f"sampling {training.checkpoint_path(out_dir, ckpt)} (iter {checkpoint['iter_num']}, "
          f"best val loss {checkpoint['best_val_loss']:.4f})", file=sys.stderr)
    model = GPT(GPTConfig(**{**checkpoint["model_args"], "dropout": 0.0}))
    model.load_state_dict(checkpoint["model"])
    data_path = data.dataset_path(checkpoint["config"], out_dir)
    meta = data.read_meta(data_path, prepare_hint="sample.py decodes with the dataset's tokenizer")
    if meta["vocab_size"] != model.config.tokenizer_vocab_size:
        training.fail(f"{data_path}/meta.json (vocab {meta['vocab_size']}) does not match the checkpoint "
                      f"(vocab {model.config.tokenizer_vocab_size})")
    encode, decode = data.load_tokenizer(meta, data_path)
elif init_from.startswith("gpt2") or os.path.isdir(init_from):
    try:
        model = GPT.from_pretrained(init_from, dict(dropout=0.0))
    except (ValueError, RuntimeError, OSError) as e:
        training.fail(str(e))
    encode, decode = data.load_tokenizer({"tokenizer": "gpt2"}, "")
else:
    training.fail(f"init_from must be 'out_dir', a GPT-2 name such as 'gpt2', or a local Hugging Face "
                  f"GPT-2 directory, got '{init_from}'")

model.eval()
model.to(run_device)
if training.resolve_compile(compile, run_device):
    model.compile()  # compiles the module's __call__, which generate() reaches through self(...)

prompt = data.read_text_file(start[len("FILE:"):]) if start.startswith("FILE:") else start
start_ids = encode(prompt)
if not start_ids:
    training.fail("the prompt is empty: pass --start with at least one character")
block_size = model.config.block_size
if len(start_ids) > block_size:
    print(f"warning: the prompt is {len(start_ids)} tokens, longer than the model's context of "
          f"{block_size}; the model sees only its last {block_size} tokens", file=sys.stderr)
x = torch.tensor(start_ids, dtype=torch.long, device=run_device)[None, ...]  # (1, T)



def print_as_generated(prompt_ids):
    """A stream callback: print the text each new token adds. A GPT-2 token can end halfway through
    a multi-byte character, so text ending in the replacement character waits for the next token."""
    ids = list(prompt_ids)
    prompt = decode(ids)
    print(prompt, end="", flush=True)
    printed = len(prompt)

    def on_token(token):  # token: (1,)
        nonlocal printed
        ids.append(int(token[0]))
        text = decode(ids)
        if not text.endswith("\ufffd"):
            print(text[printed:], end="", flush=True)
            printed = len(text)
    return on_token

CHAT_HELP = ("chat: type a prompt and press enter. Commands: temp 0.8 | topk 200 | topp 0.9 | max 500 | "
             "reset (forget the conversation) | help | quit (or exit, q, end of input)")


class EndOfReply(Exception):
    """Raised from the stream callback to stop generating once the model ends its text."""


def chat_session():
    """Each line from stdin is a prompt (or a command); the model continues the whole conversation
    so far (its last block_size tokens) and its reply streams out until max tokens or <|endoftext|>."""
    settings = {"temp": temperature, "topk": top_k, "topp": top_p, "max": max_new_tokens}
    rules = {"temp": (float, lambda v: v >= 0, ">= 0 (0 = greedy)"), "topk": (int, lambda v: v >= 0, ">= 0 (0 = all)"),
             "topp": (float, lambda v: 0 <= v <= 1, "in [0, 1] (0 = off)"), "max": (int, lambda v: v >= 1, ">= 1")}
    history = []  # token ids of the conversation
    print(CHAT_HELP, flush=True)
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):  # Ctrl-D, a piped file that ran out, or Ctrl-C: leave
            print()
            return
        words = line.split()
        if words in (["quit"], ["exit"], ["q"]):
            return
        if words in (["help"], ["?"]):
            print(CHAT_HELP)
            continue
        if words == ["reset"]:
            history.clear()
            print("(conversation forgotten)")
            continue
        if len(words) == 2 and words[0] in rules:
            parse, ok, needs = rules[words[0]]
            try:
                value = parse(words[1])
            except ValueError:
                value = None
            if value is None or not ok(value):
                print(f"({words[0]} must be {needs}, got {words[1]!r})")
            else:
                settings[words[0]] = value
                print(f"({words[0]} = {value})")
            continue
        try:
            history += encode(line + "\n")
        except SystemExit as e:  # a character outside a char-level vocabulary: say so and go on
            print(f"({e})")
            continue
        history = history[-block_size:]
        reply, printed = [], 0

        def on_token(token):  # token: (1,)
            nonlocal printed
            reply.append(int(token[0]))
            text = decode(reply)
            if "<|endoftext|>" in text:
                raise EndOfReply
            if not text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                print(text[printed:], end="", flush=True)
                printed = len(text)
        x = torch.tensor([history], dtype=torch.long, device=run_device)
        try:
            with torch.no_grad(), training.autocast(run_device, precision):
                model.generate(x, settings["max"], temperature=settings["temp"], top_k=settings["topk"],
                               top_p=settings["topp"], use_cache=use_cache, stream=on_token)
        except EndOfReply:
            reply.pop()  # the <|endoftext|> itself
        except KeyboardInterrupt:  # Ctrl-C mid-reply stops this reply; the conversation goes on
            print(decode(reply)[printed:] + " (stopped)", flush=True)
            history += reply
            continue
        print(decode(reply)[printed:], flush=True)
        history += reply


if chat:
    chat_session()
    sys.exit(0)

if max_new_tokens * num_samples > 20_000:
    print(f"note: {num_samples} x {max_new_tokens:,} tokens, one forward pass each; this can take a while "
          f"(Ctrl-C stops and prints what was generated)", file=sys.stderr)
with torch.no_grad(), training.autocast(run_device, precision):
    for _ in range(num_samples):
        sample = list(start_ids)  # the tokens so far, also when Ctrl-C stops the sample midway
        printer = print_as_generated(start_ids) if stream else None

        def on_token(token):  # token: (1,)
            sample.append(int(token[0]))
            if printer:
                printer(token)
        try:
            model.generate(x, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                           use_cache=use_cache, stream=on_token)
        except KeyboardInterrupt:
            print("" if stream else decode(sample))
            print("(stopped)", file=sys.stderr)
            sys.exit(130)
        print("" if stream else decode(sample))
        print("---------------")
