"""The playground page in a real browser: `makemore serve` on a free localhost port, driven by headless
Chromium through Selenium. One browser and one server serve every test of this file (three small runs
and a counted bigram of city names, whose 66 characters include a space, '.', "'", '-' and accented
letters). Each test waits for the page to settle on a DOM condition, never for a fixed time. The first
test of the generate card saves a screenshot (to $MAKEMORE_SCREENSHOT_DIR when set). Where Chromium is
missing the tests are skipped, except under CI=true, where a missing browser fails the run (`.ci/run`
installs it)."""

import json
import os
import shutil
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import get_json, serving

pytestmark = pytest.mark.slow  # real processes: the suite's slow tier

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
CITIES = (
    "São Paulo, New York, Los Angeles, St. Louis, Winston-Salem, Coeur d'Alene, Zürich, Kraków, Malmö, Reykjavík, "
    "Córdoba, Bogotá, Genève, Québec, Düsseldorf, Ft. Worth, Mt. Vernon, Saint-Étienne, L'Aquila, Ho Chi Minh City, "
    "Rio de Janeiro, Buenos Aires, Cape Town, Kuala Lumpur, Tel Aviv, Hong Kong, San José, Santa Fe, Las Vegas, "
    "Baton Rouge, O'Fallon, Wilkes-Barre, Valparaíso, Medellín, Mérida, Cádiz, Málaga, Gdańsk, Poznań, Århus, "
    "Tromsø, Ålesund, Jyväskylä, Linköping, Nürnberg, Köln, Münster, Besançon, Orléans, Bad Homburg vor der Höhe"
).split(", ")


def _need_browser():
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        why = f"no {', '.join(missing)}: apt-get install chromium chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def runs(served_runs, tmp_path_factory):
    """A copy of the served runs (tests append to a log and write checkpoints, as training would), and
    a counted bigram of city names: 65 characters, more than the 27 a names model has."""
    from makemore.cli import main

    root = tmp_path_factory.mktemp("web")
    shutil.copytree(served_runs, root / "runs")
    (root / "cities.txt").write_text("\n".join(CITIES) + "\n", encoding="utf-8")
    assert (
        main(["train", "--type", "bigram", "-i", str(root / "cities.txt"), "-o", str(root / "runs" / "cities"), "-q"])
        == 0
    )
    return root / "runs"


@pytest.fixture(scope="module")
def server(runs):
    with serving(runs) as (url, process):
        yield url
    assert "Traceback" not in process.stderr_text, process.stderr_text


def settled(browser, url):
    """Load the page and wait until it settled: every run's NLLs in, samples drawn, an item inspected."""
    browser.get(url)
    wait(browser, lambda: len(find(browser, "#runs tbody tr")) >= 4 and not find(browser, "#runs .pending"))
    wait(browser, lambda: find(browser, "#samples li") and find(browser, "#panes .pane .next rect"))


@pytest.fixture(scope="module")
def loaded(browser, server):
    settled(browser, server)
    return browser


@pytest.fixture
def page(loaded):
    """The page (loaded once for the file: each test sets the fields it uses), at desktop size."""
    loaded.set_window_size(1280, 1000)
    loaded.get_log("browser")  # only what the test itself causes is read
    return loaded


def wait(browser, condition, timeout=60):
    """Until condition() holds: the page settled. A redraw between finding an element and reading it
    (a stale element) only means: not settled yet, look again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException,))
    return waiting.until(lambda _: condition())


def js(browser, script: str, *args):
    """Run script in the page and return its value: everything it reads, it reads between two redraws
    (the page's JavaScript runs one task at a time), so no element goes stale on the way."""
    return browser.execute_script(script, *args)


def find(browser, css):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, css)


def texts(browser, css) -> list[str]:
    """The text of every element matching css, read in one go (the page may redraw them meanwhile)."""
    return js(browser, "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", css)


def text(browser, css) -> str:
    return (texts(browser, css) or [""])[0]


