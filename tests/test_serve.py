"""The JSON API of `makemore serve`: every endpoint, and every bad request a one-line 4xx."""

import json
import math
import shutil
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from fastapi.testclient import TestClient

from makemore.data import Dataset
from makemore.errors import MakemoreError
from makemore.serve import MAX_BODY, WEB, load_runs, make_app

from conftest import get_json, run_cli, serving


@pytest.fixture(scope="module")
def runs_dir(served_runs):
    return served_runs


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


def test_each_run_says_which_views_of_its_inside_it_has(client):
    views = {r["id"]: r["views"] for r in client.get("/api/runs").json()}
    assert views == {
        "bigram": ["bigram", "dlogits"],
        "mlp": ["embedding", "tanh", "dlogits"],
        "transformer": ["embedding", "attention", "dlogits"],
    }


def test_next_says_what_sampling_draws_from_after_temperature_and_top_k(client):
    plain = client.post("/api/next", json={"run": "mlp", "text": "em"}).json()
    assert plain["sampled"] == pytest.approx([p for _, p in plain["next"]], abs=1e-6)
    assert plain["next"][plain["end"]][0] == "."
    top2 = client.post("/api/next", json={"run": "mlp", "text": "em", "top_k": 2, "temperature": 0.5}).json()
    (a, pa), (b, pb) = top2["next"][:2]
    assert top2["sampled"][2:] == [0] * 25  # only the two most likely are kept
    assert top2["sampled"][0] / top2["sampled"][1] == pytest.approx((pa / pb) ** 2, rel=1e-4)  # T = 0.5 squares odds


def test_unique_items_are_distinct_and_a_short_answer_says_why(client):
    answer = client.post("/api/sample", json={"run": "mlp", "n": 200, "seed": 1, "unique": True}).json()
    items = [i["item"] for i in answer["items"]]
    assert len(items) == 200 == len(set(items)) and "note" not in answer and answer["step"] == 200
    stuck = client.post("/api/sample", json={"run": "mlp", "n": 20, "top_k": 1, "unique": True}).json()
    assert len(stuck["items"]) == 1 and "only 1 of 20 items are distinct after 100 rounds" in stuck["note"]


def test_the_tanh_view_shows_the_trained_layer_and_each_initialisation(client):
    t = client.get("/api/runs/mlp/tanh").json()
    labels = [v["label"] for v in t["variants"]]
    assert labels[0] == "trained weights" and labels[1].startswith("run: init") and len(labels) >= 3
    for v in t["variants"]:
        assert len(v["saturated"]) == 32 and all(-1 <= h <= 1 for h in v["h"])
        assert sum(map(sum, v["saturated"])) == sum(abs(h) > t["threshold"] for h in v["h"])


def test_dlogits_of_the_users_items_sum_to_zero_per_target(client):
    d = client.post("/api/dlogits", json={"run": "transformer", "items": ["emma", "ava"]}).json()
    assert d["targets"] == ["e", "m", "m", "a", ".", "a", "v", "a", "."]
    for row, target in zip(d["dlogits"], d["targets"]):
        assert sum(row) == pytest.approx(0, abs=1e-6) and row[d["chars"].index(target)] < 0
    refused = client.post("/api/dlogits", json={"run": "mlp", "items": ["Zoe"]})
    assert refused.status_code == 400 and refused.json()["field"] == "items"


