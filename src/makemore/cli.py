"""makemore's command line: train, eval, sample, score.

Flag names follow makemore.py (-i, -o, --type, --max-steps, -b, -l, --top-k, --resume).
Every field of TrainConfig and of the chosen model's config is a type-checked flag.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from .config import field_type, flag
from .errors import MakemoreError

DEFAULT_TYPE = "mlp"
SEED_LIMIT = 2**63
GRADCHECK_MAX_BATCH = 10_000  # ~0.5 GB: the float64 tables keep every intermediate of the batch

EPILOG_METRIC = (
    "All losses are mean negative log-likelihood in nats per predicted character "
    "(each character plus the end token) over the whole split; in text mode, each character of the split "
    "after its first."
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (no usage dump)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _add_dataclass_flags(group, cls, defaults: dict, short: dict | None = None) -> None:
    """One flag per dataclass field, with the field's type, help and (recipe) default."""
    for f in fields(cls):
        if f.name == "vocab_size":
            continue  # always from the data
        names = ([short[f.name]] if short and f.name in short else []) + [flag(f.name)]
        default = defaults.get(f.name, f.default if f.default is not MISSING else None)
        if f.metadata.get("from_data"):
            default = "measured on the data"
        kind = field_type(f)
        if kind is bool:
            group.add_argument(
                *names,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{f.metadata.get('help', '')} (default: {'on' if default else 'off'})",
            )
            continue
        group.add_argument(
            *names,
            dest=f.name,
            type=kind,
            default=None,
            metavar=kind.__name__.upper(),
            help=f"{f.metadata.get('help', '')} (default: {default})",
        )


def _data_args(p, exported: bool = False, several: bool = False) -> None:
    """-o: a run directory; exported: or a folder `makemore export` wrote; several: -o may be given
    again, and the models read as one ensemble."""
    also = " or a folder written by `makemore export`" if exported else ""
    if several:
        also += (
            "; give -o several times to use the runs as one ensemble: the average of their next-character "
            "distributions (the same vocabulary; for eval, the same data)"
        )
    action = "append" if several else "store"
    p.add_argument(
        "-o", "--work-dir", required=True, action=action, help=f"run directory written by `makemore train`{also}"
    )


# --- train -------------------------------------------------------------------------------------
TRAIN_SHORT = {"batch_size": "-b", "learning_rate": "-l"}


def _train_parser(model_type: str) -> argparse.ArgumentParser:
    from .config import TrainConfig
    from .data import SPLIT_RULES
    from .models import REGISTRY

    cls = REGISTRY[model_type]
    p = _Parser(
        prog="makemore train",
        description="Train a model on a file of items (one per line), or with --text on one stream of "
        "characters, and write a run directory.",
        epilog=f"Model options depend on --type; `makemore train --type NAME --help` lists them. {EPILOG_METRIC}",
    )
    p.add_argument(
        "-i",
        "--input-file",
        help="UTF-8 text file, one item per line (default: the bundled names.txt; with --text, the bundled "
        "Tiny Shakespeare)",
    )
    p.add_argument(
        "--text",
        action="store_true",
        help="text mode, as in the GPT lecture: the file is one stream of characters, line breaks included; "
        "the first 90%% train, the last 10%% is the dev split, no test split",
    )
    p.add_argument(
        "--block-size",
        dest="block",
        type=int,
        default=None,
        help="text mode: characters a sequence model reads at once, its positions (default: 8; window models "
        "have their own context)",
    )
    p.add_argument(
        "--split",
        choices=SPLIT_RULES,
        default=None,
        help="how the items are split: lectures (default: random.Random(42).shuffle, then 80/10/10) or "
        "makemore (Karpathy's makemore.py: torch.randperm after torch.manual_seed(3407), its last "
        "min(1000, 10%%) items the test split; our dev split is as many items just before them, so train "
        "holds that many fewer than makemore.py's). eval, sample, score, compare and serve read the run's own",
    )
    p.add_argument("-o", "--work-dir", help="run directory to create (default: runs/TYPE-DATE-TIME, printed)")
    p.add_argument("--type", choices=list(REGISTRY), help=f"model type (default: {DEFAULT_TYPE})")
    p.add_argument("--resume", action="store_true", help="continue the run in --work-dir from its last checkpoint")
    p.add_argument(
        "--max-item-len", type=int, default=None, help="skip items longer than this, with a count (default: 1000)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--nproc",
        type=int,
        default=None,
        help="train on this many processes with torch.distributed (DDP; gloo on CPU, nccl on GPUs): "
        "launches `torchrun --standalone --nproc-per-node N -m makemore train ...` (default: 1)",
    )
    presets = ", ".join(cls.presets) or "none"
    p.add_argument(
        "--preset",
        help=f"a named recipe of this model (training and model options); explicit flags still win "
        f"(presets: {presets})",
    )
    _add_dataclass_flags(
        p.add_argument_group("training (defaults are this model's recipe)"),
        TrainConfig,
        cls.train_defaults,
        TRAIN_SHORT,
    )
    _add_dataclass_flags(p.add_argument_group(f"model: {model_type}"), cls.Config, {})
    return p


