"""`leaderboard`: every model type at each of its recipes, trained with three seeds, its dev and test
NLL as mean ± sample standard deviation, and ensembles of such runs (ENSEMBLES: their members of the
asked types trained too, where missing); the rows of docs/leaderboard.md, which it writes too (--page).

Each run is `makemore train --type T RECIPE --seed S --threads N -o DIR -q` into
--runs DIR/SPLIT/T[_RECIPE]/seed-S, one at a time, each holding the CPU lock (--lock) while it
trains and never in between, so that another process's work that takes the same lock runs between
them and not beside them (evaluations, seconds each and untimed, run without it). Do not run the
harness itself under that lock: it would wait for itself. A finished run is reused and a run
stopped part-way is resumed, so an interrupted leaderboard goes on where it stopped. --splits
makemore trains the same recipes on makemore.py's split (`--split makemore`) and reports
makemore.py's test-loss figure beside ours (`makemore eval --metric makemore`). Rows of types and
splits not asked for are kept from the previous result file. --quick: `mlp` (unless types are
named) for a few steps on a tiny file, two seeds, trained in this process, into a temporary
directory (unless --runs), without a lock (unless --lock), the page written beside --out.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import tempfile
import textwrap
from pathlib import Path

from makemore.data import LECTURES, MAKEMORE_PY, MAKEMORE_SEED
from makemore.models import REGISTRY
from makemore.runs import evaluate, evaluate_ensemble

from .common import RESULTS, ROOT, cpu_model, tiny_names
from .models import QUICK_STEPS, ensure_trained, finished

RUNS = ROOT / "runs" / "leaderboard"
PAGE = ROOT / "docs" / "leaderboard.md"
LOCK = Path("/tmp/makemore-cpu.lock")
SEEDS = (42, 1, 2)
QUICK_SEEDS = (42, 1)
QUICK_TYPES = ("mlp",)
NINETY_SECONDS = ("--preset", "quick")  # the transformer's 90-second recipe
# type -> its recipes, one row each: the flags after `makemore train --type T`; a type not named has one
# row, its defaults. A change joins a recipe only when it lowers the mean dev NLL.
RECIPES: dict[str, tuple[tuple[str, ...], ...]] = {
    # its defaults (about ten minutes of two cores) and the 90-second recipe
    "transformer": ((), NINETY_SECONDS),
}
# ensembles of the runs on our split (their next-character distributions averaged): name -> members,
# each (type, its recipe's flags, seed), trained like a row's runs where missing (ensemble_rows)
ENSEMBLES: dict[str, tuple[tuple[str, tuple[str, ...], int], ...]] = {
    "three transformers": tuple(("transformer", (), s) for s in SEEDS),
    "two transformers": tuple(("transformer", (), s) for s in SEEDS[:2]),
    "two transformers, seven 90-second transformers": (
        *(("transformer", (), s) for s in SEEDS[:2]),
        *(("transformer", NINETY_SECONDS, s) for s in (*SEEDS, 3, 4, 5, 6)),
    ),
    "two transformers, three 90-second transformers": (
        *(("transformer", (), s) for s in SEEDS[:2]),
        *(("transformer", NINETY_SECONDS, s) for s in SEEDS),
    ),
    "two transformers, an lstm, a gru, a wavenet-conv": (
        *(("transformer", (), s) for s in SEEDS[:2]),
        *((t, (), 42) for t in ("lstm", "gru", "wavenet-conv")),
    ),
    "three 90-second transformers": tuple(("transformer", NINETY_SECONDS, s) for s in SEEDS),
    "three 90-second transformers, an lstm": (*(("transformer", NINETY_SECONDS, s) for s in SEEDS), ("lstm", (), 42)),
}
QUICK_ENSEMBLES = {"two mlps": (("mlp", (), 42), ("mlp", (), 1))}


def recipes(model_type: str) -> tuple[tuple[str, ...], ...]:
    return RECIPES.get(model_type, ((),))


def recipe_name(flags: tuple[str, ...]) -> str:
    return " ".join(flags) or "defaults"


def run_dir(runs: Path, split: str, model_type: str, flags: tuple[str, ...], seed: int) -> Path:
    """DIR/SPLIT/T/seed-S at the defaults; a recipe's flags join the type's folder name, and a preset's
    settings a digest of them, so a run of an older recipe is never taken for one of a newer."""
    joined = "_".join(re.sub(r"[^A-Za-z0-9.]+", "-", f).strip("-") for f in flags)
    if "--preset" in flags:
        settings = REGISTRY[model_type].presets[flags[flags.index("--preset") + 1]]
        joined += "-" + hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return runs / split / (f"{model_type}_{joined}" if joined else model_type) / f"seed-{seed}"


def train_args(
    model_type: str, flags: tuple[str, ...], seed: int, split: str, threads: int, quick_data: Path | None
) -> list[str]:
    args = ["--type", model_type, *flags, "--seed", str(seed), "--threads", str(threads)]
    if split != LECTURES:
        args += ["--split", split]
    if quick_data:
        args += ["-i", str(quick_data), "--max-steps", str(QUICK_STEPS)]
    return args


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def seed_report(directory: Path, split: str, known: dict[Path, dict]) -> dict:
    """One finished run's evaluation and training seconds, measured once per harness run (`known`
    holds them by folder: a run is in a row and in several ensembles)."""
    from makemore import checkpoint

    if directory not in known:
        report = evaluate(directory, makemore_seed=MAKEMORE_SEED if split == MAKEMORE_PY else None)
        report["train_seconds"] = checkpoint.load(directory / checkpoint.LAST).train_seconds
        known[directory] = report
    return known[directory]


def row(
    model_type: str, flags: tuple[str, ...], split: str, args, runs: Path, seeds: tuple[int, ...], known: dict
) -> dict:
    quick_data = tiny_names(runs) if args.quick else None
    reports = []
    for seed in seeds:
        directory = run_dir(runs, split, model_type, flags, seed)
        trained = train_args(model_type, flags, seed, split, args.threads, quick_data)
        ensure_trained(directory, trained, args.lock, args.quick)
        reports.append(seed_report(directory, split, known))
    out = {
        "type": model_type,
        "split": split,
        "recipe": recipe_name(flags),
        "seeds": list(seeds),
        "params": reports[0]["params"],
    }
    for part in ("dev", "test"):
        out[part] = [r[part] for r in reports]
        out[f"{part}_mean"], out[f"{part}_std"] = mean_std(out[part])
    if split == MAKEMORE_PY:
        out["makemore_test"] = [r["makemore"]["test"] for r in reports]
        out["makemore_test_mean"], out["makemore_test_std"] = mean_std(out["makemore_test"])
    out["train_seconds"] = [round(r["train_seconds"], 1) for r in reports]
    out["median_train_seconds"] = round(statistics.median(out["train_seconds"]), 1)
    out["best_step"] = [r["step"] for r in reports]
    out["cpu"], out["threads"] = cpu_model(), args.threads
    return out


def member_names(members) -> list[str]:
    return [f"{t} ({recipe_name(flags)}) seed {seed}" for t, flags, seed in members]


def ensemble_rows(runs: Path, ensembles: dict, args, types: set[str], known: dict) -> list[dict]:
    """Each ensemble whose members are all trained (those of the asked types trained here when
    missing, as the rows' runs are): its dev and test NLL against its best member's, and the training
    seconds of all its members together."""
    out, quick_data = [], tiny_names(runs) if args.quick else None
    for name, members in ensembles.items():
        dirs = [run_dir(runs, LECTURES, t, flags, seed) for t, flags, seed in members]
        for (t, flags, seed), directory in zip(members, dirs):
            if t in types and not finished(directory):
                trained = train_args(t, flags, seed, LECTURES, args.threads, quick_data)
                ensure_trained(directory, trained, args.lock, args.quick)
        if not all(finished(d) for d in dirs):
            continue
        report = evaluate_ensemble(dirs)
        alone = [seed_report(d, LECTURES, known) for d in dirs]
        best = min(alone, key=lambda r: r["dev"])
        out.append(
            {
                "ensemble": name,
                "split": LECTURES,
                "members": member_names(members),
                "dev": report["dev"],
                "test": report["test"],
                "best_member_dev": best["dev"],
                "best_member_test": best["test"],
                "train_seconds": round(sum(r["train_seconds"] for r in alone), 1),
                "cpu": cpu_model(),
            }
        )
    return out


# --- the tables and the page ----------------------------------------------------------------------------
def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f} (one seed)"


def _recipe_cell(r: dict) -> str:
    return "defaults" if r["recipe"] == "defaults" else f"`{r['recipe']}`"


def _steps(r: dict) -> str:
    return " / ".join(f"{s:,}" for s in r["best_step"])


def singles(rows: list[dict], split: str) -> list[dict]:
    """The rows of single models (not ensembles) on one split."""
    return [r for r in rows if r["split"] == split and "ensemble" not in r]


def ours_table(rows: list[dict]) -> str:
    lines = [
        "| model | recipe | params | dev NLL | test NLL | training s (median) | best step per seed | CPU, threads |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted(singles(rows, LECTURES), key=lambda r: r["test_mean"]):
        lines.append(
            f"| `{r['type']}` | {_recipe_cell(r)} | {r['params']:,} | {_pm(r['dev_mean'], r['dev_std'])} | "
            f"{_pm(r['test_mean'], r['test_std'])} | {r['median_train_seconds']:.1f} | {_steps(r)} | "
            f"{r['cpu']}, {r['threads']} |"
        )
    return "\n".join(lines)


def makemore_table(rows: list[dict]) -> str:
    lines = [
        "| model | recipe | makemore.py's test loss | our test NLL, same split | dev NLL | training s (median) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in sorted(singles(rows, MAKEMORE_PY), key=lambda r: r["makemore_test_mean"]):
        lines.append(
            f"| `{r['type']}` | {_recipe_cell(r)} | {_pm(r['makemore_test_mean'], r['makemore_test_std'])} | "
            f"{_pm(r['test_mean'], r['test_std'])} | {_pm(r['dev_mean'], r['dev_std'])} | "
            f"{r['median_train_seconds']:.1f} |"
        )
    return "\n".join(lines)


def ensembles_table(rows: list[dict]) -> str:
    lines = [
        "| ensemble | members | training s, all members | dev NLL | test NLL | best member alone: dev, test |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in sorted((r for r in rows if "ensemble" in r), key=lambda r: r["dev"]):
        lines.append(
            f"| {r['ensemble']} | {'; '.join(r['members'])} | {r['train_seconds']:.1f} | {r['dev']:.4f} | "
            f"{r['test']:.4f} | {r['best_member_dev']:.4f}, {r['best_member_test']:.4f} |"
        )
    return "\n".join(lines)


def markdown(res: dict, args=None) -> str:
    """The result's tables (benchmarks/results/leaderboard.md); with args, docs/leaderboard.md too."""
    rows = res["rows"]
    text = ours_table(rows) + "\n"
    if singles(rows, MAKEMORE_PY):
        text += "\nOn makemore.py's split:\n\n" + makemore_table(rows) + "\n"
    if any("ensemble" in r for r in rows):
        text += "\nEnsembles:\n\n" + ensembles_table(rows) + "\n"
    if args is not None:
        args.page.parent.mkdir(parents=True, exist_ok=True)
        args.page.write_text(page(res))
    return text


def _types(rows: list[dict], split: str) -> list[str]:
    return [t for t in REGISTRY if any(r["type"] == t for r in singles(rows, split))]


def _groups(rows: list[dict], split: str) -> dict[tuple[int, tuple[int, ...]], list[str]]:
    """(threads, seeds) -> the types trained so (the transformer takes every core, the rest one)."""
    out: dict[tuple[int, tuple[int, ...]], list[str]] = {}
    for t in _types(rows, split):
        for r in singles(rows, split):
            group = out.setdefault((r["threads"], tuple(r["seeds"])), [])
            if r["type"] == t and t not in group:
                group.append(t)
    return {k: v for k, v in out.items() if v}


def page(res: dict) -> str:
    rows, m = res["rows"], res["machine"]
    ours, theirs = _types(rows, LECTURES), _types(rows, MAKEMORE_PY)
    missing = [t for t in REGISTRY if t not in ours]
    seeds = rows[0]["seeds"]
    cores = f"{m['cores']} cores" + (f", {', '.join(m['extensions']).upper()}" if m.get("extensions") else "")
    parts = [
        "# Leaderboard: what each model buys with CPU time",
        "",
        "Every model in makemore trades training time for a lower loss. This page puts them side by side: "
        f"each type at its recipe (its defaults, unless the recipe column names flags), trained with {len(seeds)} "
        "seeds, so that a difference between two rows can be told from the noise of one seed, with the CPU "
        "time it cost. How each adopted change to a recipe "
        "was measured is in the tuning log, [the appendix to Part 6](appendix-transformer-tuning.md); "
        "where the time of a training step goes, in [performance](performance.md).",
        "",
        f"Sorted by mean test NLL. Dev and test: mean ± sample standard deviation over seeds "
        f"{', '.join(map(str, seeds))}; "
        "training s: the median over the seeds of the training loop's wall-clock seconds; best step: the "
        "step of the checkpoint kept for its dev NLL, per seed.",
        "",
        ours_table(rows),
        "",
    ]
    if missing:
        parts += [
            f"Not yet run for {len(seeds)} seeds: {', '.join(f'`{t}`' for t in missing)} (the README's "
            "Results table has one seed of each default).",
            "",
        ]
    if theirs:
        parts += [
            "## The same models under makemore.py's conventions",
            "",
            "Karpathy's makemore.py reports its transformer at a test loss of about 1.92 on this data, "
            "measured differently from ours: its test split is the last 1,000 names of a `torch.randperm` "
            "drawn after `torch.manual_seed(3407)`, and its loss is the mean of at most 11 batch means of "
            "100 names, each batch weighing the same however few characters it holds. Here the same recipes "
            "are trained on that split (`makemore train --split makemore`, our dev split the 1,000 names "
            "before its test split) and evaluated both ways (`makemore eval --metric makemore`), so that a "
            "figure from makemore.py stands beside ours on its own terms (what each convention changes, and "
            "by how much on one recipe: [performance](performance.md#ours-and-makemorepys-conventions)):",
            "",
            makemore_table(rows),
            "",
        ]
        if missing_theirs := [t for t in REGISTRY if t not in theirs]:
            parts += [f"Not yet run on this split: {', '.join(f'`{t}`' for t in missing_theirs)}.", ""]
    if any("ensemble" in r for r in rows):
        parts += [
            "## Ensembles",
            "",
            "Several runs read as one model, their next-character distributions averaged (`makemore eval -o A "
            "-o B ...`), make fewer confident mistakes than any one of them: models that differ, by seed or by "
            "type, are wrong in different places. Each ensemble below is made of runs trained as above, on our split "
            "(more seeds where it names them); "
            "its training seconds are those of all its members together, as if trained one after another. "
            "Sorted by dev NLL, the figure an ensemble is chosen by:",
            "",
            ensembles_table(rows),
            "",
        ]
    parts += [
        "## The metric",
        "",
        "NLL is the mean negative log-likelihood in nats per predicted character, each character of a "
        "name and the end token after it, over the whole split (every name, not a sample of batches). "
        "The names are split by `random.Random(42).shuffle`, then 80% train, 10% dev, 10% test; a recipe "
        "is compared with another on dev.",
        "",
        "## Reproduce",
        "",
        "```",
        *reproduce_commands(rows),
        "```",
        "",
        "trains every missing run, one at a time, evaluates the ensembles whose members are all there, and "
        "writes `benchmarks/results/leaderboard.json` (every seed's numbers), "
        "`benchmarks/results/leaderboard.md` and this page. Each run is one command; for a type T, its "
        "recipe's flags and seed S, on N threads (the transformer takes both cores, every other model one):",
        "",
        "```",
        "makemore train --type T [RECIPE] --seed S --threads N -q -o runs/leaderboard/lectures/T/seed-S",
        "makemore eval -o runs/leaderboard/lectures/T/seed-S",
        "```",
        "",
    ]
    if theirs:
        parts += [
            "and on makemore.py's split, `--split makemore` to train, `--metric makemore` to evaluate "
            "(in `runs/leaderboard/makemore/T/seed-S`).",
            "",
        ]
    parts += [
        "A recipe's flags join T in the folder's name, with a digest of a preset's settings, so that a "
        "changed preset trains anew.",
        "",
    ]
    parts += [
        "## The machine",
        "",
        f"{m['cpu']} ({cores}), torch {m['torch']}, Python {m['python']}; each training on the threads its "
        "row names, one at a time (the transformer's with nothing else running, the others' while other "
        "light work shared the machine). "
        f"Last written {res['date'][:10]} by `{res['command']}`. Losses repeat to the printed digits on "
        "the same machine; training seconds move with the machine and its load.",
        "",
    ]
    return "\n".join(_wrapped(parts))


def reproduce_commands(rows: list[dict]) -> list[str]:
    """One harness command per split, thread count and seeds that trains (or reuses) every row."""
    commands = []
    for split in (LECTURES, MAKEMORE_PY):
        for (threads, seeds), types in _groups(rows, split).items():
            flags = f" --splits {split}" if split != LECTURES else ""
            flags += f" --seeds {' '.join(map(str, seeds))}" if seeds != SEEDS else ""
            commands.append(
                f".venv/bin/python -m benchmarks leaderboard --threads {threads} --types {' '.join(types)}{flags}"
            )
    return commands


def _wrapped(lines: list[str], width: int = 100) -> list[str]:
    """Prose lines filled to `width`, as the other docs are; headings, tables and code as they are."""
    out, code = [], False
    for line in lines:
        code ^= line.startswith("```")
        prose = line and not code and not line.startswith(("```", "#", "|"))
        out.append(textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False) if prose else line)
    return out