def fill(browser, form: str, **values):
    """Set fields of a form as a user would leave them (input and change events fired)."""
    js(
        browser,
        """const form = document.querySelector(arguments[0]);
        for (const [name, value] of Object.entries(arguments[1])) {
          const input = form.elements[name];
          if (input.type === 'checkbox') input.checked = value; else input.value = value;
          input.dispatchEvent(new Event('input', {bubbles: true}));
          input.dispatchEvent(new Event('change', {bubbles: true}));
        }""",
        form,
        values,
    )


def submit(browser, form: str):
    js(browser, "document.querySelector(arguments[0]).requestSubmit()", form)


def generated(browser, **values) -> list[str]:
    """Fill the generate form, submit it, and wait for the list its answer draws."""
    js(
        browser,
        "document.querySelector('#sample-summary').textContent = ''; document.querySelector('#generate').reset()",
    )
    fill(browser, "#generate", **values)
    submit(browser, "#generate")  # the form is busy from the submit on (set before the request goes out)
    settled = lambda: not find(browser, "#generate[aria-busy]")  # an earlier error may still be shown
    wait(browser, lambda: settled() and (text(browser, "#sample-summary") or text(browser, "#generate .error")))
    return texts(browser, "#samples li .item")


def inspected(browser, item: str, run: str, other: str = ""):
    js(browser, "document.querySelector('#panes').replaceChildren()")
    fill(browser, "#inspect", text=item, run=run, other=other)
    submit(browser, "#inspect")
    wait(browser, lambda: find(browser, "#panes .pane") and not find(browser, "#inspect[aria-busy]"))


def post_json(url: str, body: dict):
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=30).read())


