"""
train_rl.py: GRPO's pieces against hand-computed values and exact references, then the script end to
end on a tiny code model: two processes equal one, a stopped and resumed run equals a straight one.

train_rl.py is a flat script (running it trains), so the unit tests take its functions from its
source: every top-level `def` before the settings, executed on their own.
"""

import ast
import math
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import code_check
from conftest import run_scripts
from model_gpt import GPT, GPTConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rl_functions():
    """The functions train_rl.py defines at its top, with the names they use."""
    with open(os.path.join(ROOT, "train_rl.py")) as f:
        tree = ast.parse(f.read())
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    namespace = {"torch": torch, "F": F, "KVCache": __import__("model_gpt").KVCache, "code_check": code_check}
    exec(compile(ast.Module(body=defs, type_ignores=[]), "train_rl.py", "exec"), namespace)
    return namespace


rl = rl_functions()


# -----------------------------------------------------------------------------
# the algorithm

def test_advantages_are_the_reward_minus_the_group_mean_optionally_over_its_std():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 0.0, 0.0]])
    plain = rl["group_advantages"](rewards, std_normalize=False)
    assert torch.allclose(plain, torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.0] * 4, [0.75, -0.25, -0.25, -0.25]]))
    scaled = rl["group_advantages"](rewards, std_normalize=True)
    std3 = math.sqrt(0.75 * 0.25)  # the population std of one 1 among four
    expected = torch.tensor([[1.0, -1.0, -1.0, 1.0], [0.0] * 4, [0.75 / std3] + [-0.25 / std3] * 3])
    assert torch.allclose(scaled, expected, atol=1e-5)  # a group that all scored the same stays at 0, no NaN


def test_a_completion_left_out_has_no_advantage_and_no_part_in_its_groups_baseline():
    # the third completion ran out of tokens (overlong_filter): the group is [1, 0, -, 0]
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    kept = torch.tensor([[True, True, False, True]])
    plain = rl["group_advantages"](rewards, std_normalize=False, kept=kept)
    assert torch.allclose(plain, torch.tensor([[2 / 3, -1 / 3, 0.0, -1 / 3]]))
    scaled = rl["group_advantages"](rewards, std_normalize=True, kept=kept)
    std = math.sqrt((1 / 3) * (2 / 3))  # the population std of one 1 among three
    assert torch.allclose(scaled, torch.tensor([[2 / 3 / std, -1 / 3 / std, 0.0, -1 / 3 / std]]), atol=1e-5)
    nothing_kept = rl["group_advantages"](rewards, std_normalize=True, kept=torch.zeros(1, 4, dtype=torch.bool))
    assert torch.equal(nothing_kept, torch.zeros(1, 4))


def test_the_clipped_loss_and_its_gradient_match_hand_computed_values():
    # four tokens with ratios 1.5, 0.5, 1.5, 0.5 (clip_eps 0.2: the range is [0.8, 1.2]) and
    # advantages +1, +1, -1, -1; a fifth token is masked out; the batch has 4 completion tokens
    old = torch.zeros(1, 5)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.5, 0.5, 3.0]])).requires_grad_()
    advantages = torch.tensor([[1.0, 1.0, -1.0, -1.0, 1.0]])  # per token here; train_rl passes (B, 1)
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    loss = rl["policy_loss"](logp, old, None, advantages, mask / 4, clip_eps=0.2, kl_coef=0.0)
    # per token -min(r A, clip(r) A): -min(1.5, 1.2) = -1.2; -min(0.5, 0.8) = -0.5;
    # -min(-1.5, -1.2) = 1.5; -min(-0.5, -0.8) = 0.8; masked: 0
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 1.5 + 0.8) / 4)
    loss.backward()
    # d/dlogp of -r A is -r A where the unclipped term is the minimum, 0 where the clipped one is
    assert torch.allclose(logp.grad, torch.tensor([[0.0, -0.5 / 4, 1.5 / 4, 0.0, 0.0]]))


