"""What the commands do with a run: start or resume training, evaluate, sample, score.

The files of a run directory are the run store's (store.py); the loop is train.py's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from . import distributed, ensemble, export
from .checkpoint import BEST, Checkpoint, RunInfo
from .config import TrainConfig, flag
from .data import (
    DEFAULT_MAX_ITEM_LEN,
    ITEM_LEN_LIMIT,
    LECTURES,
    SPLITS,
    Dataset,
    bundled_names,
    bundled_text,
    check_split_rule,
)
from .devices import auto_threads, set_threads
from .errors import MakemoreError
from .evaluate import makemore_nll, model_item_nlls, per_item, score_items, score_text, split_nll, target_nlls
from .models import REGISTRY
from .models.base import shapes_only
from .sample import Sampling, continue_text, generate
from .store import RunStore
from .train import (
    Checkpoints,
    MetricsLog,
    NonFiniteLoss,
    ProgressBar,
    StopOnSignal,
    Trainer,
    TrainState,
    check_recipe,
)

MAX_SAMPLES = 1_000_000  # items per `sample` call: at most ~200 MB of results held before printing
MAX_TEXT_LENGTH = 1_000_000  # characters per `sample --length` call (its table of tokens: 8 MB)


def start(
    model_type: str,
    model_flags: dict,
    cfg: TrainConfig,
    input_file: str | None,
    work_dir: str | None,
    max_item_len: int | None,
    progress: bool = True,
    text: bool = False,
    block: int | None = None,
    split: str = LECTURES,
) -> str:
    """A new run: everything is checked against the data before the run directory is written.
    text: the input is one stream of characters (default: the bundled Tiny Shakespeare), read in
    blocks of `block` characters (--block-size) by a sequence model. split: how the items are split
    (data.SPLIT_RULES: the lectures' 80/10/10, or makemore.py's)."""
    cls = REGISTRY[model_type]
    cfg.validate()
    if text and max_item_len is not None:
        raise MakemoreError("--max-item-len skips long items; text mode has none (it reads every character)")
    if text and check_split_rule(split) != LECTURES:
        raise MakemoreError("--split chooses how items are split; text mode has its own (the first 90% train)")
    max_item_len = (ITEM_LEN_LIMIT if text else DEFAULT_MAX_ITEM_LEN) if max_item_len is None else max_item_len
    source = Path(input_file) if input_file else bundled_text() if text else bundled_names()
    data = Dataset.read_text(source) if text else Dataset.read(source, max_item_len, rule=split)
    config = cls.config_for(data, block=block, **model_flags)
    try:
        with shapes_only():  # the recipe is checked against memory before anything is allocated
            shapes = cls(config)
    except RuntimeError:  # a size whose byte count overflows
        raise MakemoreError(f"a {model_type} with these sizes is too large to build") from None
    check_recipe(shapes, cfg)
    world = distributed.world()
    set_threads(cfg.threads or auto_threads(shapes, cfg), world.size)
    torch.manual_seed(cfg.seed)
    model = cls(config)
    run = RunInfo(
        type=model_type,
        source=str(source),
        max_item_len=max_item_len,
        max_len=min(data.max_len, max_item_len),  # text mode: the train part's characters
        params=model.num_params(),
        skipped_items=data.skipped,
        text=text,
        split=split,
    )
    store = None
    try:
        error = None
        if world.main:  # the one writer: the other ranks only train
            try:
                store = RunStore.create(work_dir, model_type, data.vocab, run)
                store.start(source, data)
            except MakemoreError as e:
                error = e
        world.agree(error)
        if world.main:
            print(f"run directory: {store.dir}", file=sys.stderr)
            if data.skipped:
                print(f"skipped {data.skipped} items longer than {max_item_len} characters", file=sys.stderr)
            ranks = f"; {world.size} ranks" if world.size > 1 else ""
            print(
                f"{model_type}: {model.num_params():,} parameters; {len(data.vocab)} tokens; {data.summary()}{ranks}",
                file=sys.stderr,
            )
        return _train(store, model, data, cfg, progress)
    except BaseException:
        if store is not None and store.holds_lock:  # ours to undo; another writer's run is left alone
            store.discard()
        raise
    finally:
        if store is not None:
            store.unlock()


def resume(run_dir: Path, train_flags: dict, run_as: dict | None = None, progress: bool = True) -> str:
    """Continue a run from its last checkpoint. `run_as` ({flag: value}; None: not given) holds what
    describes the run itself (type, input, model options): each must equal the run's own."""
    world = distributed.world()
    store = RunStore.open(run_dir)
    error = None
    if world.main:  # the one writer; the other ranks read the run and train
        try:
            store.lock()
        except MakemoreError as e:
            error = e
    world.agree(error)
    try:
        last = store.load_last()
        data = store.dataset(write_cache=world.main)
        _check_same_run(last, data, run_as or {})
        cfg = replace(last.train_config, **train_flags)
        cfg.validate()
        for name in ("optimizer", "seed"):  # the saved optimizer state and random streams go on as they were
            if getattr(cfg, name) != getattr(last.train_config, name):
                raise MakemoreError(
                    f"{flag(name)} {getattr(cfg, name)} conflicts with this run's {getattr(last.train_config, name)}: "
                    "a resumed run continues its own optimizer state and random streams"
                )
        set_threads(cfg.threads or auto_threads(last.model, cfg), world.size)
        state = TrainState(last.step, last.train_seconds, cfg, last.optimizer, last.rng, last.ema)
        if world.main:
            print(f"resuming {run_dir} at step {last.step} of {cfg.max_steps}", file=sys.stderr)
        return _train(store if world.main else None, last.model, data, cfg, progress, state, last.best_dev)
    finally:
        store.unlock()


