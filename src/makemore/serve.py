"""`makemore serve`: trained runs behind a local JSON API, for people and for programs.

Runs are loaded when the server starts, and named by an id; a request never names a path. A run still
training is served at its newest best checkpoint, and run folders that appear under a served folder
are added (Watch: one look a second).
Every request is checked before it reaches a model (a bad one is a 4xx with one line saying why),
and each draws from its own seeded generator, so the same seed gives the same items whatever else
the server is doing. Sampling and scoring are the package's own (runs.draw, runs.score_checked).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import socket
import stat
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import torch
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__, ensemble, views
from . import runs as commands
from .checkpoint import BEST, Checkpoint
from .data import BOUNDARY, SPLITS, Dataset, Split, shown
from .errors import MakemoreError
from .evaluate import item_nlls, split_nll, target_nlls
from .export import NoData
from .sample import Sampling, filter_logits, generate
from .store import METRICS, RunStore

MAX_ITEMS = 10_000  # items sampled or scored per request
MAX_ITEM_CHARS = 1_000  # characters per prefix or scored item
MAX_BODY = 1 << 20  # bytes per request body, counted as they arrive (chunked uploads too)
MAX_SAMPLE_CHARS = 1 << 22  # items x the longest item the model can draw, per request
MAX_BIGRAM_CHARS = 256  # the page draws the bigram matrix cell by cell: 256 x 256 at most
MAX_DLOGITS_ROWS = 256  # targets in a dlogits answer
MAX_ATTENTION_WEIGHTS = 1 << 22  # layers x heads x (characters + 1)^2 per attention request
MAX_LOG_BYTES = 256 << 20  # a metrics.jsonl longer than this is not read
MAX_LOG_LINE = 1 << 16  # bytes per line of metrics.jsonl
MAX_CURVE_ROWS = 2_000  # rows of each kind (train loss, dev NLL) in a metrics answer: longer logs are thinned
NEW_ONLY_SECONDS = 5.0  # how long one new_only request may redraw to find new items
MAX_WAITING = 64  # model requests queued at once; more are answered 503
GONE_POLL = 0.05  # seconds between two looks at whether a queued sample request's asker left
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WEB = resources.files("makemore") / "web"  # the page: plain HTML, CSS and JavaScript
# One model computation at a time: each already uses every core (intra-op threads), and two at once
# would oversubscribe them and both crawl. Model work runs on one thread of its own (MODEL), so requests
# waiting for it hold no thread of the server's pool: the run list, the logs and the page never wait.
COMPUTE = threading.Lock()


class ModelQueue:
    """Model work, one call at a time on a thread of its own, awaited without holding a thread of the
    server's pool; at most `limit` calls wait or run at once, the next is refused (503)."""

    def __init__(self, limit: int = MAX_WAITING):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="makemore-model")
        self.limit, self.waiting, self._lock = limit, 0, threading.Lock()

    async def run(self, fn, *args, gone=None):
        """fn(*args) on the model's thread. gone: an async check that the asker left (a page cancels a
        request a newer one supersedes, as a slider drags): while the call waits its turn it is asked
        every GONE_POLL seconds, and a call whose asker left is never run."""
        with self._lock:
            if self.waiting >= self.limit:
                raise HTTPException(503, f"the server is busy: {self.waiting} requests wait for the model; try again")
            self.waiting += 1
        future = self.pool.submit(self._locked, fn, *args)
        future.add_done_callback(self._done)  # counted until it has run (or was cancelled, unstarted)
        answer = asyncio.wrap_future(future)
        while gone is not None and not future.running() and not future.done():
            if await gone() and future.cancel():
                raise HTTPException(499, "the request was cancelled before its turn")
            await asyncio.wait({answer}, timeout=GONE_POLL)
        return await answer

    @staticmethod
    def _locked(fn, *args):
        with COMPUTE:
            return fn(*args)

    def _done(self, _future) -> None:
        with self._lock:
            self.waiting -= 1


MODEL = ModelQueue()


class Thinned:
    """Every stride-th row added (with its line number), the stride doubling whenever more than `cap`
    are kept; and the last row added. A curve of any length in at most cap + 1 points."""

    def __init__(self, cap: int):
        self.cap, self.stride, self.count = cap, 1, 0
        self.kept: list[tuple[int, dict]] = []
        self.last: tuple[int, dict] | None = None

    def add(self, line: int, row: dict) -> None:
        if self.count % self.stride == 0:
            self.kept.append((line, row))
            if len(self.kept) > self.cap:
                del self.kept[1::2]  # the rows at multiples of the doubled stride stay
                self.stride *= 2
        self.count += 1
        self.last = (line, row)

    def rows(self) -> list[tuple[int, dict]]:
        if self.last is None or (self.kept and self.kept[-1][0] == self.last[0]):
            return list(self.kept)
        return [*self.kept, self.last]