def test_the_loss_averages_over_tokens_or_over_completions():
    # two completions, of 1 and 3 tokens, right-padded; a batch of 4 tokens in 2 completions
    mask = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    assert torch.equal(rl["loss_weights"](mask, "token", 4), mask / 4)
    assert torch.allclose(rl["loss_weights"](mask, "completion", 2), torch.tensor([[1 / 2, 0, 0], [1 / 6, 1 / 6, 1 / 6]]))
    # at ratio 1 each token's loss is -A: the short completion's -1 counts 1/4 per token, or 1/2
    logp = torch.zeros(2, 3)
    advantages = torch.tensor([[1.0], [-1.0]])
    for average, total, expected in [("token", 4, (-1 + 3) / 4), ("completion", 2, (-1 + 1) / 2)]:
        weights = rl["loss_weights"](mask, average, total)
        assert rl["policy_loss"](logp, logp, None, advantages, weights, 0.2, 0.0).item() == pytest.approx(expected, abs=1e-6)


def test_at_ratio_one_the_loss_gradient_is_reinforce():
    """The first update on a fresh batch (old = the policy's own values): -A times the gradient of
    log p, with the KL penalty adding nothing while the policy equals the reference."""
    logp = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    loss = rl["policy_loss"](logp, logp.detach(), logp.detach(), torch.tensor([[2.0]]), torch.ones(1, 3) / 3,
                             clip_eps=0.2, kl_coef=0.5)
    loss.backward()
    assert loss.item() == pytest.approx(-2.0)
    assert torch.allclose(logp.grad, torch.full((1, 3), -2.0 / 3))


def test_an_original_body_joins_each_group_cut_at_the_cap_and_unfinished_if_longer():
    completions, finished = [[1], [2], [3], [4]], [True, False, True, True]  # two prompts, groups of 2
    out, ended = rl["add_originals"](completions, finished, [[9, 9], [8, 8, 8, 8]], group_size=2, max_new_tokens=3)
    assert out == [[1], [2], [9, 9], [3], [4], [8, 8, 8]]
    assert ended == [True, False, True, True, True, False]


def test_a_body_shorter_than_the_length_floor_keeps_that_share_of_its_reward():
    task = code_check.Task("python", "f", "def f(x):", "\n    y = x + 1\n    return y", "test")
    original = task.reference                     # 6 pairs of code tokens: y = x + 1 return y
    short = "\n    return x  # a comment is no code\ndef g():"  # 1 pair (return x), cut at the dedent
    assert rl["length_credit"](task, short, original, 1.0) == pytest.approx(1 / 6)
    assert rl["length_credit"](task, short, original, 0.5) == pytest.approx(1 / 3)
    assert rl["length_credit"](task, short, original, 1 / 6) == 1.0
    assert rl["length_credit"](task, original, original, 1.0) == 1.0


def test_the_k3_estimator_is_nonnegative_and_its_expectation_is_the_exact_kl():
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        p = torch.softmax(torch.randn(6, generator=generator) * 2, dim=0)
        q = torch.softmax(torch.randn(6, generator=generator) * 2, dim=0)
        k3 = rl["kl_k3"](p.log(), q.log())  # the estimate if each token had been sampled from p
        assert (k3 >= 0).all()
        exact = (p * (p / q).log()).sum()
        assert (p * k3).sum().item() == pytest.approx(exact.item(), rel=1e-5)
        # and from samples, as train_rl uses it
        tokens = torch.multinomial(p, 200_000, replacement=True, generator=generator)
        assert k3[tokens].mean().item() == pytest.approx(exact.item(), rel=0.03, abs=1e-3)


def test_a_policy_over_five_tokens_learns_the_rewarded_one():
    """A bandit: sample 8 tokens from the policy, reward token 3, advantages per group, the loss
    with gradient steps. The rewarded token's probability climbs from 1/5 to near 1."""
    torch.manual_seed(0)
    logits = torch.zeros(5, requires_grad=True)
    optim = torch.optim.Adam([logits], lr=0.1)
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        logprobs = F.log_softmax(logits, dim=0)
        tokens = torch.multinomial(logprobs.exp().detach(), 8, replacement=True, generator=generator)
        rewards = (tokens == 3).float()[None]                                      # (1, G)
        advantages = rl["group_advantages"](rewards, std_normalize=True).view(-1, 1)  # (G, 1)
        logp = logprobs[tokens][:, None]                                           # (G, 1): one token each
        loss = rl["policy_loss"](logp, logp.detach(), None, advantages, torch.ones(8, 1) / 8, 0.2, 0.0)
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert F.softmax(logits, dim=0)[3].item() > 0.95


def tiny_policy():
    torch.manual_seed(0)
    return GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=64, tokenizer_vocab_size=60)).eval()


def ends_at_multiple_of_4(ids):
    return ids[-1] % 4 == 0  # a completion "ends" at a token divisible by 4


