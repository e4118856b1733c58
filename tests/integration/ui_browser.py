#!/usr/bin/python3
"""ui_browser.py — the web UI in a real headless Chromium (driven by
lib/cdp.py), against a dispatcher with two workers started by
ui_browser.sh:

  /            choose a photo in the file input, submit, wait for the bars:
               the top-1 label is the expected one and the worker that
               answered is one of the two;
  /ui/status   two backends, both ready, the autoscaler's decision shown;
               then one worker is killed and the page shows 1 of 2 ready;
  /docs        on the dispatcher and on a worker: every operation rendered,
               and the try-it form of /classify sends the photo and shows
               HTTP 200 with the label;
and on every page: no console error, no exception, no request to anything
but this loopback server. Screenshots go to OUT_DIR.

usage: ui_browser.py DISPATCH_URL WORKER_URL PHOTO LABEL KILL_PID OUT_DIR"""
import asyncio
import os
import signal
import sys
from urllib.parse import urlparse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import cdp  # noqa: E402

D_URL, W_URL, PHOTO, LABEL, KILL_PID, OUT = sys.argv[1:7]
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)


def clean(page, name):
    """No console errors and no request off this machine's loopback."""
    check(not page.errors, "%s: no console errors %s" % (name, page.errors))
    off = [u for u in page.requests
           if not u.startswith(("data:", "blob:")) and urlparse(u).hostname not in ("127.0.0.1", "localhost")]
    check(not off, "%s: only loopback requests %s" % (name, off))
    check(len(page.requests) > 1, "%s: requests were recorded (%d)" % (name, len(page.requests)))


async def try_it(chrome):
    page = await chrome.new_page(1200, 720)
    await page.goto(D_URL + "/")
    await page.set_files("#file", [PHOTO])
    await page.wait_for("!document.getElementById('go').disabled", 5)
    await page.eval("document.getElementById('go').click()")
    await page.wait_for("document.querySelectorAll('#result .bar').length === 5", 30)
    top1 = await page.eval("document.querySelector('#result .bar .lbl').textContent")
    check(top1 == LABEL, "/: top-1 label %r == %r" % (top1, LABEL))
    backend = await page.eval("document.getElementById('backend').textContent")
    check(backend.startswith("127.0.0.1:"), "/: answered by a worker (%s)" % backend)
    lat = await page.eval("document.getElementById('latency').textContent")
    check(lat.endswith(" ms"), "/: latency shown (%s)" % lat)
    await page.screenshot(os.path.join(OUT, "ui_try.png"))
    clean(page, "/")


async def status(chrome):
    page = await chrome.new_page(1200, 900)
    await page.goto(D_URL + "/ui/status")
    n = await page.wait_for("document.getElementById('backends').tBodies[0].rows.length === 2 && "
                            "document.querySelectorAll('#backends .state.ready').length", 10)
    check(n == 2, "/ui/status: 2 backends, %s ready" % n)
    await page.wait_for("document.querySelectorAll('#chart polyline.rps, #chart path.p99').length === 2", 5)
    as_text = await page.wait_for("document.getElementById('autoscaler').textContent.includes('desired') && "
                                  "document.getElementById('autoscaler').textContent", 10)
    check("rps 2 for target 10" in as_text, "/ui/status: autoscaler decision shown (%r)" % as_text)
    # Let the chart show the minute's traffic before the screenshot.
    await asyncio.sleep(1.5)
    await page.screenshot(os.path.join(OUT, "ui_status.png"))
    os.kill(int(KILL_PID), signal.SIGKILL)
    n = await page.wait_for("document.getElementById('backends').tBodies[0].rows.length === 2 && "
                            "document.querySelectorAll('#backends .state.ready').length === 1 && "
                            "document.getElementById('nb').textContent", 15)
    check(n == "2 backends, 1 ready", "/ui/status after a worker died: %r" % n)
    await page.screenshot(os.path.join(OUT, "ui_status_one_down.png"))
    clean(page, "/ui/status")


async def docs(chrome, base, name, shot):
    page = await chrome.new_page(1200, 900)
    await page.goto(base + "/docs")
    n = await page.wait_for("+document.getElementById('ops').dataset.count", 10)
    check(n >= 15, "%s /docs: %d operations rendered" % (name, n))
    title = await page.eval("document.getElementById('title').textContent")
    check(name in title, "%s /docs: title %r" % (name, title))
    sel = "details.op[data-path='/classify'] "
    params = await page.eval("document.querySelectorAll(\"%s table tr\").length" % sel)
    check(params >= 3, "%s /docs: /classify parameters listed (%d rows)" % (name, params))
    await page.set_files(sel + "input[type=file]", [PHOTO])
    await page.eval("document.querySelector(\"%s form.tryit button\").click()" % sel)
    out = await page.wait_for("(document.querySelector(\"%s pre.tryout\").dataset.status && "
                              "document.querySelector(\"%s pre.tryout\").textContent)" % (sel, sel), 30)
    check(out.startswith("HTTP 200") and LABEL in out, "%s /docs: try-it on /classify answered %r" % (name, out[:80]))
    await page.screenshot(os.path.join(OUT, shot))
    clean(page, name + " /docs")


async def main():
    async with cdp.Chrome() as chrome:
        await try_it(chrome)
        await docs(chrome, D_URL, "dispatcher", "ui_docs_dispatcher.png")
        await docs(chrome, W_URL, "worker", "ui_docs_worker.png")
        await status(chrome)


try:
    asyncio.run(asyncio.wait_for(main(), 120))
except (cdp.CDPError, asyncio.TimeoutError) as e:
    failures.append("browser: %s" % (e or "timed out"))
    print("FAIL  browser: %s" % (e or "timed out"))
sys.exit(1 if failures else 0)