def console_errors(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def downloads(browser) -> None:
    """Catch the page's downloads: each link it clicks is kept (name and contents) instead of saved."""
    js(
        browser,
        """window.saved = [];
        HTMLAnchorElement.prototype.click = function () {
          const name = this.download;
          fetch(this.href).then(r => r.text()).then(body => window.saved.push({name, body}));
        };""",
    )


def saved(browser, count=1) -> list[dict]:
    wait(browser, lambda: len(js(browser, "return window.saved")) >= count)
    return js(browser, "return window.saved")


# --- the page shows the runs as they are ----------------------------------------------------------------


def test_the_page_shows_every_run_with_its_nll_and_loss_curves(page):
    rows = dict(
        js(page, "return [...document.querySelectorAll('#runs tbody tr')].map(r => [r.dataset.run, r.textContent])")
    )
    assert {"bigram", "mlp", "transformer", "cities"} <= set(rows)
    assert "11,897" in rows["mlp"] and "200" in rows["mlp"]  # parameters, best step
    for cell in texts(page, "#runs td[data-split]"):
        assert 1.5 < float(cell) < 4, cell  # an NLL in nats per character
    wait(page, lambda: len(find(page, "#loss-chart .series")) == 4)
    assert {"mlp", "transformer"} <= set(texts(page, "#loss-chart text.run-name"))  # names on the chart
    times = "return import('/static/core.js').then(m => [59.9, 119.6, 3725].map(m.duration))"
    assert js(page, times) == ["59.9 s", "2 min 0 s", "1 h 2 min"]  # training times: never "1 min 60 s"
    assert console_errors(page) == []


def test_unticking_a_run_takes_its_curve_off_the_chart_at_once(page):
    curves = lambda: len(find(page, "#loss-chart path"))  # noqa: E731
    before = curves()
    js(page, "document.querySelector('#runs tr[data-run=mlp] input').click()")
    wait(page, lambda: curves() == before - 2, timeout=10)  # its training loss and its dev NLL
    js(page, "document.querySelector('#runs tr[data-run=mlp] input').click()")
    wait(page, lambda: curves() == before, timeout=10)


def test_a_run_still_training_is_served_at_its_new_best_and_new_runs_appear(page, runs):
    """What train does at a better evaluation: a new model.safetensors, a longer log; and a run folder
    created while the page is open."""
    from makemore import checkpoint
    from makemore.store import RunStore

    best = RunStore.open(runs / "mlp").load_best()
    torch.manual_seed(0)
    for weight in best.model.parameters():
        weight.data += 0.1 * torch.randn_like(weight)
    checkpoint.save(runs / "mlp" / checkpoint.BEST, replace(best, step=300))
    with open(runs / "mlp" / "metrics.jsonl", "a") as log:
        log.write(json.dumps({"step": 300, "loss": 2.3}) + "\n" + json.dumps({"step": 300, "dev": 2.35}) + "\n")
    shutil.copytree(runs / "bigram", runs / "late")
    step = lambda: text(page, "#runs tr[data-run=mlp] [data-col=step]")  # noqa: E731
    wait(page, lambda: step() == "300" and find(page, "#runs tr[data-run=late]"), timeout=30)
    wait(page, lambda: not find(page, "#runs tr[data-run=mlp] .pending"))  # the new checkpoint evaluated
    assert "300" in texts(page, "#loss-chart text")  # the step axis grew to step 300
    generated(page, run="mlp", n=5)
    assert "from mlp at step 300" in text(page, "#sample-summary")
    assert "late" in js(page, "return [...document.querySelector('#generate [name=run]').options].map(o => o.value)")


def test_the_next_character_chart_shows_every_character_and_the_actual_one_apart(page):
    inspected(page, "São Paulo", "cities", "mlp")
    wait(page, lambda: find(page, "#panes .pane[data-run=cities] .next rect"))
    chart = js(
        page,
        """const pane = document.querySelector('#panes .pane[data-run=cities]');
        const bars = [...pane.querySelectorAll('.next rect')];
        const labels = [...pane.querySelectorAll('.next text.label')].map(t => t.getBoundingClientRect());
        const fills = (actual) => bars.filter(b => b.classList.contains('actual') === actual)
            .map(b => b.getAttribute('fill'));
        return {bars: bars.length, actual: fills(true), others: [...new Set(fills(false))],
                overlaps: labels.slice(1).filter((r, i) => r.left < labels[i].right - 0.5).length}""",
    )
    vocab = next(r["vocab"] for r in get_json(page.current_url.split("?")[0] + "api/runs") if r["id"] == "cities")
    assert chart["bars"] == len(vocab) + 1  # every character and the end
    assert len(chart["actual"]) == 1 and chart["actual"][0] not in chart["others"]
    assert chart["overlaps"] == 0  # no label runs into the next one
    # the run the item is foreign to says so in its own pane, naming itself; the other pane stays
    assert "mlp:" in text(page, "#panes .pane[data-run=mlp] .pane-error") and "'S'" in text(page, ".pane-error")
    assert text(page, "#inspect .error") == ""


def test_the_download_is_named_after_the_run_that_drew_the_list(page):
    generated(page, run="transformer", n=5)
    fill(page, "#generate", run="mlp")  # chosen, not yet generated
    downloads(page)
    js(page, "document.querySelector('#download-txt').click()")
    [file] = saved(page)
    assert file["name"] == "transformer-samples.txt"
    assert file["body"].split() == texts(page, "#samples li .item")


def test_an_item_one_run_cannot_read_leaves_the_other_pane_and_clears_old_attention(page):
    fill(page, "#inside", run="transformer")
    inspected(page, "emma", "transformer", "mlp")
    wait(page, lambda: len(find(page, "#attention figure")) == 4)
    fill(page, "#inspect", text="ava")  # typed, not inspected: the maps stay over what was inspected
    fill(page, "#inside", run="transformer")
    wait(page, lambda: len(find(page, "#attention figure")) == 4)
    assert js(page, "return document.querySelector('#attention figure').querySelectorAll('rect').length") == 15
    assert len(find(page, "#attention details.values tbody tr")) == 4 * 5  # each weight, readable without hover
    inspected(page, "abcdefghijklmnopqrst", "transformer", "mlp")  # 20 characters; the transformer reads 15
    wait(page, lambda: find(page, "#attention .error") and not find(page, "#attention figure"))
    assert "transformer" in text(page, "#attention .error")
    assert "transformer:" in text(page, "#panes .pane[data-run=transformer] .pane-error")
    assert len(find(page, "#panes .pane[data-run=mlp] .strip button")) == 21  # 20 characters and the end


def test_long_items_wrap_inside_their_column_at_phone_width(page):
    page.set_window_size(400, 850)
    try:
        generated(page, run="cities", n=40, temperature=2)
        wait(page, lambda: len(find(page, "#samples li")) == 40)
        overflowing = js(
            page,
            """return [...document.querySelectorAll('#samples li')]
                .filter(li => li.scrollWidth > li.clientWidth + 1).map(li => li.textContent)""",
        )
        assert overflowing == []
        assert js(page, "return document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        page.set_window_size(1280, 1000)


def test_new_only_counts_distinct_items_and_says_why_it_has_fewer(page):
    items = generated(page, run="mlp", n=20, temperature=0.1, new_only=True, unique=False)
    assert f"({len(set(items))} distinct)" in text(page, "#sample-summary")
    items = generated(page, run="mlp", n=20, temperature=1, new_only=True, unique=True)
    assert len(items) == 20 == len(set(items))
    items = generated(page, run="mlp", n=20, top_k=1, new_only=True, unique=True)  # one item can be drawn
    summary = text(page, "#sample-summary")
    assert summary.startswith(f"{len(items)} item") and f"only {len(items)} of 20 items are distinct" in summary


def test_a_stopped_server_shows_a_banner_that_clears_when_it_answers(page):
    page.execute_cdp_cmd("Network.enable", {})
    conditions = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    page.execute_cdp_cmd("Network.emulateNetworkConditions", {**conditions, "offline": True})
    try:
        submit(page, "#generate")
        wait(page, lambda: js(page, "return !document.querySelector('#offline').hidden"))
        wait(page, lambda: not find(page, "#generate[aria-busy]"))
        assert find(page, "#generate .invalid") == [] and text(page, "#generate .error") == ""
        assert "Failed to fetch" not in js(page, "return document.body.textContent")
    finally:
        page.execute_cdp_cmd("Network.emulateNetworkConditions", {**conditions, "offline": False})
    wait(page, lambda: js(page, "return document.querySelector('#offline').hidden"), timeout=20)
    assert text(page, "#status").endswith("runs served")


def test_a_space_and_a_literal_dot_are_told_from_the_end(page):
    inspected(page, "St. Louis", "cities")
    chars = texts(page, "#panes .pane[data-run=cities] .strip .ch")
    assert chars == ["S", "t", ".", "␣", "L", "o", "u", "i", "s", "⏎"]
    assert js(page, "return document.querySelector('#panes .strip button:last-child').classList.contains('end')")
    wait(page, lambda: "⏎" in texts(page, "#panes .pane[data-run=cities] .next text.label"))
    assert {"␣", "."} <= set(texts(page, "#panes .pane[data-run=cities] .next text.label"))


# --- feedback, state in the address, exports --------------------------------------------------------------


def test_generate_is_busy_while_it_draws_and_the_slider_draws_again(page):
    js(
        page,
        """window.seen = [];
        const button = document.querySelector('#generate button[type=submit]');
        new MutationObserver(() => window.seen.push([button.disabled, button.textContent]))
            .observe(button, {attributes: true, childList: true, characterData: true, subtree: true});""",
    )
    items = generated(page, run="transformer", n=2000)
    assert [True, "generating 2,000…"] in js(page, "return window.seen")
    assert find(page, "#generate button[type=submit]")[0].is_enabled() and len(items) == 2000
    assert set(texts(page, "#samples li .tag")) <= {"train", "dev", "test", "new"}
    before = texts(page, "#samples li .item")
    js(
        page,
        "const s = document.querySelector('[name=temperature_slider]'); s.value = 1.6;"
        "s.dispatchEvent(new Event('input'))",
    )
    wait(page, lambda: texts(page, "#samples li .item") != before)
    assert find(page, "#generate [name=temperature]")[0].get_property("value") == "1.6"
    assert "t=1.6" in page.current_url  # the view is in the address
    assert console_errors(page) == []


def test_the_time_shown_counts_the_request_and_drawing_the_list(page):
    """The summary's "drawn and shown in N ms" runs from the click until the list is in the page and a
    frame has been drawn: never less than the request's own span (from the moment it went out) to the
    first frame after the list went in, nor than the server's time for it (its Server-Timing header)."""
    js(
        page,
        """performance.clearResourceTimings();  // the page's polls fill the buffer, and a full one records nothing
        window.framed = null;
        new MutationObserver((_, observer) => {  // the list went in: the first frame after it
          observer.disconnect();
          requestAnimationFrame(() => { window.framed = performance.now(); });
        }).observe(document.querySelector('#samples'), {childList: true});""",
    )
    generated(page, run="mlp", n=5000)
    wait(page, lambda: js(page, "return window.framed !== null"))
    shown = int(text(page, "#sample-summary").split(" ms")[0].split(" in ")[-1])
    request, server = js(
        page,
        """const [entry] = performance.getEntriesByType('resource').filter(e => e.name.endsWith('/api/sample'));
        const server = entry.serverTiming.find(t => t.name === 'app');
        return [Math.round(window.framed - entry.startTime), server.duration]""",
    )
    assert shown >= request and shown >= server > 0


def test_a_slider_drag_cancels_the_requests_it_supersedes(page):
    """Four stops of the temperature slider, each while the previous one's answer is still on its way
    (the answers are held in the page until released, as a slow server would): the three superseded
    requests are aborted, and the list drawn is the last value's."""
    generated(page, run="mlp", n=12)
    js(
        page,
        """window.realFetch = window.realFetch || window.fetch;
        window.held = []; window.aborted = 0;
        window.fetch = (url, options = {}) => {
          const answer = window.realFetch(url, options);  // sent now, with the page's signal
          if (!String(url).endsWith('/api/sample')) return answer;
          return new Promise((resolve, reject) => {
            options.signal.addEventListener('abort', () => {
              window.aborted++;
              reject(new DOMException('superseded', 'AbortError'));
            });
            window.held.push({body: JSON.parse(options.body), release: () => answer.then(resolve, reject)});
          });
        };""",
    )
    try:
        temperatures = [0.5, 0.8, 1.3, 1.7]
        for k, t in enumerate(temperatures, 1):
            js(
                page,
                "const s = document.querySelector('[name=temperature_slider]'); s.value = arguments[0];"
                "s.dispatchEvent(new Event('input', {bubbles: true}))",
                t,
            )
            wait(page, lambda k=k: js(page, "return window.held.length") == k)  # this stop's request is out
        assert js(page, "return window.aborted") == 3
        assert find(page, "#generate[aria-busy]")  # busy with the last one still, though three ended
        assert js(page, "return window.held.map(h => h.body.temperature)") == temperatures
        js(page, "window.held.forEach(h => h.release())")  # the superseded answers arrive too: none is drawn
        last = js(page, "return window.held.at(-1).body")
        expected = [s["item"] for s in post_json(page.current_url.split("?")[0] + "api/sample", last)["items"]]
        assert len(expected) == 12
        wait(page, lambda: texts(page, "#samples li .item") == expected and not find(page, "#generate[aria-busy]"))
        assert "t=1.7" in page.current_url and "12 items" in text(page, "#sample-summary")
    finally:
        js(page, "window.fetch = window.realFetch")


def test_the_address_restores_a_shared_view(page, server):
    try:
        page.get(server + "/?run=transformer&n=7&t=0.7&prefix=m&item=ava&a=mlp&b=bigram&log=1")
        wait(page, lambda: len(find(page, "#samples li")) == 7 and len(find(page, "#panes .pane")) == 2)
        assert all(item.startswith("m") for item in texts(page, "#samples li .item"))
        assert js(page, "return document.querySelector('#generate [name=temperature]').value") == "0.7"
        assert texts(page, "#panes .pane h3") == ["mlp (mlp)", "bigram (bigram)"]
        assert texts(page, "#panes .pane[data-run=mlp] .strip .ch") == ["a", "v", "a", "⏎"]
        wait(page, lambda: "log scale" in " ".join(texts(page, "#loss-chart text")))
    finally:
        settled(page, server)  # the page as the other tests expect it


def test_samples_export_as_csv_and_json_with_splits_and_scores(page):
    items = generated(page, run="mlp", n=6, seed=3)
    downloads(page)
    js(page, "document.querySelector('#download-csv').click(); document.querySelector('#download-json').click()")
    files = {f["name"]: f["body"] for f in saved(page, 2)}
    lines = files["mlp-samples.csv"].splitlines()
    assert lines[0] == "item,split,nll,nll_per_char" and [line.split(",")[0] for line in lines[1:]] == items
    assert all(float(line.split(",")[2]) > 0 for line in lines[1:])
    exported = json.loads(files["mlp-samples.json"])
    assert exported["run"] == "mlp" and exported["seed"] == 3 and exported["step"] in (200, 300)
    assert [e["item"] for e in exported["items"]] == items and all(
        e["split"] and e["nll"] > 0 for e in exported["items"]
    )


def test_a_bad_field_is_shown_next_to_it_and_the_page_goes_on(page, tmp_path):
    generated(page, run="mlp", prefix="Zo")  # a capital letter: not in the names' vocabulary
    wait(page, lambda: "not in the vocabulary: 'Z'" in text(page, "#generate .error"))
    assert "invalid" in find(page, "#generate [name=prefix]")[0].get_attribute("class")
    assert all("/api/sample" in e and "400" in e for e in console_errors(page))  # the refusal, and only it
    items = generated(page, run="mlp", prefix="zo", n=20)
    wait(page, lambda: text(page, "#generate .error") == "")
    assert "invalid" not in find(page, "#generate [name=prefix]")[0].get_attribute("class")
    assert all(item.startswith("zo") for item in items)
    out = Path(os.environ.get("MAKEMORE_SCREENSHOT_DIR", tmp_path))
    height = js(page, "return document.documentElement.scrollHeight")
    page.set_window_size(1280, height)
    js(page, "window.scrollTo(0, 0)")
    assert page.save_screenshot(str(out / "playground.png")) and (out / "playground.png").stat().st_size > 10_000
    page.set_window_size(1280, 1000)


# --- step through a name ----------------------------------------------------------------------------------


def test_stepping_through_a_generated_name(page):
    from selenium.webdriver.common.keys import Keys

    items = generated(page, run="transformer", n=5, top_k=3, temperature=1)
    js(page, "document.querySelector('#samples li .item').click()")
    wait(page, lambda: texts(page, "#step-name button") and find(page, "#step-sampled rect"))
    assert "".join(texts(page, "#step-name button")) == items[0] + "⏎"
    sampled = lambda: js(
        page, "return [...document.querySelectorAll('#step-sampled rect')].map(r => +r.getAttribute('height'))"
    )  # noqa: E731
    assert sum(h > 0.5 for h in sampled()) == 3  # top-k 3: three characters can be drawn
    assert "(3 characters kept)" in text(page, "#step-sampled-title")
    assert text(page, ".step-name button.selected") == items[0][0]
    assert "NLL so far 0.000" in text(page, "#step-facts")
    find(page, "#step-forward")[0].send_keys(Keys.ARROW_RIGHT)  # the keyboard steps too
    wait(
        page,
        lambda: (
            js(
                page,
                "return [...document.querySelectorAll('#step-name button')]"
                ".findIndex(b => b.classList.contains('selected'))",
            )
            == 1
        ),
    )
    wait(
        page,
        lambda: "NLL so far 0.000" not in text(page, "#step-facts") and "over 1 character" in text(page, "#step-facts"),
    )
    js(page, "document.querySelector('#step-again').click()")  # another draw at step 2, from the top 3
    wait(page, lambda: find(page, "#step-model rect.actual"))
    assert js(page, "return document.querySelector('#step-sampled rect.actual').getAttribute('height')") != "0.5"
    wait(page, lambda: len(find(page, "#step-attention tbody tr")) == 4)  # the transformer's 4 heads at this step
    find(page, "#step-model rect.bar")[0].send_keys(Keys.ENTER)  # a bar picked by keyboard: the most likely
    wait(page, lambda: js(page, "return document.querySelector('#step-model rect.bar').classList.contains('actual')"))
    wait(page, lambda: len(find(page, "#step-attention tbody tr")) == 4)
    # the step's attention beside the two distributions on a desktop, under them on a phone
    boxes = lambda: js(  # noqa: E731
        page,
        """const box = (s) => document.querySelector(s).getBoundingClientRect().toJSON();
        return {charts: box('.step-charts'), attention: box('#step-attention'),
                fits: document.documentElement.scrollWidth <= window.innerWidth}""",
    )
    try:
        for width, height in ((1400, 900), (400, 850)):
            page.set_window_size(width, height)
            wait(page, lambda w=width: js(page, "return window.innerWidth") == w)
            layout = boxes()
            charts, attention, fits = layout["charts"], layout["attention"], layout["fits"]
            beside = attention["left"] >= charts["right"] and attention["top"] < charts["bottom"]
            assert beside == (width == 1400) and fits, (width, charts, attention)
            assert width == 1400 or attention["top"] >= charts["bottom"]  # on a phone: under them
    finally:
        page.set_window_size(1280, 1000)


# --- the lectures' other views ----------------------------------------------------------------------------


def test_look_inside_the_tanh_layer_and_dlogits_of_your_items(page):
    fill(page, "#inside", run="mlp")
    wait(page, lambda: find(page, ".tanh figure canvas") and find(page, ".dlogits rect"))
    variants = texts(page, ".tanh figcaption")
    assert variants[0].startswith("trained weights:") and "% saturated" in variants[0] and len(variants) >= 3
    fill(page, ".dlogits-form", items="emma, ava")
    submit(page, ".dlogits-form")
    wait(page, lambda: len(find(page, ".dlogits rect")) == 9 * 27)  # 4 + 1 and 3 + 1 targets, 27 logits each
    fill(page, "#inside", run="mlp")  # the embedding and its characters
    wait(page, lambda: len(find(page, ".scatter circle")) == 27)


def test_a_large_bigram_table_is_read_out_instead_of_printed(page):
    fill(page, "#inside", run="cities")
    wait(page, lambda: find(page, ".matrix svg") and find(page, ".bigram-row li"))
    cells = js(page, "return document.querySelectorAll('.matrix g[data-i]').length")
    printed = js(page, "return document.querySelectorAll('.matrix g[data-i] text').length")
    assert cells == 66 * 66 and printed == 0  # too many to print in: read out below instead
    js(page, "const s = document.querySelector('.matrix select'); s.value = '1'; s.dispatchEvent(new Event('change'))")
    wait(page, lambda: text(page, ".bigram-row li").startswith("space →"))
    fill(page, "#inside", run="bigram")  # 27 characters: printed in each cell
    wait(page, lambda: js(page, "return document.querySelectorAll('.matrix g[data-i] text').length") == 2 * 27 * 27)


def test_the_loss_chart_smooths_switches_to_log_and_time_and_reads_out_values(page):
    from selenium.webdriver.common.action_chains import ActionChains

    path = lambda: js(page, "return document.querySelector('#loss-chart .series[data-run=mlp] path').getAttribute('d')")  # noqa: E731
    raw = path()
    fill(page, "#chart-settings", smooth="0.9")
    wait(page, lambda: path() != raw)
    fill(page, "#chart-settings", smooth="0", log=True, axis="time")
    wait(page, lambda: "training time (s)" in texts(page, "#loss-chart text"))
    assert any("log scale" in t for t in texts(page, "#loss-chart text"))
    ActionChains(page).move_to_element(find(page, "#loss-chart svg")[0]).perform()
    wait(page, lambda: "mlp dev" in text(page, "#loss-chart .readout"))
    fill(page, "#chart-settings", log=False, axis="step")


# --- quality ----------------------------------------------------------------------------------------------


def test_text_has_contrast_and_every_picture_a_name(page):
    ratios = js(
        page,
        """const lum = (c) => {
          const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(v => v / 255)
            .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
          return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const bg = (node) => {  // the first opaque background behind a node
          for (; node; node = node.parentElement) {
            const c = getComputedStyle(node).backgroundColor; if (c !== 'rgba(0, 0, 0, 0)') return c; }
          return 'rgb(255, 255, 255)'; };
        const shown = '#status, footer, .hint, th, label, .tag, h1 span, button, .pane h3';
        return [...document.querySelectorAll(shown)].map(n => {
          const [a, b] = [lum(getComputedStyle(n).color), lum(bg(n))].sort((x, y) => y - x);
          return [n.tagName + '.' + n.className + ' ' + n.textContent.slice(0, 20), (a + 0.05) / (b + 0.05)]; })""",
    )
    low = [(name, round(r, 2)) for name, r in ratios if r < 4.5]
    assert low == []
    unnamed = js(
        page,
        "return [...document.querySelectorAll('svg[role=img], canvas')]"
        ".filter(n => !n.getAttribute('aria-label')).length",
    )
    assert unnamed == 0
    assert (
        js(page, "return document.querySelector('#generate [name=temperature]').getAttribute('aria-label')")
        == "temperature"
    )


def test_the_api_reference_reads_at_phone_width_with_paths_and_answers(page, server):
    page.set_window_size(400, 850)
    try:
        page.get(server + "/docs")
        wait(page, lambda: len(find(page, ".endpoint")) >= 11)
        titles = texts(page, ".endpoint h2")
        assert "POST /api/sample" in titles and "GET /api/runs/{run_id}/evaluation" in titles
        assert "temperature" in texts(page, ".endpoint td code")
        assert "run_id" in texts(page, ".endpoint .path-params code")  # path parameters listed
        assert any('"items"' in shape for shape in texts(page, ".endpoint .answer pre"))  # answers' shapes
        assert js(page, "return document.documentElement.scrollWidth <= window.innerWidth")
        assert console_errors(page) == []
    finally:
        page.set_window_size(1280, 1000)
        settled(page, server)


def test_the_ensemble_appears_generates_and_says_its_views_are_per_model(page, runs, server):
    """`makemore serve A B --ensemble` in the same browser: one more row, items drawn from the mixture,
    the next-character chart of an item, and Look inside says which views are of one model only."""
    try:
        with serving(runs / "mlp", runs / "transformer", "--ensemble") as (url, process):
            page.get(url)
            wait(page, lambda: len(find(page, "#runs tbody tr")) == 3 and not find(page, "#runs .pending"))
            row = text(page, '#runs tr[data-run="ensemble"]')
            assert "ensemble of 2" in row and "n/a" not in row and "each its own" in row
            # never trained as one: no curve to tick (a ticked box would promise a curve that is not there)
            assert not find(page, '#runs tr[data-run="ensemble"] input[type=checkbox]')
            assert "ensemble mixes mlp, transformer" in text(page, "#run-notes")
            items = generated(page, run="ensemble", n=8)
            assert len(items) == 8 and "8 items" in text(page, "#sample-summary")
            assert "at step" not in text(page, "#sample-summary")
            inspected(page, "emma", run="ensemble")
            wait(page, lambda: find(page, '#panes .pane[data-run="ensemble"] .next rect'))
            fill(page, "#inside", run="ensemble")
            wait(page, lambda: "views of one model's inside" in text(page, "#views .per-model"))
            assert not find(page, "#views .view") and not console_errors(page)
        assert "Traceback" not in process.stderr_text
    finally:
        settled(page, server)  # the shared page again, for the tests after this one
