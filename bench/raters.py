"""Load benchmark: N raters at once against one ``assess rate`` server, on SQLite and PostgreSQL.

Each simulated rater has its own signed-in session and its own websocket to the server. With
``--client ws`` (the default) a rater is a websocket client speaking Streamlit's own protocol as
the browser's page does: it sends the button press of a rating as the page would, reads the
screens the server sends back, and fetches each photo the screen prefetches through the app's
photo route with its session cookie. The time is from sending the press to receiving the next
photo's element: the server's share of the latency, which is what more raters load; a browser
adds its drawing (``bench/rating_latency.py`` measures that for one rater). With ``--client
browser`` each rater is a Playwright context of one headless Chromium instead, signed in with its
access code, timed in the page (``keydown`` to the next photo's ``load``); on a 2-core machine 20
Chromium pages load the machine more than the server does, so that mode measures the browsers.

Each rater looks at a photo for 2 to 4 seconds (drawn at random, after the app marks it seen),
presses a rating key and waits for the next photo. Ratings per second count the answers the
screens acknowledged (the next item on screen). At the end the database is read: every
acknowledged rating must be there once, under its rater and item, with its score (0 lost, 0
duplicated, 0 crossed). A single rater on the minimal reference page of
``bench/rating_latency.py`` runs in the same run, on the same photos, with the same client.

    python bench/raters.py --n 1,5,10,20 --seconds 60 --backend sqlite,postgres
    python bench/raters.py --client browser --n 1,5
    python bench/raters.py --pg-url postgresql://assess@127.0.0.1/bench   # an existing server

Without ``--pg-url`` a throwaway PostgreSQL cluster is started (``tests/pg_cluster.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from rating_latency import (CHROMIUM, CHROMIUM_ARGS, MEASURE_JS, REGIONS, drive_reference,  # noqa: E402
                            free_port, percentile, reference_server, start_server)

from assess import rate, store  # noqa: E402


def build_set(work: Path, raters: int, photos: int, size: tuple[int, int]):
    """A synthetic set with ``raters`` raters, each rating every photo: (rater dir, access)."""
    import csv

    from assess import blind, synth

    participants = -(-photos // (len(REGIONS) * 2))
    ids = tuple(f"r{i + 1:02d}" for i in range(raters))
    study = synth.make_study(work / "images", participants=participants, regions=REGIONS, seed=3,
                             size=size, raters=ids, repeat_fraction=0.0, heic_fraction=0.0,
                             workers=os.cpu_count())
    built = blind.randomize(study.study_path, study.root, work / "assignments", set_id="load",
                            seed=9)
    with open(built.path / "key" / "access.csv", newline="") as fh:
        access = {row["rater"]: row["access_code"] for row in csv.DictReader(fh)}
    return built.rater_dir, access


#: What the latency columns measure, by client.
MEASURED = {"browser": "key press -> next photo loaded (Chromium headless)",
            "ws": "press sent -> next photo's element received (websocket clients)"}

#: Raters arrive this many seconds apart (a server is not opened by all its raters at one instant).
ARRIVAL_S = 1.0


async def one_rater(browser, url: str, wl: rate.Worklist, code: str, seconds: float,
                    pace: tuple[float, float], rng: random.Random, out: dict,
                    arrive: float = 0.0) -> None:
    """Sign in after ``arrive`` seconds and rate at a human pace for ``seconds``; fills ``out``
    (latencies, acknowledged ratings, when the rater started and stopped rating)."""
    await asyncio.sleep(arrive)
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = await context.new_page()
        page.set_default_timeout(180_000)
        await page.add_init_script(MEASURE_JS)
        await page.goto(url)
        await page.wait_for_selector('.assess-ready[data-item="__signin__"]', state="attached")
        await page.get_by_label("Rater id").fill(wl.rater)
        await page.get_by_label("Access code").fill(code)
        await page.get_by_label("Access code").press("Enter")
        await page.locator("button kbd").first.wait_for()
        scales = wl.set.scales
        start = time.monotonic()
        until = start + seconds
        for i, it in enumerate(wl.items[:-1]):
            await page.wait_for_selector(f'.assess-ready[data-item="{it.item}"][data-rated="{i}"]'
                                         f'[data-mode="rate"]', state="attached")
            await page.wait_for_selector(f'html[data-assess-seen="{it.item}"]', state="attached")
            await asyncio.sleep(rng.uniform(*pace))
            if time.monotonic() >= until:
                break
            values = scales[it.scale].values
            score = values[rng.randrange(len(values))]
            nxt = wl.items[i + 1]
            await page.keyboard.press(str(score))
            await page.wait_for_function("c => c in window.__lat.loads", arg=nxt.photos[0])
            await page.wait_for_selector(f'.assess-ready[data-item="{nxt.item}"]'
                                         f'[data-rated="{i + 1}"]', state="attached")
            down = await page.evaluate("window.__lat.down[window.__lat.down.length - 1]")
            out["latencies"].append(await page.evaluate("c => window.__lat.loads[c]",
                                                        nxt.photos[0]) - down)
            out["acked"][(wl.rater, it.item)] = score
        out["spans"].append((start, time.monotonic()))
    finally:
        await context.close()


def session_cookie(db, wl: rate.Worklist) -> str:
    """A live session of the worklist's rater, made as a sign-in makes it (grant, then redeemed
    as the page's ``POST /assess/session`` does); the ``Cookie`` header that carries it."""
    from assess import session

    now = time.time()
    grant = session.make_grant(session.key_of(db), wl.set.set_id, wl.rater, now)
    value, _ = session.redeem_grant(db, wl.set.set_id, wl.set.raters, 12, grant, now)
    return f"{session.cookie_name(wl.set.set_id)}={value}"


