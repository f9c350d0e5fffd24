"""The JSON API of `makemore serve`: every endpoint, and every bad request a one-line 4xx."""

import json
import math
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from makemore.errors import MakemoreError
from makemore.serve import MAX_BODY, load_runs, make_app

from conftest import run_cli, wait_for


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    from makemore.cli import main

    root = tmp_path_factory.mktemp("served")
    assert (
        main(["train", "--type", "mlp", "--max-steps", "200", "--eval-interval", "100", "-o", str(root / "mlp"), "-q"])
        == 0
    )
    assert main(["train", "--type", "bigram", "-o", str(root / "bigram"), "-q"]) == 0
    small = ["--n-layer", "1", "--n-embd", "16", "--max-steps", "20", "-q"]
    assert main(["train", "--type", "transformer", *small, "-o", str(root / "transformer")]) == 0
    return root


@pytest.fixture(scope="module")
def client(runs_dir):
    runs, skipped = load_runs([str(runs_dir)])
    assert sorted(runs) == ["bigram", "mlp", "transformer"] and skipped == []
    return TestClient(make_app(runs))


def test_runs_and_their_logs(client):
    runs = {r["id"]: r for r in client.get("/api/runs").json()}
    assert runs["mlp"]["type"] == "mlp" and runs["mlp"]["params"] == 11897 and runs["mlp"]["step"] == 200
    assert runs["bigram"]["params"] == 0 and runs["mlp"]["vocab"] == "abcdefghijklmnopqrstuvwxyz"
    rows = client.get("/api/runs/mlp/metrics").json()
    assert [r["step"] for r in rows if "dev" in r] == [100, 200]


def test_sampling_is_seeded_per_request_and_tags_each_item(client):
    body = {"run": "mlp", "n": 50, "seed": 7, "temperature": 0.8}
    first = client.post("/api/sample", json=body).json()
    assert first == client.post("/api/sample", json=body).json()
    assert len(first["items"]) == 50 and {i["split"] for i in first["items"]} <= {"train", "dev", "test", "new"}
    new = client.post("/api/sample", json={**body, "new_only": True, "prefix": "em"}).json()["items"]
    assert all(i["split"] == "new" and i["item"].startswith("em") for i in new)


def test_concurrent_requests_do_not_change_each_others_items(client):
    bodies = [{"run": run, "n": 200, "seed": seed} for seed in range(6) for run in ("mlp", "bigram")]
    alone = [client.post("/api/sample", json=b).json() for b in bodies]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda b: client.post("/api/sample", json=b).json(), bodies * 2))
    assert together == alone * 2


def test_scoring_gives_each_character_its_nll(client):
    result = client.post("/api/score", json={"run": "mlp", "items": ["emma", " ava "]}).json()["items"]
    assert [r["item"] for r in result] == ["emma", "ava"]
    assert [c for c, _ in result[0]["chars"]] == ["e", "m", "m", "a", "."]
    assert result[0]["nll"] == pytest.approx(sum(v for _, v in result[0]["chars"]))


