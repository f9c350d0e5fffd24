"""`speed`: every model type at its default recipe on the bundled names, in one process: the machine
(vector units, measured matmul peak), each type's training step through makemore's own Trainer
(step time, tokens/s, matmul FLOPs and the share of the peak they reach), from its trained run
(--runs DIR/TYPE) the training seconds to a dev NLL and sampling and scoring items/s, the peak memory
of `makemore train`, and makemore's transformer against a plain PyTorch loop written here. Also
writes the report as Markdown beside the JSON. Trains nothing to completion: a type without a run
gets dashes in its run-based cells (`python -m benchmarks models` trains runs/bench/TYPE).
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from makemore import checkpoint
from makemore.config import TrainConfig
from makemore.data import DEFAULT_MAX_ITEM_LEN, IGNORE, Dataset, bundled_names
from makemore.models import REGISTRY
from makemore.runs import score_checked
from makemore.sample import generate
from makemore.store import RunStore
from makemore.train import Hook, Trainer, batch_loss

from .common import PEAK_RSS, ROOT, VECTOR_FLAGS, median_rate, say, tiny_names, vector_extensions
from .common import python as run_python

RUNS = ROOT / "runs" / "bench"  # where `python -m benchmarks models` trains
DEV_TARGETS = (2.20, 2.10, 2.00, 1.97)  # dev NLLs whose training time is reported
SAMPLE_BATCHES = (1, 100, 1000)
BASELINE, AT_32 = "plain PyTorch loop", "transformer (batch 32)"


@dataclass(frozen=True)
class Sizes:
    """How much of everything is measured: the repeats behind each median."""

    matmul_n: tuple[int, ...]  # square matmul sizes tried for the peak
    matmul_repeats: int
    warmup_steps: int  # training steps per subject before timing
    rounds: int  # interleaved rounds of timed steps
    round_steps: int  # timed steps per subject per round
    flop_batches: int  # batches whose forward + backward FLOPs are counted
    sample_calls: tuple[int, ...]  # generate() calls per repeat, one per SAMPLE_BATCHES size
    sample_repeats: int
    score_items: int | None  # dev items scored per repeat (None: the whole split)
    score_batch: int  # items per score call
    score_repeats: int
    rss_steps: int  # training steps of each `makemore train` whose peak memory is read
    rss_types: int | None  # types whose peak memory is read (None: all), on the bundled names or a tiny file
    quick_types: tuple[str, ...] = ()  # the types measured when none are named (empty: all)


FULL = Sizes((1024, 2048), 10, 20, 10, 50, 3, (50, 5, 1), 5, None, 1000, 5, 300, None)
QUICK = Sizes((128, 256), 2, 1, 1, 2, 1, (2, 1, 1), 1, 100, 50, 1, 2, 1, ("bigram", "mlp", "transformer"))


# --- the machine ---------------------------------------------------------------------------------
def matmul_gflops(n: int, dtype: torch.dtype, repeats: int) -> float:
    """GFLOP/s of an (n, n) @ (n, n) product: 2 n^3 FLOPs over the median time."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up: the first call picks the kernel and touches the memory
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return median_rate(2 * n**3 / 1e9, times)


def matmul_peak(dtype: torch.dtype, sizes: Sizes) -> dict:
    by_size = {n: matmul_gflops(n, dtype, sizes.matmul_repeats) for n in sizes.matmul_n}
    best = max(by_size, key=by_size.get)
    return {"gflops": by_size[best], "n": best, "by_size": {str(n): g for n, g in by_size.items()}}


def matmul_peaks(sizes: Sizes, extensions: list[str]) -> dict:
    """The measured matmul peaks, fp32 always, bf16 where the CPU has bf16 units."""
    has_bf16 = {"avx512_bf16", "amx_bf16"} & set(extensions)
    return {
        "fp32": matmul_peak(torch.float32, sizes),
        "bf16": matmul_peak(torch.bfloat16, sizes) if has_bf16 else "not measured: no bf16 units",
    }


