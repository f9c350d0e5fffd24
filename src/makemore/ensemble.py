"""Ensembles: several trained models read as one, whose next-character distribution is the
average of theirs.

On small data, models that differ (seeds, or kinds: a transformer, an LSTM, a WaveNet) make
different mistakes, and the average of their distributions is usually better calibrated than any
one of them: its NLL on a target y is -log(mean_k p_k(y)), never more than the members' mean NLL
(Jensen) and often well below the best member's. Nothing is trained here: the members are read as
they are, with equal weights.

The members must share a vocabulary (the same characters with the same ids), or their
distributions are not over the same things; to be evaluated on a split they must also have
trained on the same data, or one member's dev items may be another's training items.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import Checkpoint
from .data import SPLITS, Dataset
from .errors import MakemoreError
from .evaluate import ITEM_LEN_LIMIT, score_items, target_nlls


def mixed_nll(nlls: list[torch.Tensor]) -> torch.Tensor:
    """Each target's NLL under the equal mixture, from each member's NLL of the same targets:
    -log(mean_k exp(-nll_k)), computed as a logsumexp so that no probability underflows."""
    stacked = torch.stack([n.double() for n in nlls])
    return math.log(len(nlls)) - torch.logsumexp(-stacked, dim=0)


def check_members(members: list[Checkpoint], same_data: bool) -> None:
    """One line on what keeps these checkpoints from being one mixture."""
    first = members[0]
    for i, other in enumerate(members[1:], start=2):
        if other.vocab != first.vocab:
            raise MakemoreError(
                f"model {i} of the ensemble has another vocabulary than model 1 "
                f"({len(other.vocab)} and {len(first.vocab)} characters, or in another order): "
                "an ensemble averages distributions over the same characters"
            )
        if same_data and (other.run.input_sha256, other.run.max_item_len, other.run.split) != (
            first.run.input_sha256,
            first.run.max_item_len,
            first.run.split,
        ):
            raise MakemoreError(
                f"model {i} of the ensemble trained on other data than model 1 (or with another "
                "--max-item-len or --split): their splits differ, so no split can be evaluated for all of them"
            )


class Mixture(nn.Module):
    """The equal mixture of several models, as sampling reads a model: next_logits returns the log
    of the averaged probabilities (softmax of it is the mixture), so temperature, top-k and top-p
    act on the mixture's distribution, not on any member's."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(models)
        self.config = models[0].config  # vocab_size: the one the members share

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    @torch.no_grad()
    def next_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([F.log_softmax(m.next_logits(tokens).float(), -1) for m in self.members])
        return torch.logsumexp(logp, dim=0) - math.log(len(self.members))

    def decodes(self, tokens: int) -> bool:
        return False  # each step recomputes every member on the whole row: no state to carry

    @property
    def length_limit(self) -> int | None:
        limits = [m.length_limit for m in self.members if m.length_limit is not None]
        return min(limits) if limits else None

    def max_sample_len(self, longest_item: int) -> int:
        return min(m.max_sample_len(longest_item) for m in self.members)


def split_nll(members: list[Checkpoint], data: Dataset, split: str) -> float:
    """The mixture's mean NLL over every target of one whole split; nan for an empty split."""
    part = data.split(split)
    nlls = [target_nlls(m.model, m.model.examples(part)) for m in members]
    return mixed_nll(nlls).mean().item() if len(nlls[0]) else math.nan


def evaluate(members: list[Checkpoint], data: Dataset) -> dict:
    """The mixture's NLL on each whole split, with what eval reports of a single run."""
    check_members(members, same_data=True)
    report = {s: split_nll(members, data, s) for s in SPLITS}
    return {
        **report,
        "type": "ensemble of " + " + ".join(m.run.type for m in members),
        "step": max(m.step for m in members),
        "params": sum(m.model.num_params() for m in members),
        "train_seconds": sum(m.train_seconds for m in members),
        "members": len(members),
        "text": False,  # text-mode runs do not join ensembles
    }


def score(members: list[Checkpoint], items: list[str]) -> list[dict]:
    """score_items of the mixture: each member scores the items, their per-character NLLs are mixed."""
    check_members(members, same_data=False)
    limit = min((m.model.length_limit for m in members if m.model.length_limit is not None), default=ITEM_LEN_LIMIT)
    if max(len(s) for s in items) > limit:
        raise MakemoreError(f"items longer than {limit:,} characters cannot be scored by every model of the ensemble")
    scored = [score_items(m.model, m.vocab, items) for m in members]
    per_char = [torch.tensor([v for r in s for _, v in r["chars"]], dtype=torch.float64) for s in scored]
    mixed = mixed_nll(per_char).tolist()
    results, start = [], 0
    for r in scored[0]:
        n = len(r["chars"])
        values = mixed[start : start + n]
        total = sum(values)
        chars = [(c, v) for (c, _), v in zip(r["chars"], values)]
        results.append({"item": r["item"], "nll": total, "nll_per_char": total / n, "chars": chars})
        start += n
    return results