async def fetch_images(http, url: str, screen, fetched: set) -> None:
    """Load every image of a screen not loaded before, as a browser with its cache does."""
    import httpx

    for src in screen.images:
        if src not in fetched:
            fetched.add(src)
            address = url.rstrip("/") + "/" + src.lstrip("/")
            try:
                response = await http.get(address)
            except httpx.RemoteProtocolError:
                # the server closed an idle kept-alive connection as the request went out
                # (its keep-alive timeout is 5 s): a browser sends such a GET again, and so do we
                response = await http.get(address)
            response.raise_for_status()


async def ws_rater(url: str, wl: rate.Worklist, db, seconds: float, pace: tuple[float, float],
                   rng: random.Random, out: dict, arrive: float = 0.0) -> None:
    """:func:`one_rater` over a websocket of its own (``--client ws``)."""
    import httpx

    from ws_client import Page

    from assess.app import entry

    await asyncio.sleep(arrive)
    cookie = session_cookie(db, wl)
    async with Page(url, cookie) as page, httpx.AsyncClient(headers={"Cookie": cookie},
                                                            trust_env=False) as http:
        fetched: set[str] = set()
        screen = await page.run()
        await fetch_images(http, url, screen, fetched)
        start = time.monotonic()
        until = start + seconds
        for i, it in enumerate(wl.items[:-1]):
            if screen.ready != (it.item, i, "rate"):
                raise RuntimeError(f"{wl.rater}: expected {it.item} with {i} rated, the screen "
                                   f"shows {screen.ready}")
            await asyncio.sleep(rng.uniform(*pace))
            if time.monotonic() >= until:
                break
            values = wl.set.scales[it.scale].values
            score = values[rng.randrange(len(values))]
            nxt = wl.items[i + 1]
            sent = time.perf_counter()
            screen = await page.run(press=screen.buttons[entry.key_of(score)],
                                    watch=nxt.photos[0])
            if screen.seen_at is None or screen.ready != (nxt.item, i + 1, "rate"):
                raise RuntimeError(f"{wl.rater}: the press on {it.item} did not lead to "
                                   f"{nxt.item} (the screen shows {screen.ready})")
            out["latencies"].append((screen.seen_at - sent) * 1000)
            out["acked"][(wl.rater, it.item)] = score
            await fetch_images(http, url, screen, fetched)
        out["spans"].append((start, time.monotonic()))


async def ws_reference(url: str, codes: list[str]) -> list[float]:
    """The reference page (``bench/rating_latency.py``) pressed through by the websocket client."""
    import httpx

    from ws_client import Page

    lat: list[float] = []
    async with Page(url) as page, httpx.AsyncClient(trust_env=False) as http:
        fetched: set[str] = set()
        screen = await page.run()
        for nxt in codes[1:]:
            await fetch_images(http, url, screen, fetched)
            sent = time.perf_counter()
            screen = await page.run(press=screen.buttons["Rate"], watch=nxt)
            if screen.seen_at is None:
                raise RuntimeError(f"the reference page did not show {nxt}")
            lat.append((screen.seen_at - sent) * 1000)
    return lat