@pytest.mark.parametrize("run", ["mlp", "bigram", "transformer"])
def test_the_next_character_distribution_is_the_models(client, run):
    """P(next | text) from /api/next is what /api/score charges for that character."""
    dist = dict(client.post("/api/next", json={"run": run, "text": "em"}).json()["next"])
    assert len(dist) == 27 and sum(dist.values()) == pytest.approx(1, abs=1e-5)
    scored = client.post("/api/score", json={"run": run, "items": ["emm"]}).json()["items"][0]["chars"]
    assert -math.log(dist["m"]) == pytest.approx(scored[2][1], rel=1e-4)
    start = client.post("/api/next", json={"run": run}).json()["next"]  # the first character of an item
    assert dict(start)["e"] == pytest.approx(math.exp(-scored[0][1]), rel=1e-4)


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/api/sample", {"run": "mlp", "n": 10001}, 422, "n: Input should be less than or equal to 10000"),
        ("/api/sample", {"run": "mlp", "n": 0}, 422, "n: Input should be greater than or equal to 1"),
        ("/api/sample", {"run": "mlp", "temperature": 0}, 422, "temperature: Input should be greater than 0"),
        ("/api/sample", {"run": "mlp", "top_k": 0}, 422, "top_k: "),
        ("/api/sample", {"run": "mlp", "top_p": 1.5}, 422, "top_p: "),
        ("/api/sample", {"run": "mlp", "seed": -1}, 422, "seed: "),
        ("/api/sample", {"run": "mlp", "n": "many"}, 422, "n: Input should be a valid integer"),
        ("/api/sample", {"n": 3}, 422, "run: Field required"),
        ("/api/sample", {"run": "mlp", "prefix": "EMMA"}, 400, "not in the vocabulary: 'A', 'E', 'M'"),
        ("/api/sample", {"run": "mlp", "prefix": "a" * 1001}, 422, "prefix: "),
        ("/api/sample", {"run": "mlp", "prefix": "a" * 999}, 400, "longer than this model can extend"),
        ("/api/sample", {"run": "../mlp"}, 404, "no run '../mlp'"),
        ("/api/score", {"run": "mlp", "items": []}, 422, "items: "),
        ("/api/score", {"run": "mlp", "items": ["emma", " "]}, 400, "cannot score an empty item"),
        ("/api/score", {"run": "mlp", "items": ["a" * 1001]}, 400, "longer than 1,000 characters"),
        ("/api/score", {"run": "mlp", "items": ["emma!"]}, 400, "not in the vocabulary: '!'"),
        ("/api/score", {"run": "nope", "items": ["emma"]}, 404, "no run 'nope'"),
        ("/api/next", {"run": "mlp", "text": "em!"}, 400, "not in the vocabulary: '!'"),
        ("/api/next", {"run": "transformer", "text": "a" * 16}, 400, "reads at most 15 characters"),
    ],
)
def test_bad_requests_are_one_line_4xx(client, path, body, status, message):
    response = client.post(path, json=body)
    error = response.json()["error"]
    assert response.status_code == status and message in error and "\n" not in error, error


def test_bodies_over_a_megabyte_are_refused(client):
    payload = json.dumps({"run": "mlp", "items": ["a" * 900] * (MAX_BODY // 900 + 1)})
    response = client.post("/api/score", content=payload, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "1,048,576 bytes" in response.json()["error"]
    assert client.get("/api/runs").status_code == 200  # and the server goes on


def test_a_folder_skips_a_broken_run_but_a_named_one_must_load(runs_dir, tmp_path):
    shutil.copytree(runs_dir, tmp_path / "runs")
    (tmp_path / "runs" / "mlp" / "model.safetensors").write_bytes(b"not a checkpoint")
    runs, skipped = load_runs([str(tmp_path / "runs")])
    assert list(runs) == ["bigram", "transformer"] and [p.name for p, _ in skipped] == ["mlp"]
    with pytest.raises(MakemoreError, match="cannot serve .*mlp: .*not a readable checkpoint"):
        load_runs([str(tmp_path / "runs" / "mlp")])


def test_serve_without_runs_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "serve", tmp_path / "nothing")
    assert code == 1 and "is not a run directory or a folder of runs" in err
    code, _, err = run_cli(capsys, "serve", tmp_path)
    assert code == 1 and "no runs" in err


def test_the_server_answers_on_localhost_and_stops_on_ctrl_c(runs_dir):
    """The real thing: `makemore serve` under uvicorn, on a free port, asked over HTTP, then SIGINT."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "makemore", "serve", str(runs_dir / "mlp"), "--port", str(port)]
    server = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _get(url + "/api/runs") is not None, timeout=60)
        assert [r["id"] for r in _get(url + "/api/runs")] == ["mlp"]
        request = urllib.request.Request(
            url + "/api/sample", data=json.dumps({"run": "mlp", "n": 3}).encode(), method="POST"
        )
        request.add_header("content-type", "application/json")
        assert len(json.loads(urllib.request.urlopen(request, timeout=30).read())["items"]) == 3
        assert "openapi" in urllib.request.urlopen(url + "/openapi.json", timeout=30).read().decode()
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    assert f"serving 1 run(s) at http://127.0.0.1:{port}" in err and "Traceback" not in err, err


def _get(url):
    try:
        return json.loads(urllib.request.urlopen(url, timeout=5).read())
    except OSError:
        return None
