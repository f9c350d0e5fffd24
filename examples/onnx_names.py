"""Sample and score names with a model exported by `makemore export --format onnx`, using ONNX Runtime
and NumPy only: no PyTorch and no makemore, as an app that ships the .onnx file would.

    makemore export -o runs/mlp --to shared/mlp-onnx --format onnx
    python examples/onnx_names.py shared/mlp-onnx/model.onnx sample -n 10 --seed 0 [--temperature 0.8]
    python examples/onnx_names.py shared/mlp-onnx/model.onnx score emma olivia [--json]

The graph maps a batch of prefixes (token ids, int64, each row starting with the boundary id) to the
logits of the next character; the vocabulary and the boundary id are in the file's metadata.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime


class NameModel:
    """An exported makemore model: the ONNX session and the vocabulary its metadata describes."""

    def __init__(self, path: str):
        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("makemore.mode") == "text":  # its rows are a text's characters, with no boundary to end on
            raise SystemExit(f"{path} is a text-mode model (train --text): this example samples and scores items")
        self.chars = json.loads(meta["makemore.vocab"])  # character i has id i + 1; id 0 is the boundary
        self.boundary = int(meta["makemore.boundary_id"])
        self.max_sample_len = int(meta["makemore.max_sample_len"])
        most = meta["makemore.max_prefix_tokens"]
        self.max_prefix_tokens = None if most == "any" else int(most)
        self.ids = {c: i + 1 for i, c in enumerate(self.chars)}

    def next_log_probs(self, tokens: np.ndarray) -> np.ndarray:
        """log P(next character | each row's prefix), (rows, vocabulary), in float64."""
        logits = self.session.run(None, {"tokens": tokens.astype(np.int64)})[0].astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        return logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))

    def encode(self, item: str) -> list[int]:
        unknown = sorted(set(item) - self.ids.keys())
        if unknown:
            raise SystemExit(f"{item!r} has characters this model does not know: {''.join(unknown)!r}")
        return [self.ids[c] for c in item]

    def sample(self, n: int, seed: int, temperature: float = 1.0) -> list[str]:
        """n items drawn one character at a time, all rows at once, until each draws the boundary."""
        rng = np.random.default_rng(seed)
        tokens = np.full((n, 1), self.boundary, dtype=np.int64)
        ended = np.zeros(n, dtype=bool)
        for _ in range(self.max_sample_len):
            probs = np.exp(self.next_log_probs(tokens) / temperature)
            probs /= probs.sum(axis=1, keepdims=True)
            draws = (probs.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(max=probs.shape[1] - 1)
            draws[ended] = self.boundary
            ended |= draws == self.boundary
            tokens = np.concatenate([tokens, draws[:, None]], axis=1)
            if ended.all():
                break
        items = []
        for row in tokens[:, 1:]:
            stop = np.flatnonzero(row == self.boundary)
            items.append("".join(self.chars[t - 1] for t in row[: stop[0] if len(stop) else len(row)]))
        return items

    def score(self, items: list[str]) -> list[dict]:
        """Each item's negative log-likelihood in nats: its characters, then the end (the boundary)."""
        encoded = [self.encode(item) for item in items]
        longest = max(len(ids) for ids in encoded)
        if self.max_prefix_tokens is not None and longest >= self.max_prefix_tokens:
            raise SystemExit(f"this model reads items of at most {self.max_prefix_tokens - 1} characters")
        rows = np.array([[self.boundary, *ids] + [self.boundary] * (longest - len(ids)) for ids in encoded])
        nll = np.zeros((len(items), longest + 1))
        for k in range(1, longest + 2):  # the prefixes of k tokens predict token k
            live = np.array([len(ids) + 1 >= k for ids in encoded])
            log_probs = self.next_log_probs(rows[live, :k])
            targets = rows[live, k] if k <= longest else np.full(live.sum(), self.boundary)
            nll[live, k - 1] = -log_probs[np.arange(len(targets)), targets]
        results = []
        for item, row in zip(items, nll):
            total = float(row[: len(item) + 1].sum())
            results.append({"item": item, "nll": total, "nll_per_char": total / (len(item) + 1)})
        return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Sample or score items with a makemore model exported to ONNX.")
    p.add_argument("model", help="model.onnx written by makemore export --format onnx")
    commands = p.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("sample", help="draw new items")
    sample.add_argument("-n", type=int, default=10, help="how many (default: 10)")
    sample.add_argument("--seed", type=int, default=0, help="the same seed draws the same items (default: 0)")
    sample.add_argument("--temperature", type=float, default=1.0, help="< 1 is more conservative (default: 1)")
    score = commands.add_parser("score", help="the NLL of each item, in total and per character")
    score.add_argument("items", nargs="+")
    score.add_argument("--json", action="store_true", help="one JSON object, as makemore score --json")
    args = p.parse_args(argv)
    model = NameModel(args.model)
    if args.command == "sample":
        print("\n".join(model.sample(args.n, args.seed, args.temperature)))
    elif args.json:
        print(json.dumps({"items": model.score(args.items)}))
    else:
        for r in model.score(args.items):
            print(f"{r['item']}\ttotal {r['nll']:.4f}\tper char {r['nll_per_char']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