async def ws_run(url: str, worklists: list[rate.Worklist], db, seconds: float,
                 pace: tuple[float, float], seed: int) -> dict:
    out = {"latencies": [], "acked": {}, "spans": []}
    await asyncio.gather(*(ws_rater(url, wl, db, seconds, pace, random.Random(seed + k), out,
                                    k * ARRIVAL_S) for k, wl in enumerate(worklists)))
    out["elapsed"] = max(end for _, end in out["spans"]) - min(start for start, _ in out["spans"])
    return out


async def load_run(url: str, worklists: list[rate.Worklist], access: dict, seconds: float,
                   pace: tuple[float, float], seed: int) -> dict:
    from playwright.async_api import async_playwright

    out = {"latencies": [], "acked": {}, "spans": []}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            await asyncio.gather(*(one_rater(browser, url, wl, access[wl.rater], seconds, pace,
                                             random.Random(seed + k), out, k * ARRIVAL_S)
                                   for k, wl in enumerate(worklists)))
            out["elapsed"] = (max(end for _, end in out["spans"])
                              - min(start for start, _ in out["spans"]))
        finally:
            await browser.close()
    return out


def check_database(db, set_id: str, acked: dict) -> tuple[int, int, int]:
    """(lost, duplicated, crossed) of the acknowledged ratings, read from the database."""
    events = store.all_events(db)
    events = events[events["set_id"] == set_id]
    saved: dict[tuple[str, str], list[int]] = {}
    for row in events.itertuples():
        saved.setdefault((row.rater, row.item), []).append(int(row.score))
    lost = sum(1 for key in acked if key not in saved)
    duplicated = sum(len(v) - 1 for v in saved.values() if len(v) > 1)
    crossed = sum(1 for key, scores in saved.items() if acked.get(key) != scores[-1])
    return lost, duplicated, crossed