def _peek_type(argv: list[str]) -> str | None:
    """The --type given (None: not given), before the full parser, whose flags depend on it."""
    from .models import REGISTRY

    pre = _Parser(prog="makemore train", add_help=False)
    pre.add_argument("--type")
    known, _ = pre.parse_known_args(argv)
    if known.type is not None and known.type not in REGISTRY:
        raise MakemoreError(f"unknown --type {known.type!r} (choose from {', '.join(REGISTRY)})")
    return known.type


def _given(args, cls) -> dict:
    given = vars(args)
    return {f.name: given[f.name] for f in fields(cls) if given.get(f.name) is not None}


def _preset(cls, name: str | None) -> dict:
    """The model's named recipe: a dict of TrainConfig and model Config overrides."""
    if name is not None and name not in cls.presets:
        raise MakemoreError(f"this model type has no preset {name!r} (presets: {', '.join(cls.presets) or 'none'})")
    return cls.presets.get(name, {})


RENAMED = {
    "--block-size": "--block-size is now --context-size (window models) or --max-len (sequence models, "
    "measured on the data by default); it stays the block of text mode (--text)"
}


def cmd_train(argv: list[str]) -> int:
    from . import distributed

    for old, message in RENAMED.items():
        if any(a == old or a.startswith(old + "=") for a in argv) and "--text" not in argv:
            raise MakemoreError(message)
    given_type = _peek_type(argv)
    args = _train_parser(given_type or DEFAULT_TYPE).parse_args(argv)
    if args.nproc is not None:
        if "WORLD_SIZE" in os.environ:
            raise MakemoreError("--nproc launches torchrun; under torchrun leave it out")
        distributed.check_nproc(args.nproc)  # 0 or less: refused, not trained in one process
        if args.nproc > 1:
            return distributed.launch(args.nproc, _without_nproc(argv))
    world = distributed.join()  # under torchrun: this process is one rank of several
    try:
        result = _train_or_resume(args, given_type)
    finally:  # on errors too: a process group left alive at exit aborts the rank in gloo's threads
        distributed.leave()
    if world.main:
        print(result)
    return 0


def _train_or_resume(args, given_type: str | None) -> str:
    from . import runs
    from .config import TrainConfig
    from .data import LECTURES
    from .models import REGISTRY, split_recipe

    cls = REGISTRY[args.type or DEFAULT_TYPE]
    train_flags, model_flags = _given(args, TrainConfig), _given(args, cls.Config)
    preset_train, preset_model = split_recipe(cls, _preset(cls, args.preset))
    if args.resume:  # the same command with --resume appended continues the run
        if not args.work_dir:
            raise MakemoreError("--resume needs -o/--work-dir of the run to continue")
        run_as = {"--type": given_type, "--max-item-len": args.max_item_len, "--input-file": args.input_file}
        run_as.update({"--text": args.text or None, "--block-size": args.block, "--split": args.split})
        run_as.update({flag(k): v for k, v in {**preset_model, **model_flags}.items()})
        return runs.resume(Path(args.work_dir), {**preset_train, **train_flags}, run_as, progress=not args.quiet)
    cfg = TrainConfig(**{**cls.train_defaults, **preset_train, **train_flags})
    return runs.start(
        args.type or DEFAULT_TYPE,
        {**preset_model, **model_flags},
        cfg,
        args.input_file,
        args.work_dir,
        args.max_item_len,
        progress=not args.quiet,
        text=args.text,
        block=args.block,
        split=args.split or LECTURES,
    )


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


