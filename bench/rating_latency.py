"""Benchmark of the rating app: key press to the next photo on screen, in a real Chromium.

Builds a synthetic study whose photos are 24 MP (6000 x 4000) with :func:`assess.synth.make_study`,
randomizes it with :func:`assess.blind.randomize` into a 100-photo worklist (no repeats), serves it
with ``assess rate`` on 127.0.0.1, and drives Debian's Chromium through the whole worklist by
keyboard. The time is measured in the page: ``performance.now()`` at the key's ``keydown`` to the
``load`` event of the next photo's ``<img>`` (its code in ``data-code``), so it covers the saving
callback, the script run, the websocket round trip, rendering and the photo load. Prints p50, p95
and the worst case; target p95 <= 100 ms.

Photos reach the browser only through the app's photo route, to the signed-in session's cookie and
signed link (assess/web.py); the reference page serves them as Streamlit static files. The cost
of the route alone is measured too: every display copy fetched once more from the page with the
browser's cache bypassed (``fetch(url, {cache: "no-store"})``), request to last byte.

    python bench/rating_latency.py [--photos 100] [--size 6000x4000] [--keep DIR]
    python bench/rating_latency.py --rater-dir DIR --rater derm1 --code XXXX-XXXX   # an existing set
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assess import rate  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REGIONS = {"face": "wsrs", "hands": "merz-hand"}
# The reference: the smallest Streamlit page that does the same job (save in the button's on_click
# callback to SQLite in WAL mode with a flushed commit, the photo as a static URL, the next one
# prefetched). Its connection stays open: closing a WAL database's last connection checkpoints
# it, a cost of the reference's own making that assess's server does not pay on every save.
REFERENCE_APP = """
import json, os, sqlite3
import streamlit as st
codes = json.loads(os.environ["BENCH_CODES"])
st.set_page_config(layout="wide")
ss = st.session_state
ss.setdefault("i", 0)
@st.cache_resource
def db():
    con = sqlite3.connect(os.environ["BENCH_DB"], isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL"); con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE IF NOT EXISTS r (item TEXT, score INT)")
    return con
def save():
    db().execute("INSERT INTO r VALUES (?, ?)", (codes[ss.i], 1))
    ss.i += 1
i = ss.i
c, n = codes[min(i, len(codes) - 1)], codes[min(i + 1, len(codes) - 1)]
st.markdown(f'<div class="assess-photo"><img src="app/static/display/{c}.jpg" data-code="{c}" '
            f'style="max-width:100%;max-height:95vh"></div><img src="app/static/display/{n}.jpg" '
            f'style="position:absolute;left:-9999px;width:8px">', unsafe_allow_html=True)
st.button("Rate", shortcut="1", on_click=save)
st.markdown(f'<span class="assess-ready" data-item="{c}" data-rated="{i}" data-mode="rate"></span>',
            unsafe_allow_html=True)