def test_a_run_still_training_is_served_at_its_new_best_and_new_runs_are_added(runs_dir, tmp_path):
    """What train does at a better evaluation (a new model.safetensors), and a run folder created
    while serving: the next look serves both."""
    from dataclasses import replace

    from makemore import checkpoint
    from makemore.serve import Watch

    shutil.copytree(runs_dir, tmp_path / "runs", ignore=shutil.ignore_patterns("bigram"))
    runs, _ = load_runs([str(tmp_path / "runs")])
    client, watch = TestClient(make_app(runs)), Watch(runs, [str(tmp_path / "runs")])
    before = client.get("/api/runs/mlp/evaluation").json()
    best = runs["mlp"].store.load_best()
    torch.manual_seed(0)
    for weight in best.model.parameters():
        weight.data += 0.5 * torch.randn_like(weight)  # other weights: another NLL
    checkpoint.save(tmp_path / "runs" / "mlp" / checkpoint.BEST, replace(best, step=300))
    shutil.copytree(runs_dir / "bigram", tmp_path / "runs" / "late")
    watch.refresh()
    served = {r["id"]: r["step"] for r in client.get("/api/runs").json()}
    assert served == {"mlp": 300, "transformer": 20, "late": 0}
    after = client.get("/api/runs/mlp/evaluation").json()
    assert after["step"] == 300 and after["dev"] != before["dev"]
    assert client.post("/api/sample", json={"run": "late", "n": 2}).json()["step"] == 0


def test_the_evaluation_is_the_runs_nll_on_each_whole_split(client, runs_dir):
    from makemore.runs import evaluate

    served = client.get("/api/runs/mlp/evaluation").json()
    report = evaluate(runs_dir / "mlp")
    for split in ("train", "dev", "test"):
        assert served[split] == pytest.approx(report[split], rel=1e-6)
    percentiles = served["dev_percentiles"]
    assert len(percentiles) == 101 and percentiles == sorted(percentiles)
    # the median dev item: half the dev items' per-character NLLs lie below it
    dev = Dataset.read(runs_dir / "mlp" / "input.txt").items("dev")
    scored = client.post("/api/score", json={"run": "mlp", "items": dev}).json()["items"]
    per_char = [r["nll_per_char"] for r in scored]
    assert sum(v <= percentiles[50] for v in per_char) == pytest.approx(len(per_char) / 2, abs=1)


def test_attention_maps_have_a_layer_per_block_and_a_head_per_head(client):
    result = client.post("/api/attention", json={"run": "transformer", "text": "emma"}).json()
    assert result["tokens"] == [".", "e", "m", "m", "a"]
    layers = result["layers"]
    assert len(layers) == 1 and len(layers[0]) == 4  # --n-layer 1, 4 heads
    for head in layers[0]:
        assert [sum(row) for row in head] == pytest.approx([1] * 5, abs=1e-5)
        assert all(head[i][j] == 0 for i in range(5) for j in range(i + 1, 5))


def test_the_embedding_is_projected_to_two_dimensions(client):
    e = client.get("/api/runs/mlp/embedding").json()
    assert e["chars"][0] == "." and len(e["chars"]) == len(e["points"]) == 27 and e["dims"] == 10
    assert all(len(p) == 2 for p in e["points"]) and 0 < sum(e["explained"]) <= 1 + 1e-9
    assert e["explained"][0] >= e["explained"][1]  # the first direction spreads the most


def test_the_bigram_matrix_is_the_counts_and_their_probabilities(client, runs_dir):
    b = client.get("/api/runs/bigram/bigram").json()
    assert b["chars"][0] == "." and len(b["probs"]) == 27
    assert [sum(row) for row in b["probs"]] == pytest.approx([1] * 27, abs=1e-5)
    data = Dataset.read(runs_dir / "bigram" / "input.txt")
    assert sum(map(sum, b["counts"])) == data.split("train").targets  # every pair of the train split