class MetricsLog:
    """A served run's metrics.jsonl as the chart needs it, read as it grows. Only a regular file is
    read (not a link, a FIFO or a device), of at most MAX_LOG_BYTES and lines of at most MAX_LOG_LINE;
    a poll reads only what was appended since the last one (nothing if its size and time are the
    same), and the rows are thinned to MAX_CURVE_ROWS of each kind. A torn last line (a crash during an
    append) is left out; other damage is one line, as RunStore.metrics() says it."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()  # two polls of one run at once: one reads, the other waits
        self._restart(None)

    def _restart(self, file_id) -> None:
        self.file_id, self.offset, self.lines = file_id, 0, 0  # the file, and how much of it is read
        self.train, self.dev = Thinned(MAX_CURVE_ROWS), Thinned(MAX_CURVE_ROWS)
        self.seen: tuple[int, int] | None = None  # (size, mtime_ns) at the last poll
        self.answer: list[dict] = []
        self.error: str | None = None

    def rows(self) -> list[dict]:
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                self._restart(None)
                return []
            except OSError as e:
                if os.path.islink(self.path):
                    raise MakemoreError(f"{METRICS} is a symbolic link; the server reads only a regular file") from None
                raise MakemoreError(f"cannot read {METRICS}: {e.strerror}") from None
            try:
                return self._read(fd)
            finally:
                os.close(fd)

    def _read(self, fd: int) -> list[dict]:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise MakemoreError(f"{METRICS} is not a regular file; the server reads only a regular file")
        if st.st_size > MAX_LOG_BYTES:
            raise MakemoreError(
                f"{METRICS} is {st.st_size:,} bytes; the server reads logs of at most {MAX_LOG_BYTES:,}"
            )
        file_id, seen = (st.st_dev, st.st_ino), (st.st_size, st.st_mtime_ns)
        if seen == self.seen and file_id == self.file_id:
            if self.error:
                raise MakemoreError(self.error)
            return self.answer
        if file_id != self.file_id or st.st_size < self.offset or self.error:  # replaced, cut or mended
            self._restart(file_id)
        self.seen = seen
        try:
            tail = self._read_from(fd, self.offset, st.st_size)
        except MakemoreError as e:
            self.error = str(e)
            raise
        rows = sorted(self.train.rows() + self.dev.rows(), key=lambda pair: pair[0])
        self.answer = [row for _, row in rows]
        return self.answer if tail is None else [*self.answer, tail]

    def _read_from(self, fd: int, pos: int, end: int) -> dict | None:
        """Parse the complete lines between pos and end into the thinned rows; the row of an unended
        last line, if it is one (it is not kept: the next poll reads the line again, ended)."""
        pending, torn = b"", None  # torn: (line number, offset) of a complete line that is not a row
        while pos < end:
            chunk = os.pread(fd, min(1 << 20, end - pos), pos)
            if not chunk:
                break
            pos += len(chunk)
            data = pending + chunk
            *lines, pending = data.split(b"\n")
            if torn is None and self._add_all(lines):  # the usual case: every line a row
                self.offset += len(data) - len(pending)
                lines = []
            for line in lines:  # else line by line, to find the line that is not a row
                start = self.offset
                self.offset += len(line) + 1
                if not line.strip():
                    continue
                self.lines += 1
                if torn is not None:  # a line that is not a row, followed by more: damage, not a crash
                    break
                if len(line) > MAX_LOG_LINE:
                    raise MakemoreError(
                        f"{METRICS} line {self.lines} is over {MAX_LOG_LINE:,} bytes; the log is damaged"
                    )
                row = self._row(line)
                if row is None:
                    torn = (self.lines, start)
                elif "dev" in row:
                    self.dev.add(self.lines, row)
                else:
                    self.train.add(self.lines, row)
            if torn is not None and (self.lines > torn[0] or pending.strip()):
                raise MakemoreError(f"{METRICS} line {torn[0]} is not a row of the log; the log is damaged")
            if len(pending) > MAX_LOG_LINE:
                raise MakemoreError(
                    f"{METRICS} line {self.lines + 1} is over {MAX_LOG_LINE:,} bytes; the log is damaged"
                )
        if torn is not None:  # the last line, torn by a crash mid-append: read it again next time
            self.lines, self.offset = torn[0] - 1, torn[1]
            return None
        return self._row(pending) if pending.strip() else None

    def _add_all(self, lines: list[bytes]) -> bool:
        """Add these lines' rows if every line is one (parsed as one JSON array: 10 times faster than
        line by line); False, adding nothing, if one is not."""
        full = [line for line in lines if line.strip()]
        if not full:
            return True
        if max(map(len, full)) > MAX_LOG_LINE:
            return False
        try:
            rows = json.loads(b"[" + b",".join(full) + b"]")
        except (ValueError, RecursionError):
            return False
        if len(rows) != len(full) or not all(isinstance(r, dict) and isinstance(r.get("step"), int) for r in rows):
            return False
        for row in rows:
            self.lines += 1
            (self.dev if "dev" in row else self.train).add(self.lines, row)
        return True

    @staticmethod
    def _row(line: bytes) -> dict | None:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, numbers past any use
            return None
        return row if isinstance(row, dict) and isinstance(row.get("step"), int) else None


def checkpoint_identity(path: Path) -> tuple[int, int, int, int] | None:
    """What tells one checkpoint file from the next one written there (each save replaces the file
    atomically: a new inode); None while there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def views_of(best: Checkpoint) -> tuple[list[str], int]:
    """What the page can show of this model's inside, and its attention maps per position pair
    (layers x heads: what an attention request's size is counted in)."""
    model, heads = best.model, 0
    if model.can("attention"):
        maps = model.attention(torch.tensor([[BOUNDARY]], device=model.device))
        heads = maps.shape[0] * maps.shape[1]
    shown = [view for view in ("embedding", "bigram", "attention") if model.can(view)]
    return [*shown, *(["tanh"] if model.can("probes") else []), "dlogits"], heads