# --- makemore's training step, timed by the Trainer's own clock ---------------------------------------
class StepClock(Hook):
    """Reads the Trainer's clock after each step: train_seconds (the training time the run's log
    reports) grows by each step's time, from drawing the batch to the optimizer and average update,
    hooks excluded. Stops the loop after `left` steps, so that rounds of steps of several trainers
    can interleave."""

    def __init__(self):
        self.left, self.last, self.samples = 0, 0.0, []

    def on_step(self, t: Trainer) -> None:
        self.samples.append((t.train_seconds - self.last, t.examples))  # (seconds, predicted characters)
        self.last = t.train_seconds
        self.left -= 1
        if self.left <= 0:
            t.request_stop("benchmark round done")


class Recipe:
    """A model type at its default recipe, built as `makemore train --type T` builds it (runs.start),
    with the real Trainer; `overrides` change the recipe (batch size)."""

    def __init__(self, name: str, model_type: str, data: Dataset, **overrides):
        cls = REGISTRY[model_type]
        self.cfg = TrainConfig(**{**cls.train_defaults, **overrides, "device": "cpu"})
        self.cfg.validate()
        torch.manual_seed(self.cfg.seed)  # as runs.start seeds before building the model
        model = cls(cls.config_for(data))
        self.clock = StepClock()
        self.trainer = Trainer(model, data, self.cfg, [self.clock])
        self.name, self.batch, self.params = name, self.cfg.batch_size, model.num_params()
        self.gen = torch.Generator().manual_seed(1)  # FLOP-counting batches, apart from the Trainer's stream

    def steps(self, n: int) -> list[tuple[float, int]]:
        self.clock.left, self.clock.last, self.clock.samples = n, self.trainer.train_seconds, []
        self.trainer.stop_reason = None  # the previous round's stop request
        self.trainer.run()
        return self.clock.samples

    def forward_backward(self) -> int:
        """One forward and backward pass on a batch drawn and shaped as the Trainer does (packed rows
        for the transformer); returns its predicted characters."""
        t = self.trainer
        ix = torch.randint(0, len(t.train_examples), (self.cfg.batch_size,), generator=self.gen)
        X, Y, pos = t.model.shape_batch(*t.train_examples[ix], self.cfg.pack)
        batch_loss(t.model, X, Y, pos).backward()
        t.model.zero_grad(set_to_none=True)
        return int((Y != IGNORE).sum())


# --- the baseline: the transformer loop a newcomer writes from the textbook ---------------------------
class Names(TorchDataset):
    """One item per index: x = <b> c1..cn, y = c1..cn <b>."""

    def __init__(self, items: list[str], vocab):
        self.items, self.vocab = items, vocab

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        ids = torch.tensor(self.vocab.encode(self.items[i]), dtype=torch.long)
        boundary = torch.zeros(1, dtype=torch.long)
        return torch.cat([boundary, ids]), torch.cat([ids, boundary])


def pad_batch(pairs):
    """Pad each batch to its longest item: inputs with the boundary, targets with -1 (ignored)."""
    xs, ys = zip(*pairs)
    return pad_sequence(xs, batch_first=True, padding_value=0), pad_sequence(ys, batch_first=True, padding_value=-1)


class NaiveAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, block_size: int):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class NaiveBlock(nn.Module):
    def __init__(self, n_embd: int, n_head: int, block_size: int):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = NaiveAttention(n_embd, n_head, block_size)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NaiveGPT(nn.Module):
    """makemore.py's transformer: 4 layers, 4 heads, n_embd 64, untied head, no dropout."""

    def __init__(self, vocab_size: int, block_size: int, n_layer=4, n_head=4, n_embd=64):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab_size, n_embd), nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*(NaiveBlock(n_embd, n_head, block_size) for _ in range(n_layer)))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx, targets):
        pos = torch.arange(idx.size(1)).unsqueeze(0)
        logits = self.lm_head(self.ln_f(self.blocks(self.wte(idx) + self.wpe(pos))))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


