"""`serve`: load on `makemore serve`: requests/s, items/s and p50/p99 latency of the JSON API, for
each run served (RUN_DIR ...), each kind of request (sample 20 items, sample 1,000 items, score 20
items) and each number of concurrent clients. Each client is a thread with its own keep-alive
connection, sending requests back to back for --seconds; every response must be a 200 with the items
asked for. Without run directories it first trains two small ones into a temporary directory (a
transformer for 300 steps, an mlp for 2,000): how fast the server answers depends on the model's size
and shape, not on how well it is trained. The clients run in this process, the server in another on
the same machine: they share its cores, so the numbers are a lower bound on what the server alone
would do. About 3-4 minutes by default on 2 cores. --quick: 1 client, a fraction of a second per
measurement, runs trained for a few steps on a tiny file.
"""

from __future__ import annotations

import http.client
import json
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .common import makemore, train_tiny_runs

HOST = "127.0.0.1"
START_TIMEOUT = 60.0  # seconds for the server to load its runs and answer
REQUEST_TIMEOUT = 120.0  # seconds for one request, however loaded the server is
# Ordinary lowercase names, in the vocabulary of any run trained on the bundled names.
NAMES = (
    "emma olivia ava isabella sophia charlotte mia amelia harper evelyn "
    "liam noah oliver elijah james william benjamin lucas henry alexander"
).split()
# Small models trained here when no run is given: (type, steps).
RECIPES = (("transformer", 300), ("mlp", 2000))
QUICK_STEPS = 3  # (train_tiny_runs)


@dataclass(frozen=True)
class Kind:
    """One kind of request: its path, its body for the k-th request (so seeds differ), how many
    items each answer must hold, and the most clients worth running it with (None: any)."""

    name: str
    path: str
    body: Callable[[int], dict]
    items: int
    max_clients: int | None = None


def kinds(run: dict, score_items: list[str]) -> list[Kind]:
    """The requests measured against one run. Sampling 1,000 items takes long enough that a few
    clients already keep the cores busy; more would only lengthen the benchmark."""
    rid = run["id"]
    return [
        Kind("sample n=20", "/api/sample", lambda k: {"run": rid, "n": 20, "seed": k}, 20),
        Kind("sample n=1000", "/api/sample", lambda k: {"run": rid, "n": 1000, "seed": k}, 1000, max_clients=4),
        Kind("score 20", "/api/score", lambda k: {"run": rid, "items": score_items}, len(score_items)),
    ]


def train_small_runs(tmp: Path, threads: int, quick: bool) -> list[str]:
    """Train the two small runs served when none is given (the directory names become their ids)."""
    dirs = []
    for model_type, steps in RECIPES:
        run_dir = tmp / model_type
        steps = QUICK_STEPS if quick else steps
        print(f"training {model_type} for {steps} steps into {run_dir}", file=sys.stderr)
        args = ["train", "--type", model_type, "-o", str(run_dir), "-q", "--threads", str(threads)]
        if quick:
            train_tiny_runs(tmp, [model_type], threads)
        else:
            makemore([*args, "--max-steps", str(steps)])
        dirs.append(str(run_dir))
    return dirs


def free_port() -> int:
    """A localhost port nobody listens on now (the OS picks it), for --port 0."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def request(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    """One request on a kept-alive connection; the whole answer is read so the next can follow."""
    payload = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    conn.request(method, path, body=payload, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def start_server(runs: list[str], port: int, log: IO[bytes]) -> subprocess.Popen:
    """`makemore serve` in its own process, with its stderr in `log`."""
    argv = [sys.executable, "-m", "makemore", "serve", *runs, "--port", str(port)]
    print(f"starting: {shlex.join(argv)}", file=sys.stderr)
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)


def wait_until_up(server: subprocess.Popen, port: int, log: IO[bytes]) -> list[dict]:
    """The runs served, once GET /api/runs answers; a clear error with the server's stderr if it
    exits first or takes longer than START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited ({server.returncode}) before answering:\n{server_stderr(log)}")
        conn = http.client.HTTPConnection(HOST, port, timeout=5)
        try:
            status, data = request(conn, "GET", "/api/runs")
            if status == 200:
                return json.loads(data)
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.2)
    sys.exit(f"the server did not answer GET /api/runs within {START_TIMEOUT:.0f} s:\n{server_stderr(log)}")