def _check_same_run(last, data: Dataset, run_as: dict) -> None:
    """Flags that describe the run may be repeated on --resume, with the run's own values only."""
    stored = {"--type": last.run.type, "--max-item-len": last.run.max_item_len, "--text": last.run.text}
    stored["--split"] = last.run.split
    stored.update({flag(k): v for k, v in asdict(last.model.config).items() if k != "vocab_size"})
    if last.run.text and "--max-len" in stored:  # a text run's sequence model: rows of --block-size characters
        stored["--block-size"] = stored.pop("--max-len") + 1
    for name, value in run_as.items():
        if value is None:
            continue
        if name == "--input-file":
            given = (
                Dataset.read_text(value)
                if last.run.text
                else Dataset.read(value, last.run.max_item_len, rule=last.run.split)
            )
            if given.sha256 != last.run.input_sha256 and not given.same_items(data):
                raise MakemoreError(f"--input-file {value} is not what this run trained on (its input.txt)")
        elif name not in stored:
            raise MakemoreError(f"{name} is not an option of this run's model ({last.run.type})")
        elif value != stored[name]:
            raise MakemoreError(
                f"{name} {value} conflicts with this run's {stored[name]}; --resume continues the run as it was "
                "(to change it, start a new run with another -o)"
            )


def _train(
    store: RunStore | None,
    model,
    data: Dataset,
    cfg: TrainConfig,
    progress: bool,
    state: TrainState | None = None,
    best_dev: float = float("inf"),
) -> str:
    """Train (from `state`, when resuming) with the hooks of a run; rank 0 writes to the store."""
    checkpoints = Checkpoints(store, best_dev)
    bar = [ProgressBar()] if progress and store is not None else []  # -q: not even a disabled bar's calls
    log = [MetricsLog(store)] if store is not None else []
    trainer = Trainer(model, data, cfg, hooks=[*log, checkpoints, *bar, StopOnSignal()])
    if state is not None:
        trainer.restore(state)
    if store is None:
        return _follow(trainer)
    try:
        trainer.run()
    except NonFiniteLoss as e:
        kept = f"the last good checkpoint is kept in {store.dir}" if store.has_checkpoint() else "nothing was saved"
        raise MakemoreError(f"{e}, {kept} (--skip-nonfinite skips such steps)") from None
    if trainer.stop_reason is not None:
        raise MakemoreError(
            f"interrupted by {trainer.stop_reason} at step {trainer.step}; "
            f"state saved to {store.dir / 'last.safetensors'}. "
            f"Resume with: makemore train -o {store.dir} --resume"
        )
    store.plot()
    # the best checkpoint's dev NLL as this process measured it, when it did (one evaluation fewer)
    known = (
        {"dev": checkpoints.best_dev_here} if checkpoints.best_dev_here is not None and trainer.world.size == 1 else {}
    )
    report = evaluate(store.dir, known)
    test = "(text mode: no test split)" if report["text"] else f"test {report['test']:.4f}"
    return (
        f"{report['type']}: train {report['train']:.4f}  dev {report['dev']:.4f}  {test} "
        f"(best step {report['step']}, {trainer.train_seconds:.1f}s training) -> {store.dir}"
    )


def _follow(trainer: Trainer) -> str:
    """A rank other than 0: the same steps and its share of each evaluation; rank 0 writes and reports."""
    trainer.run()
    if trainer.stop_reason is not None:
        raise MakemoreError(f"interrupted by {trainer.stop_reason} at step {trainer.step}")
    return ""


def find_runs(paths: list[str]) -> list[Path]:
    """Run directories: each path that holds a checkpoint, or the runs anywhere below a folder."""
    found = []
    for path in map(Path, paths):
        if (path / BEST).is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p.parent for p in path.rglob(BEST))
        else:
            raise MakemoreError(f"{path} is not a run directory or a folder of runs")
    if not found:
        raise MakemoreError(f"no runs (directories with {BEST}) in {' '.join(paths)}")
    return found