def test_the_page_and_its_files_are_served_by_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>makemore playground</title>" in page.text
    for path in ("/static/app.js", "/static/style.css"):
        assert client.get(path).status_code == 200, path
    assert "http" not in page.text.replace("http://www.w3.org", "")  # nothing fetched from elsewhere
    docs = client.get("/docs")  # the API reference is ours too: FastAPI's pages load from a CDN
    assert docs.status_code == 200 and "http" not in docs.text and client.get("/redoc").status_code == 404
    for script_file in WEB.iterdir():
        if not script_file.name.endswith(".js"):
            continue
        name, script = script_file.name, script_file.read_text()
        assert "http" not in script.replace("http://www.w3.org/2000/svg", ""), name
        assert client.get(f"/static/{name}").status_code == 200, name  # every module the page imports


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
        ("/api/attention", {"run": "mlp", "text": "emma"}, 400, "a mlp model has no attention"),
        ("/api/attention", {"run": "transformer", "text": "a" * 16}, 400, "at most 15"),
        ("/api/attention", {"run": "transformer", "text": "Emma"}, 400, "not in the vocabulary: 'E'"),
    ],
)
def test_bad_requests_are_one_line_4xx(client, path, body, status, message):
    """...and a refused value names its field, for the page to show the message next to it."""
    response = client.post(path, json=body)
    error = response.json()["error"]
    assert response.status_code == status and message in error and "\n" not in error, error
    if status != 404:
        field = response.json()["field"]
        assert field in body or field + ": Field required" in error


@pytest.mark.parametrize(
    "path, status, message",
    [
        ("/api/runs/bigram/embedding", 400, "a bigram model has no character embedding"),
        ("/api/runs/mlp/bigram", 400, "reads more than the previous character"),
        ("/api/runs/nope/evaluation", 404, "no run 'nope'"),
        ("/api/runs/nope/metrics", 404, "no run 'nope'"),
    ],
)
def test_views_a_run_does_not_have_are_one_line_4xx(client, path, status, message):
    response = client.get(path)
    assert response.status_code == status and message in response.json()["error"]


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


@pytest.mark.slow
def test_the_server_answers_on_localhost_and_stops_on_ctrl_c(runs_dir):
    """The real thing: `makemore serve` under uvicorn, on a free port, asked over HTTP, then SIGINT."""
    with serving(runs_dir / "mlp") as (url, server):
        assert [r["id"] for r in get_json(url + "/api/runs")] == ["mlp"]
        request = urllib.request.Request(
            url + "/api/sample", data=json.dumps({"run": "mlp", "n": 3}).encode(), method="POST"
        )
        request.add_header("content-type", "application/json")
        assert len(json.loads(urllib.request.urlopen(request, timeout=30).read())["items"]) == 3
        assert "openapi" in urllib.request.urlopen(url + "/openapi.json", timeout=30).read().decode()
    assert f"serving 1 run(s) at {url}" in server.stderr_text and "Traceback" not in server.stderr_text


def test_the_documented_answers_have_the_real_answers_keys(client):
    """/docs shows an example answer of each endpoint: its keys are the real answer's."""
    from makemore.serve import ANSWERS

    real = {
        "runs": client.get("/api/runs").json(),
        "metrics": client.get("/api/runs/mlp/metrics").json(),
        "sample": client.post("/api/sample", json={"run": "mlp", "n": 20, "top_k": 1, "unique": True}).json(),
        "next": client.post("/api/next", json={"run": "mlp", "text": "em"}).json(),
        "evaluation": client.get("/api/runs/mlp/evaluation").json(),
        "embedding": client.get("/api/runs/mlp/embedding").json(),
        "bigram": client.get("/api/runs/bigram/bigram").json(),
        "tanh": client.get("/api/runs/mlp/tanh").json(),
        "dlogits": client.post("/api/dlogits", json={"run": "mlp", "items": ["ava"]}).json(),
        "attention": client.post("/api/attention", json={"run": "transformer", "text": "em"}).json(),
        "score": client.post("/api/score", json={"run": "mlp", "items": ["ava"]}).json(),
    }
    keys = lambda x: sorted(x[0] if isinstance(x, list) else x)  # noqa: E731
    for name, example in ANSWERS.items():
        assert keys(example) == keys(real[name]), name
    assert keys(ANSWERS["sample"]["items"]) == keys(real["sample"]["items"])
    assert keys(ANSWERS["tanh"]["variants"]) == keys(real["tanh"]["variants"])
    assert keys(ANSWERS["score"]["items"]) == keys(real["score"]["items"])
    docs = client.get("/openapi.json").json()["paths"]
    assert (
        docs["/api/sample"]["post"]["responses"]["200"]["content"]["application/json"]["example"] == ANSWERS["sample"]
    )