def test_a_group_is_sampled_with_the_cache_stops_when_every_completion_ended_and_repeats_with_its_seed():
    model = tiny_policy()
    ended = ends_at_multiple_of_4
    sample = lambda seed, steps=30: rl["sample_groups"](model, [[1, 2, 3]], 6, steps, 1.0,
                                                        [torch.Generator().manual_seed(seed)], [ended])
    group, finished = sample(7)
    assert group == sample(7)[0] and group != sample(8)[0]
    assert all(ids and ended(ids) and not any(ended(ids[:i]) for i in range(1, len(ids))) for ids in group)
    assert finished == [True] * 6
    short, finished = sample(7, steps=1)
    assert finished == [ended(ids) for ids in short] and not all(finished)  # one token: some rows still open
    assert all(t < 60 for ids in group for t in ids)  # padding ids are never sampled
    # the same tokens as sampling without the cache, each step a full forward pass over everything
    # so far, from a generator with the same seed
    generator = torch.Generator().manual_seed(7)
    idx = torch.tensor([[1, 2, 3]] * 6)
    for _ in range(max(len(ids) for ids in group)):
        logits = model(idx)[0][:, -1].float()
        logits[:, 60:] = -float("inf")
        idx = torch.cat([idx, torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)], dim=1)
    for row, ids in enumerate(group):
        assert idx[row, 3:3 + len(ids)].tolist() == ids


def test_prompts_of_different_lengths_sampled_as_one_batch_get_the_completions_each_gets_alone():
    model = tiny_policy()
    prompts, seeds = [[1, 2, 3, 5, 7, 9, 11], [13], [21, 22, 23]], [3, 4, 5]
    never = lambda ids: False                                      # every row runs all 12 tokens
    enders = [ends_at_multiple_of_4, never, ends_at_multiple_of_4]
    together, finished = rl["sample_groups"](model, prompts, 4, 12, 1.0,
                                             [torch.Generator().manual_seed(s) for s in seeds], enders)
    for i, (prompt, seed, ended) in enumerate(zip(prompts, seeds, enders)):
        alone, alone_finished = rl["sample_groups"](model, [prompt], 4, 12, 1.0, [torch.Generator().manual_seed(seed)], [ended])
        assert together[4 * i:4 * i + 4] == alone and finished[4 * i:4 * i + 4] == alone_finished
    assert all(len(ids) == 12 for ids in together[4:8]) and not any(finished[4:8])


# -----------------------------------------------------------------------------
# the script, on a tiny code model: a few hundred small functions, a model trained on them for
# seconds (enough that some of its bodies parse and some do not: the rewards of a group differ)

FUNCTION = '''def {name}(x, n={k}):
    """{doc} {k}."""
{body}
'''
BODIES = ["    return x + n", "    y = x * n\n    return y + x - n", "    for i in range(n):\n        x = x + i\n    return x * n + 1",
          "    if x > n:\n        return x\n    return n - x * 2", "    pass"]  # three can be hinted (code_check.hint_cuts)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("rl")
    source = root / "src"
    source.mkdir()
    for f in range(60):
        functions = [FUNCTION.format(name=f"f{f}_{j}", k=(f * 7 + j) % 13, doc=["Add", "Scale", "Sum up to", "Clip at"][j % 4],
                                     body=BODIES[(f + j) % len(BODIES)]) for j in range(4)]
        (source / f"m{f}.py").write_text("\n\n".join(functions))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "prepare/python_code.py", "--no_stdlib", "--data_files", str(source),
                    "--out_dir", str(root / "data" / "tinycode"), "--vocab_size=300", "--val_fraction=0.2", "--num_proc=1"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "train_gpt.py", "--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=96",
                    "--batch_size=8", "--max_iters=150", "--eval_interval=150", "--eval_iters=2", "--log_interval=0",
                    "--learning_rate=3e-3", "--warmup_iters=10", "--device=cpu", "--dtype=float32",
                    f"--data_dir={root / 'data'}", "--dataset=tinycode", f"--out_dir={root / 'base'}"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    return root


def rl_args(root, out_dir, *extra):
    return ["train_rl.py", f"--base_dir={root / 'base'}", f"--out_dir={out_dir}", "--max_new_tokens=32",
            "--tasks_per_step=4", "--group_size=4", "--batch_size=8", "--eval_interval=2", "--eval_tasks=6",
            "--eval_samples=2", "--eval_iters=2", "--learning_rate=1e-3", "--reward_valid=0.5", "--device=cpu", "--dtype=float32", *extra]