@dataclass
class Loaded:
    """A trained model, opened from a run directory or from a folder `makemore export` wrote.

    best: its best checkpoint (the model in eval mode, the vocabulary, run information, step).
    numbers: the NLL of each split an export recorded; None for a run (its data is there to measure them).
    dataset(): the items, split as they were trained on; an export without its data has none: export.NoData,
    whose splits are empty and whose items' splits are 'unknown' (has_data says which)."""

    path: Path
    best: Checkpoint
    numbers: dict[str, float | None] | None
    has_data: bool
    _read_data: Callable[[bool], Dataset | export.NoData] = field(repr=False)
    _data: Dataset | export.NoData | None = field(default=None, repr=False)

    def dataset(self, write_cache: bool = True) -> Dataset | export.NoData:
        """write_cache: a run directory's data cache is written again where it was stale."""
        if self._data is None:
            self._data = self._read_data(write_cache)
        return self._data


def open_model(path: str | Path) -> Loaded:
    """A run directory (model.safetensors from `makemore train`) or an exported folder (config.json from
    `makemore export --format hf`), loaded and checked; anything else is one line saying what it is not."""
    path = Path(path)
    if not os.path.lexists(path):
        raise MakemoreError(f"run directory not found: {path}")
    if export.is_export(path):
        best, described, data = export.read_folder(path)
        found = data if data is not None else export.NoData(best.vocab)
        return Loaded(path, best, described["nll"], data is not None, lambda _: found)
    if (path / BEST).is_file():
        store = RunStore.open(path)
        return Loaded(path, store.load_best(), None, True, lambda write_cache: store.dataset(write_cache))
    onnx = " (it holds an ONNX export: run it with onnxruntime, e.g. examples/onnx_names.py)"
    raise MakemoreError(
        f"{path} is neither a run directory ({BEST} from makemore train) nor an exported folder ({export.CONFIG} "
        f"from makemore export){onnx if (path / export.ONNX).is_file() else ''}"
    )


def open_models(paths: list[Path]) -> list[Loaded]:
    """open_model of each path; several must make one ensemble (models of items, one vocabulary)."""
    loaded = [open_model(path) for path in paths]
    if len(loaded) > 1:
        if any(one.best.run.text for one in loaded):
            raise MakemoreError("text-mode runs cannot join an ensemble: it mixes models of items (one per line)")
        ensemble.check_members([one.best for one in loaded], same_data=False)
    return loaded


def mixed(loaded: list[Loaded]) -> Checkpoint:
    """The first model's checkpoint with the ensemble's Mixture as its model: what draw() samples from."""
    first = loaded[0].best
    longest = max(one.best.run.max_len for one in loaded)
    return replace(
        first, model=ensemble.Mixture([one.best.model for one in loaded]), run=replace(first.run, max_len=longest)
    )


def evaluate_ensemble(paths: list[Path], makemore_seed: int | None = None) -> dict:
    """The ensemble's NLL on each whole split of the data its runs trained on (the same for all);
    makemore_seed: makemore.py's figure for each split too (evaluate)."""
    loaded = open_models(paths)
    if missing := [str(one.path) for one in loaded if not one.has_data]:
        raise MakemoreError(f"{missing[0]} was exported without its data: an ensemble is evaluated on its runs' splits")
    members, data = [one.best for one in loaded], loaded[0].dataset()
    report = {**ensemble.evaluate(members, data), "split": members[0].run.split}
    if makemore_seed is not None:

        def mixed(part):
            return per_item(ensemble.mixed_nll([target_nlls(m.model, m.model.examples(part)) for m in members]), part)

        report["makemore"] = {s: makemore_nll(mixed, data.split(s), makemore_seed) for s in SPLITS}
    return report


def evaluate(run_dir: Path, known: dict[str, float] | None = None, makemore_seed: int | None = None) -> dict:
    """The best checkpoint's NLL on each whole split (those in `known` already measured). makemore_seed:
    also makemore.py's figure for each split (evaluate.makemore_nll), its batches drawn with this seed."""
    loaded = open_model(run_dir)
    if makemore_seed is not None and loaded.best.run.text:
        raise MakemoreError(f"{run_dir} was trained in text mode; makemore.py's metric is a mean over batches of items")
    if not loaded.has_data:
        recorded = "  ".join(f"{s} {v:.4f}" if v is not None else f"{s} n/a" for s, v in loaded.numbers.items())
        raise MakemoreError(
            f"{run_dir} was exported without its data, so it cannot be evaluated here (export the run with "
            f"--with-data for that); the NLL it recorded when exported: {recorded}"
        )
    best, data = loaded.best, loaded.dataset()
    known = known or {}
    report = {s: known[s] if s in known else split_nll(best.model, best.model.examples(data.split(s))) for s in SPLITS}
    return {
        **report,
        "type": best.run.type,
        "step": best.step,
        "params": best.model.num_params(),
        "train_seconds": best.train_seconds,
        "options": asdict(best.model.config),
        "text": best.run.text,  # text mode: train is the first 90% of the characters, dev the rest, no test
        "split": best.run.split,
        **({"makemore": _makemore_report(best, data, makemore_seed)} if makemore_seed is not None else {}),
    }


