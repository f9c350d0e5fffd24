"""`makemore serve`: trained runs behind a local JSON API, for people and for programs.

Runs are loaded once, when the server starts, and named by an id; a request never names a path.
Every request is checked before it reaches a model (a bad one is a 4xx with one line saying why),
and each draws from its own seeded generator, so the same seed gives the same items whatever else
the server is doing. Sampling and scoring are the package's own (runs.draw, runs.score_checked).
"""

from __future__ import annotations

import math
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import torch
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from . import __version__, views
from . import runs as commands
from .checkpoint import Checkpoint
from .data import BOUNDARY, SPLITS, Dataset
from .errors import MakemoreError
from .evaluate import item_nlls, split_nll
from .sample import Sampling
from .store import RunStore

MAX_ITEMS = 10_000  # items sampled or scored per request
MAX_ITEM_CHARS = 1_000  # characters per prefix or scored item
MAX_BODY = 1 << 20  # bytes per request body
WEB = resources.files("makemore") / "web"  # the page: plain HTML, CSS and JavaScript
# One model computation at a time: each already uses every core (intra-op threads), and two at once
# from the server's worker threads would oversubscribe them and both crawl.
COMPUTE = threading.Lock()


@dataclass
class Run:
    """One run directory, loaded: its best checkpoint, and its data for the split of each item."""

    id: str
    store: RunStore
    best: Checkpoint
    data: Dataset
    _evaluation: dict | None = field(default=None, repr=False)

    @cached_property
    def views(self) -> list[str]:
        """What the page can show of this model's inside (asked once, when the run is loaded)."""
        model, row = self.best.model, torch.tensor([[BOUNDARY]], device=self.best.model.device)
        shown = {"embedding": model.char_embedding(), "bigram": model.bigram_table(), "attention": model.attention(row)}
        return [name for name, value in shown.items() if value is not None]

    def evaluation(self) -> dict:
        """NLL on each whole split, and the dev items' per-character NLLs at every percentile (computed
        on first use, then kept: the checkpoint does not change while it is served)."""
        if self._evaluation is None:
            model = self.best.model.eval()
            report = {name: split_nll(model, model.examples(self.data.split(name))) for name in ("train", "test")}
            dev = self.data.split("dev")
            totals = item_nlls(model, model.examples(dev))
            per_char = totals / (dev.offsets.diff().cpu() + 1)
            report["dev"] = float(totals.sum() / dev.targets) if len(dev) else math.nan
            quantiles = per_char.quantile(torch.linspace(0, 1, 101, dtype=torch.float64)) if len(dev) else []
            self._evaluation = {
                **{name: report[name] if math.isfinite(report[name]) else None for name in SPLITS},
                "dev_percentiles": [round(float(q), 6) for q in quantiles],
            }
        return self._evaluation

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
        }


def load_runs(paths: list[str]) -> tuple[dict[str, Run], list[tuple[Path, str]]]:
    """The runs to serve, by id (the directory's name, made unique), and those skipped with why.
    A folder of runs skips the ones that cannot be loaded; a run named on its own must load."""
    named, skipped = {Path(p) for p in paths}, []
    runs: dict[str, Run] = {}
    for run_dir in commands.find_runs(paths):
        try:
            store = RunStore.open(run_dir)
            best = store.load_best()
            data = store.dataset(write_cache=False)
        except MakemoreError as e:
            if run_dir in named:  # asked for by name: it is an error, not a skip
                raise MakemoreError(f"cannot serve {run_dir}: {e}") from None
            skipped.append((run_dir, str(e)))
            continue
        base = re.sub(r"[^A-Za-z0-9._-]", "_", run_dir.name) or "run"
        run_id, k = base, 1
        while run_id in runs:
            k += 1
            run_id = f"{base}-{k}"
        runs[run_id] = Run(run_id, store, best, data)
        runs[run_id].views  # noqa: B018  (computed now, before requests share the model)
    if not runs:
        raise MakemoreError("none of the runs could be loaded: " + "; ".join(f"{p}: {why}" for p, why in skipped))
    return runs, skipped


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


class NextRequest(BaseModel):
    run: str = Field(description="a run id from GET /api/runs")
    text: str = Field("", max_length=MAX_ITEM_CHARS, description="the start of an item")


class AttentionRequest(BaseModel):
    run: str = Field(description="a run id from GET /api/runs")
    text: str = Field(max_length=MAX_ITEM_CHARS, description="an item; attention is shown over '.' and its characters")


class ScoreRequest(BaseModel):
    run: str = Field(description="a run id from GET /api/runs")
    items: list[str] = Field(min_length=1, max_length=MAX_ITEMS)