@dataclass
class Run:
    """One run directory, loaded: its best checkpoint, and its data for the split of each item. A run
    still training writes a new best checkpoint now and then: refresh() serves it from then on."""

    id: str
    store: RunStore
    best: Checkpoint
    data: Dataset
    # an export without its data: the NLL of each split it recorded (None where there is data to measure)
    recorded: dict | None = None
    _evaluation: tuple[Checkpoint, dict] | None = field(default=None, repr=False)
    heads: int = 0  # attention maps per position pair (layers x heads), found with the views
    views: list[str] = field(default_factory=list)
    # the file the served checkpoint was read from (taken just after the load: a save in between is
    # picked up at the next one)
    loaded: tuple | None = field(default=None, repr=False)

    def __post_init__(self):
        self.views, self.heads = views_of(self.best)
        self.loaded = checkpoint_identity(self.store.dir / BEST)

    def refresh(self) -> bool:
        """Serve the run's best checkpoint if a newer one was written; whether one was. A checkpoint
        that cannot be read (yet) leaves the one served."""
        now = checkpoint_identity(self.store.dir / BEST)
        if now is None or now == self.loaded:
            return False
        try:
            best = self.store.load_best()
            views, heads = views_of(best)
        except (MakemoreError, OSError):  # half-written, or gone meanwhile: the next look tries again
            return False
        self.loaded = now
        self.views, self.heads, self.best = views, heads, best  # requests under way keep the old one
        return True

    @cached_property
    def log(self) -> MetricsLog:
        return MetricsLog(self.store.dir / METRICS)

    @property
    def has_data(self) -> bool:
        return self.recorded is None

    def evaluation(self) -> dict:
        """NLL on each whole split, and the dev items' per-character NLLs at every percentile (computed
        on first use, then kept until another checkpoint is served). An export without its data: the
        numbers it recorded, marked so."""
        best = self.best
        if not self.has_data:
            recorded = {name: self.recorded.get(name) for name in SPLITS}
            return {**recorded, "step": best.step, "dev_percentiles": [], "recorded": True}
        if self._evaluation is None or self._evaluation[0] is not best:
            model = best.model.eval()
            report = {name: split_nll(model, model.examples(self.data.split(name))) for name in ("train", "test")}
            dev = self.data.split("dev")
            totals = item_nlls(model, model.examples(dev))
            per_char = totals / (dev.offsets.diff().cpu() + 1)
            report["dev"] = float(totals.sum() / dev.targets) if len(dev) else math.nan
            quantiles = per_char.quantile(torch.linspace(0, 1, 101, dtype=torch.float64)) if len(dev) else []
            self._evaluation = (
                best,
                {
                    **{name: report[name] if math.isfinite(report[name]) else None for name in SPLITS},
                    "step": best.step,
                    "dev_percentiles": [round(float(q), 6) for q in quantiles],
                },
            )
        return self._evaluation[1]

    def summary(self) -> dict:
        b = self.best
        return {
            "id": self.id,
            "type": b.run.type,
            "params": b.model.num_params(),
            "step": b.step,
            "best_dev": b.best_dev if math.isfinite(b.best_dev) else None,
            "train_seconds": b.train_seconds,
            "vocab": "".join(b.vocab.chars),
            "max_sample_len": b.model.max_sample_len(b.run.max_len),
            "length_limit": b.model.length_limit,
            "views": self.views,
            "has_data": self.has_data,
        }


class Ensemble:
    """Several served runs read as one model (ensemble.Mixture): sampling, scoring and the next
    character's distribution work on it; views of one model's inside do not. Built from the runs
    served at start; a member serving a newer checkpoint is mixed in at the next request."""

    views: list[str] = []  # every view of the inside is of one model
    heads = 0

    def __init__(self, run_id: str, members: list[Run]):
        self.id, self.members = run_id, members
        self._mixed: tuple[tuple, Checkpoint] | None = None
        self._evaluation: tuple[tuple, dict] | None = None

    @property
    def checkpoints(self) -> tuple[Checkpoint, ...]:
        return tuple(run.best for run in self.members)

    @property
    def best(self) -> Checkpoint:
        """The first member's checkpoint with the mixture as its model (what runs.draw samples from)."""
        now = self.checkpoints
        if self._mixed is None or any(a is not b for a, b in zip(self._mixed[0], now)):
            self._mixed = (now, commands.mixed(self.members))  # mixed() reads each member's .best
        return self._mixed[1]

    @property
    def data(self) -> Dataset:
        return self.members[0].data  # each item's split: the first run's, as `makemore sample` tags them

    @property
    def has_data(self) -> bool:
        return all(run.has_data for run in self.members)

    def refresh(self) -> bool:
        return False  # its members are refreshed on their own

    @cached_property
    def log(self) -> EmptyLog:
        return EmptyLog()

    def unavailable(self) -> str | None:
        """Why the mixture cannot be evaluated on the runs' splits, or None."""
        if missing := next((run.id for run in self.members if not run.has_data), None):
            return f"{missing} was exported without its data, so the ensemble has no splits to be evaluated on"
        try:
            ensemble.check_members(list(self.checkpoints), same_data=True)
        except MakemoreError as e:
            return str(e)
        return None

    def evaluation(self) -> dict:
        """As Run.evaluation, of the mixture: each whole split's NLL and the dev items' percentiles;
        all None, with why, when the runs did not train on the same data."""
        members = self.checkpoints
        if self._evaluation is not None and all(a is b for a, b in zip(self._evaluation[0], members)):
            return self._evaluation[1]
        step = max(m.step for m in members)
        if why := self.unavailable():
            report = {**{name: None for name in SPLITS}, "step": step, "dev_percentiles": [], "unavailable": why}
        else:
            report = {name: ensemble.split_nll(list(members), self.data, name) for name in ("train", "test")}
            dev = self.data.split("dev")
            totals = mixed_item_nlls(list(members), dev)
            per_char = totals / (dev.offsets.diff().cpu() + 1)
            report["dev"] = float(totals.sum() / dev.targets) if len(dev) else math.nan
            quantiles = per_char.quantile(torch.linspace(0, 1, 101, dtype=torch.float64)) if len(dev) else []
            report = {
                **{name: report[name] if math.isfinite(report[name]) else None for name in SPLITS},
                "step": step,
                "dev_percentiles": [round(float(q), 6) for q in quantiles],
            }
        self._evaluation = (members, report)
        return report

    def summary(self) -> dict:
        first, mixed = self.members[0].best, self.best
        return {
            "id": self.id,
            "type": f"ensemble of {len(self.members)}",
            "params": sum(m.model.num_params() for m in self.checkpoints),
            "step": max(m.step for m in self.checkpoints),
            "best_dev": None,
            "train_seconds": sum(m.train_seconds for m in self.checkpoints),
            "vocab": "".join(first.vocab.chars),
            "max_sample_len": mixed.model.max_sample_len(mixed.run.max_len),
            "length_limit": mixed.model.length_limit,
            "views": self.views,
            "has_data": self.has_data,
            "members": [run.id for run in self.members],
        }