# --- eval / sample / score --------------------------------------------------------------------
def cmd_eval(argv: list[str]) -> int:
    from . import runs

    p = _Parser(
        prog="makemore eval",
        description="Loss of a run's best checkpoint on the whole train, dev and test splits.",
        epilog=EPILOG_METRIC,
    )
    _data_args(p, exported=True, several=True)
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument(
        "--metric",
        choices=("whole", "makemore"),
        default="whole",
        help="makemore: beside our NLL over each whole split, the figure Karpathy's makemore.py prints (its "
        "'test loss'): the mean of the mean NLLs of random batches of 100 items, at most 11 of them (a split of "
        "1,000 items, its test split, is read whole in 10 batches). Each batch weighs the same however few "
        "characters its items have, so it differs from the whole-split NLL, which weighs every character alike; "
        "on splits of more than 1,100 items it also reads only some of them. Compare it with makemore.py's "
        "figures on a run trained with --split makemore (default: whole)",
    )
    p.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="with --metric makemore: the seed of its batches' random order (default: 3407, makemore.py's seed)",
    )
    args = p.parse_args(argv)
    if args.seed is not None and args.metric != "makemore":
        raise MakemoreError("--seed orders the batches of --metric makemore; our metric reads every item")
    seed = (3407 if args.seed is None else args.seed) if args.metric == "makemore" else None
    paths = [Path(path) for path in args.work_dir]
    report = runs.evaluate(paths[0], makemore_seed=seed) if len(paths) == 1 else runs.evaluate_ensemble(paths, seed)
    if args.json:  # an empty split has no loss: null, never the non-standard NaN
        nulled = lambda d: {k: None if v != v else v for k, v in d.items()}  # noqa: E731
        print(
            json.dumps({**nulled(report), **({"makemore": nulled(report["makemore"])} if "makemore" in report else {})})
        )
    elif report["text"]:
        print(
            f"{report['type']} ({report['params']:,} parameters, step {report['step']}), text mode, nats per character:"
        )
        print(f"  train {report['train']:.4f}  (the first 90% of the characters)")
        print(f"  dev   {report['dev']:.4f}  (the last 10%: the lecture's validation split)")
        print("  test  none  (text mode has no test split)")
    else:
        print(f"{report['type']} ({report['params']:,} parameters, step {report['step']}), nats per character:")
        if "makemore" in report:
            _print_with_makemore(report, seed)
        else:
            for split in ("train", "dev", "test"):
                print(f"  {split:5s} {report[split]:.4f}")
    return 0


def _print_with_makemore(report: dict, seed: int) -> None:
    """Both metrics of each split, and which split the run was trained with."""
    rule = "makemore.py's" if report["split"] == "makemore" else "the lectures' 80/10/10"
    print(f"  (split: {rule}; makemore.py's metric: mean of batch means, batches of 100 items, seed {seed})")
    print("        whole split  makemore.py's metric")
    for split in ("train", "dev", "test"):
        print(f"  {split:5s} {report[split]:11.4f}  {report['makemore'][split]:.4f}")