class Postgres:
    """A fresh database per run on ``--pg-url``'s server or on a throwaway cluster."""

    def __init__(self, url: str | None):
        self.cluster = None
        if url is None:
            from pg_cluster import Cluster

            self.cluster = Cluster()
            os.environ["PGPASSFILE"] = str(self.cluster.passfile)
            url = self.cluster.url("postgres")
        self.admin = url
        self.count = 0

    def fresh(self) -> str:
        import psycopg
        from urllib.parse import urlsplit, urlunsplit

        self.count += 1
        name = f"bench_raters_{os.getpid()}_{self.count}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return urlunsplit(urlsplit(self.admin)._replace(path=f"/{name}"))

    def close(self) -> None:
        from assess.store import postgres

        postgres.close_pools()
        if self.cluster is not None:
            self.cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="1,5,10,20", help="numbers of raters at once (default 1,5,10,20)")
    ap.add_argument("--seconds", type=float, default=60, help="length of each run (default 60)")
    ap.add_argument("--backend", default="sqlite,postgres", help="sqlite, postgres or both")
    ap.add_argument("--pace", default="2,4", help="seconds a rater looks at a photo (default 2,4)")
    ap.add_argument("--photos", type=int, default=0,
                    help="photos per worklist (default: enough for --seconds at the fastest pace)")
    ap.add_argument("--size", default="1600x1200", help="source photo size, WxH")
    ap.add_argument("--pg-url", help="an existing PostgreSQL server (a role that may create "
                    "databases; password from PGPASSWORD or ~/.pgpass)")
    ap.add_argument("--keep", type=Path, help="build the set here and keep it")
    ap.add_argument("--client", default="ws", choices=("ws", "browser"),
                    help="ws: websocket clients speaking Streamlit's protocol (default); "
                    "browser: Playwright contexts of one headless Chromium")
    args = ap.parse_args()
    ns = [int(v) for v in args.n.split(",")]
    backends = [b.strip() for b in args.backend.split(",")]
    if set(backends) - {"sqlite", "postgres"}:
        raise SystemExit("--backend: give sqlite, postgres or both")
    pace = tuple(float(v) for v in args.pace.split(","))
    photos = args.photos or int(args.seconds / pace[0]) + 4
    work = args.keep or Path(tempfile.mkdtemp(prefix="assess-bench-raters-"))
    work.mkdir(parents=True, exist_ok=True)
    pg = None
    rows, failed = [], []
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        t0 = time.perf_counter()
        rater_dir, access = build_set(work, max(ns), photos, (w, h))
        rs = rate.load_rater_set(rater_dir)
        ids = sorted(rs.raters)
        print(f"set: {max(ns)} raters x {len(rs.worklist(ids[0]).items)} photos, built in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
        first = rs.worklist(ids[0])
        if args.client == "browser":
            ref, _ = drive_reference(rater_dir, first, work)
        else:
            codes = [it.photos[0] for it in first.items]
            with reference_server(rater_dir, codes, work) as port:
                ref = asyncio.run(ws_reference(f"http://127.0.0.1:{port}/", codes))
        if "postgres" in backends:
            pg = Postgres(args.pg_url)
        for n in ns:  # each number of raters on every backend before the next, side by side
            for backend in backends:
                db = pg.fresh() if backend == "postgres" else work / f"load-{n}.sqlite"
                if backend == "sqlite" and db.exists():
                    db.unlink()
                port = free_port()
                if backend == "sqlite":
                    server = start_server(rater_dir, db, port, work / f"server-sqlite-{n}.log")
                else:
                    server = _start_pg(rater_dir, db, port, work, n)
                load = os.getloadavg()[0]
                try:
                    lists = [rs.worklist(r) for r in ids[:n]]
                    url = f"http://127.0.0.1:{port}/"
                    result = asyncio.run(
                        load_run(url, lists, access, args.seconds, pace, seed=n)
                        if args.client == "browser"
                        else ws_run(url, lists, db, args.seconds, pace, seed=n))
                except Exception as exc:  # e.g. a page that did not load: the next run goes on
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                    failed.append(f"{backend}, {n} raters: did not finish ({reason}; load "
                                  f"average {load:.1f})")
                    print(failed[-1], file=sys.stderr)
                    continue
                finally:
                    server.send_signal(signal.SIGTERM)
                    server.wait(timeout=30)
                lost, dup, crossed = check_database(db, rs.set_id, result["acked"])
                lat = result["latencies"]
                if len(lat) < 2:
                    raise SystemExit(f"{backend}, {n} raters: fewer than 2 ratings in "
                                     f"{args.seconds:g} s; give more --seconds")
                rows.append((backend, n, len(lat), percentile(lat, 50), percentile(lat, 95),
                             len(result["acked"]) / result["elapsed"], lost, dup, crossed, load))
                print(f"{backend} n={n}: {len(lat)} ratings, p50 {rows[-1][3]:.0f} ms, p95 "
                      f"{rows[-1][4]:.0f} ms, lost/dup/crossed {lost}/{dup}/{crossed}",
                      file=sys.stderr)
    finally:
        if pg is not None:
            pg.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"raters at once against one `assess rate` server, "
          f"each looking {pace[0]:g}-{pace[1]:g} s per photo, {args.seconds:g} s per run, arriving "
          f"{ARRIVAL_S:g} s apart; {MEASURED[args.client]} (127.0.0.1, {os.cpu_count()} cores)")
    print(f"{'backend':10s}{'raters':>7s}{'ratings':>9s}{'p50 ms':>9s}{'p95 ms':>9s}"
          f"{'ratings/s':>11s}{'lost':>6s}{'dup':>5s}{'crossed':>9s}{'load':>6s}")
    for b, n, k, p50, p95, rps, lost, dup, crossed, load in rows:
        print(f"{b:10s}{n:7d}{k:9d}{p50:9.1f}{p95:9.1f}{rps:11.2f}{lost:6d}{dup:5d}{crossed:9d}"
              f"{load:6.1f}")
    print(f"reference page, 1 rater without pause, same client: p50 {percentile(ref, 50):.1f} ms, p95 "
          f"{percentile(ref, 95):.1f} ms ({len(ref)} photos)")
    for line in failed:
        print(line)
    print("target: p95 <= 150 ms with 20 raters; 0 lost, 0 duplicated, 0 crossed")
    if any(r[6] or r[7] or r[8] for r in rows):
        raise SystemExit("ratings were lost, duplicated or crossed")
    if failed:
        raise SystemExit(1)


def _start_pg(rater_dir: Path, url: str, port: int, work: Path, n: int):
    """``assess rate`` on a PostgreSQL URL (start_server takes a SQLite path for its cwd)."""
    import subprocess

    from rating_latency import wait_healthy

    exe = shutil.which("assess")
    cmd = [exe] if exe else [sys.executable, "-c", "from assess.cli import cli; cli()"]
    cmd += ["rate", str(rater_dir), "--db", url, "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    log = work / f"server-postgres-{n}.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=fh, env=env, cwd=work)
    wait_healthy(port, proc, log)
    return proc


if __name__ == "__main__":
    main()