class EmptyLog:
    """An ensemble's metrics: it was never trained as one."""

    def rows(self) -> list[dict]:
        return []


def mixed_item_nlls(members: list[Checkpoint], split: Split) -> torch.Tensor:
    """Each item's NLL under the members' equal mixture (float64), in the split's order."""
    nlls = ensemble.mixed_nll([target_nlls(m.model, m.model.examples(split)) for m in members])
    ends = (split.offsets[1:] - split.offsets[0]) + torch.arange(1, len(split) + 1)  # + one end token each
    running = torch.cat([torch.zeros(1, dtype=torch.float64), nlls.cumsum(0)])
    return running[ends] - running[torch.cat([ends.new_zeros(1), ends[:-1]])]


def with_ensemble(runs: dict[str, Run]) -> dict[str, Run | Ensemble]:
    """The runs, and one more entry: their ensemble ("ensemble", or a free variant of it). Runs that
    cannot be one mixture (another vocabulary, text mode) are refused in one line."""
    members = list(runs.values())
    if len(members) < 2:
        raise MakemoreError("--ensemble mixes several runs: serve at least two")
    if text := next((run.id for run in members if run.best.run.text), None):
        raise MakemoreError(f"--ensemble: {text} was trained in text mode; an ensemble mixes models of items")
    try:
        ensemble.check_members([run.best for run in members], same_data=False)
    except MakemoreError as e:
        order = ", ".join(run.id for run in members)
        raise MakemoreError(f"--ensemble: {e} (models in the order {order})") from None
    run_id, k = "ensemble", 1
    while run_id in runs:
        k += 1
        run_id = f"ensemble-{k}"
    return {**runs, run_id: Ensemble(run_id, members)}


def load_runs(paths: list[str]) -> tuple[dict[str, Run], list[tuple[Path, str]]]:
    """The runs to serve, by id (the directory's name, made unique), and those skipped with why.
    A folder of runs skips the ones that cannot be loaded; a run named on its own must load."""
    named, skipped = {Path(p) for p in paths}, []
    runs: dict[str, Run] = {}
    for run_dir in commands.find_runs(paths):
        try:  # a run directory, or a folder `makemore export` wrote (its data may be export.NoData)
            loaded = commands.open_model(run_dir)
            if loaded.best.run.text:
                raise MakemoreError(
                    "it was trained in text mode, and the playground draws items; continue its text with "
                    f"makemore sample -o {run_dir} --length N"
                )
            best, data = loaded.best, loaded.dataset(write_cache=False)
        except MakemoreError as e:
            if run_dir in named:  # asked for by name: it is an error, not a skip
                raise MakemoreError(shown(f"cannot serve {run_dir}: {e}")) from None
            skipped.append((run_dir, str(e)))
            continue
        base = re.sub(r"[^A-Za-z0-9._-]", "_", run_dir.name) or "run"
        run_id, k = base, 1
        while run_id in runs:
            k += 1
            run_id = f"{base}-{k}"
        recorded = None if loaded.has_data else dict(loaded.numbers or {})
        runs[run_id] = Run(run_id, RunStore.open(run_dir), best, data, recorded)
        runs[run_id].views  # noqa: B018  (computed now, before requests share the model)
    if not runs:
        raise MakemoreError(
            shown("none of the runs could be loaded: " + "; ".join(f"{p}: {why}" for p, why in skipped))
        )
    return runs, skipped


class Watch:
    """The served runs kept live while they train: a new best checkpoint is served from the next
    look on, and a run folder that appears under a served folder is added. Looks once a second on a
    thread of its own (start), or when asked (refresh)."""

    def __init__(self, runs: dict[str, Run], paths: list[str]):
        self.runs, self.paths = runs, paths
        self.unloadable: dict[Path, tuple | None] = {}  # tried again only once its checkpoint changes

    def refresh(self) -> None:
        for run in list(self.runs.values()):
            run.refresh()
        try:
            found = commands.find_runs(self.paths)
        except (MakemoreError, OSError):  # a served folder went away or cannot be read: serve what is loaded
            return
        known = {run.store.dir.resolve() for run in list(self.runs.values()) if isinstance(run, Run)}
        for run_dir in found:
            identity = checkpoint_identity(run_dir / BEST)
            if run_dir.resolve() in known or self.unloadable.get(run_dir, ()) == identity:
                continue
            try:
                (run,) = load_runs([str(run_dir)])[0].values()
            except (MakemoreError, OSError):  # still being written, or broken: skipped, as at the start
                self.unloadable[run_dir] = identity
                continue
            base, k = run.id, 1
            while run.id in self.runs:
                k += 1
                run.id = f"{base}-{k}"
            self.runs[run.id] = run

    def start(self, every: float = 1.0) -> None:
        def loop():
            while True:
                time.sleep(every)
                self.refresh()

        threading.Thread(target=loop, name="makemore-watch", daemon=True).start()


