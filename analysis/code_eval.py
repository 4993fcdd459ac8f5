"""
How often a code model's completions compile (CUDA) or parse (Python) and do something, on
completion tasks from held-out files (code_check.py): each task's prompt is a kernel's or function's
signature, the model samples --num_samples bodies, each cut where the body ends and checked.

    python analysis/code_eval.py --out_dir=out-cuda-code --num_tasks=120 --num_samples=4
    python analysis/code_eval.py --out_dir=out-python-code --num_tasks=100
    python analysis/code_eval.py --out_dir=out-python-code --free_samples=50 --num_tasks=0 --show=3  # whole files

Prints and writes out_dir/code_eval.json: the compile / parse rate, the non-trivial rate, pass@1 and
pass@k (a pass: compiles and non-trivial; the unbiased estimator), the mean completion length, and
three samples as they came (code_eval.json also holds every completion, its checks and first error
line); with two anchors, the references' own bodies (all compile: that is how tasks are chosen) and
an empty body (compiles, never non-trivial). --free_samples=N: also N files
sampled from nothing, cut at their last complete statement, and the share that parses (Python;
--show=3 prints 3 of them).
Reads out_dir/best.pt (--ckpt=last: ckpt.pt).
"""

import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import code_check  # noqa: E402
import data  # noqa: E402
import configurator  # noqa: E402
import training  # noqa: E402

EOT = "<|endoftext|>"


def code_samples(model, meta, data_path, num_samples, max_new_tokens, temperature, top_k, device):
    """num_samples samples, each started as a new file and cut at its last complete top-level
    statement (or where the model ended the file)."""
    import torch
    encode, decode = data.load_tokenizer(meta, data_path)
    start = data.start_ids(meta, data_path, encode)
    x = torch.tensor([start] * num_samples, dtype=torch.long, device=device)
    with torch.no_grad():
        y = model.generate(x, max_new_tokens, temperature=temperature, top_k=top_k or None)
    cut = []
    for ids in y[:, len(start):].tolist():
        text = decode(ids)
        cut.append(text.split(EOT)[0] if EOT in text else code_check.cut_to_last_statement(text))
    return cut


def complete(model, encode, decode, start, task, num_samples, max_new_tokens, temperature, top_k, device):
    """num_samples continuations (text) of the task's prompt, each max_new_tokens long."""
    import torch
    x = torch.tensor([start + encode(task.prompt)] * num_samples, dtype=torch.long, device=device)
    with torch.no_grad():
        y = model.generate(x, max_new_tokens, temperature=temperature, top_k=top_k or None)
    return [decode(ids) for ids in y[:, x.size(1):].tolist()]


def summarise(results, num_samples, k):
    """The table's row for results: one list of num_samples code_check.Results per task."""
    flat = [r for task_results in results for r in task_results]
    passes = [sum(r.nontrivial for r in task_results) for task_results in results]
    return {"ok_rate": sum(r.ok for r in flat) / len(flat),
            "nontrivial_rate": sum(r.nontrivial for r in flat) / len(flat),
            "pass@1": sum(code_check.pass_at_k(num_samples, c, 1) for c in passes) / len(passes),
            f"pass@{k}": sum(code_check.pass_at_k(num_samples, c, k) for c in passes) / len(passes),
            "mean_length": sum(r.length for r in flat) / len(flat)}