def _makemore_report(best: Checkpoint, data: Dataset, seed: int) -> dict[str, float]:
    return {s: makemore_nll(model_item_nlls(best.model), data.split(s), seed) for s in SPLITS}


def sample(paths: list[Path], n: int, seed: int, how: Sampling, new_only: bool) -> list[tuple[str, str]]:
    """n items, each with the split it appears in ('new' for none); new_only keeps only new ones.
    Several paths: drawn from their ensemble, each item's split that of the first run's data."""
    if n > MAX_SAMPLES:
        raise MakemoreError(f"-n {n:,} is more than one call samples ({MAX_SAMPLES:,}); run it several times")
    loaded = open_models(paths)
    first = loaded[0]
    if first.best.run.text:
        raise MakemoreError(f"{first.path} was trained in text mode: continue its text with --length N [--prefix TEXT]")
    if new_only and not first.has_data:
        raise MakemoreError(f"--new-only needs the items trained on, and {first.path} was exported without them")
    best = first.best if len(loaded) == 1 else mixed(loaded)
    return draw(best, first.dataset(), n, seed, how, new_only)


def sample_text(run_dir: Path, length: int, seed: int, how: Sampling) -> str:
    """Text mode: `length` characters that continue how.prefix (by default a line break, as the lecture's
    generate starts from its token 0, the newline). run_dir: a run or an exported folder."""
    best = open_model(run_dir).best
    if not best.run.text:
        raise MakemoreError(f"--length continues a text; {run_dir} was trained on items (one per line): sample with -n")
    if not 1 <= length <= MAX_TEXT_LENGTH:
        raise MakemoreError(f"--length must be in [1, {MAX_TEXT_LENGTH:,}], got {length}")
    context = how.prefix or "\n"
    if not how.prefix and "\n" not in best.vocab.chars:
        raise MakemoreError("this run's text has no line breaks to start from; give --prefix")
    best.vocab.encode(context)  # unknown characters in the prefix: one clear error
    return continue_text(best.model, best.vocab, context, length, torch.Generator().manual_seed(seed), how)


def draw(
    best: Checkpoint, data: Dataset | export.NoData, n: int, seed: int, how: Sampling, new_only: bool
) -> list[tuple[str, str]]:
    """sample() with the run loaded: its best checkpoint and its data (for the split of each item; an
    export without its data says 'unknown')."""
    best.vocab.encode(how.prefix)  # unknown characters in the prefix: one clear error
    limit = best.model.max_sample_len(best.run.max_len)
    if len(how.prefix) > limit:
        raise MakemoreError(f"--prefix is longer than this model can extend ({limit} characters)")
    gen = torch.Generator().manual_seed(seed)
    out: list[tuple[str, str]] = []
    for _ in range(100 if new_only else 1):  # --new-only: draw until enough new items, within reason
        items = generate(best.model, best.vocab, n, limit, gen, how)
        for item, where in zip(items, data.membership(items)):
            if not new_only or where == "new":
                out.append((item, where))
        if len(out) >= n:
            break
    if len(out) < n:
        print(f"only {len(out)} new items after 100 rounds of sampling", file=sys.stderr)
    return out[:n]


def score(paths: list[Path], items: list[str]) -> list[dict]:
    """Each item's NLL under one run, or under the ensemble of several."""
    loaded = open_models(paths)
    if len(loaded) == 1:
        return score_checked(loaded[0].best, items)
    return ensemble.score([one.best for one in loaded], _stripped(items))


def score_checked(best: Checkpoint, items: list[str]) -> list[dict]:
    """score() with the checkpoint loaded: items stripped; score_items checks them against its vocabulary.
    A text run scores each text as given (whitespace is text), its characters after the first."""
    if best.run.text:
        if any(len(s) < 2 for s in items):
            raise MakemoreError("a text run scores each character after a text's first: give at least 2 characters")
        return score_text(best.model, best.vocab, items)
    return score_items(best.model, best.vocab, _stripped(items))


def _stripped(items: list[str]) -> list[str]:
    items = [s.strip() for s in items]
    if any(not s for s in items):
        raise MakemoreError("cannot score an empty item")
    return items