def answer(example) -> dict:
    """An endpoint's answer as /docs shows it: an example of its shape (tests check its keys)."""
    return {
        200: {
            "description": "the answer (an example of its shape)",
            "content": {"application/json": {"example": example}},
        }
    }


RUN_EXAMPLE = {
    "id": "mlp", "type": "mlp", "params": 11897, "step": 200, "best_dev": 2.4275, "train_seconds": 0.2,
    "vocab": "abcdefghijklmnopqrstuvwxyz", "max_sample_len": 30, "length_limit": None,
    "views": ["embedding", "tanh", "dlogits"], "has_data": True,
}  # fmt: skip
ANSWERS = {
    "runs": [RUN_EXAMPLE],
    "metrics": [{"step": 100, "loss": 2.61, "lr": 0.1}, {"step": 100, "dev": 2.52, "train_seconds": 0.1}],
    "sample": {"seed": 0, "step": 200,
               "items": [{"item": "emma", "split": "train"}, {"item": "kaylin", "split": "new"}],
               "note": "only when fewer than n came back: why"},
    "next": {"text": "em", "next": [["m", 0.31], ["i", 0.12], [".", 0.01]], "sampled": [0.31, 0.12, 0.01], "end": 2},
    "evaluation": {"train": 2.43, "dev": 2.43, "test": 2.43, "step": 200, "dev_percentiles": [1.21, 1.64, 3.9]},
    "embedding": {"chars": [".", "a"], "dims": 10, "points": [[0.1, -0.3], [1.2, 0.4]], "explained": [0.18, 0.13]},
    "bigram": {"chars": [".", "a"], "probs": [[0.0, 0.14], [0.2, 0.02]], "counts": [[0, 4410], [6640, 556]]},
    "tanh": {"examples": 32, "threshold": 0.97, "variants": [
        {"label": "trained weights", "preact": [0.4, -2.9], "h": [0.38, -0.99], "positions": 1,
         "saturated": [[0.0, 1.0]]}]},
    "dlogits": {"chars": [".", "a", "e"], "targets": ["e", "."], "ends": [1],
                "dlogits": [[0.01, 0.02, -0.03], [-0.04, 0.01, 0.03]]},
    "attention": {"tokens": [".", "e", "m"], "layers": [[[[1.0, 0.0, 0.0], [0.4, 0.6, 0.0], [0.2, 0.3, 0.5]]]]},
    "score": {"items": [{"item": "ava", "nll": 6.4, "nll_per_char": 1.6,
                         "chars": [["a", 2.0], ["v", 2.9], ["a", 0.9], [".", 0.6]]}]},
}  # fmt: skip


