"""``b25 web`` in a real headless Chromium (Debian's chromium, driven by Debian's chromedriver
through selenium; nothing downloaded): the TUI's page against a running stack shows the book
ladder with prices, ``2`` opens the portfolio tab, ``k`` asks for the ops token; a screenshot is
kept (``B25_UPDATE_SCREENSHOT=1`` writes it to docs/web.png)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from procs.core.services import PIPELINE
from procs.tools.stack import Stack
from tests.support import ROOT
from tests.support.externals import require_external

# Before the page's scripts run: keep a handle on xterm's Terminal (textual.js sets this.terminal),
# so the test reads the screen the browser shows from xterm's own buffer.
HOOK = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
    if (value && value.buffer) { window.__b25_terminal = value; }
  },
});
"""
SCREEN = """
const t = window.__b25_terminal;
if (!t) { return ""; }
const b = t.buffer.active, out = [];
for (let y = 0; y < t.rows; y++) { const line = b.getLine(b.viewportY + y); out.push(line ? line.translateToString(true) : ""); }
return out.join("\\n");
"""


def chrome(tmp_path: Path):
    chromium = require_external("chromium", "chromium")
    chromedriver = require_external("chromedriver", "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}"):
        opts.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium never looks for a driver or browser to download
    return webdriver.Chrome(options=opts, service=Service(executable_path=chromedriver))


@pytest.mark.proc
def test_web_when_opened_in_chromium_then_the_tui_shows_the_book_tabs_and_asks_the_token_for_the_kill_switch(
        tmp_path: Path, instance: str):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = chrome(tmp_path)
    try:
        with Stack(tmp_path, procs=(*PIPELINE, "monitor", "web"), instance=instance) as s:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK})
            driver.get(f"http://127.0.0.1:{s.web_port}/")

            def screen() -> str:
                return driver.execute_script(SCREEN) or ""

            # the book ladder of BTCUSDT with price levels (decimal prices beside quantities)
            text = s.wait_for(lambda: (t := screen()) and "book BTCUSDT" in t
                              and len(re.findall(r"\b\d{4,6}\.\d+\b", t)) >= 6 and t, "the book ladder with prices", 90)
            assert "market" in text and "portfolio" in text
            driver.find_element(By.ID, "terminal").click()  # as a person does: focus the terminal
            ActionChains(driver).send_keys("2").perform()
            s.wait_for(lambda: "positions" in screen() and "risk" in screen() and "book BTCUSDT" not in screen(),
                       "the portfolio tab", 30)
            ActionChains(driver).send_keys("k").perform()
            prompt = s.wait_for(lambda: (t := screen()) and "ops token needed for: kill switch ON" in t and t,
                                "the token prompt", 30)
            assert "escape = cancel" in prompt
            shot = tmp_path / "web.png"
            assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
            if os.environ.get("B25_UPDATE_SCREENSHOT") == "1":
                shutil.copy(shot, ROOT / "docs" / "web.png")
            ActionChains(driver).send_keys("\ue00c").perform()  # escape: nothing was sent
            s.wait_for(lambda: "ops token needed" not in screen(), "the prompt closed", 30)
            assert s.risk_state()["trading_state"] == 1  # still ACTIVE: no token, no kill switch
    finally:
        driver.quit()