class Baseline:
    """The loop itself: a DataLoader of items shuffled and padded per batch of 32, AdamW (makemore.py's
    settings, not fused), the loss read back every step."""

    def __init__(self, data: Dataset):
        torch.manual_seed(42)
        self.name, self.batch = BASELINE, 32
        self.model = NaiveGPT(len(data.vocab), data.max_len + 1)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=5e-4, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01)
        self.loader = DataLoader(Names(data.items("train"), data.vocab), self.batch, shuffle=True, collate_fn=pad_batch)
        self.batches = iter(self.loader)

    def next_batch(self):
        try:
            return next(self.batches)
        except StopIteration:  # a new epoch
            self.batches = iter(self.loader)
            return next(self.batches)

    def steps(self, n: int) -> list[tuple[float, int]]:
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            x, y = self.next_batch()
            loss = self.model(x, y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            loss.item()  # the newcomer prints it
            samples.append((time.perf_counter() - t0, int((y != -1).sum())))
        return samples

    def forward_backward(self) -> int:
        x, y = self.next_batch()
        self.model(x, y).backward()
        self.model.zero_grad(set_to_none=True)
        return int((y != -1).sum())


# --- timing and counting the training subjects ----------------------------------------------------------
def time_steps(subjects: list, sizes: Sizes) -> dict[str, list[tuple[float, int]]]:
    """(seconds, predicted characters) of each timed step of each subject."""
    for s in subjects:
        s.steps(sizes.warmup_steps)  # first steps allocate and pick kernels
    timed = {s.name: [] for s in subjects}
    for _ in range(sizes.rounds):  # interleaved: a drift in the machine's speed hits every subject alike
        for s in subjects:
            timed[s.name] += s.steps(sizes.round_steps)
    return timed


def _cpu_sdpa(q, k, v, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(q, k, v)


def _cpu_sdpa_backward(grad, q, k, v, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad, q, k, v)


# FlopCounterMode knows the GPU attention kernels only: on CPU, F.scaled_dot_product_attention would
# count 0 FLOPs (the full T x T products, as its GPU formula counts them and the baseline computes them)
CPU_ATTENTION = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward,
}


def count_flops(subject, batches: int) -> dict:
    """Matmul FLOPs (FlopCounterMode counts matrix products only) of forward + backward passes."""
    flops = chars = 0
    for _ in range(batches):
        with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION) as counter:
            chars += subject.forward_backward()
        flops += counter.get_total_flops()
    return {"flops_per_step": flops / batches, "flops_per_char": flops / chars}


def step_stats(samples: list[tuple[float, int]], flops: dict, peak_gflops: float) -> dict:
    """Medians over the timed steps: step time, and predicted characters per second (each step's own)."""
    tokens_per_s = statistics.median(chars / seconds for seconds, chars in samples)
    gflops = flops["flops_per_char"] * tokens_per_s / 1e9
    return {
        "steps_timed": len(samples),
        "step_ms": 1000 * statistics.median(seconds for seconds, _ in samples),
        "chars_per_step": statistics.mean(chars for _, chars in samples),
        "tokens_per_s": tokens_per_s,
        **flops,
        "gflops": gflops,
        "pct_of_fp32_peak": 100 * gflops / peak_gflops,
    }


# --- from each trained run: time to a dev NLL, sampling, scoring -----------------------------------------
def time_to_dev(evals: list[dict]) -> dict:
    """Training seconds at the first evaluation at or below each of DEV_TARGETS (None: never)."""
    devs = [r["dev"] for r in evals if math.isfinite(r["dev"])]
    return {
        "seconds_to_dev": {
            f"{target:.2f}": next((r["train_seconds"] for r in evals if r["dev"] <= target), None)
            for target in DEV_TARGETS
        },
        "best_dev": min(devs) if devs else None,
        "train_seconds": max((r["train_seconds"] for r in evals), default=None),
    }


def sample_rates(best: checkpoint.Checkpoint, sizes: Sizes) -> dict[str, float]:
    """Items/s of generate() at each batch size, as `makemore sample` draws (runs.draw, less its split lookup)."""
    limit = best.model.max_sample_len(best.run.max_len)
    rates = {}
    for batch, calls in zip(SAMPLE_BATCHES, sizes.sample_calls):
        generate(best.model, best.vocab, batch, limit, torch.Generator().manual_seed(0))  # warm-up
        times = []
        for repeat in range(sizes.sample_repeats):
            gen = torch.Generator().manual_seed(repeat + 1)
            t0 = time.perf_counter()
            for _ in range(calls):
                generate(best.model, best.vocab, batch, limit, gen)
            times.append(time.perf_counter() - t0)
        rates[str(batch)] = median_rate(batch * calls, times)
    return rates