@pytest.fixture(scope="module")
def mixed_client(runs_dir):
    """The mlp and the transformer served with their ensemble (`makemore serve A B --ensemble`)."""
    from makemore.serve import with_ensemble

    runs, _ = load_runs([str(runs_dir / "mlp"), str(runs_dir / "transformer")])
    return TestClient(make_app(with_ensemble(runs)))


def test_the_ensemble_samples_scores_and_predicts_from_the_average_of_its_runs(mixed_client):
    listed = {r["id"]: r for r in mixed_client.get("/api/runs").json()}
    mix = listed["ensemble"]
    assert mix["type"] == "ensemble of 2" and mix["members"] == ["mlp", "transformer"] and mix["views"] == []
    assert mix["params"] == listed["mlp"]["params"] + listed["transformer"]["params"]
    dists = {r: dict(mixed_client.post("/api/next", json={"run": r, "text": "em"}).json()["next"]) for r in listed}
    for c in dists["ensemble"]:
        assert dists["ensemble"][c] == pytest.approx((dists["mlp"][c] + dists["transformer"][c]) / 2, abs=1e-6)
    scored = {
        r: mixed_client.post("/api/score", json={"run": r, "items": ["emma"]}).json()["items"][0]["chars"]
        for r in listed
    }
    for (_, mixed), (_, a), (_, b) in zip(scored["ensemble"], scored["mlp"], scored["transformer"]):
        assert mixed == pytest.approx(-math.log((math.exp(-a) + math.exp(-b)) / 2), rel=1e-5)
    body = {"run": "ensemble", "n": 30, "seed": 3, "prefix": "a"}
    drawn = mixed_client.post("/api/sample", json=body).json()["items"]
    assert len(drawn) == 30 and all(i["item"].startswith("a") for i in drawn)
    assert drawn == mixed_client.post("/api/sample", json=body).json()["items"]
    assert mixed_client.get("/api/runs/ensemble/metrics").json() == []


def test_the_ensemble_is_evaluated_on_its_runs_shared_splits(mixed_client, runs_dir):
    from makemore import runs as commands

    report = mixed_client.get("/api/runs/ensemble/evaluation").json()
    expected = commands.evaluate_ensemble([runs_dir / "mlp", runs_dir / "transformer"])
    assert all(report[s] == pytest.approx(expected[s], rel=1e-6) for s in ("train", "dev", "test"))
    assert len(report["dev_percentiles"]) == 101 and report["dev_percentiles"] == sorted(report["dev_percentiles"])


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("get", "/api/runs/ensemble/embedding", None),
        ("get", "/api/runs/ensemble/tanh", None),
        ("get", "/api/runs/ensemble/bigram", None),
        ("post", "/api/dlogits", {"run": "ensemble", "items": ["ava"]}),
        ("post", "/api/attention", {"run": "ensemble", "text": "ava"}),
    ],
)
def test_views_of_one_models_inside_are_refused_for_the_ensemble(mixed_client, method, path, body):
    response = getattr(mixed_client, method)(path, **({"json": body} if body else {}))
    assert response.status_code == 400 and "is per model; pick one of the runs in ensemble" in response.json()["error"]


def test_an_ensemble_of_other_vocabularies_is_refused_and_of_other_data_not_evaluated(runs_dir):
    from dataclasses import replace

    from makemore.data import Vocab
    from makemore.serve import with_ensemble

    runs, _ = load_runs([str(runs_dir / "mlp"), str(runs_dir / "transformer")])
    other = runs["transformer"]
    other.best = replace(other.best, run=replace(other.best.run, input_sha256="another file"))
    report = TestClient(make_app(with_ensemble(runs))).get("/api/runs/ensemble/evaluation").json()
    assert report["dev"] is None and "trained on other data" in report["unavailable"]
    other.best = replace(other.best, vocab=Vocab(tuple("abcdefghijklmnopqrstuvwxy-")))
    with pytest.raises(MakemoreError, match="--ensemble: model 2 of the ensemble has another vocabulary"):
        with_ensemble(runs)
    with pytest.raises(MakemoreError, match="serve at least two"):
        with_ensemble({"mlp": runs["mlp"]})