"""
#: Fetch each URL once, bypassing the browser's cache; the times (ms) from request to last byte.
FETCH_JS = """async (urls) => {
  const out = [];
  for (const u of urls) {
    const t = performance.now();
    const r = await fetch(u, {cache: "no-store", credentials: "same-origin"});
    if (!r.ok) throw new Error(u + ": " + r.status);
    await r.arrayBuffer();
    out.push(performance.now() - t);
  }
  return out;
}"""
MEASURE_JS = """
window.__lat = {down: [], loads: {}};
document.addEventListener('keydown', () => window.__lat.down.push(performance.now()), true);
document.addEventListener('load', (e) => {
  const t = e.target;
  if (t && t.tagName === 'IMG' && t.dataset && t.dataset.code && t.closest('.assess-photo')) {
    if (!(t.dataset.code in window.__lat.loads)) window.__lat.loads[t.dataset.code] = performance.now();
  }
}, true);
"""


def build_set(work: Path, photos: int, size: tuple[int, int]) -> tuple[Path, str, str]:
    from assess import blind, synth

    per_participant = len(REGIONS) * 2
    participants = -(-photos // per_participant)
    t0 = time.perf_counter()
    study = synth.make_study(work / "images", participants=participants, regions=REGIONS,
                             seed=11, size=size, repeat_fraction=0.0, heic_fraction=0.0,
                             workers=os.cpu_count())
    t1 = time.perf_counter()
    print(f"synthetic study: {len(study.photos)} photos of {size[0]} x {size[1]} px "
          f"in {t1 - t0:.0f} s", file=sys.stderr)
    built = blind.randomize(study.study_path, study.root, work / "assignments", set_id="bench",
                            seed=5)
    print(f"randomized in {time.perf_counter() - t1:.0f} s: {built.counts}", file=sys.stderr)
    rater = built.raters[0]
    return built.rater_dir, rater, built.access[rater]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(rater_dir: Path, db: Path, port: int, log: Path) -> subprocess.Popen:
    exe = shutil.which("assess")
    cmd = [exe] if exe else [sys.executable, "-c", "from assess.cli import cli; cli()"]
    cmd += ["rate", str(rater_dir), "--db", str(db), "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=fh, env=env, cwd=db.parent)
    wait_healthy(port, proc, log)
    return proc


def wait_healthy(port: int, proc: subprocess.Popen, log: Path) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with opener.open(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    raise SystemExit(f"the server did not start; see {log}")


def measure(page, codes: list[str], keys: list[str], items: list[str],
            seen: bool = True) -> list[float]:
    """Press ``keys[i]`` on photo ``codes[i]``; time each key press to the next photo's load.

    With ``seen``, each press waits until the app marks the photo as seen for the set's minimum
    time (the reference page has no such rule)."""
    latencies = []
    for i, code in enumerate(codes):
        page.wait_for_selector(f'.assess-ready[data-item="{items[i]}"][data-mode="rate"]',
                               state="attached")
        page.wait_for_function("c => c in window.__lat.loads", arg=code)
        if seen:  # as a rater would: look at the photo for the set's minimum time, then answer
            page.wait_for_selector(f'html[data-assess-seen="{items[i]}"]', state="attached")
        page.keyboard.press(keys[i])
        if i + 1 < len(codes):
            nxt = codes[i + 1]
            page.wait_for_function("c => c in window.__lat.loads", arg=nxt)
            down = page.evaluate("window.__lat.down[window.__lat.down.length - 1]")
            latencies.append(page.evaluate("c => window.__lat.loads[c]", nxt) - down)
    return latencies


def new_page(p, viewport=(1600, 1000)):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.set_default_timeout(30_000)
    page.add_init_script(MEASURE_JS)
    return browser, page


def drive_app(url: str, wl: rate.Worklist, code: str, db: Path) -> tuple[list[float], list[float]]:
    """Sign in to ``assess rate`` and rate the whole worklist by keyboard.

    Returns the latencies and the times of fetching every display copy through the photo route.
    """
    from playwright.sync_api import sync_playwright

    from assess import session

    items = wl.items
    keys = [str(wl.set.scales[it.scale].values[i % len(wl.set.scales[it.scale].values)])
            for i, it in enumerate(items)]
    with sync_playwright() as p:
        browser, page = new_page(p)
        page.goto(url)
        page.wait_for_selector('.assess-ready[data-item="__signin__"]', state="attached")
        page.get_by_label("Rater id").fill(wl.rater)
        page.get_by_label("Access code").fill(code)
        page.get_by_label("Access code").press("Enter")
        page.locator("button kbd").first.wait_for()
        page.wait_for_selector('.assess-ready:not([data-item="__signin__"]):not('
                               '[data-item="__session__"])', state="attached")
        ticket = page.locator(".assess-photo img").first.get_attribute("src").split("/")[2]
        access = session.PhotoAccess(session.key_of(db), session.read_ticket(ticket)[0])
        lat = measure(page, [it.photos[0] for it in items], keys, [it.item for it in items])
        page.wait_for_selector('.assess-ready[data-item="__summary__"]', state="attached")
        fetched = page.evaluate(FETCH_JS, [rate.display_url(it.photos[0], access) for it in items])
        browser.close()
    return lat, fetched


@contextmanager
def reference_server(rater_dir: Path, codes: list[str], work: Path, name: str = "reference"):
    """The reference page serving ``codes`` of the rater folder; yields its port."""
    import json

    app_dir = work / name
    app_dir.mkdir()
    (app_dir / "app.py").write_text(REFERENCE_APP)
    (app_dir / "static").symlink_to(Path(rater_dir).resolve() / "images")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(BENCH_CODES=json.dumps(codes), BENCH_DB=str(work / f"{name}.sqlite"))
    with open(work / f"{name}.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app_dir / "app.py"),
                                 *rate.streamlit_flags("127.0.0.1", port),
                                 "--server.enableStaticServing=true"],
                                stdout=log, stderr=log, env=env)
    try:
        wait_healthy(port, proc, work / f"{name}.log")
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def drive_reference(rater_dir: Path, wl: rate.Worklist,
                    work: Path) -> tuple[list[float], list[float]]:
    """Serve the reference page on the same photos and press 1 through them."""
    from playwright.sync_api import sync_playwright

    codes = [it.photos[0] for it in wl.items]
    with reference_server(rater_dir, codes, work) as port, sync_playwright() as p:
        browser, page = new_page(p)
        page.goto(f"http://127.0.0.1:{port}/")
        page.locator("button kbd").first.wait_for()
        lat = measure(page, codes, ["1"] * len(codes), codes, seen=False)
        fetched = page.evaluate(FETCH_JS, [f"app/static/display/{c}.jpg" for c in codes])
        browser.close()
    return lat, fetched


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=100)
    ap.add_argument("--size", default="6000x4000", help="source photo size, WxH (default 24 MP)")
    ap.add_argument("--keep", type=Path, help="build the set here and keep it")
    ap.add_argument("--rater-dir", type=Path, help="measure an existing rater folder instead")
    ap.add_argument("--rater", default="derm1")
    ap.add_argument("--code", help="the rater's access code (with --rater-dir)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="assess-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.rater_dir:
            rater_dir, rater, code = args.rater_dir, args.rater, args.code
            access = rater_dir.parent / "key" / "access.csv"
            if code is None and access.is_file():  # a set built by this script with --keep
                import csv

                with open(access, newline="") as fh:
                    code = {r["rater"]: r["access_code"] for r in csv.DictReader(fh)}[rater]
        else:
            w, h = (int(v) for v in args.size.lower().split("x"))
            rater_dir, rater, code = build_set(work, args.photos, (w, h))
        wl = rate.load_rater_set(rater_dir).worklist(rater)
        db = work / "ratings.sqlite"
        if db.exists():
            db.unlink()
        port = free_port()
        server = start_server(rater_dir, db, port, work / "server.log")
        try:
            lat, fetched = drive_app(f"http://127.0.0.1:{port}/", wl, code, db)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        ref, ref_fetched = drive_reference(rater_dir, wl, work)
        display = next((rater_dir / "images" / "display").iterdir())
        from PIL import Image

        with Image.open(display) as im:
            dsize = im.size
        print(f"rating latency, key press -> next photo loaded, {len(lat)} photos "
              f"(display copies {dsize[0]} x {dsize[1]} px, Chromium headless, 127.0.0.1, "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
        print(f"{'':12s}{'assess rate':>14s}{'reference page':>17s}")
        for name, q in (("p50", 50), ("p95", 95)):
            print(f"  {name:10s}{percentile(lat, q):11.1f} ms{percentile(ref, q):14.1f} ms")
        print(f"  {'max':10s}{max(lat):11.1f} ms{max(ref):14.1f} ms")
        print(f"  {'mean':10s}{statistics.fmean(lat):11.1f} ms{statistics.fmean(ref):14.1f} ms")
        print("target: assess rate p95 <= 100 ms")
        print(f"one display copy fetched, cache bypassed, {len(fetched)} photos "
              f"(assess: signed route + session check; reference: Streamlit static file)")
        for name, q in (("p50", 50), ("p95", 95)):
            print(f"  {name:10s}{percentile(fetched, q):11.1f} ms"
                  f"{percentile(ref_fetched, q):14.1f} ms")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