def run(args, nproc=1, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, *args] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(result.stdout[-3000:] + result.stderr[-3000:])
    return result


def weights(out_dir):
    return torch.load(os.path.join(out_dir, "ckpt.pt"), map_location="cpu", weights_only=True)["model"]


def read_log(out_dir):
    import json
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def straight(base):
    """Four steps in one go, evaluated at 0, 2 and 4, with the language-model loss mixed in (so the
    resume and two-process tests cover its batches too)."""
    out = base / "straight"
    run(rl_args(base, out, "--max_iters=4", "--lm_coef=1.0"))
    return out


def test_a_tiny_run_logs_every_held_out_figure_and_moves_away_from_the_start(straight):
    records = read_log(straight)
    assert [r["iter"] for r in records] == [0, 2, 4]
    for key in ("reward", "valid_rate", "nontrivial_rate", "pass_at_1", "pass_at_k", "finished_rate", "finished_length", "entropy", "distinct_2"):
        assert all(0 <= r[key] <= max(1.0, r[key]) for r in records), key
    assert records[0]["kl_to_start"] == 0.0  # before any step the policy is the starting model
    assert records[-1]["kl_to_start"] > 0
    assert all(0 < r["length"] <= 32 and r["finished_length"] <= 32 and r["nontrivial_length"] <= 32 and math.isfinite(r["val_loss"]) for r in records)
    assert records[1]["kl_to_start"] > 0  # the rewards of the first groups differed: the policy moved


def test_the_language_model_loss_mixed_in_keeps_the_held_out_loss_lower_than_rl_alone(base, straight):
    out = base / "rl-alone"
    run(rl_args(base, out, "--max_iters=4"))
    alone, mixed = read_log(out), read_log(straight)
    assert alone[0]["val_loss"] == mixed[0]["val_loss"]  # the same starting model, the same windows
    assert mixed[-1]["val_loss"] < alone[-1]["val_loss"]


def test_stopping_and_resuming_is_bit_identical_to_a_straight_run(base, straight):
    out = base / "resumed"
    run(rl_args(base, out, "--max_iters=2", "--lm_coef=1.0"))
    run(rl_args(base, out, "--max_iters=4", "--lm_coef=1.0", "--init_from=resume"))
    expected, got = weights(straight), weights(out)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    without_time = lambda records: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records]
    assert without_time(read_log(out)) == without_time(read_log(straight))  # the resume does not evaluate iter 2 again


@pytest.mark.skipif(not torch.distributed.is_available(), reason="needs torch.distributed")
def test_two_processes_each_sampling_half_the_prompts_equal_one_process(base, straight):
    out = base / "ddp"
    run(rl_args(base, out, "--max_iters=4", "--lm_coef=1.0"), nproc=2)
    expected, got = weights(straight), weights(out)
    assert all(torch.allclose(expected[k], got[k], atol=1e-6) for k in expected)
    for one, two in zip(read_log(straight), read_log(out)):  # the held-out evaluations too, shared out
        assert one["reward"] == two["reward"] and one["length"] == two["length"]


def test_a_reverse_curriculum_hints_every_prompt_it_can_at_first_and_none_from_hint_iters_on(base):
    result = run(rl_args(base, base / "hinted", "--max_iters=3", "--hint_iters=2", "--eval_interval=3"))
    hints = [float(re.search(r"hint ([\d.]+) tokens", line).group(1)) for line in result.stdout.splitlines()
             if line.startswith("iter ")]
    assert len(hints) == 3 and hints[0] > 0 and hints[2] == 0


def test_a_run_with_the_original_bodies_in_its_groups_trains_and_logs_the_samples_alone(base):
    result = run(rl_args(base, base / "originals", "--max_iters=2", "--original_in_group=True", "--group_size=2"))
    # 4 tasks x (2 samples + 1 reference): the progress lines count the 8 samples, whose rates are eighths
    rates = [float(re.search(r"non-trivial ([\d.]+)%", line).group(1)) for line in result.stdout.splitlines()
             if line.startswith("iter ")]
    assert len(rates) == 2 and all((rate / 12.5).is_integer() for rate in rates)
    assert read_log(base / "originals")[-1]["kl_to_start"] > 0


