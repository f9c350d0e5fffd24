"""The README's pictures of the playground, taken by headless Chromium from a running server:

    makemore serve runs/transformer runs/mlp runs/bigram &
    .venv/bin/python docs/screenshot.py http://127.0.0.1:8000 [--item emma] [--compare transformer mlp]

Writes docs/img/playground.png (runs, loss curves, generate, inspect), docs/img/playground-steps.png
(the first generated item stepped through to its third character) and docs/img/playground-inside.png
(the "look inside" card for the first run compared). Needs Debian's chromium and chromium-driver.

    makemore serve runs/mlp runs/transformer --ensemble &
    .venv/bin/python docs/screenshot.py http://127.0.0.1:8000 --ensemble --compare ensemble transformer

writes docs/img/playground-ensemble.png instead: the runs with the ensemble's row, items generated
from the ensemble, and the item inspected under the ensemble beside the first run it mixes.
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

IMG = Path(__file__).resolve().parent / "img"


def settle(driver, seconds: int) -> WebDriverWait:
    """A wait that reads the page again when an element it read was just redrawn (the page redraws
    its panes as answers arrive)."""
    return WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,))


def browser(width: int) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--hide-scrollbars", f"--window-size={width},1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def ready(driver: webdriver.Chrome) -> bool:
    """Every run's NLLs are in, each inspected item shows its dev percentile, every view is drawn (an
    ensemble has none of its own: it says so instead)."""
    pending = driver.find_elements(By.CSS_SELECTOR, "#runs .pending")
    numbers = [n.text for n in driver.find_elements(By.CSS_SELECTOR, "#panes .numbers")]
    views = driver.execute_script("return document.querySelectorAll('#views svg, #views canvas, .per-model').length")
    chart_fits = driver.execute_script(  # the loss chart drawn at the window's present width
        "const box = document.querySelector('#loss-chart'), svg = box.querySelector('svg');"
        "return !!svg && +svg.getAttribute('viewBox').split(' ')[2] === Math.max(320, Math.round(box.clientWidth))"
    )
    return not pending and numbers and all("% of dev items" in n for n in numbers) and views > 0 and chart_fits


def stepped(driver: webdriver.Chrome, position: int) -> bool:
    """The step-through shows this position, with both distributions drawn."""
    return driver.execute_script(
        "const b = [...document.querySelectorAll('#step-name button')];"
        "return b.findIndex(x => x.classList.contains('selected')) === arguments[0]"
        " && document.querySelectorAll('#step-sampled rect').length > 0"
        " && !document.querySelector('#step-facts').textContent.includes('not drawn')",
        position,
    )


def generate_from(driver: webdriver.Chrome, run: str) -> None:
    """Generate's list drawn by this run (the page first draws from the first run)."""
    form = driver.find_element(By.ID, "generate")
    settle(driver, 300).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#samples li"))
    Select(form.find_element(By.NAME, "run")).select_by_value(run)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    summary = f"from {run} "
    settle(driver, 300).until(lambda d: summary in d.find_element(By.ID, "sample-summary").text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--item", default="emma")
    parser.add_argument("--compare", nargs=2, default=["transformer", "mlp"], metavar="RUN")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="a server of `--ensemble`: generate from it, write playground-ensemble.png",
    )
    args = parser.parse_args()
    driver = browser(args.width)
    try:
        driver.get(args.url)
        settle(driver, 300).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#runs tbody tr"))
        inspect = driver.find_element(By.ID, "inspect")
        text = inspect.find_element(By.NAME, "text")
        text.clear()
        text.send_keys(args.item)
        Select(inspect.find_element(By.NAME, "run")).select_by_value(args.compare[0])
        Select(inspect.find_element(By.NAME, "other")).select_by_value(args.compare[1])
        Select(driver.find_element(By.CSS_SELECTOR, "#inside [name=run]")).select_by_value(args.compare[0])
        inspect.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        settle(driver, 300).until(ready)
        if args.ensemble:  # after the runs' evaluations: its time is the sampling's, not a wait behind them
            generate_from(driver, "ensemble")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(args.width, height + 200)  # the whole page in the viewport
        settle(driver, 60).until(ready)  # redrawn at the new width
        IMG.mkdir(exist_ok=True)
        full = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
        bottom = driver.execute_script("return document.querySelector('#inspect-card').getBoundingClientRect().bottom")
        top = full.crop((0, 0, full.width, int(bottom) + 16))
        if args.ensemble:
            top.save(IMG / "playground-ensemble.png", optimize=True)
            print(f"wrote {IMG / 'playground-ensemble.png'}")
            return
        top.save(IMG / "playground.png", optimize=True)
        driver.find_element(By.ID, "inside-card").screenshot(str(IMG / "playground-inside.png"))
        driver.execute_script("document.querySelector('#samples li .item').click()")
        for position in (1, 2):  # forward twice: the third character is the one being drawn
            settle(driver, 60).until(lambda d, p=position: stepped(d, p - 1))
            driver.find_element(By.ID, "step-forward").click()
        settle(driver, 60).until(lambda d: stepped(d, 2))
        driver.find_element(By.ID, "steps-card").screenshot(str(IMG / "playground-steps.png"))
    finally:
        driver.quit()
    print(f"wrote {IMG / 'playground.png'}, {IMG / 'playground-steps.png'} and {IMG / 'playground-inside.png'}")


if __name__ == "__main__":
    main()
