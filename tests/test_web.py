"""The playground page in a real browser: `makemore serve` on a free localhost port, driven by headless
Chromium through Selenium. It loads the page, generates names, inspects "emma" under two runs, looks
inside three models, and reads the browser's console for errors. It saves a screenshot (to
$MAKEMORE_SCREENSHOT_DIR when set). Where Chromium is missing the test is skipped, except under CI=true,
where a missing browser fails the run (`.ci/run` installs it)."""

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import serving

pytestmark = pytest.mark.slow  # real processes: the suite's slow tier

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


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
    """A copy of the served runs: one test appends to a run's log as a training run would."""
    copy = tmp_path_factory.mktemp("web") / "runs"
    shutil.copytree(served_runs, copy)
    return copy


@pytest.fixture(scope="module")
def page(browser, runs):
    with serving(runs) as (url, server):
        browser.get(url)
        yield browser
    assert "Traceback" not in server.stderr_text, server.stderr_text


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
    return browser.execute_script("return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", css)


def choose(form, name, value):
    from selenium.webdriver.support.ui import Select

    Select(form.find_element("name", name)).select_by_value(value)


def console_errors(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_the_page_shows_every_run_with_its_nll_and_loss_curves(page):
    wait(page, lambda: len(find(page, "#runs tbody tr")) == 3 and not find(page, "#runs .pending"))
    rows = dict(
        js(page, "return [...document.querySelectorAll('#runs tbody tr')].map(r => [r.dataset.run, r.textContent])")
    )
    assert set(rows) == {"bigram", "mlp", "transformer"}
    assert "11,897" in rows["mlp"] and "200" in rows["mlp"]  # parameters, best step
    for cell in texts(page, "#runs td[data-split]"):
        assert 1.5 < float(cell) < 3.4, cell  # an NLL in nats per character
    wait(page, lambda: len(find(page, "#loss-chart svg path")) >= 2)  # the mlp's and the transformer's curves
    assert console_errors(page) == []


def test_the_chart_follows_a_run_that_is_still_training(page, runs):
    dots = lambda: len(find(page, "#loss-chart circle"))  # noqa: E731  (one per dev evaluation)
    before = dots()
    with open(runs / "mlp" / "metrics.jsonl", "a") as log:  # what train appends at its next evaluation
        log.write(json.dumps({"step": 300, "loss": 2.3}) + "\n" + json.dumps({"step": 300, "dev": 2.35}) + "\n")
    wait(page, lambda: dots() == before + 1, timeout=30)  # the page polls every 5 s
    assert "300" in texts(page, "#loss-chart text")  # the step axis grew to step 300


def test_generate_tags_each_item_and_the_temperature_slider_draws_again(page):
    form = find(page, "#generate")[0]
    n = form.find_element("name", "n")
    n.clear()
    n.send_keys("30")
    choose(form, "run", "transformer")
    form.find_element("css selector", "button[type=submit]").click()
    wait(page, lambda: texts(page, "#sample-summary")[0].startswith("30 items"))
    tags = texts(page, "#samples li .tag")
    assert len(tags) == 30 and set(tags) <= {"train", "dev", "test", "new"}
    before = texts(page, "#samples li")
    page.execute_script(
        "const s = document.querySelector('[name=temperature_slider]'); s.value = 1.6;"
        "s.dispatchEvent(new Event('input'));"
    )
    wait(page, lambda: texts(page, "#samples li") != before)
    assert find(page, "#generate [name=temperature]")[0].get_property("value") == "1.6"
    assert find(page, "#copy")[0].is_enabled() and find(page, "#download")[0].is_enabled()
    assert console_errors(page) == []


def test_inspecting_emma_shows_a_probability_strip_and_the_next_character_chart(page):
    form = find(page, "#inspect")[0]
    choose(form, "run", "transformer")
    choose(form, "other", "mlp")
    form.find_element("css selector", "button[type=submit]").click()
    wait(page, lambda: len(find(page, "#panes .pane")) == 2 and len(find(page, "#panes .next rect")) == 2 * 27)
    panes = js(
        page,
        """return [...document.querySelectorAll('#panes .pane')].map(pane => ({
            chars: [...pane.querySelectorAll('.strip button .ch')].map(c => c.textContent),
            coloured: [...pane.querySelectorAll('.strip button')]
                .every(b => (b.getAttribute('style') || '').includes('background')),
            numbers: pane.querySelector('.numbers').textContent}))""",
    )
    for pane in panes:
        assert pane["chars"] == ["e", "m", "m", "a", "."]
        assert pane["coloured"]  # each character coloured by its probability
        assert "per character" in pane["numbers"]
    wait(page, lambda: all("% of dev items" in text for text in texts(page, "#panes .numbers")))
    js(page, "document.querySelectorAll('#panes .pane .strip button')[2].click()")  # the second 'm': after "em"?
    wait(page, lambda: 'after "em"' in texts(page, "#panes .pane .next svg text")[0])
    assert console_errors(page) == []


def test_look_inside_attention_embedding_and_bigram_matrix(page):
    form = find(page, "#inside")[0]
    choose(form, "run", "transformer")
    wait(page, lambda: len(find(page, "#attention figure")) == 4)  # 1 layer x 4 heads over ".emma"
    assert js(page, "return document.querySelector('#attention figure').querySelectorAll('rect').length") == 15  # 5x6/2
    choose(form, "run", "mlp")
    wait(page, lambda: len(find(page, ".scatter circle")) == 27)
    choose(form, "run", "bigram")
    wait(page, lambda: len(find(page, ".matrix rect")) == 27 * 27)
    assert console_errors(page) == []


def test_a_bad_field_is_shown_next_to_it_and_the_page_goes_on(page, tmp_path):
    form = find(page, "#generate")[0]
    prefix = form.find_element("name", "prefix")
    prefix.send_keys("Zo")  # a capital letter: not in the names' vocabulary
    form.find_element("css selector", "button[type=submit]").click()
    wait(page, lambda: "not in the vocabulary: 'Z'" in texts(page, "#generate .error")[0])
    assert "invalid" in prefix.get_attribute("class")
    # the refused request is the only complaint in the console
    assert all("/api/sample" in e and "400" in e for e in console_errors(page))
    prefix.clear()
    prefix.send_keys("zo")
    form.find_element("css selector", "button[type=submit]").click()
    wait(page, lambda: texts(page, "#generate .error")[0] == "")
    assert "invalid" not in prefix.get_attribute("class")
    assert all(item.startswith("zo") for item in texts(page, "#samples li"))
    out = Path(os.environ.get("MAKEMORE_SCREENSHOT_DIR", tmp_path))
    height = page.execute_script("return document.documentElement.scrollHeight")
    page.set_window_size(1280, height)
    page.execute_script("window.scrollTo(0, 0)")
    assert page.save_screenshot(str(out / "playground.png")) and (out / "playground.png").stat().st_size > 10_000


def test_the_api_reference_is_drawn_from_the_servers_openapi(page):
    page.get(page.current_url.rstrip("/") + "/docs")
    wait(page, lambda: len(find(page, ".endpoint")) >= 9)
    titles = texts(page, ".endpoint h2")
    assert "POST /api/sample" in titles and "GET /api/runs/{run_id}/evaluation" in titles
    assert "temperature" in texts(page, ".endpoint td code")
    assert console_errors(page) == []