@pytest.mark.parametrize("reward", ["--length_floor=1.0", "--repeat_discount=True"])
def test_a_run_with_the_length_reward_or_the_repeat_discount_reports_the_share_its_samples_kept(base, reward):
    result = run(rl_args(base, base / "length", "--max_iters=2", reward, "--eval_interval=2", "--overwrite=True"))
    credits = [float(re.search(r"credit ([\d.]+)", line).group(1)) for line in result.stdout.splitlines()
               if line.startswith("iter ")]
    assert len(credits) == 2 and all(0 < credit <= 1 for credit in credits)
    # the length the floor asks for, printed once: the held-out originals, cut at max_new_tokens=32
    yardstick = re.search(r"6 held-out tasks: their original bodies, cut at max_new_tokens, are ([\d.]+) tokens", result.stdout)
    assert yardstick and 0 < float(yardstick.group(1)) <= 32


def test_bad_settings_are_one_line_errors(base):
    cases = [("--group_size=1", "group_size must be at least 2"),
             ("--language=rust", "language must be"),
             ("--clip_eps=1.5", "clip_eps must be in [0, 1)"),
             ("--kernelbench=kb", "kernelbench's tasks are CUDA kernels: add --language=cuda"),
             ("--execution_reward=True", "pass --kernelbench=kernelbench.tar.gz"),
             ("--reward_store=0.1", "reward_store pays a kernel that stores"),
             ("--language=cuda --reward_prefix=0.3", "reward_prefix pays a Python body by the share"),
             ("--language=cuda --repeat_discount=True", "repeat_discount charges a Python body"),
             ("--reward_share=0.5", "reward_share pays a share of a kernel's output elements"),
             ("--kernelbench_scaffold=True", "kernelbench_scaffold is part of KernelBench's prompts"),
             ("--eval_split=train", "eval_split=train measures the tasks RL trains on, for --eval_only=True"),
             ("--train_only_tasks=5", "has no train_only files that hold python tasks"),
             ("--language=cuda --kernelbench=kb --train_only_tasks=5", "leave train_only_tasks at 0")]
    results = run_scripts([rl_args(base, base / "bad", *extra.split()) for extra, _ in cases]
                          + [["train_rl.py", f"--base_dir={base / 'nothing'}", "--device=cpu"]])
    for (extra, message), result in zip(cases, results):
        assert result.returncode != 0 and result.stderr.strip().splitlines() == [
            next(line for line in result.stderr.splitlines() if line.startswith("error:"))]
        assert message in result.stderr, extra
    assert results[-1].stderr.startswith("error:") and "nothing" in results[-1].stderr


def test_an_ablation_of_rl_settings_tables_each_runs_last_held_out_evaluation(base, tmp_path):
    import json
    overrides = dict(a.removeprefix("--").split("=", 1) for a in rl_args(base, "unused")[1:])
    overrides = {key: value if key in ("base_dir", "device", "dtype") else ast.literal_eval(value)
                 for key, value in overrides.items() if key != "out_dir"}
    overrides.update(max_iters=2, eval_interval=2)
    config = tmp_path / "rl_ablation.py"
    config.write_text(f"script = 'train_rl.py'\nbase_overrides = {overrides!r}\nbaseline = 'std'\n"
                      "variants = {'std': {}, 'no-std': {'std_normalize': False}}\n")
    out_root = tmp_path / "runs"
    run(["analysis/ablate.py", str(config), "--seeds=1", f"--out_root={out_root}"])
    results = json.loads((out_root / "results.json").read_text())
    assert results["kind"] == "rl"
    for variant in ("std", "no-std"):
        last = read_log(out_root / f"{variant}-seed1337")[-1]
        assert last["iter"] == 2
        assert results["variants"][variant]["mean"]["reward"] == last["reward"]
        assert results["variants"][variant]["mean"]["nontrivial_rate"] == 100 * last["nontrivial_rate"]
    assert "| no-std | std_normalize=False | 1 |" in (out_root / "results.md").read_text()


# -----------------------------------------------------------------------------
# KernelBench's elementwise problems as tasks (code_check.kernelbench_tasks), from a tiny CUDA model

KERNEL = "__global__ void {name}(const float* __restrict__ x, float* __restrict__ y, int64_t n) {{\n" \
         "    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;\n    if (i < n) y[i] = {expression};\n}}\n"