def main():
    import torch
    from analysis import common

    settings = configurator.configure({"out_dir": "out-cuda-code", "ckpt": "best", "split": "val", "num_tasks": 120,
                                   "num_samples": 4, "k": 4, "max_new_tokens": 384, "temperature": 0.8,
                                   "top_k": 200, "free_samples": 0, "show": 0, "seed": 1337, "device": "auto",
                                   "workers": 0}, sys.argv[1:])
    if not 1 <= settings["k"] <= settings["num_samples"]:
        training.fail(f"--k={settings['k']} must be between 1 and --num_samples={settings['num_samples']}")
    device = training.pick_device(settings["device"])
    torch.manual_seed(settings["seed"])
    checkpoint = training.load_trained(settings["out_dir"], settings["ckpt"], "GPT")
    data_path, meta, encode, decode = common.text_data(checkpoint["config"])
    model = common.load_model(checkpoint, device)
    report = {"out_dir": settings["out_dir"], "settings": settings}

    if settings["num_tasks"]:
        tasks = code_check.dataset_tasks(data_path, settings["split"], workers=settings["workers"] or None)
        if not tasks:
            training.fail(f"no completion tasks in {data_path}'s {settings['split']} split")
        random.Random(settings["seed"]).shuffle(tasks)  # a fixed, spread-out subset across files
        tasks = tasks[:settings["num_tasks"]]
        n, k, start, t0 = settings["num_samples"], settings["k"], data.start_ids(meta, data_path, encode), time.time()
        prompted = [code_check.open_ended(task) for task in tasks]  # what the model continues
        samples = []
        for i, task in enumerate(prompted):
            samples.append(complete(model, encode, decode, start, task, n, settings["max_new_tokens"],
                                    settings["temperature"], settings["top_k"], device))
            print(f"\rsampled {i + 1}/{len(tasks)} tasks ({time.time() - t0:.0f} s)", end="", flush=True)
        print()
        flat_tasks = [task for task in prompted for _ in range(n)]
        flat = code_check.score_many(flat_tasks, [s for task_samples in samples for s in task_samples],
                                     workers=settings["workers"] or None)
        model_results = [flat[i * n:(i + 1) * n] for i in range(len(tasks))]
        empty = "\n}\n" if tasks[0].language == "cuda" else "    pass\n"
        rows = {"model": summarise(model_results, n, k),
                "references": summarise([[code_check.score(t, t.reference)] * n for t in tasks], n, k),
                "empty body": summarise([[code_check.score(t, empty)] * n for t in tasks], n, k)}
        check = "compiles" if tasks[0].language == "cuda" else "parses"
        print(f"\n{len(tasks)} {tasks[0].language} tasks of {data_path}'s {settings['split']} split, {n} samples each "
              f"(temperature {settings['temperature']}, {settings['max_new_tokens']} new tokens):\n")
        print(f"| | {check} | non-trivial | pass@1 | pass@{k} | mean length (chars) |\n|---|---:|---:|---:|---:|---:|")
        for name, row in rows.items():
            print(f"| {name} | {row['ok_rate']:.1%} | {row['nontrivial_rate']:.1%} | {row['pass@1']:.1%} | "
                  f"{row[f'pass@{k}']:.1%} | {row['mean_length']:.0f} |")
        shown = [{"task": task.name, "source": task.source, "prompt": task.prompt,
                  "completion": code_check.cut_completion(task, task_samples[0]), **vars(task_results[0])}
                 for task, task_samples, task_results in list(zip(prompted, samples, model_results))[:3]]
        for sample in shown:
            print(f"\n--- {sample['task']} ({sample['source']}): {check if sample['ok'] else 'fails'}"
                  f"{', non-trivial' if sample['nontrivial'] else ''} {sample['message']}")
            print(sample["prompt"].removeprefix(code_check.PREAMBLE) + sample["completion"])
        report.update(language=tasks[0].language, tasks=len(tasks), samples_per_task=n, rows=rows, samples=shown,
                      results=[{"task": task.name, "source": task.source,
                                "samples": [{**vars(r), "completion": code_check.cut_completion(task, text)}
                                            for r, text in zip(task_results, task_samples)]}
                               for task, task_samples, task_results in zip(prompted, samples, model_results)])

    if settings["free_samples"]:
        cut = code_samples(model, meta, data_path, settings["free_samples"], settings["max_new_tokens"],
                           settings["temperature"], settings["top_k"], device)
        report["free_samples"] = {"samples": len(cut), "syntax_validity": code_check.syntax_validity(cut)}
        for text in cut[:settings["show"]]:
            print(text + "\n---------------")
        kept = sum(len(text.splitlines()) for text in cut) / len(cut)
        print(f"syntax validity: {report['free_samples']['syntax_validity']:.1%} of {len(cut)} samples "
              f"({settings['max_new_tokens']} tokens each, {kept:.1f} lines kept on average after the cut)")

    # not eval.json: that is analysis/evaluate.py's, which compare.py reads
    path = os.path.join(settings["out_dir"], "code_eval.json")
    with training.atomic_write(path) as tmp, open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
