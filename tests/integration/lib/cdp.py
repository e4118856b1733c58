#!/usr/bin/python3
"""cdp.py — drive a headless Chromium over the DevTools protocol, with no
browser download and no puppeteer: the system `chromium` and Python's
`websockets` (Debian python3-websockets). Used by the web UI's browser test
(tests/integration/ui_browser.sh) and by anything that wants a page as PNG
(`osprey report --png`):

    /usr/bin/python3 tests/integration/lib/cdp.py screenshot URL OUT.png \
        [--width 1280] [--height 900] [--wait-js EXPR] [--timeout 20]

or, from Python (sys.path: tests/integration/lib):

    async with cdp.Chrome() as chrome:
        page = await chrome.new_page(width=1280, height=900)
        await page.goto("http://127.0.0.1:8000/")
        await page.wait_for("document.querySelector('#x') !== null")
        await page.screenshot("out.png")
        page.errors, page.requests   # console errors, every URL requested

Chromium starts with its own throw-away profile, listens for DevTools on a
free loopback port (read from the DevToolsActivePort file) and has its
background services off, so that it talks to nothing but the pages it is
sent to. Every wait is bounded."""
import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import websockets

CHROMIUM_FLAGS = [
    "--headless=new", "--remote-debugging-port=0", "--no-first-run",
    "--no-default-browser-check", "--disable-gpu", "--no-sandbox",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-default-apps", "--disable-extensions",
    "--metrics-recording-only", "--no-pings", "--mute-audio",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--hide-scrollbars", "--font-render-hinting=none",
]


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class CDPError(RuntimeError):
    pass


class Page:
    """One tab, attached through a flat session on the browser socket."""

    def __init__(self, chrome, session):
        self.chrome = chrome
        self.session = session
        self.errors = []    # console errors, exceptions, error log entries
        self.requests = []  # every URL the page requested

    async def send(self, method, params=None, timeout=30):
        return await self.chrome.send(method, params, self.session, timeout)

    def on_event(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Network.requestWillBeSent":
            self.requests.append(p["request"]["url"])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console: " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.errors.append("exception: " + d.get("exception", {}).get("description", d.get("text", "")))
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            self.errors.append("log: " + p["entry"]["text"] + " " + p["entry"].get("url", ""))

    async def goto(self, url, timeout=20):
        """Navigates and waits for the load event."""
        self.chrome.loaded.pop(self.session, None)
        ev = self.chrome.loaded[self.session] = asyncio.Event()
        r = await self.send("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CDPError("navigate %s: %s" % (url, r["errorText"]))
        await asyncio.wait_for(ev.wait(), timeout)

    async def eval(self, expr, timeout=30):
        """The value of a JS expression (awaited if it is a promise)."""
        r = await self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                                 "awaitPromise": True}, timeout)
        if "exceptionDetails" in r:
            raise CDPError("eval %r: %s" % (expr, r["exceptionDetails"].get("text")))
        return r["result"].get("value")

    async def wait_for(self, expr, timeout=20, interval=0.1):
        """Polls expr until it is truthy; returns its value."""
        end = time.monotonic() + timeout
        while True:
            v = await self.eval(expr)
            if v:
                return v
            if time.monotonic() > end:
                raise CDPError("timed out after %gs waiting for %s" % (timeout, expr))
            await asyncio.sleep(interval)

    async def set_files(self, selector, paths):
        """Sets an <input type=file> (first match of selector) to paths and
        fires its change event, as a user choosing files would."""
        r = await self.send("Runtime.evaluate", {"expression": "document.querySelector(%s)" % json.dumps(selector)})
        oid = r["result"].get("objectId")
        if not oid:
            raise CDPError("no element %s" % selector)
        await self.send("DOM.setFileInputFiles", {"files": [os.path.abspath(p) for p in paths], "objectId": oid})

    async def screenshot(self, path, full_page=True):
        """Saves a PNG of the page (its whole height when full_page)."""
        params = {"format": "png"}
        if full_page:
            m = await self.send("Page.getLayoutMetrics")
            cs = m.get("cssContentSize") or m["contentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": cs["width"], "height": cs["height"], "scale": 1})
        r = await self.send("Page.captureScreenshot", params)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))


class Chrome:
    """A headless Chromium process and its browser-level DevTools socket."""

    def __init__(self, binary=None, start_timeout=20):
        self.binary = binary or find_chromium()
        self.start_timeout = start_timeout
        self.proc = None
        self.ws = None
        self.next_id = 0
        self.pending = {}
        self.pages = {}
        self.loaded = {}

    async def __aenter__(self):
        if not self.binary:
            raise CDPError("no chromium found")
        self.profile = tempfile.mkdtemp(prefix="osp_chrome.")
        self.log = open(os.path.join(self.profile, "chrome.log"), "w")
        self.proc = subprocess.Popen([self.binary, *CHROMIUM_FLAGS, "--user-data-dir=" + self.profile, "about:blank"],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        end = time.monotonic() + self.start_timeout
        while True:
            try:
                with open(port_file) as f:
                    lines = f.read().split("\n")
                if len(lines) >= 2 and lines[1]:
                    break
            except FileNotFoundError:
                pass
            if self.proc.poll() is not None or time.monotonic() > end:
                await self.close()
                raise CDPError("chromium did not start (log: %s)" % self.profile)
            await asyncio.sleep(0.05)
        url = "ws://127.0.0.1:%s%s" % (lines[0].strip(), lines[1].strip())
        self.ws = await websockets.connect(url, max_size=64 << 20, ping_interval=None)
        self.reader = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        if self.ws:
            self.reader.cancel()
            await self.ws.close()
            self.ws = None
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self.pending.pop(msg["id"], None)
                if fut and not fut.done():
                    fut.set_result(msg)
                continue
            page = self.pages.get(msg.get("sessionId"))
            if page:
                page.on_event(msg)
                if msg.get("method") == "Page.loadEventFired" and page.session in self.loaded:
                    self.loaded[page.session].set()

    async def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(json.dumps(msg))
        r = await asyncio.wait_for(fut, timeout)
        if "error" in r:
            raise CDPError("%s: %s" % (method, r["error"].get("message")))
        return r.get("result", {})

    async def new_page(self, width=1280, height=900):
        t = await self.send("Target.createTarget", {"url": "about:blank"})
        a = await self.send("Target.attachToTarget", {"targetId": t["targetId"], "flatten": True})
        page = Page(self, a["sessionId"])
        self.pages[page.session] = page
        for m in ("Page.enable", "Runtime.enable", "Network.enable", "Log.enable"):
            await page.send(m)
        await page.send("Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page


async def _screenshot(a):
    async with Chrome() as chrome:
        page = await chrome.new_page(a.width, a.height)
        await page.goto(a.url, a.timeout)
        if a.wait_js:
            await page.wait_for(a.wait_js, a.timeout)
        await page.screenshot(a.out, full_page=not a.viewport)
        for e in page.errors:
            print("page error:", e, file=sys.stderr)


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("screenshot", help="save a PNG of a page")
    s.add_argument("url")
    s.add_argument("out")
    s.add_argument("--width", type=int, default=1280)
    s.add_argument("--height", type=int, default=900)
    s.add_argument("--wait-js", help="JS expression to wait for (truthy) before the shot")
    s.add_argument("--timeout", type=float, default=20)
    s.add_argument("--viewport", action="store_true", help="only the viewport, not the whole page")
    a = ap.parse_args()
    try:
        asyncio.run(_screenshot(a))
    except (CDPError, asyncio.TimeoutError) as e:
        print("cdp: %s" % (e or "timed out"), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