@pytest.fixture(scope="module")
def cuda_base(tmp_path_factory):
    root = tmp_path_factory.mktemp("rl-cuda")
    (root / "kernels").mkdir()
    for f in range(8):
        kernels = [KERNEL.format(name=f"k{f}_{j}", expression=["fmaxf(x[i], 0.0f)", "tanhf(x[i])", f"x[i] * {j}.0f",
                                                               "x[i] / (1.0f + fabsf(x[i]))"][(f + j) % 4]) for j in range(3)]
        (root / "kernels" / f"k{f}.cu").write_text("#include <stdint.h>\n\n" + "\n".join(kernels))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "prepare/elementwise_kernels.py", "--count=3", f"--out={root / 'generated.tar.gz'}"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "prepare/cuda_code.py", str(root / "kernels"), "--out_dir", str(root / "data" / "tinycuda"),
                    "--train_only", str(root / "generated.tar.gz"), "--vocab_size=300", "--val_fraction=0.5", "--num_proc=1"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "train_gpt.py", "config/cuda_code.py", "--n_layer=1", "--n_head=2", "--n_embd=32",
                    "--block_size=384", "--batch_size=4", "--max_iters=20", "--lr_decay_iters=20", "--warmup_iters=2",
                    "--eval_interval=20", "--eval_iters=1", "--log_interval=0", f"--data_dir={root / 'data'}",
                    "--dataset=tinycuda", f"--out_dir={root / 'base'}"], cwd=ROOT, env=env, check=True, capture_output=True)
    return root


def test_a_run_with_train_only_tasks_trains_on_the_generated_kernels_too(cuda_base):
    plain = run(rl_args(cuda_base, cuda_base / "corpus", "--language=cuda", "--max_iters=1", "--max_new_tokens=16",
                        "--eval_tasks=1", "--eval_samples=1"))
    joined = run(rl_args(cuda_base, cuda_base / "joined", "--language=cuda", "--max_iters=1", "--max_new_tokens=16",
                         "--eval_tasks=1", "--eval_samples=1", "--train_only_tasks=2"))
    corpus = int(re.search(r"(\d+) train tasks", plain.stdout).group(1))
    assert f"{corpus + 2} train tasks (2 from train_only files" in joined.stdout  # a generated file holds one kernel
    assert re.search(r"(\d+) val tasks", joined.stdout).group(0) == re.search(r"(\d+) val tasks", plain.stdout).group(0)


def test_a_run_on_kernelbench_tasks_trains_on_relu_and_evaluates_on_leaky_relu(cuda_base, kernelbench_dir):
    out = cuda_base / "kernelbench"
    result = run(rl_args(cuda_base, out, "--language=cuda", f"--kernelbench={kernelbench_dir}", "--max_iters=2",
                         "--max_new_tokens=16", "--tasks_per_step=2"))
    assert "1 train tasks" in result.stdout and "1 val tasks" in result.stdout  # of the six problems
    assert "__global__ void leakyrelu_kernel(" in result.stdout  # the held-out samples printed
    records = read_log(out)
    assert [r["iter"] for r in records] == [0, 2] and all(0 < r["length"] <= 16 for r in records)
    assert "correct_rate" not in records[-1]  # no execution reward, no execution figures


def test_the_execution_reward_without_a_gpu_emulates_the_kernels_and_logs_the_correct_rate(cuda_base, kernelbench_dir):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the kernels run on it")
    out = cuda_base / "emulated"
    result = run(rl_args(cuda_base, out, "--language=cuda", f"--kernelbench={kernelbench_dir}", "--max_iters=2",
                         "--max_new_tokens=16", "--tasks_per_step=2", "--execution_reward=True", "--reward_share=0.5"))
    records = read_log(out)
    assert [r["iter"] for r in records] == [0, 2] and all(r["correct_rate"] == 0.0 for r in records)  # a tiny model
    assert all("fast_1" not in r for r in records)  # an emulation is not timed
    assert "correct 0.0%" in result.stdout and "fast_1" not in result.stdout
    # the same figures on the task it trained on, level 1's ReLU alone in the fixture's training split
    result = run(rl_args(cuda_base, cuda_base / "emulated-train", "--language=cuda", f"--kernelbench={kernelbench_dir}",
                         "--max_new_tokens=16", "--execution_reward=True", "--eval_only=True", "--eval_split=train"))
    assert "1 train tasks" in result.stdout and "step 0: training-task reward" in result.stdout