def _positive(kind):
    def check(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    check.__name__ = kind.__name__
    return check


def _seed(text: str) -> int:
    """A seed torch's generators take: an integer in [0, 2**63)."""
    value = int(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63), got {text}")
    return value


_seed.__name__ = "int"


def _shown(item: str) -> str:
    """An item as the terminal should show it: control characters (ANSI escapes...) escaped
    (data.shown); into a pipe or a file, as it is."""
    from .data import shown

    return shown(item) if sys.stdout.isatty() else item


def cmd_sample(argv: list[str]) -> int:
    from . import runs
    from .sample import Sampling

    p = _Parser(
        prog="makemore sample",
        description="Sample new items from a trained run; each is marked train / dev / test / new. "
        "A text-mode run (train --text) instead continues a text for --length characters.",
    )
    _data_args(p, exported=True, several=True)
    p.add_argument(
        "-n",
        "--num-samples",
        type=_positive(int),
        default=None,
        help="how many items (default: 20); the first k items of a seed are the same for any -n",
    )
    p.add_argument(
        "--length",
        type=_positive(int),
        default=None,
        metavar="N",
        help="text mode: continue the text (--prefix, or a line break) for N characters",
    )
    p.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="sampling seed; the same seed gives the same items (default: random, printed on stderr)",
    )
    p.add_argument(
        "--temperature",
        type=_positive(float),
        default=1.0,
        help="divide logits by this; < 1 is more conservative (default: 1.0)",
    )
    p.add_argument("--top-k", type=_positive(int), default=None, help="sample only among the k most likely characters")
    p.add_argument(
        "--top-p",
        type=_positive(float),
        default=None,
        help="sample only from the smallest set of characters with this much probability (0 < p <= 1)",
    )
    p.add_argument("--prefix", default="", help="start every item with this text (text mode: the text to continue)")
    p.add_argument("--new-only", action="store_true", help="keep only items that appear in none of the splits")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = p.parse_args(argv)
    if args.top_p is not None and args.top_p > 1:
        p.error("--top-p must be in (0, 1]")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little") >> 1
    how = Sampling(args.temperature, args.top_k, args.top_p, args.prefix)
    if args.length is not None:
        return _sample_text(args, seed, how)
    samples = runs.sample([Path(path) for path in args.work_dir], args.num_samples or 20, seed, how, args.new_only)
    if args.seed is None and not args.json:
        print(f"(seed {seed}; pass --seed {seed} to repeat)", file=sys.stderr)
    if args.json:
        print(json.dumps({"seed": seed, "samples": [{"item": s, "split": where} for s, where in samples]}))
    else:
        shown = [(_shown(s), where) for s, where in samples]
        width = max((len(s) for s, _ in shown), default=0)
        for s, where in shown:
            print(f"{s:<{width}}  {where}")
    return 0


def _sample_text(args, seed: int, how) -> int:
    """`sample --length N`: one continuation of a text-mode run's text, the prefix first."""
    from . import runs

    if args.num_samples is not None or args.new_only:
        raise MakemoreError("-n and --new-only count items; --length continues one text")
    if len(args.work_dir) > 1:
        raise MakemoreError("--length continues the text of one run: give one -o")
    text = runs.sample_text(Path(args.work_dir[0]), args.length, seed, how)
    if args.seed is None and not args.json:
        print(f"(seed {seed}; pass --seed {seed} to repeat)", file=sys.stderr)
    if args.json:
        print(json.dumps({"seed": seed, "prefix": args.prefix, "text": text}))
    else:  # line breaks are the text's own; other control characters escaped on a terminal
        print("\n".join(_shown(line) for line in (args.prefix + text).split("\n")))
    return 0


def cmd_score(argv: list[str]) -> int:
    from . import runs

    p = _Parser(
        prog="makemore score",
        description="Negative log-likelihood (nats) of each item under a trained run: total and per character. "
        "A text-mode run scores each text's characters after its first.",
        epilog=EPILOG_METRIC,
    )
    _data_args(p, exported=True, several=True)
    p.add_argument("items", nargs="+", metavar="ITEM", help="items to score")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = p.parse_args(argv)
    results = runs.score([Path(path) for path in args.work_dir], args.items)
    if args.json:  # a non-finite NLL (a character the model gives probability 0) is null, as in eval --json
        finite = lambda x: x if math.isfinite(x) else None
        for r in results:
            r.update(nll=finite(r["nll"]), nll_per_char=finite(r["nll_per_char"]))
            r["chars"] = [(c, finite(v)) for c, v in r["chars"]]
        print(json.dumps({"items": results}))
        return 0
    for r in results:
        detail = " ".join(f"{c}:{nll:.2f}" for c, nll in r["chars"])
        print(f"{_shown(r['item'])}\ttotal {r['nll']:.4f}\tper char {r['nll_per_char']:.4f}\t{_shown(detail)}")
    return 0