def server_stderr(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")


def stop_server(server: subprocess.Popen) -> None:
    """Ctrl-C, as a person would stop it; killed if it has not gone within 10 s."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def check(status: int, data: bytes, items: int) -> str | None:
    """Why this answer is wrong, or None: a 200 holding exactly the items asked for."""
    if status != 200:
        return f"HTTP {status}: {data[:200].decode(errors='replace')}"
    got = len(json.loads(data)["items"])
    return None if got == items else f"{got} items instead of {items}"


def client(port: int, kind: Kind, index: int, start: threading.Barrier, clock: dict, out: dict) -> None:
    """One client: connect, wait for the others, then send requests back to back until the deadline
    (clock["stop"], set as the last one arrives), recording each latency and each error."""
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    latencies, errors, k = out["latencies"], out["errors"], 0
    try:
        conn.connect()
        start.wait()
        while time.perf_counter() < clock["stop"]:
            body = kind.body(index * 1_000_000 + k)
            t0 = time.perf_counter()
            status, data = request(conn, "POST", kind.path, body)
            latencies.append(time.perf_counter() - t0)
            if why := check(status, data, kind.items):
                errors.append(why)
            else:
                out["ok"] += 1
            k += 1
    except Exception as e:  # any failure, the server's or this client's, is counted and shown
        errors.append(f"{type(e).__name__}: {e}")
        start.abort()
    finally:
        conn.close()


def measure(port: int, kind: Kind, clients: int, seconds: float) -> dict:
    """`clients` clients sending `kind` for `seconds`; throughput over the time until the last
    answer (the requests in flight at the deadline are waited for and counted)."""
    outs = [{"latencies": [], "errors": [], "ok": 0} for _ in range(clients)]
    clock: dict[str, float] = {}

    def go() -> None:  # run once, as all have arrived at the barrier and before any is released
        clock["t0"] = time.perf_counter()
        clock["stop"] = clock["t0"] + seconds

    start = threading.Barrier(clients + 1, action=go)
    threads = [
        threading.Thread(target=client, args=(port, kind, i, start, clock, outs[i]), daemon=True)
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass  # a client could not connect: its error is in outs
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - clock.get("t0", time.perf_counter())
    latencies = [x for o in outs for x in o["latencies"]]
    errors = [e for o in outs for e in o["errors"]]
    ms = np.percentile(latencies, [50, 99]) * 1000 if latencies else [float("nan")] * 2
    done = sum(o["ok"] for o in outs)
    return {
        "kind": kind.name,
        "clients": clients,
        "requests": done + len(errors),
        "errors": len(errors),
        "error_samples": errors[:5],
        "seconds": elapsed,
        "requests_per_s": done / elapsed if elapsed else 0.0,
        "items_per_s": done * kind.items / elapsed if elapsed else 0.0,
        "p50_ms": float(ms[0]),
        "p99_ms": float(ms[1]),
    }


def items_to_score(port: int, run: dict) -> list[str]:
    """20 ordinary names when the run's vocabulary holds their letters, else 20 of its own samples
    (a run trained on other data), so every score request is valid."""
    if all(set(name) <= set(run["vocab"]) for name in NAMES):
        return list(NAMES)
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    try:
        status, data = request(conn, "POST", "/api/sample", {"run": run["id"], "n": 200, "seed": 0})
    finally:
        conn.close()
    if status != 200:
        sys.exit(f"sampling items to score from {run['id']} failed: HTTP {status}: {data[:200]!r}")
    items = [it["item"].strip() for it in json.loads(data)["items"] if it["item"].strip()]
    if not items:
        sys.exit(f"{run['id']} samples only empty items: nothing to score")
    return (items * 20)[:20]


def warm_up(port: int, kind: Kind) -> None:
    """One untimed request first, so no measurement pays for the first call's one-off costs."""
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    try:
        status, data = request(conn, "POST", kind.path, kind.body(0))
    finally:
        conn.close()
    if why := check(status, data, kind.items):
        sys.exit(f"warm-up {kind.name} failed: {why}")


def run_label(run_id: str, run_type: str) -> str:
    """The run's id, with its type when the id does not already say it."""
    return run_id if run_id == run_type else f"{run_id} ({run_type})"


def benchmark(port: int, served: list[dict], levels: list[int], seconds: float) -> list[dict]:
    """Every (run, kind, clients) measurement, printed as it finishes; stops at the first with an
    error, since the numbers after a failure mean nothing."""
    rows = []
    for run in served:
        for kind in kinds(run, items_to_score(port, run)):
            warm_up(port, kind)
            ok = [c for c in levels if kind.max_clients is None or c <= kind.max_clients] or [min(levels)]
            for clients in ok:
                row = {"run": run["id"], "type": run["type"], **measure(port, kind, clients, seconds)}
                rows.append(row)
                print(table_row(row), file=sys.stderr)
                where = f"{run['id']}, {kind.name}, {clients} clients"
                if row["errors"]:
                    print("\n".join(table(rows)))
                    why = "\n  ".join(row["error_samples"])
                    sys.exit(f"{row['errors']} of {row['requests']} requests failed ({where}), e.g.:\n  {why}")
                if not row["requests"]:
                    sys.exit(f"no request was sent ({where})")
    return rows


def table_row(r: dict) -> str:
    return (
        f"| {run_label(r['run'], r['type'])} | {r['kind']} | {r['clients']} | {r['requests']} | "
        f"{r['requests_per_s']:.1f} | {r['items_per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |"
    )


HEADER = [
    "| run | request | clients | requests | requests/s | items/s | p50 ms | p99 ms | errors |",
    "|---|---|---|---|---|---|---|---|---|",
]


def table(rows: list[dict]) -> list[str]:
    return [*HEADER, *map(table_row, rows)]


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="*", metavar="RUN_DIR", help="runs to serve (default: train two small ones)")
    p.add_argument("--clients", default="1,4,16", help="concurrency levels, comma-separated (default: 1,4,16)")
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each measurement (default: 10)")
    p.add_argument("--port", type=int, default=0, help="port for the server (default: 0, a free one)")


def run(args) -> tuple[list[dict], dict]:
    try:
        levels = sorted({int(c) for c in args.clients.split(",")})
    except ValueError:
        raise SystemExit(f"--clients {args.clients}: expected comma-separated integers") from None
    if not levels or min(levels) < 1:
        raise SystemExit("--clients: each level must be at least 1")
    if not 0 < args.seconds <= 600:
        raise SystemExit("--seconds must be in (0, 600]")
    levels, seconds = ([1], 0.1) if args.quick else (levels, args.seconds)
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as log:
        run_dirs = args.runs or train_small_runs(Path(tmp), args.threads, args.quick)
        port = args.port or free_port()
        server = start_server(run_dirs, port, log)
        try:
            served = wait_until_up(server, port, log)
            print("\n".join(HEADER), file=sys.stderr)
            rows = benchmark(port, served, levels, seconds)
        finally:
            stop_server(server)
    runs = {r["id"]: r for r in served}
    for r in rows:  # what was served: each run's size, and whether it was trained here (briefly)
        served_run = runs[r["run"]]
        r.update(params=served_run["params"], step=served_run["step"], trained_here=not args.runs)
    return rows, {}