class FieldError(MakemoreError):
    """A request refused because of one field's value: the page shows the message next to it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@contextmanager
def blame(field: str):
    """A MakemoreError raised inside (a value the package's own checks refuse) is this field's fault."""
    try:
        yield
    except FieldError:
        raise
    except MakemoreError as e:
        raise FieldError(field, str(e)) from None


class SampleRequest(BaseModel):
    run: str = Field(description="a run id from GET /api/runs")
    n: int = Field(20, ge=1, le=MAX_ITEMS, description="how many items")
    temperature: float = Field(1.0, gt=0, description="divides the logits: below 1 safer items, above 1 more varied")
    top_k: int | None = Field(None, ge=1, description="draw only from the k most likely characters")
    top_p: float | None = Field(None, gt=0, le=1, description="draw only from the smallest set holding this mass")
    prefix: str = Field("", max_length=MAX_ITEM_CHARS, description="every item starts with it")
    seed: int = Field(0, ge=0, lt=2**63, description="the same seed gives the same items")
    new_only: bool = Field(False, description="only items that are in none of the splits")
    unique: bool = Field(False, description="each item once: drawn again until n distinct items")


class NextRequest(BaseModel):
    run: str = Field(description="a run id from GET /api/runs")
    text: str = Field("", max_length=MAX_ITEM_CHARS, description="the start of an item")
    temperature: float = Field(1.0, gt=0, description="for `sampled`: as in /api/sample")
    top_k: int | None = Field(None, ge=1, description="for `sampled`: as in /api/sample")
    top_p: float | None = Field(None, gt=0, le=1, description="for `sampled`: as in /api/sample")


class ItemsRequest(BaseModel):
    run: str = Field(description="a run id from GET /api/runs")
    items: list[str] = Field(min_length=1, max_length=64, description="the items whose characters are the batch")


class AttentionRequest(BaseModel):
    run: str = Field(description="a run id from GET /api/runs")
    text: str = Field(max_length=MAX_ITEM_CHARS, description="an item; attention is shown over '.' and its characters")


class ScoreRequest(BaseModel):
    run: str = Field(description="a run id from GET /api/runs")
    items: list[str] = Field(min_length=1, max_length=MAX_ITEMS)


class BodyTooLarge(HTTPException):
    def __init__(self):
        message = f"request bodies are limited to {MAX_BODY:,} bytes"
        super().__init__(413, message, headers={"connection": "close"})  # and the rest is not read


class LimitBody:
    """ASGI middleware: a request body over MAX_BODY is refused (413) as soon as it is known to be,
    from its Content-Length or, for a chunked upload, by counting the bytes as they arrive; the rest
    is never read, so nothing past the limit is kept."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        size = Headers(scope=scope).get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
            return await refusal(BodyTooLarge())(scope, receive, send)
        received, started = 0, False

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY:
                    raise BodyTooLarge()  # FastAPI passes an HTTPException on; the app's handler answers
            return message

        async def sent(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sent)
        except BodyTooLarge as e:  # raised where no handler answered it
            if started:
                raise
            await refusal(e)(scope, receive, send)


class ServerTiming:
    """ASGI middleware: each answer says how long the server took to start it, in the standard
    Server-Timing header (`app;dur=` milliseconds), which a browser shows beside the request and a
    page reads from performance.getEntriesByType("resource"): the page's own time for a request
    (which also counts the network and drawing the answer) is never less."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began = time.perf_counter()

        async def timed(message):
            if message["type"] == "http.response.start":
                took = f"app;dur={1000 * (time.perf_counter() - began):.1f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", took)]}
            await send(message)

        await self.app(scope, receive, timed)


def refusal(exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


def served_hosts(host: str, port: int) -> tuple[set[str] | None, int]:
    """The names a browser may put in Host: for a server bound to host:port (None: any, when it is bound
    to every address: then the server is open to whoever reaches it, as serve warns)."""
    if host in ("", "0.0.0.0", "::"):
        return None, port
    return {host.lower().strip("[]"), *LOCAL_HOSTS}, port


class OnlyHosts:
    """ASGI middleware: a request whose Host: header names another server is refused (400). A page
    elsewhere that rebinds its own name to 127.0.0.1 (DNS rebinding) sends its own name, and gets
    nothing of the runs."""

    def __init__(self, app, names: set[str] | None, port: int):
        self.app, self.names, self.port = app, names, port

    def allowed(self, host: str) -> bool:
        if self.names is None:
            return True
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not name or not port.isdigit():  # no port given (or an IPv6 address without one)
            name, port = host, str(self.port)
        return name.strip("[]").rstrip(".").lower() in self.names and int(port) == self.port

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            host = Headers(scope=scope).get("host", "")
            if not self.allowed(host):
                answers = sorted(self.names or ())
                message = f"this server answers to {', '.join(answers)} on port {self.port}, not to Host: {host!r}"
                return await JSONResponse({"error": message}, status_code=400)(scope, receive, send)
        await self.app(scope, receive, send)


def make_app(runs: dict[str, Run | Ensemble], host: str | None = None, port: int | None = None) -> FastAPI:
    """The FastAPI application serving these runs; bound to host:port, it answers only requests for
    that server (Host: host, localhost, 127.0.0.1 or [::1], with the port)."""
    # FastAPI's own /docs and /redoc pages load their scripts from a CDN; ours are served from web/
    app = FastAPI(
        title="makemore",
        summary="Sample, score and look inside trained makemore runs.",
        version=__version__,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(LimitBody)
    app.add_middleware(ServerTiming)
    if host is not None:
        app.add_middleware(OnlyHosts, *served_hosts(host, port or 80))  # added last: runs first

    def run_of(run_id: str) -> Run | Ensemble:
        if run_id not in runs:
            raise HTTPException(404, f"no run {run_id!r}; GET /api/runs lists them")
        return runs[run_id]

    def one_model(run_id: str, view: str) -> Run:
        """The run for a view of one model's inside; an ensemble has none of its own."""
        run = run_of(run_id)
        if isinstance(run, Ensemble):
            raise FieldError("run", f"run: the {view} view is per model; pick one of the runs in {run.id}")
        return run

    @app.exception_handler(RequestValidationError)
    async def one_line(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        if first["type"] == "json_invalid":  # its loc is a byte offset, not a field
            why = (first.get("ctx") or {}).get("error", "JSON decode error")
            message = f"body: not valid JSON ({why} at byte {first['loc'][-1]})"
            return JSONResponse({"error": message, "field": "body"}, status_code=422)
        field = ".".join(str(part) for part in first["loc"] if part != "body") or "body"
        return JSONResponse({"error": f"{field}: {first['msg']}", "field": field}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":  # no such path (not an unknown run)
            message = f"nothing at {request.url.path}; /docs lists the API"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"{request.method} is not allowed at {request.url.path}; it takes {allowed}"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(MakemoreError)
    async def makemore_error(request: Request, exc: MakemoreError):
        field = {"field": exc.field} if isinstance(exc, FieldError) else {}
        return JSONResponse({"error": str(exc), **field}, status_code=400)

    # Requests that only read what was loaded are `async def`: they run on the event loop and never
    # wait for a thread, so they answer while any number of model requests wait their turn.
    @app.get("/api/runs", responses=answer(ANSWERS["runs"]))
    async def list_runs() -> list[dict]:
        """Every run served: type, parameters, best step and dev NLL, training time."""
        return [run.summary() for run in list(runs.values())]  # a copy: runs may be added meanwhile

    @app.get("/api/runs/{run_id}/metrics", responses=answer(ANSWERS["metrics"]))
    def metrics(run_id: str) -> list[dict]:
        """The run's log: train loss every 100 steps, dev loss at each evaluation (what was appended
        since the last call is read; a long log is thinned to 2,000 rows of each, the last kept)."""
        return run_of(run_id).log.rows()

    @app.post("/api/sample", responses=answer(ANSWERS["sample"]))
    async def sample(req: SampleRequest, request: Request) -> dict:
        """n items drawn from the run's model, each with the split it appears in (train, dev, test) or new,
        and the step of the checkpoint that drew them. With new_only or unique, fewer than n may come
        back: `note` says why."""
        run = run_of(req.run)
        if req.new_only and isinstance(run.data, NoData):
            raise FieldError("new_only", "new_only: this run was exported without its data, so no item can be told new")
        limit = run.best.model.max_sample_len(run.best.run.max_len)
        if req.n * max(limit, 1) > MAX_SAMPLE_CHARS:
            most = MAX_SAMPLE_CHARS // max(limit, 1)
            raise FieldError(
                "n", f"n: this model's items can be {limit:,} characters long: at most {most:,} per request"
            )
        how = Sampling(req.temperature, req.top_k, req.top_p, req.prefix)
        items, note = await MODEL.run(
            draw_within, run, req.n, req.seed, how, req.new_only, req.unique, gone=request.is_disconnected
        )

        def answer_of(items: list[tuple[str, str]]) -> dict:
            answer = {"seed": req.seed, "step": run.best.step, "items": [{"item": i, "split": s} for i, s in items]}
            return {**answer, "note": note} if note else answer

        return await rendered(answer_of, items)

    @app.post("/api/next", responses=answer(ANSWERS["next"]))
    async def next_char(req: NextRequest) -> dict:
        """The model's distribution of the character after `text`, most likely first (`next`: [character,
        probability] pairs); `sampled`: the probabilities sampling draws them with under temperature,
        top_k and top_p, in the same order; `end`: the index of the end of the item (shown '.')."""
        best = run_of(req.run).best

        def compute():
            with blame("text"), torch.no_grad():
                logits = best.model.eval().next_logits(views.row_of(best, req.text)).float()
            sampled = filter_logits(logits, req.temperature, req.top_k, req.top_p).softmax(-1)[0]
            return logits.softmax(-1)[0].tolist(), sampled.tolist()

        probs, sampled = await MODEL.run(compute)
        order = sorted(range(len(probs)), key=lambda i: -probs[i])
        return {
            "text": req.text,
            "next": [(best.vocab.show(i), probs[i]) for i in order],
            "sampled": [sampled[i] for i in order],
            "end": order.index(BOUNDARY),
        }

    @app.get("/api/runs/{run_id}/evaluation", responses=answer(ANSWERS["evaluation"]))
    async def evaluation(run_id: str) -> dict:
        """NLL on the whole train, dev and test splits, and the dev items' per-character NLL at each
        percentile 0..100 (where a scored item falls among them). The first call evaluates the run."""
        run = run_of(run_id)
        return await MODEL.run(run.evaluation)

    @app.get("/api/runs/{run_id}/embedding", responses=answer(ANSWERS["embedding"]))
    def embedding(run_id: str) -> dict:
        """The character embedding projected to its two principal directions (as it is, for 2-D
        embeddings), with the share of the variance each direction holds."""
        return views.embedding(one_model(run_id, "embedding").best)

    @app.get("/api/runs/{run_id}/bigram", responses=answer(ANSWERS["bigram"]))
    def bigram(run_id: str) -> dict:
        """P(next | previous) of a bigram model, row by previous character ('.' starts and ends
        items), and the counts behind it for the counting model (vocabularies of up to 256)."""
        run = one_model(run_id, "bigram")
        best, size = run.best, len(run.best.vocab.chars) + 1
        if size > MAX_BIGRAM_CHARS and "bigram" in run.views:
            raise MakemoreError(
                f"the bigram matrix of {size:,} characters ({size * size:,} cells) is too large to show: "
                f"the page draws at most {MAX_BIGRAM_CHARS} characters"
            )
        return views.bigram(best)

    @app.get("/api/runs/{run_id}/tanh", responses=answer(ANSWERS["tanh"]))
    async def tanh(run_id: str) -> dict:
        """Part 3: the first tanh layer on 32 training examples, under the served weights and under a
        fresh initialisation of each kind the model offers: pre-activations, outputs (`h`, example by
        example, position by position) and, per example (row) and neuron (column), the share of the
        layer's `positions` where the output saturates (|h| > `threshold`): 0 or 1 for a layer of one
        position."""
        run = one_model(run_id, "tanh")
        if not run.has_data and run.best.model.can("probes"):
            raise MakemoreError(
                f"the tanh view runs 32 training examples through the model, and {run.id} was exported "
                "without its data (makemore export --with-data keeps it)"
            )
        return await MODEL.run(views.tanh_at_init, run.best, run.data, 32, 42, True)

    @app.post("/api/dlogits", responses=answer(ANSWERS["dlogits"]))
    async def dlogits(req: ItemsRequest) -> dict:
        """Part 4: the gradient of the mean loss on the logits of every target of these items (each
        character, then the end; 256 at most): (softmax - one-hot) / targets, one row per target."""
        best = one_model(req.run, "dlogits").best

        def compute():
            with blame("items"):
                items = [item.strip() for item in req.items]
                if not all(items):
                    raise MakemoreError("items: an item is empty")
                limit = best.model.length_limit
                if limit is not None and max(map(len, items)) > limit:
                    raise MakemoreError(f"items: this model reads at most {limit} characters")
                return views.dlogits_of(best, Split.of(items, best.vocab), MAX_DLOGITS_ROWS)

        return await MODEL.run(compute)

    @app.post("/api/attention", responses=answer(ANSWERS["attention"]))
    async def attention(req: AttentionRequest) -> dict:
        """The attention weights of every layer and head over '.' and the text: layers[l][h][i][j] is
        how much position i takes from position j (j <= i)."""
        run = one_model(req.run, "attention")
        if run.heads * (len(req.text) + 1) ** 2 > MAX_ATTENTION_WEIGHTS:
            most = math.isqrt(MAX_ATTENTION_WEIGHTS // run.heads) - 1
            raise FieldError("text", f"text: {run.heads} attention maps of this model show at most {most:,} characters")

        def compute():
            try:
                return views.attention(run.best, req.text)
            except views.TextError as e:
                raise FieldError("text", str(e)) from None
            except MakemoreError as e:  # the run's model has no attention
                raise FieldError("run", str(e)) from None

        return await MODEL.run(compute)

    page_html = (WEB / "index.html").read_text(encoding="utf-8")
    docs_html = (WEB / "api.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return page_html

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def api_docs() -> str:
        return docs_html

    app.mount("/static", StaticFiles(directory=str(WEB)), name="static")

    @app.post("/api/score", responses=answer(ANSWERS["score"]))
    async def score(req: ScoreRequest) -> dict:
        """Each item's NLL in nats: in total, per character, and at each character (then the end)."""
        if too_long := next((s for s in req.items if len(s) > MAX_ITEM_CHARS), None):
            raise FieldError("items", f"items: {too_long[:20]!r}... is longer than {MAX_ITEM_CHARS:,} characters")
        run = run_of(req.run)
        best = run.best

        def compute():
            with blame("items"):
                if isinstance(run, Ensemble):
                    items = [item.strip() for item in req.items]
                    if not all(items):
                        raise MakemoreError("items: an item is empty")
                    return ensemble.score(list(run.checkpoints), items)
                return commands.score_checked(best, req.items)

        def answer_of(results: list[dict]) -> dict:
            finite = lambda x: x if math.isfinite(x) else None  # noqa: E731  (JSON has no infinity)
            for r in results:
                r.update(nll=finite(r["nll"]), nll_per_char=finite(r["nll_per_char"]))
                r["chars"] = [(c, finite(v)) for c, v in r["chars"]]
            return {"items": results}

        return await rendered(answer_of, await MODEL.run(compute))

    return app


async def rendered(shape, result) -> Response:
    """shape(result) as JSON, shaped and rendered on a worker thread: a large answer (scores of 1 MB
    of items: 25 MB) does not hold up the event loop, which answers the requests that need no model."""

    def render() -> bytes:
        return json.dumps(shape(result), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()

    return Response(await run_in_threadpool(render), media_type="application/json")


def draw_within(
    run: Run, n: int, seed: int, how: Sampling, new_only: bool, unique: bool = False
) -> tuple[list[tuple[str, str]], str]:
    """runs.draw(), with new_only (items in no split) and unique (each item once) redrawing for at most
    NEW_ONLY_SECONDS: the items (the same as draw's for the seed, or the first of them) and, when
    fewer than n came back, a note saying why."""
    with blame("prefix"):  # what draw() refuses is the prefix
        if not (new_only or unique):
            return commands.draw(run.best, run.data, n, seed, how, False), ""
        commands.draw(run.best, run.data, 0, seed, how, False)  # its checks alone: it draws nothing
    best, deadline = run.best, time.monotonic() + NEW_ONLY_SECONDS
    limit = best.model.max_sample_len(best.run.max_len)
    gen = torch.Generator().manual_seed(seed)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    kind = " and ".join(word for word, asked in (("distinct", unique), ("new", new_only)) if asked)
    for rounds in range(1, 101):  # as draw() does: until enough items, within 100 rounds
        items = generate(best.model, best.vocab, n, limit, gen, how)
        for item, where in zip(items, run.data.membership(items)):
            if (new_only and where != "new") or (unique and item in seen):
                continue
            seen.add(item)
            out.append((item, where))
        if len(out) >= n:
            return out[:n], ""
        if time.monotonic() > deadline:
            return out, (
                f"only {len(out):,} of {n:,} items are {kind} after {rounds} rounds of drawing {n:,} "
                f"({NEW_ONLY_SECONDS:g} s, the most one request may take); a higher temperature draws more"
            )
    return out, f"only {len(out):,} of {n:,} items are {kind} after 100 rounds of drawing {n:,}"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket at host:port, or one line saying why there cannot be one."""
    sock = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.set_inheritable(True)
        return sock
    except (OSError, OverflowError) as e:
        if sock is not None:
            sock.close()
        why = getattr(e, "strerror", None) or str(e)
        raise MakemoreError(shown(f"cannot serve at {host}:{port}: {why}")) from None


def serve(paths: list[str], host: str, port: int, mix: bool = False) -> None:
    """Load the runs, bind host:port, then serve them until Ctrl-C; mix: their ensemble too."""
    import uvicorn

    from .devices import set_threads

    set_threads(0)
    runs, skipped = load_runs(paths)
    for path, why in skipped:
        print(shown(f"skipped {path}: {why}"), file=sys.stderr)
    if mix:
        runs = with_ensemble(runs)
    sock = bind(host, port)
    Watch(runs, paths).start()
    if host not in LOCAL_HOSTS:
        print(shown(f"warning: serving on {host}: whoever reaches it can use the runs (no login)"), file=sys.stderr)
    address = f"[{host}]" if ":" in host else host
    print(shown(f"serving {len(runs)} run(s) at http://{address}:{port}  (Ctrl-C to stop)"), file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(make_app(runs, host, port), log_level="warning"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
