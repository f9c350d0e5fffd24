"""Share a trained model outside makemore's run directories: a Hugging Face-style folder or ONNX.

hf:    DIR/config.json        what the model is: type and config, vocabulary, the data's hash and split,
                              the NLL of each split, the training recipe as a command, makemore's version
       DIR/model.safetensors  the best weights, in a makemore checkpoint (no optimizer or random state)
       DIR/README.md          the model card
       DIR/metrics.jsonl      the run's loss log, where it has one (the playground draws it)
       DIR/data.safetensors   with --with-data only: the items, encoded and split as trained
onnx:  DIR/model.onnx         next-character logits of a batch of prefixes (tokens (B, T) -> (B, V)),
                              the vocabulary and the boundary token in its metadata
A text-mode model (train --text) is exported the same way; config.json, the card and the ONNX
metadata then say text mode, its split (characters, train and dev) and its block size.
       DIR/README.md          the model card

Reading a folder back (`read_folder`) checks model.safetensors as a run's checkpoint is checked
(checkpoint.load: metadata against the model it describes, shapes before tensors, no code run) and
config.json against it. Every folder is written whole beside DIR first and renamed into place.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shlex
import shutil
import tempfile
import warnings
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import torch

from . import __version__, checkpoint
from .checkpoint import Checkpoint
from .config import field_type, flag
from .data import (
    BOUNDARY,
    LECTURES,
    MAKEMORE_PY,
    SPLITS,
    TEXT_TRAIN,
    CacheError,
    Dataset,
    Split,
    Vocab,
    open_regular,
    shown,
)
from .errors import MakemoreError
from .evaluate import split_nll
from .sample import Sampling, continue_text, generate

FORMAT = "makemore-export"
VERSION = 1
FORMATS = ("hf", "onnx")
CONFIG = "config.json"
CARD = "README.md"
DATA = "data.safetensors"
METRICS = "metrics.jsonl"
ONNX = "model.onnx"
FILES = (CONFIG, checkpoint.BEST, CARD, DATA, METRICS, ONNX)  # all an export writes: what --force may replace
MAX_CONFIG_BYTES = 1 << 24
SPLIT_RULE = (
    "the items (lines stripped of surrounding whitespace; empty lines and items longer than max_item_len "
    "characters left out) shuffled with Python's random.Random(42).shuffle; train: the first int(0.8 n), "
    "dev: up to int(0.9 n), test: the rest"
)
MAKEMORE_SPLIT_RULE = (
    "makemore.py's: the items (lines stripped of surrounding whitespace; empty lines and items longer than "
    "max_item_len characters left out) in the order torch.randperm(n) gives as the first draw after "
    "torch.manual_seed(3407); test: the last k = min(1000, int(0.1 n)), as makemore.py's test split; dev: the k "
    "before them; train: the rest (makemore.py trains on train and dev)"
)
TEXT_SPLIT_RULE = (
    f"text mode: the file as one stream of characters in file order, line breaks included; train: the first "
    f"int({TEXT_TRAIN} n) characters, dev: the rest; no test split"
)
CARD_SAMPLES = 10
CARD_LENGTH = 300  # characters of a text-mode model's continuation on its card
TOLERANCE = 1e-4  # ONNX Runtime against PyTorch, largest logit difference: more is a graph that is wrong


class NoData:
    """The data of a folder exported without it: every split empty, the split of any item unknown."""

    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        self.sizes = (0, 0, 0)

    def split(self, name: str) -> Split:
        return Split.of([], self.vocab)

    def membership(self, items: list[str]) -> list[str]:
        return ["unknown"] * len(items)


# --- reading an hf folder ---------------------------------------------------------------------------
def is_export(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def read_folder(path: Path) -> tuple[Checkpoint, dict, Dataset | None]:
    """(the best checkpoint, config.json's fields, the data or None) of an exported folder, each checked."""
    path = Path(path)
    best = checkpoint.load(path / checkpoint.BEST)
    described = _read_config(path / CONFIG)
    expected = _described(best)
    wrong = next((k for k in expected if described.get(k) != expected[k]), None)
    data_facts = described.get("data") if isinstance(described.get("data"), dict) else {}
    if wrong is None and data_facts.get("split_rule", LECTURES) != best.run.split:  # (older exports: none)
        wrong = "data split_rule"
    if wrong is not None:
        raise MakemoreError(
            f"{path / CONFIG} does not match {checkpoint.BEST} (its {wrong} differs): the folder was changed "
            "after it was exported"
        )
    nll = described.get("nll")
    if not isinstance(nll, dict) or any(not _number_or_null(nll.get(s)) for s in SPLITS):
        raise MakemoreError(f"{path / CONFIG}: its nll is not a number or null for each of {', '.join(SPLITS)}")
    data = _read_data(path, best) if (path / DATA).exists() else None
    return best, described, data


def _read_config(path: Path) -> dict:
    try:
        with open_regular(path, run_file=True) as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise MakemoreError(f"{path} is missing") from None
    try:
        if len(raw) > MAX_CONFIG_BYTES:
            raise ValueError
        described = json.loads(raw.decode("utf-8"))
        assert isinstance(described, dict) and described.get("format") == FORMAT
    except Exception:
        raise MakemoreError(f"{path} is not the config.json of a makemore export") from None
    if described.get("format_version") != VERSION:
        raise MakemoreError(
            f"{path} has export format version {described.get('format_version')!r}; this makemore reads {VERSION}"
        )
    return described


def _number_or_null(value) -> bool:
    return value is None or (type(value) in (int, float) and not math.isnan(value))


def _described(best: Checkpoint) -> dict:
    """What config.json says that the checkpoint also says: the two must agree."""
    return {
        "model_type": best.run.type,
        "mode": "text" if best.run.text else "items",
        "config": asdict(best.model.config),
        "vocab": list(best.vocab.chars),
        "step": best.step,
        "params": best.model.num_params(),
    }


def _read_data(path: Path, best: Checkpoint) -> Dataset:
    try:
        data, facts = Dataset.load(path / DATA)
    except CacheError as e:
        raise MakemoreError(f"{path / DATA} {e}") from None
    if data.vocab != best.vocab or facts.get("max_item_len") != str(best.run.max_item_len):
        raise MakemoreError(f"{path / DATA} holds data of another vocabulary or --max-item-len than the model's")
    if data.text != best.run.text:
        raise MakemoreError(f"{path / DATA} holds {'items' if best.run.text else 'a text'}; the model read the other")
    if data.rule != best.run.split:
        raise MakemoreError(f"{path / DATA} is split by another rule ({data.rule}) than the model's ({best.run.split})")
    if best.run.input_sha256 and data.sha256 != best.run.input_sha256:
        raise MakemoreError(f"{path / DATA} holds other data than the model was trained on (its SHA-256 differs)")
    return data


# --- writing ----------------------------------------------------------------------------------------
def write(
    best: Checkpoint,
    data: Dataset | None,
    numbers: dict | None,
    metrics: list[dict],
    to: Path,
    fmt: str = "hf",
    force: bool = False,
    with_data: bool = False,
) -> dict:
    """Export a model (its best checkpoint, its data or None, the NLL per split if already known, its log)
    to the folder `to`. Returns what was written: the folder, its files and their sizes."""
    to = Path(to)
    if fmt not in FORMATS:
        raise MakemoreError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    _check_destination(to, force)
    if with_data and fmt != "hf":
        raise MakemoreError("--with-data adds the items to an hf export; an ONNX file holds the model only")
    if with_data and data is None:
        raise MakemoreError("--with-data: the model comes from a folder exported without its data; there is none")
    if numbers is None:
        if data is None:
            raise MakemoreError("cannot export a model without its data or its recorded NLL")
        numbers = {s: _finite_or_none(split_nll(best.model, best.model.examples(data.split(s)))) for s in SPLITS}
    described = _config_json(best, data, numbers, with_data)
    files: dict[str, bytes | Checkpoint] = {}
    if fmt == "onnx":
        files[ONNX] = to_onnx(best, numbers)
    else:
        files[CONFIG] = (json.dumps(described, indent=2, ensure_ascii=False) + "\n").encode()
        files[checkpoint.BEST] = _shared(best)
        if metrics:
            files[METRICS] = "".join(json.dumps(row) + "\n" for row in metrics).encode()
        if with_data:
            files[DATA] = data.to_bytes(max_item_len=str(best.run.max_item_len))
    drawn = _continuation(best) if best.run.text else _samples(best, data)
    files[CARD] = model_card(described, drawn, fmt, to.name).encode()
    _write_folder(to, files)
    return {"folder": str(to), "files": {name: (to / name).stat().st_size for name in files}}


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _shared(best: Checkpoint) -> Checkpoint:
    """The checkpoint as it is shared: the input file's name only, not where it lay on the trainer's disk."""
    return replace(best, run=replace(best.run, source=Path(best.run.source).name))


def _config_json(best: Checkpoint, data: Dataset | None, numbers: dict, with_data: bool) -> dict:
    run = best.run
    return {
        "format": FORMAT,
        "format_version": VERSION,
        "makemore_version": __version__,
        **_described(best),
        # text mode: the block a sequence model reads (--block-size), and how many characters any model reads
        **({"block": text_block(best), "reads": best.model.input_width} if run.text else {}),
        "boundary": {"id": BOUNDARY, "shown": best.vocab.show(BOUNDARY)},
        "max_len": run.max_len,
        "max_sample_len": None if run.text else best.model.max_sample_len(run.max_len),  # a text goes on
        "nll": numbers,
        "best_dev": _finite_or_none(best.best_dev),
        "train_seconds": best.train_seconds,
        "data": {
            "source": Path(run.source).name,
            "sha256": run.input_sha256 or (data.sha256 if data is not None else ""),
            "max_item_len": run.max_item_len,
            "skipped_items": run.skipped_items,
            "split": TEXT_SPLIT_RULE if run.text else MAKEMORE_SPLIT_RULE if run.split == MAKEMORE_PY else SPLIT_RULE,
            "split_rule": run.split,  # train --split
            "sizes": _sizes(data),
            "counted": "characters" if run.text else "items",
            "included": DATA if with_data else None,
        },
        "train_config": asdict(best.train_config) if best.train_config is not None else None,
        "train_command": train_command(best),
    }


def _sizes(data: Dataset | None) -> dict[str, int] | None:
    """Items per split, or in text mode characters per split (train, dev: there is no test split)."""
    if data is None:
        return None
    if data.text:
        return dict(zip(SPLITS, (int(n) for n in data.offsets.diff())))
    return dict(zip(SPLITS, data.sizes))


def text_block(best: Checkpoint) -> int | None:
    """A text-mode sequence model's --block-size: the characters it reads at once (its input width);
    None for a window model (it has no length limit), which reads its --context-size."""
    return best.model.input_width if best.model.length_limit is not None else None


def train_command(best: Checkpoint) -> str:
    """A `makemore train` command with the recorded recipe, every option spelled out (a run keeps its
    recipe, not its command line)."""
    words = ["makemore", "train", "--type", best.run.type, "-i", Path(best.run.source).name]
    if best.run.text:  # its sequence model's positions are the block; --max-item-len and --max-len are refused
        block = text_block(best)
        words += ["--text", *(["--block-size", str(block)] if block is not None else [])]
    else:
        words += ["--max-item-len", str(best.run.max_item_len)]
        words += ["--split", best.run.split] if best.run.split != LECTURES else []
    for config in (best.model.config, best.train_config):
        for f in fields(config) if config is not None else ():
            value = getattr(config, f.name)
            if f.name in ("vocab_size", "device", "threads"):  # the data's; the machine's
                continue
            if best.run.text and f.name == "max_len":  # given as --block-size
                continue
            if field_type(f) is bool:
                words.append(flag(f.name) if value else "--no-" + flag(f.name)[2:])
            else:
                words += [flag(f.name), str(value)]
    return shlex.join(words)


def _samples(best: Checkpoint, data: Dataset | None) -> list[tuple[str, str]]:
    """What `makemore sample -o FOLDER -n 10 --seed 0` prints for the exported folder."""
    limit = best.model.max_sample_len(best.run.max_len)
    items = generate(best.model, best.vocab, CARD_SAMPLES, limit, torch.Generator().manual_seed(0), Sampling())
    where = data.membership(items) if data is not None else ["unknown"] * len(items)
    return list(zip(items, where))


def _continuation(best: Checkpoint) -> tuple[str, str]:
    """(--prefix, text): what `makemore sample -o FOLDER --length 300 --seed 0 [--prefix C]` continues a
    text-mode model's text with. sample's own start is a line break; a text without any starts from its
    first character, given as --prefix."""
    prefix = "" if "\n" in best.vocab.chars else best.vocab.chars[0]
    context = prefix or "\n"
    gen = torch.Generator().manual_seed(0)
    return prefix, continue_text(best.model, best.vocab, context, CARD_LENGTH, gen, Sampling(prefix=prefix))


def _check_destination(to: Path, force: bool) -> None:
    """--to must be new, or with --force a folder that holds an earlier export and nothing else."""
    if not os.path.lexists(to):
        if not to.parent.is_dir():
            raise MakemoreError(f"--to {to}: its parent folder {to.parent} does not exist")
        return
    if to.is_symlink() or not to.is_dir():
        raise MakemoreError(f"--to {to} exists and is not a folder; choose another --to")
    if not force:
        raise MakemoreError(f"--to {to} already exists; --force replaces an earlier export there")
    others = sorted(set(os.listdir(to)) - set(FILES))
    if others:
        raise MakemoreError(
            f"--to {to} holds files an export does not write ({', '.join(others[:3])}); --force replaces only an "
            "earlier export: choose another --to"
        )


def _write_folder(to: Path, files: dict[str, bytes | Checkpoint]) -> None:
    """Write every file into a new folder beside `to`, then rename it into place (an earlier export there
    is moved aside first and removed last), so `to` is never half-written."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{to.name}.", suffix=".tmp", dir=to.parent))
    old = None
    try:
        for name, payload in files.items():
            if isinstance(payload, Checkpoint):
                checkpoint.save(tmp / name, payload)
                continue
            with open(tmp / name, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # as mkdir makes a folder (mkdtemp's is private)
        if os.path.lexists(to):
            old = Path(tempfile.mkdtemp(prefix=f".{to.name}.", suffix=".old", dir=to.parent))
            os.replace(to, old)  # (an empty folder: rename replaces it)
        os.replace(tmp, to)
    except OSError as e:
        if old is not None and not os.path.lexists(to):
            os.replace(old, to)
            old = None
        raise MakemoreError(f"cannot write {to}: {e.strerror or e}; nothing was written there") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# --- ONNX ----------------------------------------------------------------------------------------------
class NextCharacter(torch.nn.Module):
    """What the ONNX graph computes: the logits of the character after each prefix (which starts with
    the boundary token), as sampling and scoring take them from the model."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.next_logits(tokens)


def to_onnx(best: Checkpoint, numbers: dict | None = None) -> bytes:
    """The model as an ONNX graph (the dynamo exporter), checked against PyTorch in ONNX Runtime on
    prefixes of several lengths and batch sizes before it is returned."""
    try:
        import onnx
        import onnxruntime  # noqa: F401  (the check below runs it)
        import onnxscript  # noqa: F401  (the exporter's)
    except ImportError as e:
        raise MakemoreError(
            f"export --format onnx needs the onnx extra: pip install 'makemore[onnx]' ({e.name} is missing)"
        ) from None
    model, kind = best.model.eval(), best.run.type
    wrapper = NextCharacter(model).eval()
    example = _prefixes(len(best.vocab), 2, 2, seed=0, text=best.run.text)
    dims = {"tokens": {0: torch.export.Dim("batch"), 1: torch.export.Dim("length")}}
    loud = logging.getLogger("torch.onnx"), logging.getLogger("torch._export")
    levels = [logger.level for logger in loud]
    try:
        for logger in loud:
            logger.setLevel(logging.ERROR)  # its notes on what it tried are not the user's business
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper,
                (example,),
                dynamo=True,
                input_names=["tokens"],
                output_names=["logits"],
                dynamic_shapes=dims,
                verbose=False,
            )
            proto = program.model_proto
    except Exception as e:  # the exporter's errors are many kinds: each one means "cannot trace this model"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MakemoreError(f"{kind} cannot be exported to ONNX: the exporter failed ({first})") from None
    finally:
        for logger, level in zip(loud, levels):
            logger.setLevel(level)
    onnx.helper.set_model_props(proto, onnx_metadata(best, numbers))
    payload = proto.SerializeToString()
    _check_onnx(payload, wrapper, best)
    return payload


