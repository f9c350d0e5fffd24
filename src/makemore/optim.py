"""The optimizers the training engine can use: AdamW, SGD (the lectures'), and Muon.

Muon (Jordan et al. 2024, "Muon: an optimizer for hidden layers") keeps a momentum of each weight
matrix's gradient and steps along its orthogonalised version: the same singular vectors with
every singular value near 1, so that no direction of a matrix's update drowns the others. It is
meant for the matrices between a model's input lookup and its output layer (each model names
them: `Model.hidden_matrices`); everything else (embeddings, output layer, biases, gains) keeps
AdamW, and one learning rate drives both: Muon's step is scaled to match AdamW's size per
weight (Liu et al. 2025, "Muon is scalable for LLM training").

torch.optim.Muon computes the orthogonalisation in bfloat16, which a CPU without bf16 units
runs several times slower than float32 (docs/performance.md), and one matrix at a time; here the
matrices of each shape go through it together, in float32.
"""

from __future__ import annotations

import math

import torch

from .config import TrainConfig

# The quintic Newton-Schulz coefficients of Muon's reference implementation: five iterations take
# every singular value of a normalised matrix into roughly [0.7, 1.2], which is all Muon needs.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
# Polar Express (Amsel et al. 2025, "The Polar Express: optimal matrix sign methods and their
# application to the Muon algorithm"): a different quintic per iteration, each chosen so that the
# worst singular value after it is as close to 1 as possible; the speedrun's later Muon uses these five.
POLAR_EXPRESS = (
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)
POLYNOMIALS = {"quintic": (NS_COEFFICIENTS,) * 5, "polar": POLAR_EXPRESS}


def orthogonalise(G: torch.Tensor, steps: int = 5, polynomial: str = "quintic") -> torch.Tensor:
    """U Vᵀ (approximately) of each matrix U S Vᵀ of a stack G (k, m, n) with m <= n."""
    # Polar Express's first polynomials assume singular values below 1 with a margin (its 1.01)
    margin = 1.01 if polynomial == "polar" else 1.0
    X = G / (margin * G.norm(dim=(1, 2), keepdim=True)).clamp(min=1e-7)  # every singular value <= 1
    for a, b, c in POLYNOMIALS[polynomial][:steps]:
        A = torch.bmm(X, X.mT)
        X = torch.baddbmm(X, torch.baddbmm(A, A, A, beta=b, alpha=c), X, beta=a)  # aX + (bA + cA²)X
    return X


class Muon(torch.optim.Optimizer):
    """Nesterov momentum, orthogonalised per matrix, with decoupled weight decay. Parameters must be
    2-D. The step of an (m, n) matrix is lr x 0.2 sqrt(max(m, n)): an orthogonal matrix's entries
    then have about the root-mean-square size of AdamW's steps, so the two share one learning rate."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        ns_steps: int = 5,
        polynomial: str = "quintic",
    ):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, ns_steps=ns_steps))
        self.polynomial = polynomial  # not a group setting: checkpoints of either kind load into both
        if any(p.dim() != 2 for group in self.param_groups for p in group["params"]):
            raise ValueError("Muon takes 2-D parameters only")

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._step_group(group, params)

    def _step_group(self, group: dict, params: list[torch.Tensor]) -> None:
        grads = [p.grad for p in params]
        momenta = [self._momentum(p) for p in params]
        torch._foreach_lerp_(momenta, grads, 1 - group["momentum"])
        updates = torch._foreach_lerp(grads, momenta, group["momentum"])  # Nesterov: look one step ahead
        lr, decay = group["lr"], group["weight_decay"]
        if decay:
            torch._foreach_mul_(params, 1 - lr * decay)
        by_shape: dict[torch.Size, list[int]] = {}
        for i, p in enumerate(params):
            by_shape.setdefault(p.shape, []).append(i)
        for (m, n), rows in by_shape.items():
            G = torch.stack([updates[i] for i in rows])
            steps = group["ns_steps"]
            ortho = (
                orthogonalise(G.mT, steps, self.polynomial).mT if m > n else orthogonalise(G, steps, self.polynomial)
            )
            torch._foreach_add_(
                [params[i] for i in rows], list(ortho.unbind(0)), alpha=-lr * 0.2 * math.sqrt(max(m, n))
            )

    def _momentum(self, p: torch.Tensor) -> torch.Tensor:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        return state["momentum_buffer"]


class Optimizers:
    """Several optimizers over disjoint parameters, driven as one: one list of param_groups (the
    schedule sets every group's lr), one step, and one state_dict in torch's own format, the
    parameters numbered across all of them, so that checkpoints store and restore it unchanged."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [group for opt in self.optimizers for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def state_dict(self) -> dict:
        state, groups, offset = {}, [], 0
        for opt in self.optimizers:
            sd = opt.state_dict()
            state.update({offset + i: s for i, s in sd["state"].items()})
            groups += [{**g, "params": [offset + i for i in g["params"]]} for g in sd["param_groups"]]
            offset += sum(len(g["params"]) for g in sd["param_groups"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: dict) -> None:
        first = 0
        for opt in self.optimizers:
            groups = sd["param_groups"][first : first + len(opt.param_groups)]
            first += len(opt.param_groups)
            offset = min((i for g in groups for i in g["params"]), default=0)
            own = {i - offset for g in groups for i in g["params"]}
            opt.load_state_dict(
                {
                    "state": {i - offset: s for i, s in sd["state"].items() if i - offset in own},
                    "param_groups": [{**g, "params": [i - offset for i in g["params"]]} for g in groups],
                }
            )


def make_optimizer(model, cfg: TrainConfig, device: torch.device):
    params = [p for p in model.parameters() if p.requires_grad]
    # (train.check_recipe has refused muon for a model without hidden matrices)
    hidden = [p for p in model.hidden_matrices() if p.requires_grad] if cfg.optimizer == "muon" else []
    ids = {id(p) for p in hidden}
    rest = [p for p in params if id(p) not in ids]
    # decay matrices only; biases, gains and 1-D parameters are left alone
    groups = [
        {"params": [p for p in rest if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":  # SGD's decay is an L2 term in the gradient (without momentum: the same thing)
        return torch.optim.SGD(groups, lr=cfg.learning_rate)
    fused = device.type in ("cpu", "cuda")
    adamw = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, cfg.beta2), fused=fused)
    if not hidden:
        return adamw
    muon = Muon(hidden, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, polynomial=cfg.muon_polynomial)
    return Optimizers(adamw, muon)