@pytest.fixture(scope="module")
def shared_client(runs_dir, tmp_path_factory):
    """The mlp exported without its data (`makemore export --format hf`), served."""
    from makemore.cli import main

    folder = tmp_path_factory.mktemp("shared") / "mlp-hf"
    assert main(["export", "-o", str(runs_dir / "mlp"), "--to", str(folder)]) == 0
    runs, _ = load_runs([str(folder)])
    return TestClient(make_app(runs)), json.loads((folder / "config.json").read_text())


def test_an_export_without_data_shows_its_recorded_numbers_and_refuses_what_needs_data(shared_client, client):
    shared, config = shared_client
    (listed,) = shared.get("/api/runs").json()
    assert listed["id"] == "mlp-hf" and listed["has_data"] is False
    report = shared.get("/api/runs/mlp-hf/evaluation").json()
    assert report["recorded"] is True and report["dev_percentiles"] == []
    assert [report[s] for s in ("train", "dev", "test")] == [config["nll"][s] for s in ("train", "dev", "test")]
    assert report["dev"] == pytest.approx(client.get("/api/runs/mlp/evaluation").json()["dev"], rel=1e-6)
    refused = shared.post("/api/sample", json={"run": "mlp-hf", "n": 3, "new_only": True})
    assert refused.status_code == 400 and refused.json()["field"] == "new_only"
    assert "exported without its data" in refused.json()["error"]
    assert {i["split"] for i in shared.post("/api/sample", json={"run": "mlp-hf", "n": 5}).json()["items"]} == {
        "unknown"
    }
    tanh = shared.get("/api/runs/mlp-hf/tanh")
    assert tanh.status_code == 400 and "exported without its data" in tanh.json()["error"]
    dlogits = shared.post("/api/dlogits", json={"run": "mlp-hf", "items": ["ava"]})  # the user's items: no data needed
    assert dlogits.status_code == 200 and dlogits.json()["targets"] == ["a", "v", "a", "."]


@pytest.mark.parametrize("model_type", ["wavenet", "wavenet-conv"])
def test_a_wavenet_shows_its_first_tanh_level(model_type, tmp_path):
    """Each level of the tree is a tanh layer: the tanh view shows the first (the characters' pairs),
    one column per neuron (8), each cell the share of the example's positions where it saturates."""
    from makemore.cli import main

    tiny = ["--n-embd", "4", "--n-hidden", "8", "--max-steps", "10", "--eval-interval", "10", "-q"]
    assert main(["train", "--type", model_type, *tiny, "-o", str(tmp_path / "wn")]) == 0
    runs, _ = load_runs([str(tmp_path / "wn")])
    client = TestClient(make_app(runs))
    assert "tanh" in client.get("/api/runs").json()[0]["views"]
    view = client.get("/api/runs/wn/tanh").json()
    assert [v["label"] for v in view["variants"]][0] == "trained weights"
    for v in view["variants"]:
        assert len(v["saturated"]) == 32 and all(-1 <= h <= 1 for h in v["h"])
        h = torch.tensor(v["h"]).reshape(32, v["positions"], 8)  # examples, positions, neurons
        assert v["saturated"] == (h.abs() > view["threshold"]).double().mean(1).tolist()
    if model_type == "wavenet":
        assert view["variants"][0]["positions"] == 4  # the 8 characters of context read as 4 pairs


def test_a_text_mode_run_is_not_served_as_items(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question\n" * 20)
    run_dir = tmp_path / "text-run"
    argv = ["train", "--text", "--type", "bigram", "-i", text, "-o", run_dir, "-q"]
    assert run_cli(capsys, *argv)[0] == 0
    with pytest.raises(MakemoreError, match="text mode.*--length N"):
        load_runs([str(run_dir)])
