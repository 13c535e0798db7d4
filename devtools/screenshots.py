"""``./dev screenshots``: the documentation's screenshots, taken in headless
Chromium from the Odoo that ``./dev run`` serves (its demo data), through
the DevTools protocol. Each page is opened as the user who sees it (the
back office as admin, the portal as the demo portal user), waited for, and
written to ``docs/<name>.png``."""

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

from .common import REPO, DevError, say, stop_process

SIZE = (1366, 900)
# (file, login, path, a CSS selector that is there once the page has drawn its data)
ACTION = "/odoo/action-fayvad_mail.fayvad_mail_"  # the back office's actions, by name
SHOTS = [
    ("organizations-kanban", "admin", f"{ACTION}organization_action", ".o_kanban_record"),
    ("organization-form", "admin", f"{ACTION}organization_action/1", ".o_form_sheet"),
    ("domain-dns-records", "admin", f"{ACTION}domain_action/1", ".o_form_sheet"),
    ("provisioning-queue", "admin", f"{ACTION}job_action", ".o_list_renderer"),
    ("provisioning-monitor", "admin", f"{ACTION}monitor_action", ".o_kanban_record"),
    ("portal-my-mail", "portal", "/my/mail/2", ".o_fayvad_domain"),
    # after `./dev import-server` (a dry run: import 1) and `./dev import-server --apply` (import 2)
    ("import-preview", "admin", f"{ACTION}import_action/1", ".o_data_row"),
    ("import-done", "admin", f"{ACTION}import_action/2", ".o_data_row"),
    # while `./dev import-server --filter bulk --apply` (import 3) runs: `./dev screenshots import-progress`
    ("import-progress", "admin", f"{ACTION}import_action/3", ".o_form_sheet .o_progressbar"),
]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Page:
    """One tab of a headless Chromium, driven over its DevTools websocket."""

    def __init__(self, port):
        import websocket  # from requirements-dev.txt, in ./dev's virtualenv

        request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as answer:
            target = json.load(answer)
        self.ws = websocket.create_connection(
            target["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        self.ids = iter(range(1, 10**6))

    def call(self, method, **params):
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise DevError(f"Chromium: {method}: {message['error']}")
                return message.get("result", {})

    def js(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        return result.get("result", {}).get("value")

    def open(self, url, ready, timeout=60):
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.js(f"!!document.querySelector({json.dumps(ready)})"):
            if time.monotonic() > deadline:
                raise DevError(f"{url}: {ready} did not appear within {timeout} s")
            time.sleep(0.3)
        time.sleep(1.5)  # animations, late images

    def login(self, base, login):
        self.call("Network.clearBrowserCookies")
        self.open(f"{base}/web/login", "input[name=login]")
        self.js(
            f"document.querySelector('input[name=login]').value = {json.dumps(login)};"
            f"document.querySelector('input[name=password]').value = {json.dumps(login)};"
            "document.querySelector('form.oe_login_form').submit(); true"
        )
        time.sleep(3)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))


def take(base, only=()):
    """The shots of SHOTS named in ``only`` (else every one) from the Odoo at
    ``base``; the paths written."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        raise DevError("Chromium is missing: ./dev test installs it (apt-get install chromium)")
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="fayvad-shots-")
    proc = subprocess.Popen(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={SIZE[0]},{SIZE[1]}",
            f"--remote-debugging-port={port}",
            "--remote-allow-origins=*",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    written = []
    try:
        for _ in range(100):
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=1),
            ):
                break
            time.sleep(0.1)
        page = Page(port)
        page.call("Page.enable")
        page.call("Network.enable")
        page.call(
            "Emulation.setDeviceMetricsOverride",
            width=SIZE[0],
            height=SIZE[1],
            deviceScaleFactor=1,
            mobile=False,
        )
        user = None
        for name, login, path, ready in [shot for shot in SHOTS if not only or shot[0] in only]:
            if login != user:
                page.login(base, login)
                user = login
            page.open(f"{base}{path}", ready)
            out = REPO / "docs" / f"{name}.png"
            page.screenshot(out)
            say(f"{out.relative_to(REPO)}: {path} as {login}")
            written.append(out)
    finally:
        stop_process(proc)
        shutil.rmtree(profile, ignore_errors=True)
    return written


if __name__ == "__main__":  # ./dev screenshots runs this in its virtualenv
    import sys

    try:
        take(sys.argv[1], sys.argv[2:])
    except DevError as exc:
        say(f"error: {exc}")
        sys.exit(1)
