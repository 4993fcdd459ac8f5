"""
The optimizers both training scripts build: AdamW, or Muon for the transformer blocks' weight
matrices with AdamW for everything else.

    optim = optimizers.configure(model, "muon", weight_decay, learning_rate, (beta1, beta2), device_type)

Muon is written out here to be read; CombinedOptimizer lets the training loop treat Muon + AdamW
as one optimizer (step, zero_grad, param_groups, state_dict).
"""

import inspect
import math

import torch

OPTIMIZERS = ("adamw", "muon")


def configure(model, optimizer, weight_decay, learning_rate, betas, device_type):
    """optimizer="adamw": AdamW with weight decay on matrices (matmul weights, embeddings, conv kernels)
    only: decaying biases and norm gains just fights the normalisation for no regularisation benefit.
    Parameters the model names in its no_weight_decay set (a ViT's position embeddings) are not
    decayed either. optimizer="muon": Muon for the 2-D weights whose names start with the model's
    blocks_prefix (the transformer blocks' matrices), which it orthogonalises each step, and the
    AdamW above for everything else (embeddings, head, norms, biases). Muon's lr is scaled per matrix to match AdamW's update size, so both share
    learning_rate and the schedule."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = getattr(model, "no_weight_decay", set())
    is_muon = lambda n, p: optimizer == "muon" and n.startswith(model.blocks_prefix) and p.dim() == 2
    matrices = [p for n, p in named if is_muon(n, p)]
    decay = [p for n, p in named if not is_muon(n, p) and p.dim() >= 2 and n not in no_decay]
    rest = [p for n, p in named if not is_muon(n, p) and (p.dim() < 2 or n in no_decay)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    # the fused kernel does the whole update in a few launches on CUDA
    fused = "fused" in inspect.signature(torch.optim.AdamW).parameters and device_type == "cuda"
    adamw = torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **({"fused": True} if fused else {}))
    if optimizer == "adamw":
        return adamw
    # bfloat16 Newton-Schulz is what GPUs run fast; a CPU's float32 matmuls are fast everywhere,
    # its bfloat16 ones only with AMX or AVX512-BF16 (tens of times slower without)
    ns_dtype = torch.bfloat16 if device_type == "cuda" else torch.float32
    muon = Muon(matrices, lr=learning_rate, weight_decay=weight_decay, ns_dtype=ns_dtype)
    return CombinedOptimizer({"adamw": adamw, "muon": muon})


class CombinedOptimizer:
    """Several optimizers over disjoint parameters, used as one by the training loop:
    step, zero_grad, param_groups (all groups of all of them), state_dict, load_state_dict."""

    def __init__(self, optimizers):
        self.optimizers = optimizers  # {name: torch.optim.Optimizer}

    @property
    def param_groups(self):
        return [group for opt in self.optimizers.values() for group in opt.param_groups]

    def step(self):
        for opt in self.optimizers.values():
            opt.step()

    def zero_grad(self, set_to_none=True):
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state_dict):
        if not isinstance(state_dict, dict) or set(state_dict) != set(self.optimizers):
            raise ValueError(f"optimizer state is not that of a {' + '.join(self.optimizers)} optimizer: "
                             f"was the checkpoint trained with another --optimizer?")
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state_dict[name])


class Muon(torch.optim.Optimizer):
    """Muon (Jordan et al. 2024) for 2-D weight matrices: SGD with Nesterov momentum whose update is
    replaced by the nearest (semi-)orthogonal matrix, so that it moves the weights by the same amount
    in every direction instead of mostly along the gradient's few dominant ones. The same algorithm
    as torch.optim.Muon (torch >= 2.9) with adjust_lr_fn="match_rms_adamw"; written out here to be
    read, and because torch's always orthogonalises in bfloat16, where ns_dtype lets a CPU without
    native bfloat16 matmuls use float32."""

    def __init__(self, params, lr, weight_decay, momentum=0.95, ns_steps=5, ns_dtype=torch.bfloat16):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, ns_steps=ns_steps))
        self.ns_dtype = ns_dtype

    @staticmethod
    def orthogonalize(G, steps, dtype):
        """Newton-Schulz iteration towards U V^T of G = U S V^T (an SVD would be exact, and slow on
        GPUs): X <- a X + (b A + c A^2) X with A = X X^T maps every singular value s of X through
        a s + b s^3 + c s^5. These coefficients push the small ones up steeply; after 5 steps all
        but the tiniest lie near 1 (roughly 0.6 to 1.2), which trains as well as exactly 1."""
        a, b, c = 3.4445, -4.7750, 2.0315
        tall = G.size(0) > G.size(1)
        X = G.to(dtype).T if tall else G.to(dtype)   # (m, n) with m <= n: A is the smaller Gram matrix
        X = X / X.norm().clamp(min=1e-7)             # Frobenius >= spectral norm: singular values <= 1
        for _ in range(steps):
            A = X @ X.T                                          # (m, m)
            X = torch.addmm(X, torch.addmm(A, A, A, beta=b, alpha=c), X, beta=a)  # a X + (b A + c A A) X
        return X.T if tall else X

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - momentum)                     # buf = m buf + (1 - m) grad
                update = p.grad.lerp(buf, momentum)                 # Nesterov: look one step ahead
                update = self.orthogonalize(update, group["ns_steps"], self.ns_dtype)
                # an orthogonal (out, in) update has RMS 1/sqrt(max(out, in)); scaling it to RMS 0.2,
                # about AdamW's, lets Muon share AdamW's learning rate and schedule
                adjusted_lr = lr * 0.2 * math.sqrt(max(p.shape))
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(update.to(p.dtype), alpha=-adjusted_lr)