def make_app(runs: dict[str, Run]) -> FastAPI:
    """The FastAPI application serving these runs."""
    # FastAPI's own /docs and /redoc pages load their scripts from a CDN; ours are served from web/
    app = FastAPI(
        title="makemore",
        summary="Sample, score and look inside trained makemore runs.",
        version=__version__,
        docs_url=None,
        redoc_url=None,
    )

    def run_of(run_id: str) -> Run:
        if run_id not in runs:
            raise HTTPException(404, f"no run {run_id!r}; GET /api/runs lists them")
        return runs[run_id]

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
            return JSONResponse({"error": f"request bodies are limited to {MAX_BODY:,} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def one_line(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"] if part != "body")
        return JSONResponse({"error": f"{field}: {first['msg']}", "field": field}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(MakemoreError)
    async def makemore_error(request: Request, exc: MakemoreError):
        field = {"field": exc.field} if isinstance(exc, FieldError) else {}
        return JSONResponse({"error": str(exc), **field}, status_code=400)

    @app.get("/api/runs")
    def list_runs() -> list[dict]:
        """Every run served: type, parameters, best step and dev NLL, training time."""
        return [run.summary() for run in runs.values()]

    @app.get("/api/runs/{run_id}/metrics")
    def metrics(run_id: str) -> list[dict]:
        """The run's log: train loss every 100 steps, dev loss at each evaluation (read anew each time)."""
        return run_of(run_id).store.metrics()

    @app.post("/api/sample")
    def sample(req: SampleRequest) -> dict:
        """n items drawn from the run's model, each with the split it appears in (train, dev, test) or new."""
        run = run_of(req.run)
        how = Sampling(req.temperature, req.top_k, req.top_p, req.prefix)
        with COMPUTE, blame("prefix"):  # what draw() refuses is the prefix
            items = commands.draw(run.best, run.data, req.n, req.seed, how, req.new_only)
        return {"seed": req.seed, "items": [{"item": item, "split": split} for item, split in items]}

    @app.post("/api/next")
    def next_char(req: NextRequest) -> dict:
        """The model's distribution of the character after `text` (the boundary '.' ends the item),
        most likely first."""
        best = run_of(req.run).best
        with COMPUTE, blame("text"), torch.no_grad():
            logits = best.model.eval().next_logits(views.row_of(best, req.text))
        probs = logits.float().softmax(-1)[0].tolist()
        ranked = sorted(((best.vocab.show(i), p) for i, p in enumerate(probs)), key=lambda pair: -pair[1])
        return {"text": req.text, "next": ranked}

    @app.get("/api/runs/{run_id}/evaluation")
    def evaluation(run_id: str) -> dict:
        """NLL on the whole train, dev and test splits, and the dev items' per-character NLL at each
        percentile 0..100 (where a scored item falls among them). The first call evaluates the run."""
        run = run_of(run_id)
        with COMPUTE:
            return run.evaluation()

    @app.get("/api/runs/{run_id}/embedding")
    def embedding(run_id: str) -> dict:
        """The character embedding projected to its two principal directions (as it is, for 2-D
        embeddings), with the share of the variance each direction holds."""
        return views.embedding(run_of(run_id).best)

    @app.get("/api/runs/{run_id}/bigram")
    def bigram(run_id: str) -> dict:
        """P(next | previous) of a bigram model, row by previous character ('.' starts and ends
        items), and the counts behind it for the counting model."""
        return views.bigram(run_of(run_id).best)

    @app.post("/api/attention")
    def attention(req: AttentionRequest) -> dict:
        """The attention weights of every layer and head over '.' and the text: layers[l][h][i][j] is
        how much position i takes from position j (j <= i)."""
        best = run_of(req.run).best
        with COMPUTE:
            try:
                return views.attention(best, req.text)
            except views.TextError as e:
                raise FieldError("text", str(e)) from None
            except MakemoreError as e:  # the run's model has no attention
                raise FieldError("run", str(e)) from None

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (WEB / "index.html").read_text(encoding="utf-8")

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def api_docs() -> str:
        return (WEB / "api.html").read_text(encoding="utf-8")

    app.mount("/static", StaticFiles(directory=str(WEB)), name="static")

    @app.post("/api/score")
    def score(req: ScoreRequest) -> dict:
        """Each item's NLL in nats: in total, per character, and at each character (then the end)."""
        if too_long := next((s for s in req.items if len(s) > MAX_ITEM_CHARS), None):
            raise FieldError("items", f"items: {too_long[:20]!r}... is longer than {MAX_ITEM_CHARS:,} characters")
        with COMPUTE, blame("items"):
            results = commands.score_checked(run_of(req.run).best, req.items)
        finite = lambda x: x if math.isfinite(x) else None  # noqa: E731  (JSON has no infinity)
        for r in results:
            r.update(nll=finite(r["nll"]), nll_per_char=finite(r["nll_per_char"]))
            r["chars"] = [(c, finite(v)) for c, v in r["chars"]]
        return {"items": results}

    return app


def serve(paths: list[str], host: str, port: int) -> None:
    """Load the runs, then serve them until Ctrl-C."""
    import uvicorn

    from .train import set_threads

    set_threads(0)
    runs, skipped = load_runs(paths)
    for path, why in skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host}: whoever reaches it can use the runs (no login)", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {len(runs)} run(s) at http://{shown}:{port}  (Ctrl-C to stop)", file=sys.stderr)
    uvicorn.run(make_app(runs), host=host, port=port, log_level="warning")
