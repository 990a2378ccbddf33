"""The app as a person uses it: headless Chromium (Debian's chromium + chromium-driver, via selenium) on loopback.

Uploads a galaxy, asks, watches the answer arrive in pieces, presses "Answer the Galaxy Zoo questions".
Set GZLLAVA_SCREENSHOT=docs/app_screenshot.png to refresh the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from .conftest import free_port

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

# records every text the newest assistant message shows, so streaming is observed, not inferred
OBSERVE = """
window.__answers = [];
const chat = document.querySelector('#chatbot');
new MutationObserver(() => {
  const bots = chat.querySelectorAll('[data-testid="bot"]');
  if (!bots.length) return;
  const text = bots[bots.length - 1].innerText.trim();
  if (text && window.__answers[window.__answers.length - 1] !== text) window.__answers.push(text);
}).observe(chat, {childList: true, subtree: true, characterData: true});
"""


@pytest.fixture(scope="module")
def browser_app(engine, tmp_path_factory):
    from gzllava.app.engine import ChatEngine
    from gzllava.app.examples import render_examples
    from gzllava.app.ui import build_app, queue_settings

    chatty = ChatEngine(engine.model, engine.processor, default_max_new_tokens=96)  # long enough to watch it stream
    demo = build_app(chatty, None, render_examples(tmp_path_factory.mktemp("examples"), search=20),
                     model_name="tiny random GZ-LLaVA (tests)")
    port = free_port()
    demo.queue(**queue_settings(2, 16)).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                                               quiet=True, ssr_mode=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1300",
                     "--disable-gpu", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_upload_ask_watch_the_answer_stream_then_walk_the_tree(browser, browser_app, galaxy_png, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 120, poll_frequency=0.1)
    browser.get(browser_app)
    textarea = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#question textarea"))
    browser.find_element(By.CSS_SELECTOR, "#question input[type=file]").send_keys(str(galaxy_png))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#question img"))  # the upload's thumbnail
    browser.execute_script(OBSERVE)
    textarea.send_keys("Is there a bar through the centre of this galaxy?")
    textarea.send_keys(Keys.ENTER)

    # the question and the image appear as the user's turn, then the answer grows and settles
    wait.until(lambda d: "Is there a bar through the centre" in d.find_element(By.ID, "chatbot").text)
    assert browser.find_elements(By.CSS_SELECTOR, '#chatbot [data-testid="user"] img')

    def settled(driver):
        answers = driver.execute_script("return window.__answers")
        time.sleep(0.5)
        return len(answers) >= 2 and answers == driver.execute_script("return window.__answers")

    wait.until(settled)
    answers = browser.execute_script("return window.__answers")
    assert len(answers) >= 2, answers  # several partial answers: streamed, not shown all at once
    assert all(b.startswith(a[:-1]) for a, b in zip(answers, answers[1:]) if a), answers
    assert "⚠️" not in answers[-1]

    browser.find_element(By.ID, "tree").click()
    wait.until(lambda d: "Is the galaxy simply smooth and rounded" in d.find_element(By.ID, "chatbot").text
               and "walking the tree" not in d.find_element(By.ID, "chatbot").text)
    chat_text = browser.find_element(By.ID, "chatbot").text
    assert "Do you see any of these odd features" in chat_text  # the walk reached the last question

    shot = tmp_path / "app.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("GZLLAVA_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["GZLLAVA_SCREENSHOT"])


def test_bad_upload_in_the_browser_shows_a_message(browser, browser_app, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 300)
    wait = WebDriverWait(browser, 120, poll_frequency=0.1)
    browser.get(browser_app)
    textarea = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#question textarea"))
    browser.find_element(By.CSS_SELECTOR, "#question input[type=file]").send_keys(str(broken))
    time.sleep(1.0)
    textarea.send_keys("Is it smooth?")
    textarea.send_keys(Keys.ENTER)
    wait.until(lambda d: "Cannot use broken.png as a galaxy image" in d.find_element(By.ID, "chatbot").text)
