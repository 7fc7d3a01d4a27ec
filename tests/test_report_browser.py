"""The report in a real browser: headless Chromium loads every image without console errors.

A copy of ``report.html`` gets a small checker script at the top of ``<head>``: it records
``window.onerror`` / resource-load errors, ``console.error`` calls and Content-Security-
Policy violations, and on ``load`` marks ``<body data-images-ok>`` when every ``<img>`` is
``complete`` with ``naturalWidth > 0``. Chromium's ``--dump-dom`` returns the DOM after load;
a negative control (a broken image and a throwing script) proves the checker catches both.
A screenshot is saved under the test's tmp dir and checked to be a real, non-blank PNG.

A second injected script (``PROBE``) measures the layout a person sees at 1280 px: the page's
``scrollWidth`` (no horizontal overflow), every metrics table's box (no table wider than its
box) and the line boxes of every text node in the header and the tables
(``Range.getClientRects``: no two overlap). It runs on a demo-like report (tiny conv_ae on
12x12 images), a faces-like report (non-square 20x12 images) and a comparison of three runs;
their 1280-px screenshots are kept in ``$REPRLAB_TEST_ARTIFACTS`` (default: the test's tmp dir)
and their paths printed. A negative control proves the probe catches overflow and overlap.

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

import numpy as np
import pytest
from PIL import Image

from reprlab import api
from reprlab.reporting.report import write_comparison
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


def assert_page_loads(tmp: Path, html_text: str, name: str, *, min_images: int = 1, what: str = "the page") -> dict:
    """Open ``html_text`` in Chromium: no console error, and every one of its ``<img>`` (at least
    ``min_images``) loaded. Returns the page state."""
    state = page_state(tmp, html_text, name)
    assert state["errors"] == [], f"{what}: console errors: {state['errors']}"
    assert state["images-ok"] == "true", f"{what}: {state}"
    assert int(state["images"]) == html_text.count("<img ") >= min_images, f"{what}: {state}"
    return state


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
    assert_page_loads(tmp_path, text, "report.html", min_images=8, what="the run report")

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


# ----------------------------------------------------------------------------------------
# layout at 1280 px: overflow, overlapping text, screenshots kept as artefacts
# ----------------------------------------------------------------------------------------
WIDTH = 1280

PROBE = """<script>
window.addEventListener('load', function () {
  var body = document.body, de = document.documentElement;
  var boxes = [];
  document.querySelectorAll('header, table').forEach(function (root) {
    var walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT), node;
    while ((node = walk.nextNode())) {
      if (!node.textContent.trim()) continue;
      var range = document.createRange(); range.selectNodeContents(node);
      Array.prototype.forEach.call(range.getClientRects(), function (r) {
        if (r.width > 0 && r.height > 0) boxes.push({t: node.textContent.trim().slice(0, 30), n: node, r: r});
      });
    }
  });
  var hits = [];
  for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) {
    var a = boxes[i], b = boxes[j];
    if (a.n === b.n) continue;
    var w = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
    var h = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
    if (w > 1 && h > 1) hits.push(a.t + ' / ' + b.t);
  }
  var wide = [];
  document.querySelectorAll('table').forEach(function (t) {
    var box = t.parentElement;
    if (t.getBoundingClientRect().right > de.clientWidth + 0.5 || (box && box.scrollWidth > box.clientWidth + 1))
      wide.push(t.className || 'table');
  });
  body.setAttribute('data-inner-width', String(window.innerWidth));
  body.setAttribute('data-scroll-width', String(de.scrollWidth));
  body.setAttribute('data-text-boxes', String(boxes.length));
  body.setAttribute('data-overlaps', JSON.stringify(hits.slice(0, 20)));
  body.setAttribute('data-wide-tables', JSON.stringify(wide));
  body.setAttribute('data-probed', 'true');
});
</script>"""


def artefact_dir(tmp_path: Path) -> Path:
    """``$REPRLAB_TEST_ARTIFACTS`` (created) or the test's tmp dir: where screenshots are kept."""
    folder = Path(os.environ.get("REPRLAB_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def layout_state(tmp: Path, html_text: str, name: str) -> dict:
    """Load ``html_text`` with :data:`PROBE` in a 1280-px window; return the measurements."""
    page = tmp / name
    page.write_text(html_text.replace("<head>", "<head>\n" + PROBE, 1))
    proc = run_chromium(tmp, f"--window-size={WIDTH},900", "--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    body = re.search(r"<body\b([^>]*)>", proc.stdout)
    assert proc.returncode == 0 and body, f"chromium failed (exit {proc.returncode}): {proc.stderr[-2000:]}"
    attrs = {k: html_lib.unescape(v) for k, v in re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1))}
    assert attrs.get("probed") == "true", f"the probe script did not run; stderr: {proc.stderr[-2000:]}"
    assert int(attrs["inner-width"]) == WIDTH, attrs  # the window really is 1280 px wide
    return {"scroll_width": int(attrs["scroll-width"]), "text_boxes": int(attrs["text-boxes"]),
            "overlaps": json.loads(attrs["overlaps"]), "wide_tables": json.loads(attrs["wide-tables"])}


def assert_fits(state: dict, what: str) -> None:
    assert state["text_boxes"] >= 10, f"{what}: the probe found almost no text: {state}"
    assert state["scroll_width"] <= WIDTH, f"{what} overflows a {WIDTH}-px window horizontally: {state}"
    assert state["wide_tables"] == [], f"{what}: a table is wider than its box: {state}"
    assert state["overlaps"] == [], f"{what}: text boxes overlap in the header or a table: {state}"


def screenshot(tmp: Path, page: Path, out: Path) -> Path:
    proc = run_chromium(tmp, f"--window-size={WIDTH},1800", f"--screenshot={out}", page.as_uri())
    assert proc.returncode == 0 and out.exists(), proc.stderr[-2000:]
    with Image.open(out) as im:
        assert im.size == (WIDTH, 1800)
        lo, hi = im.convert("L").getextrema()
        assert hi - lo > 100, f"the screenshot {out} is blank"
    print(f"screenshot: {out}")
    return out


def test_layout_probe_catches_overflow_and_overlap(tmp_path):
    bad = ("<!DOCTYPE html><html><head><title>t</title></head><body><header><h1>A title</h1>"
           "<span style=\"position:relative;top:-2.2em\">overlapping label</span></header>"
           "<div><table><tr><td style=\"min-width:1500px\">a very wide cell</td><td>x</td></tr>"
           + "".join(f"<tr><td>row {i}</td><td>{i}</td></tr>" for i in range(6)) + "</table></div></body></html>")
    state = layout_state(tmp_path, bad, "bad-layout.html")
    assert state["scroll_width"] > WIDTH
    assert state["wide_tables"] and state["overlaps"], state


def _faces_like_run(root: Path) -> Path:
    """A tiny conv_ae run (figures and report) on 60 non-square 20x12 images with 3 labels."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    yy, xx = np.mgrid[:20, :12]
    images = np.stack([np.exp(-((yy - 5 - 5 * c) ** 2 + (xx - 6) ** 2) / 8.0) for c in labels])
    np.savez_compressed(root / "faces.npz", x=(images[..., None] * 255).astype(np.uint8), y=labels)
    cfg = {"seed": 0, "output_dir": str(root / "runs"), "name": "faces-like",
           "data": {"name": "arrays", "path": str(root / "faces.npz"), "val_fraction": 0.2},
           "model": {"name": "conv_ae", "latent_dim": 4, "channels": [4, 8]},
           "train": {"epochs": 1, "batch_size": 16, "progress": "off"},
           "eval": {"k": 8, "report": True, "figures": True}}
    return api.train(cfg).run_dir


def test_reports_and_comparison_fit_a_1280px_window(tiny_runs, tmp_path):
    art = artefact_dir(tmp_path)
    faces = _faces_like_run(tmp_path)
    compare = write_comparison([tiny_runs["ae"], tiny_runs["vae"], faces], tmp_path / "comparison")
    pages = {"demo-report": tiny_runs["ae"] / "report.html", "faces-report": faces / "report.html",
             "comparison": compare}
    for name, page in pages.items():
        screenshot(tmp_path, page, art / f"{name}-{WIDTH}px.png")  # kept even when a check below fails
        assert_fits(layout_state(tmp_path, page.read_text(), f"{name}-probed.html"), name)
