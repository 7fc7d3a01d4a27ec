"""The report in a real browser: headless Chromium loads every image without console errors.

A copy of ``report.html`` gets a small checker script at the top of ``<head>``: it records
``window.onerror`` / resource-load errors, ``console.error`` calls and Content-Security-
Policy violations, and on ``load`` marks ``<body data-images-ok>`` when every ``<img>`` is
``complete`` with ``naturalWidth > 0``. Chromium's ``--dump-dom`` returns the DOM after load;
a negative control (a broken image and a throwing script) proves the checker catches both.
A screenshot is saved under the test's tmp dir and checked to be a real, non-blank PNG.

Chromium comes from Debian (``apt-get install chromium``; ``bash scripts/bootstrap.sh test``
installs it when run as root). Without it this test fails and says how to install it.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from test_analysis import tiny_runs  # noqa: F401  (session fixture: two tiny trained runs)

CHECKER = """<script>
window.__errs = [];
window.addEventListener('error', function (e) {
  var t = e.target || {};
  window.__errs.push(e.message || ('failed to load ' + (t.tagName || '') + ' ' + String(t.src || t.href || '').slice(0, 40)));
}, true);
document.addEventListener('securitypolicyviolation', function (e) { window.__errs.push('CSP blocked ' + e.blockedURI); });
(function () { var orig = console.error; console.error = function () {
  window.__errs.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); return orig.apply(console, arguments); }; })();
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-images-bad', String(bad.length));
  document.body.setAttribute('data-images-ok', bad.length === 0 && imgs.length > 0 ? 'true' : 'false');
  document.body.setAttribute('data-errors', JSON.stringify(window.__errs));
});
</script>"""

INSTALL_HINT = ("headless Chromium is required for the report's browser test but was not found on PATH or at "
                "/usr/bin/chromium. Fix: run `bash scripts/bootstrap.sh test` as root (it installs Debian's chromium), "
                "or `sudo apt-get update && sudo apt-get install -y chromium`")


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    pytest.fail(INSTALL_HINT)


def run_chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    env = {**os.environ, "HOME": str(tmp)}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within 120 s: {' '.join(cmd)}")
    return proc


def page_state(tmp: Path, html_text: str, name: str) -> dict:
    """Load ``html_text`` (with the checker injected) and return the body's data attributes."""
    page = tmp / name
    page.write_text(html_text.replace("<head>", "<head>\n" + CHECKER, 1))
    proc = run_chromium(tmp, "--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    body = re.search(r"<body\b([^>]*)>", proc.stdout)
    assert proc.returncode == 0 and body, f"chromium failed (exit {proc.returncode}): {proc.stderr[-2000:]}"
    attrs = {k: html_lib.unescape(v) for k, v in re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1))}
    assert "images-ok" in attrs, f"the checker script did not run; stderr: {proc.stderr[-2000:]}"
    attrs["errors"] = json.loads(attrs.get("errors", "[]"))
    return attrs


def test_checker_catches_broken_images_and_script_errors(tmp_path):
    broken = ("<!DOCTYPE html><html><head><title>t</title></head><body>"
              "<img src=\"data:image/png;base64,iVBORw0KGgoAAAAAAAA\" alt=\"broken\">"
              "<script>throw new Error('boom');</script></body></html>")
    state = page_state(tmp_path, broken, "broken.html")
    assert state["images-ok"] == "false" and state["images-bad"] == "1"
    assert any("boom" in e for e in state["errors"]), state["errors"]


def test_report_loads_every_image_without_console_errors(tiny_runs, tmp_path):
    report = tiny_runs["ae"] / "report.html"
    text = report.read_text()
    state = page_state(tmp_path, text, "report.html")
    assert state["errors"] == [], state["errors"]
    assert state["images-ok"] == "true", state
    assert int(state["images"]) == text.count("<img ") >= 8

    shot = tmp_path / "report-screenshot.png"
    proc = run_chromium(tmp_path, "--window-size=1280,1800", f"--screenshot={shot}", report.as_uri())
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    with Image.open(shot) as im:
        im.verify()
    with Image.open(shot) as im:
        assert im.format == "PNG" and im.size == (1280, 1800)
        grey = im.convert("L")
        lo, hi = grey.getextrema()
        assert hi - lo > 100, "the screenshot is blank"
        assert len(grey.getcolors(256) or []) > 20, "the screenshot has almost no content"