def score_rate(best: checkpoint.Checkpoint, items: list[str], sizes: Sizes) -> float:
    """Dev items/s through what `makemore score` runs (runs.score_checked), sizes.score_batch items a call."""
    items = items[: sizes.score_items]
    score_checked(best, items[: sizes.score_batch])  # warm-up
    times = []
    for _ in range(sizes.score_repeats):
        t0 = time.perf_counter()
        for start in range(0, len(items), sizes.score_batch):
            score_checked(best, items[start : start + sizes.score_batch])
        times.append(time.perf_counter() - t0)
    return median_rate(len(items), times)


def run_results(run_dir: Path, sizes: Sizes) -> dict | None:
    if not (run_dir / checkpoint.BEST).is_file():
        return None
    store = RunStore.open(run_dir)
    best = store.load_best()
    data = store.dataset(write_cache=False)  # the benchmark never writes into a run
    evals = [r for r in store.metrics() if "dev" in r and "train_seconds" in r]
    return {
        "run": str(run_dir),
        "best_step": best.step,
        **time_to_dev(evals),
        "sample_items_per_s": sample_rates(best, sizes),
        "score_items_per_s": score_rate(best, data.items("dev"), sizes),
    }


# --- peak memory of `makemore train` -------------------------------------------------------------------
# The child reports its own high-water mark: ru_maxrss (os.wait4) would include the pages of this large
# parent that the child held between fork and exec, and VmHWM belongs to the exec'd process alone.
TRAIN_AND_REPORT_PEAK = (
    f"import sys; from makemore.cli import main; code = main(sys.argv[1:]); print('peak', {PEAK_RSS}); sys.exit(code)"
)


def peak_rss_mib(model_type: str, steps: int, threads: int, tmp: Path, data: Path | None) -> float | None:
    """Peak resident memory of `makemore train --type T`, shortened to `steps` steps, in a child process."""
    steps = min(steps, TrainConfig(**REGISTRY[model_type].train_defaults).max_steps)
    args = ["train", "--type", model_type, "-o", str(tmp / model_type), *(["-i", str(data)] if data else [])]
    args += ["-q", "--device", "cpu", "--threads", str(threads), "--max-steps", str(steps)]
    args += ["--eval-interval", str(max(1, steps))]
    done = run_python(["-c", TRAIN_AND_REPORT_PEAK, *args])
    peak = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("peak ")]
    return int(peak[-1]) / 2**20 if peak else None