def onnx_metadata(best: Checkpoint, numbers: dict | None) -> dict[str, str]:
    """The graph's metadata_props: what a program needs to turn text into tokens and back, and to sample.
    Text mode: rows are characters of a text (no boundary); a sequence model reads the last `block`."""
    limit = best.model.length_limit
    if best.run.text:
        block = text_block(best)
        lengths = {"makemore.block": str(block) if block is not None else "none"}
    else:
        lengths = {"makemore.max_sample_len": str(best.model.max_sample_len(best.run.max_len))}
    return {
        "makemore.model_type": best.run.type,
        "makemore.mode": "text" if best.run.text else "items",
        "makemore.vocab": json.dumps(list(best.vocab.chars), ensure_ascii=False),
        "makemore.boundary_id": str(BOUNDARY),
        "makemore.boundary": best.vocab.show(BOUNDARY),
        **lengths,
        "makemore.max_prefix_tokens": str(limit + 1) if limit is not None else "any",
        "makemore.nll": json.dumps(numbers or {}),
        "makemore.version": __version__,
    }


def _prefixes(vocab_size: int, batch: int, length: int, seed: int, text: bool = False) -> torch.Tensor:
    """Random prefixes (batch, length) of character tokens (vocab_size counts the boundary): each row
    starts with the boundary, as an item does, or in text mode is characters only."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, vocab_size, (batch, length), generator=gen)
    if not text:
        tokens[:, 0] = BOUNDARY
    return tokens


def check_lengths(model) -> list[int]:
    """Prefix lengths (tokens) an export is checked at: 1, 2, 3, and around the model's widest input."""
    width = model.input_width
    return sorted({1, 2, 3, max(width // 2, 1), width, width + 1})


def _check_onnx(payload: bytes, wrapper: NextCharacter, best: Checkpoint) -> None:
    """The graph gives PyTorch's logits at every checked length and batch size, or the export is refused."""
    import onnxruntime

    quiet = onnxruntime.SessionOptions()
    quiet.log_severity_level = 4  # a graph that fails is reported below, in one line
    session = onnxruntime.InferenceSession(payload, quiet, providers=["CPUExecutionProvider"])
    for length in check_lengths(best.model):
        for batch in (1, 3):
            tokens = _prefixes(len(best.vocab), batch, length, seed=length, text=best.run.text)
            with torch.no_grad():
                expected = wrapper(tokens).float().numpy()
            try:
                got = session.run(None, {"tokens": tokens.numpy()})[0]
                ok = got.shape == expected.shape and np.allclose(got, expected, rtol=0, atol=TOLERANCE)
            except Exception:  # ONNX Runtime refuses a shape the graph fixed: a wrong graph, as a mismatch is
                ok = False
            if not ok:
                raise MakemoreError(
                    f"{best.run.type} cannot be exported to ONNX: the traced graph does not give the model's logits "
                    f"for prefixes of length {length} (tracing fixed the length it saw: a loop over the characters "
                    "in Python is unrolled for one length)"
                )


# --- the model card ------------------------------------------------------------------------------------
def model_card(described: dict, drawn, fmt: str, folder: str) -> str:
    """The card of an export: drawn is _samples' items (items mode) or _continuation's (prefix, text)."""
    text = described.get("mode") == "text"
    kind, source = described["model_type"], described["data"]["source"]
    if text:
        does = (
            f"trained in text mode on `{source}`. It continues a text one character at a time, reading the last "
            f"{_reads(described)}, and scores how likely a text is under it."
        )
    else:
        does = (
            f"trained on `{source}`. It makes more items like those it learned from, one character at a time, "
            "and scores how likely an item is under it."
        )
    lines = [
        f"# {kind}: a character-level model trained with makemore",
        "",
        f"A language model of type `{kind}` over characters ({described['params']:,} parameters), {does}",
        "",
        "## Use",
        "",
        *(_use_text(fmt, folder, described, drawn) if text else _use(fmt, folder)),
        "",
        "## Data",
        "",
        *_data_lines(described),
        "",
        "## Numbers",
        "",
        *_numbers(described, folder),
        "",
        "## Training",
        "",
        f"{described['train_seconds']:.1f} s of training. The recipe, as a command (the run records its "
        "options, not its command line):",
        "",
        "```bash",
        described["train_command"],
        "```",
        "",
        *(_continuation_lines(drawn, fmt, folder) if text else _sample_lines(drawn, fmt, folder)),
        "",
        "## Intended use and limits",
        "",
        *(_text_limits(described) if text else _limits(described)),
    ]
    return "\n".join(lines) + "\n"


def _reads(described: dict) -> str:
    """The characters a text-mode model reads at most (a sequence model's block, a window model's context)."""
    n = described["reads"]
    return "character" if n == 1 else f"{n:,} characters"  # "the last character", "the 8 characters before it"


def _data_lines(described: dict) -> list[str]:
    data, vocab, text = described["data"], described["vocab"], described.get("mode") == "text"
    sizes = data["sizes"]
    counted = "characters" if text else "items"
    split_sizes = ", ".join(f"{n:,} {s}" for s, n in sizes.items()) + f" {counted}" if sizes else "sizes not recorded"
    return [
        f"- file `{data['source']}`, SHA-256 `{data['sha256']}`; {split_sizes}",
        f"- split: {data['split']}",
        *(
            []
            if text
            else [f"- items longer than {data['max_item_len']:,} characters left out: {data['skipped_items']:,}"]
        ),
        f"- vocabulary: {len(vocab)} characters and the boundary `{described['boundary']['shown']}`"
        + (" (never in a text)" if text else "")
        + f": `{shown(''.join(vocab))}`",
        ("- the text itself is " if text else "- the items themselves are ")
        + ("in `data.safetensors`" if data["included"] else "not in this folder (exported without --with-data)"),
    ]


def _numbers(described: dict, folder: str) -> list[str]:
    nll, vocab, text = described["nll"], described["vocab"], described.get("mode") == "text"
    shown_nll = lambda x: f"{x:.4f}" if x is not None else "n/a"  # noqa: E731
    splits = ("train", "dev") if text else SPLITS
    what = (
        f"each character after the split's first, seen with at most the {_reads(described)} before it, as in training"
        if text
        else "each character plus the end token"
    )
    return [
        f"Mean negative log-likelihood in nats per character ({what}), over the whole split; uniform guessing "
        f"would give ln({len(vocab) + 1}) = {math.log(len(vocab) + 1):.4f}."
        + (" Text mode has no test split." if text else ""),
        "",
        "| " + " | ".join(splits) + " |",
        "|" + "---|" * len(splits),
        "| " + " | ".join(shown_nll(nll[s]) for s in splits) + " |",
        "",
        f"Measured by `makemore export` (makemore {described['makemore_version']}) at step {described['step']:,} "
        f"of training; `makemore eval -o RUN` on the run gives them again"
        + (f", and so does `makemore eval -o {folder}`." if described["data"]["included"] else "."),
    ]


def _fenced(lines: list[str]) -> list[str]:
    """A code block around lines: its fence longer than any run of backticks in them."""
    runs = re.findall("`+", "\n".join(lines))
    fence = "`" * max(3, max(map(len, runs), default=0) + 1)
    return [fence, *lines, fence]


def _sample_lines(samples: list[tuple[str, str]], fmt: str, folder: str) -> list[str]:
    return [
        "## Samples",
        "",
        f"`makemore sample -o {folder} -n {len(samples)} --seed 0`"
        + (" on the hf export of the same run" if fmt == "onnx" else "")
        + " draws these; beside each, the split it appears in, looked up in the training data when the model was "
        "exported (`new`: in none of them; `unknown`: the data was not at hand)",
        "",
        *_fenced([f"{shown(item)}  {where}" for item, where in samples]),
    ]


def _sample_command(folder: str, drawn: tuple[str, str]) -> str:
    prefix, text = drawn
    return f"makemore sample -o {folder} --length {len(text)} --seed 0" + (
        f" --prefix {shlex.quote(prefix)}" if prefix else ""
    )


def _continuation_lines(drawn: tuple[str, str], fmt: str, folder: str) -> list[str]:
    prefix, text = drawn
    start = f"`{shown(prefix)}`" if prefix else "a line break"
    return [
        "## A continuation",
        "",
        f"`{_sample_command(folder, drawn)}`"
        + (" on the hf export of the same run" if fmt == "onnx" else "")
        + f" continues {start} with these characters (as it prints them):",
        "",
        *_fenced([shown(line) for line in (prefix + text).split("\n")]),
    ]


def _limits(described: dict) -> list[str]:
    vocab = described["vocab"]
    return [
        "- For making up and scoring short strings like the training items (names, words), for teaching "
        "and for play. Not for decisions about people.",
        f"- It knows only the {len(vocab)} characters above; an item with any other character cannot be "
        f"scored or used as a prefix, and it draws items of at most {described['max_sample_len']:,} characters.",
        "- It learned its data's habits and biases, and it can reproduce training items word for word: "
        "check a sample's split before treating it as new.",
    ]


def _text_limits(described: dict) -> list[str]:
    return [
        "- For continuing and scoring text in the style of its training text, for teaching and for play. Not a "
        "source of facts, and not for decisions about people.",
        f"- It knows only the {len(described['vocab'])} characters above; a text with any other character cannot "
        f"be scored or continued. It predicts each character from at most the {_reads(described)} before it.",
        "- It learned its text's habits and biases, and it can reproduce passages of it word for word.",
    ]


def _use(fmt: str, folder: str) -> list[str]:
    if fmt == "onnx":
        return [
            "`model.onnx` maps token ids `tokens` (int64, batch x length, each row starting with the boundary id) "
            "to the logits of the next character (float32, batch x vocabulary); its metadata holds the "
            "vocabulary (`makemore.vocab`, id i+1 is character i) and the boundary id. Any ONNX Runtime runs it "
            "(Python, C#, Java, JavaScript, mobile); makemore's `examples/onnx_names.py` samples and scores "
            "with onnxruntime and NumPy only:",
            "",
            "```bash",
            f"python examples/onnx_names.py {folder}/model.onnx sample -n 10 --seed 0",
            f"python examples/onnx_names.py {folder}/model.onnx score emma",
            "```",
        ]
    return [
        "```bash",
        f"makemore sample -o {folder} -n 10 --seed 0",
        f"makemore score  -o {folder} emma",
        f"makemore serve  {folder}",
        "```",
        "",
        LOADING,
    ]


LOADING = (
    "Loading the folder never runs code from it: `model.safetensors` holds tensors and JSON, and is checked "
    "against `config.json` before use."
)


def _use_text(fmt: str, folder: str, described: dict, drawn: tuple[str, str]) -> list[str]:
    reads = _reads(described)
    if fmt == "onnx":
        window = "" if described.get("block") else " (the boundary id fills in before a shorter text)"
        return [
            "`model.onnx` maps token ids `tokens` (int64, batch x length: characters of a text, no boundary token) "
            f"to the logits of the character after each row (float32, batch x vocabulary); it reads the last "
            f"{reads} of a row{window}. Its metadata says `makemore.mode` `text` and holds the "
            "vocabulary (`makemore.vocab`, id i+1 is character i). Any ONNX Runtime runs it (Python, C#, Java, "
            "JavaScript, mobile).",
        ]
    fragment = next((line for line in drawn[1].split("\n") if len(line) >= 2), drawn[1][:2])[:24]
    return [
        "```bash",
        _sample_command(folder, drawn),
        f"makemore score  -o {folder} {shlex.quote(fragment)}",
        "```",
        "",
        LOADING,
    ]