def cmd_diagnose(argv: list[str]) -> int:
    from .diagnose import diagnose

    p = _Parser(
        prog="makemore diagnose",
        description="Part 3's diagnostics for a run of a tanh network (mlp, mlp-bn, mlp-bn-deep): init loss, "
        "activation and gradient statistics, update:data ratios; PNGs and diagnostics.json in DIR/diagnostics. "
        "An exported folder needs its data (export --with-data): the replay trains on it.",
    )
    _data_args(p, exported=True)
    p.add_argument(
        "--out",
        default=None,
        help="where to write the plots and JSON (default: DIR/diagnostics; for an exported folder, which is left "
        "as it was shared, NAME-diagnostics here)",
    )
    p.add_argument("--steps", type=int, default=1000, help="replay steps from initialisation (default: 1000)")
    p.add_argument("-b", "--batch-size", type=int, default=32, help="replay batch size (default: 32)")
    p.add_argument("-l", "--learning-rate", type=float, default=0.1, help="replay SGD learning rate (default: 0.1)")
    p.add_argument("--json", action="store_true", help="print the whole report as one JSON object on stdout")
    args = p.parse_args(argv)
    report = diagnose(Path(args.work_dir), args.out, args.steps, args.batch_size, args.learning_rate)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['type']}: expected initial loss -ln(1/V) = {report['expected_init_loss']:.4f}")
    for name, r in report["variants"].items():
        layers = "  ".join(
            f"{row['layer']} sat {row['saturated_pct']:.1f}% grad {row['grad_std']:.1e}" for row in r["layers"]
        )
        print(f"  {name:24s} init loss {r['init_loss']:.4f}  loss after replay {r['final_batch_loss']:.4f}  {layers}")
    print(f"wrote {len(report['plots'])} plots and diagnostics.json to {report['out_dir']} in {report['seconds']:.1f}s")
    return 0


def cmd_gradcheck(argv: list[str]) -> int:
    import torch

    from .backprop import format_table
    from .gradcheck import gradcheck

    p = _Parser(
        prog="makemore gradcheck",
        description="Part 4: mlp-bn's hand-written backward pass (26 gradients, and the fused "
        "cross-entropy and BatchNorm forms) against autograd, in float32 and float64.",
    )
    p.add_argument("--seed", type=_seed, default=42, help="seed of the weights and the batch (default: 42)")
    p.add_argument(
        "-b", "--batch-size", type=int, default=32, help="examples in the batch (default: 32, as in the lecture)"
    )
    p.add_argument("--json", action="store_true", help="print the tables as one JSON object on stdout")
    args = p.parse_args(argv)
    if not 2 <= args.batch_size <= GRADCHECK_MAX_BATCH:  # 2: BatchNorm's unbiased variance divides by n-1
        raise MakemoreError(f"--batch-size must be in [2, {GRADCHECK_MAX_BATCH:,}] (each example holds every gradient)")
    report = gradcheck(args.seed, args.batch_size, (torch.float32, torch.float64))
    if args.json:
        print(json.dumps(report))
        return 0
    for dtype, table in report["tables"].items():
        print(f"{dtype}: hand-written gradient vs autograd (exact = bitwise equal, approx = torch.allclose)")
        print(format_table(table["atomic"]))
        print(f"{dtype}: fused forms")
        print(format_table(table["fused"]) + "\n")
    return 0


def cmd_gradcode(argv: list[str]) -> int:
    from .gradcode import write_gradcode
    from .models import REGISTRY

    p = _Parser(
        prog="makemore gradcode",
        description="Part 4: write the gradient code PyTorch derives for one training step: the eager "
        "grad_fn graph, AOTAutograd's joint/forward/backward FX graphs and TorchInductor's C++ kernels, "
        "with a README.md. "
        "Needs a C++ compiler (g++).",
    )
    p.add_argument(
        "--type", default="mlp-bn", choices=list(REGISTRY), help="model type, default config (default: mlp-bn)"
    )
    p.add_argument("-o", "--out", required=True, help="directory to write the files into")
    p.add_argument("--force", action="store_true", help="replace files of the same names already in the directory")
    p.add_argument("-b", "--batch-size", type=int, default=32, help="examples in the traced batch (default: 32)")
    p.add_argument("--seed", type=_seed, default=42, help="seed of the weights and the batch (default: 42)")
    args = p.parse_args(argv)
    result = write_gradcode(args.type, args.out, args.batch_size, args.seed, args.force)
    for key, path in result.items():
        if key != "seconds":
            print(path)
    print(f"wrote {len(result) - 1} files in {result['seconds']:.1f}s; start with {result['readme']}", file=sys.stderr)
    return 0