def peak_rss_all(types: list[str], sizes: Sizes) -> dict[str, float | None]:
    """Children run as many at a time as the cores hold their threads: each one's peak is its own,
    and no timing runs meanwhile. Quick: the first type only, on a tiny file."""
    threads = torch.get_num_threads()
    measured = types[: sizes.rss_types]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max(1, (os.cpu_count() or 1) // threads)) as pool:
        data = tiny_names(Path(tmp)) if sizes.rss_types else None
        peaks = pool.map(lambda t: peak_rss_mib(t, sizes.rss_steps, threads, Path(tmp), data), measured)
        return {t: None for t in types} | dict(zip(measured, peaks))


# --- the whole benchmark -----------------------------------------------------------------------------
def train_subjects(types: list[str], data: Dataset) -> list:
    """A Recipe per type trained by steps (not the counted bigram); with the transformer, also at the
    baseline's batch of 32 items, and the baseline itself."""
    subjects = [Recipe(t, t, data) for t in types if TrainConfig(**REGISTRY[t].train_defaults).max_steps > 0]
    if "transformer" in types:
        subjects += [Recipe(AT_32, "transformer", data, batch_size=32), Baseline(data)]
    return subjects


def measure(args, sizes: Sizes) -> tuple[list[dict], dict]:
    say("the machine: matmul peak")
    extra = {"extensions": vector_extensions(), **matmul_peaks(sizes, vector_extensions())}
    peak = extra["fp32"]["gflops"]
    data = Dataset.read(bundled_names(), DEFAULT_MAX_ITEM_LEN)  # as `makemore train` reads it
    subjects = train_subjects(args.types, data)
    say(f"training steps of {len(subjects)} loops, interleaved")
    timed = time_steps(subjects, sizes)
    steps = {
        s.name: {
            "params": s.params,
            "batch": s.batch,
            **step_stats(timed[s.name], count_flops(s, sizes.flop_batches), peak),
        }
        for s in subjects
    }
    say(f"trained runs in {args.runs}: sampling and scoring")
    runs = {t: run_results(args.runs / t, sizes) for t in args.types}
    say("peak memory of `makemore train`")
    rss = peak_rss_all(args.types, sizes)
    rows = [
        {
            "kind": "model",
            "type": t,
            "params": params(t, data, steps),
            "training": steps.get(t),
            "run": runs[t],
            "peak_rss_mib": rss[t],
        }
        for t in args.types
    ]
    if BASELINE in steps:
        base = steps[BASELINE]["tokens_per_s"]
        rows += [
            {
                "kind": "baseline",
                "loop": name,
                **steps[name],
                "tokens_per_s_vs_baseline": steps[name]["tokens_per_s"] / base,
            }
            for name in (BASELINE, AT_32, "transformer")
        ]
    return rows, extra


def params(model_type: str, data: Dataset, steps: dict) -> int:
    if model_type in steps:
        return steps[model_type]["params"]
    cls = REGISTRY[model_type]
    return cls(cls.config_for(data)).num_params()


# --- the report -------------------------------------------------------------------------------------
def cell(value, spec: str = ",.0f", missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def machine_table(m: dict) -> list[str]:
    fp32 = m["fp32"]
    sizes = ", ".join(f"n {n}: {g:,.1f}" for n, g in fp32["by_size"].items())
    bf16 = m["bf16"] if isinstance(m["bf16"], str) else f"{m['bf16']['gflops']:,.1f} GFLOP/s (n {m['bf16']['n']})"
    return [
        "| machine | |",
        "|---|---|",
        f"| CPU | {m['cpu']} |",
        f"| vector extensions | {', '.join(m['extensions']) or 'none of ' + ', '.join(VECTOR_FLAGS)} |",
        f"| cores / torch threads | {m['cores']} / {m['threads']} |",
        f"| torch / Python | {m['torch']} / {m['python']} |",
        f"| fp32 matmul peak | {fp32['gflops']:,.1f} GFLOP/s ({sizes}) |",
        f"| bf16 matmul peak | {bf16} |",
    ]


MODEL_HEADER = [
    "| model | params | step ms | tokens/s | MFLOP/step | GFLOP/s | % of fp32 peak | s to dev 2.10 | 2.00 | 1.97 "
    "| best dev | sample/s at 1 | 100 | 1000 | score items/s | peak RSS MiB |",
    "|---|" + "---:|" * 15,
]


def model_line(r: dict) -> str:
    train, run = r["training"] or {}, r["run"] or {}
    to_dev, samples = run.get("seconds_to_dev", {}), run.get("sample_items_per_s", {})
    never = "" if run else "—"  # blank: the run never got there; a dash: no run
    mflops = train["flops_per_step"] / 1e6 if train else None
    cells = [
        f"`{r['type']}`",
        f"{r['params']:,}",
        cell(train.get("step_ms"), ".2f"),
        cell(train.get("tokens_per_s")),
        cell(mflops, ",.1f"),
        cell(train.get("gflops"), ".2f"),
        cell(train.get("pct_of_fp32_peak"), ".1f"),
        *(cell(to_dev.get(f"{target:.2f}"), ",.1f", never) for target in DEV_TARGETS[1:]),
        cell(run.get("best_dev"), ".4f"),
        *(cell(samples.get(str(b))) for b in SAMPLE_BATCHES),
        cell(run.get("score_items_per_s")),
        cell(r["peak_rss_mib"]),
    ]
    return "| " + " | ".join(cells) + " |"


LOOPS = {
    BASELINE: "plain PyTorch: DataLoader, padded batches, hand-written attention",
    AT_32: "makemore `transformer`, batch 32 (packed rows)",
    "transformer": "makemore `transformer`, default recipe (batch 128, packed rows)",
}


def baseline_table(rows: list[dict]) -> list[str]:
    lines = [
        "| training loop | params | items/step | step ms | tokens/s | GFLOP/s | tokens/s vs plain loop |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {LOOPS[r['loop']]} | {r['params']:,} | {r['batch']} | {r['step_ms']:.2f} | {r['tokens_per_s']:,.0f} | "
            f"{r['gflops']:.2f} | {r['tokens_per_s_vs_baseline']:.2f}x |"
        )
    return lines


def method(sizes: Sizes, runs: str) -> list[str]:
    """How each number was measured, with its repeat counts."""
    z, timed = sizes, sizes.rounds * sizes.round_steps
    calls = ", ".join(f"{c} x {b}" for c, b in zip(z.sample_calls, SAMPLE_BATCHES))
    return [
        f"- matmul peak: square products, median of {z.matmul_repeats} per size, the best size reported.",
        "- training: each model at its default recipe on the bundled names, through makemore's own Trainer "
        f"(CPU). Step ms: median of {timed} timed steps ({z.rounds} rounds of {z.round_steps}, every "
        f"loop in turn, after {z.warmup_steps} warm-up steps), on the Trainer's clock: drawing the batch to "
        "the optimizer and weight-average update. Tokens/s: median of each step's predicted characters "
        "(padding excluded) per second. `bigram` counts instead of training: no steps.",
        f"- FLOPs: matrix products of one forward + backward pass (FlopCounterMode, {z.flop_batches} "
        "batch(es)), not the optimizer or elementwise work; GFLOP/s = FLOPs per predicted character x "
        "tokens/s, and its share of the fp32 matmul peak.",
        f"- from the trained runs in `{runs}`: training seconds at the first dev evaluation at or "
        "below each NLL (blank: never reached; a dash: no run), the best dev NLL; sampling items/s of "
        f"`generate` at batch 1, 100 and 1,000 ({calls} items per repeat), median of {z.sample_repeats}; "
        f"scoring: dev items/s through `makemore score`'s code, {z.score_batch} items a call, median of "
        f"{z.score_repeats}.",
        f"- peak RSS: VmHWM of the child process `makemore train --type T --max-steps {z.rss_steps} "
        f"--eval-interval {z.rss_steps}` (a shortened default run, its evaluations included).",
    ]


def markdown(res: dict, args) -> str:
    m, quick = res["machine"], args.quick
    threads = f"{m['threads']} thread" + ("s" if m["threads"] != 1 else "")
    models = [r for r in res["rows"] if r["kind"] == "model"]
    baseline = [r for r in res["rows"] if r["kind"] == "baseline"]
    lines = [
        *(["**Quick mode: a check that the benchmark runs; these numbers are not results.**", ""] if quick else []),
        f"{m['cpu']} ({m['cores']} cores), {threads}, torch {m['torch']}, {res['date']}:",
        "",
        f"    {res['command']}",
        "",
        *machine_table(m),
        "",
        *MODEL_HEADER,
        *map(model_line, models),
    ]
    if baseline:
        lines += ["", "makemore's transformer against the textbook loop, timed in the same rounds:", ""]
        lines += baseline_table(baseline)
    return "\n".join([*lines, "", *method(QUICK if quick else FULL, str(args.runs))]) + "\n"


def result_name(args) -> str:
    return "bench"  # benchmarks/results/bench.{json,md}, which the README and docs/performance.md cite


def add_arguments(p) -> None:
    p.add_argument(
        "--types", nargs="+", choices=list(REGISTRY), metavar="T", help="model types (default: all; --quick: a few)"
    )
    default_runs = RUNS.relative_to(ROOT)
    p.add_argument(
        "--runs",
        type=Path,
        default=default_runs,
        metavar="DIR",
        help=f"trained runs, DIR/TYPE (default: {default_runs})",
    )


def run(args) -> tuple[list[dict], dict]:
    sizes = QUICK if args.quick else FULL
    args.types = list(dict.fromkeys(args.types or sizes.quick_types or REGISTRY))
    return measure(args, sizes)