# --- the subcommand -------------------------------------------------------------------------------------
def add_arguments(p) -> None:
    p.add_argument("--types", nargs="+", choices=list(REGISTRY), metavar="T", help="model types (default: all)")
    p.add_argument(
        "--splits",
        nargs="+",
        choices=[LECTURES, MAKEMORE_PY],
        default=[LECTURES],
        help=f"whose split to train on: ours ({LECTURES}) and/or makemore.py's (default: {LECTURES})",
    )
    p.add_argument("--seeds", nargs="+", type=int, metavar="S", help=f"(default: {' '.join(map(str, SEEDS))})")
    p.add_argument(
        "--runs", type=Path, metavar="DIR", help=f"runs, DIR/SPLIT/TYPE/seed-S (default: {RUNS.relative_to(ROOT)})"
    )
    p.add_argument(
        "--lock",
        type=Path,
        metavar="FILE",
        help=f"the lock (flock) each training holds; 'none': no lock (default: {LOCK}; --quick: none)",
    )
    p.add_argument("--page", type=Path, metavar="FILE", help="the page to write (default: docs/leaderboard.md)")


def run(args) -> tuple[list[dict], dict]:
    if args.lock is None and not args.quick:
        args.lock = LOCK
    elif args.lock is not None and str(args.lock) == "none":
        args.lock = None
    if args.page is None:
        quick_dir = args.out.parent if args.out else Path(tempfile.gettempdir()) / "makemore-benchmarks-quick"
        args.page = quick_dir / "leaderboard-page.md" if args.quick else PAGE
    types = args.types or (QUICK_TYPES if args.quick else list(REGISTRY))
    seeds = tuple(args.seeds or (QUICK_SEEDS if args.quick else SEEDS))
    previous = RESULTS / "leaderboard.json"
    rows, kept = {}, {}
    if not args.quick and previous.exists():
        for r in json.loads(previous.read_text())["rows"]:
            if "ensemble" in r:
                kept[r["ensemble"]] = r
            else:
                rows[key(r)] = r
    known: dict[Path, dict] = {}  # each run's evaluation, by folder
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or (Path(tmp) if args.quick else RUNS)
        for split in args.splits:
            for model_type in types:
                for flags in recipes(model_type):
                    rows[model_type, recipe_name(flags), split] = row(
                        model_type, flags, split, args, runs, seeds, known
                    )
        singles = [rows[k] for k in row_order() if k in rows]
        ensembles = QUICK_ENSEMBLES if args.quick else ENSEMBLES
        # an ensemble none of whose types was asked for keeps its previous row, as a single model's does
        asked = set(types) if LECTURES in args.splits else set()
        again = {
            name: members
            for name, members in ensembles.items()
            if name not in kept or kept[name]["members"] != member_names(members) or {m[0] for m in members} & asked
        }
        fresh = {r["ensemble"]: r for r in ensemble_rows(runs, again, args, asked, known)}
        return singles + [fresh[n] if n in fresh else kept[n] for n in ensembles if n in fresh or n in kept], {}


def key(r: dict) -> tuple[str, str, str]:
    return r["type"], r["recipe"], r["split"]


def row_order() -> list[tuple[str, str, str]]:
    """Our split first, then makemore.py's; in each, the registry's order, then each type's recipes' (a
    recipe no longer in RECIPES drops out)."""
    return [(t, recipe_name(f), s) for s in (LECTURES, MAKEMORE_PY) for t in REGISTRY for f in recipes(t)]