def cmd_compare(argv: list[str]) -> int:
    from .compare import compare, markdown, outputs

    p = _Parser(
        prog="makemore compare",
        description="Runs side by side: each evaluated on its whole train, dev and test splits, with its "
        "parameters and training time, as a markdown table (best dev first) and a plot of dev NLL "
        "against parameters and against training time.",
        epilog=EPILOG_METRIC,
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories, or folders with runs anywhere below")
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="add a row for the ensemble of all the runs: the average of their next-character distributions",
    )
    p.add_argument("--out", metavar="DIR", help="also write DIR/compare.md and DIR/compare.png")
    p.add_argument("--force", action="store_true", help="replace compare.md and compare.png already in DIR")
    args = p.parse_args(argv)
    if args.out:  # checked before the (slow) evaluations
        files = outputs(Path(args.out))
        if not Path(args.out).is_dir():
            raise MakemoreError(f"--out {args.out} is not a directory")
        if not args.force and (taken := [str(f) for f in files if os.path.lexists(f)]):
            raise MakemoreError(f"{' and '.join(taken)} already exist; --force replaces them")
        from .files import check_replaceable

        for f in files:
            check_replaceable(f)  # a folder, device or FIFO there: refused even with --force
    rows = compare(args.runs, with_ensemble=args.ensemble)
    table = markdown(rows)
    print(table, end="")
    if args.out:
        from .files import atomic_write_bytes
        from .plots import compare_png

        figure = compare_png(rows)  # drawn whole before either file is written
        atomic_write_bytes(files[0], table.encode())
        atomic_write_bytes(files[1], figure)
        print(f"wrote {files[0]} and {files[1]}", file=sys.stderr)
    return 0


def cmd_export(argv: list[str]) -> int:
    from . import export, runs
    from .store import RunStore

    p = _Parser(
        prog="makemore export",
        description="Share a trained model outside makemore. hf: a folder with config.json (the model, its "
        "vocabulary, data hash and split, NLL per split, training recipe), model.safetensors (the best weights) "
        "and README.md (a model card), which `makemore sample/score/serve/eval -o DIR` read as they read a run. "
        "onnx: model.onnx, next-character logits of a batch of prefixes, for ONNX Runtime (needs the onnx "
        "extra; rnn, gru and lstm cannot be traced). The folder is written beside DIR and renamed into place.",
        epilog="To share an hf folder on the Hugging Face Hub, its own client uploads it: hf upload USER/NAME DIR . "
        "(pip install huggingface_hub; hf auth login first). " + EPILOG_METRIC,
    )
    _data_args(p, exported=True)
    p.add_argument("--to", required=True, metavar="DIR", help="the folder to write (must not exist, see --force)")
    p.add_argument("--format", default="hf", choices=export.FORMATS, help="hf (default) or onnx")
    p.add_argument("--force", action="store_true", help="replace an earlier export in DIR (and nothing else)")
    p.add_argument(
        "--with-data",
        action="store_true",
        help="hf: add the items trained on (data.safetensors), so that the folder can be evaluated and sampled "
        "items tagged train/dev/test/new; without it the data stays private and a sample's split is 'unknown'",
    )
    args = p.parse_args(argv)
    loaded = runs.open_model(Path(args.work_dir))
    data = loaded.dataset(write_cache=False) if loaded.has_data else None  # exporting writes nothing to RUN
    metrics = RunStore.open(loaded.path).metrics()
    written = export.write(
        loaded.best, data, loaded.numbers, metrics, Path(args.to), args.format, args.force, args.with_data
    )
    for name, size in written["files"].items():
        print(f"{Path(args.to) / name}\t{size:,} bytes")
    return 0


PLOTS = {
    "loss": "the train and dev loss curves (the run's loss.png, drawn again; --with adds runs, --smooth averages)",
    "bigram": "Part 1: the bigram matrix, pair and count in each cell (bigram, bigram-nn); with --with RUN, "
    "the two models' probabilities side by side",
    "sweep": "Part 1: train and dev NLL against the one option the runs under -o FOLDER differ in, "
    "per model type (e.g. bigram --alpha, bigram-nn --regularization)",
    "lr": "Part 2: the learning-rate finder, loss against learning rate (a run trained with --schedule sweep)",
    "embedding": "Part 2: the character embedding, in 2-D (every model with one)",
    "tanh": "Part 3: the tanh layer at initialisation under each --init: pre-activation and output "
    "histograms, saturation map (models with a tanh layer)",
    "dlogits": "Part 4: the gradient of the loss on the logits of 32 training examples",
    "attention": "Part 6: the attention of every layer and head over --item (transformer)",
}


def cmd_plot(argv: list[str]) -> int:
    from . import views

    p = _Parser(
        prog="makemore plot",
        description="Draw a figure of a trained run as a PNG: "
        + "; ".join(f"{kind}: {what}" for kind, what in PLOTS.items())
        + ".",
    )
    p.add_argument("kind", choices=list(PLOTS), help=" | ".join(PLOTS))
    _data_args(p, exported=True)
    p.add_argument("--item", default="emma", help="the item attention is drawn over (default: emma)")
    p.add_argument(
        "--with",
        dest="others",
        action="append",
        default=[],
        metavar="RUN",
        help="loss, bigram: another run, drawn beside",
    )
    p.add_argument(
        "--smooth", type=int, default=0, metavar="STEPS", help="loss: mean train loss per STEPS steps (0: each logged)"
    )
    p.add_argument(
        "--log-steps",
        action="store_true",
        help="loss: a logarithmic step axis, so the first few hundred steps (a bad start's hockey stick) are visible",
    )
    p.add_argument("--out", metavar="FILE", help="where to write the PNG (default: KIND.png here)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    args = p.parse_args(argv)
    out = Path(args.out or f"{args.kind}.png")
    if os.path.lexists(out) and not args.force:
        raise MakemoreError(f"{out} already exists; --force replaces it")
    if not out.parent.is_dir():
        raise MakemoreError(f"{out.parent} is not a directory")
    from .files import check_replaceable

    check_replaceable(out)  # a folder, device or FIFO (/dev/null): refused even with --force
    from . import plots, runs
    from .store import RunStore

    if args.log_steps and args.kind != "loss":
        raise MakemoreError(f"--log-steps draws the loss curve's step axis, not {args.kind}")
    if args.others and args.kind not in ("loss", "bigram"):
        raise MakemoreError(f"--with draws other runs beside this one in loss and bigram plots, not in {args.kind}")
    if args.smooth < 0:
        raise MakemoreError("--smooth must be >= 0")
    if args.kind == "sweep":
        from .compare import sweep

        plots.plot_sweep(sweep([args.work_dir]), out)
        print(out)
        return 0
    opened = [runs.open_model(Path(d)) for d in [args.work_dir, *args.others]]  # a run or an exported folder
    first, best = opened[0], opened[0].best
    if args.kind in ("tanh", "dlogits") and not first.has_data:
        raise MakemoreError(
            f"{args.work_dir} was exported without its data, and plot {args.kind} draws training examples: "
            "export the run with --with-data"
        )
    if args.kind == "loss":  # an export keeps its run's log
        named = [(one.path.name, RunStore.open(one.path).metrics()) for one in opened]
        plots.plot_losses(named, out, args.smooth, args.log_steps)
    elif args.kind == "lr":
        recipe = best.train_config
        if recipe is None or recipe.schedule != "sweep":
            raise MakemoreError(f"{args.work_dir} was not trained with --schedule sweep: it swept no learning rates")
        plots.plot_lr(RunStore.open(first.path).metrics(), out)
    elif args.kind == "bigram" and args.others:
        plots.plot_bigrams([(one.path.name, views.bigram(one.best)) for one in opened], out)
    elif args.kind == "bigram":
        plots.plot_bigram(views.bigram(best), out)
    elif args.kind == "tanh":
        plots.plot_tanh(views.tanh_at_init(best, first.dataset()), out)
    elif args.kind == "embedding":
        plots.plot_embedding(views.embedding(best), out)
    elif args.kind == "dlogits":
        plots.plot_dlogits(views.dlogits(best, first.dataset()), out)
    else:
        plots.plot_attention(views.attention(best, args.item), out)
    print(out)
    return 0


def _port(text: str) -> int:
    """A TCP port a server can listen on: 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number (1 to 65535), got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (1 to 65535), got {value}")
    return value


def cmd_serve(argv: list[str]) -> int:
    p = _Parser(
        prog="makemore serve",
        description="Serve trained runs on a local web page (at /): their loss curves, generated items, "
        "the probability of each character of an item, and views of the inside (attention, embedding, "
        "bigram matrix); and the JSON API behind it (reference at /docs). Runs are loaded once, at start.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories, or folders with runs anywhere below")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="port, 1 to 65535 (default: 8000)")
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="also serve the runs as one model, the average of their next-character distributions "
        "(they must share a vocabulary; it is evaluated only if they trained on the same data)",
    )
    args = p.parse_args(argv)
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise MakemoreError(f"serve needs the web extra: pip install 'makemore[web]' ({e.name} is missing)") from None
    from .serve import serve

    serve(args.runs, args.host, args.port, args.ensemble)
    return 0


COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "sample": cmd_sample,
    "score": cmd_score,
    "diagnose": cmd_diagnose,
    "gradcheck": cmd_gradcheck,
    "gradcode": cmd_gradcode,
    "compare": cmd_compare,
    "export": cmd_export,
    "plot": cmd_plot,
    "serve": cmd_serve,
}


def _world():
    """This process's place among the ranks (one process unless started by torchrun)."""
    from . import distributed

    return distributed.world()


def _reported() -> None:
    if "makemore.distributed" in sys.modules:
        from . import distributed

        distributed.reported()


def _await_report() -> None:
    if "makemore.distributed" in sys.modules:
        from . import distributed

        distributed.await_report()


def _escaped(message: str) -> str:
    """An error as stderr prints it: a run's name or a forged field cannot drive the terminal (data.shown)."""
    from .data import shown

    return shown(message)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    top = _Parser(
        prog="makemore",
        description="Autoregressive character-level language models: "
        "learn from a list of items, then make more of them.",
        epilog="Run `makemore COMMAND --help` for a command's options. " + EPILOG_METRIC,
    )
    top.add_argument("command", choices=list(COMMANDS), help=" | ".join(COMMANDS))
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0 if argv else 2
    top.parse_args(argv[:1])
    try:
        return COMMANDS[argv[0]](argv[1:])
    except MakemoreError as e:
        if _world().main:  # every rank meets the same error; rank 0 says it
            print(f"makemore {argv[0]}: error: {_escaped(str(e))}", file=sys.stderr)
            _reported()
        else:  # and the others wait until it has: a rank that ended first would have the launcher stop rank 0
            _await_report()
        return 1
    except OSError as e:  # a safety net: file trouble is the user's to fix, not a traceback
        where = f" {e.filename}" if e.filename else ""
        print(f"makemore {argv[0]}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as e:  # a safety net for sizes no check foresaw
        if _world().size > 1 and not isinstance(e, MemoryError):  # a rank that stopped or vanished
            print(
                f"makemore {argv[0]}: error: rank {_world().rank} lost another rank ({type(e).__name__}); "
                "training stopped, the last checkpoint is kept",
                file=sys.stderr,
            )
            _reported()
            return 1
        if not isinstance(e, MemoryError) and "memory" not in str(e).lower():
            raise
        print(f"makemore {argv[0]}: error: out of memory; try a smaller --batch-size, model or input", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"makemore {argv[0]}: interrupted", file=sys.stderr)
        return 130
