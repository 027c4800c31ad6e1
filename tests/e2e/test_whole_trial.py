"""The whole trial end to end: the NCT06217627 example from raw photos to the report.

The example's design (49 participants in two arms, face and neck on WSRS, both hands on the Merz
hand grading scale, baseline and month 12, one rater, 10% disguised repeats) is drawn by the
example's generator with smaller photos, randomized by ``assess randomize`` and served by a real
``assess rate`` on 127.0.0.1. A scripted rater in a real Chromium signs in and rates the whole
worklist by keyboard: it answers each photo's true level (looked up through the key and the truth
file — the scripted rater may cheat, the app never sees either) with seeded noise, takes a break
(the browser is closed), resumes in a new browser, flags one photo "cannot assess" and locks the
worklist. ``assess score`` and ``assess audit-set --key`` then run as a statistician and a
coordinator would, and the tests check their numbers against scipy on the answers typed.

A second, smaller run of the same design in ``pairs`` presentation rates baseline and follow-up side
by side and scores the blinding index.

Screenshots of the rating screen, the pair screen and the report are taken on the way; with
``ASSESS_SCREENSHOTS=docs`` they are copied into ``docs/`` (that is how the README's pictures are
made)::

    ASSESS_SCREENSHOTS=docs python3 -m pytest tests/e2e/test_whole_trial.py
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
import sqlite3
import time
from collections import Counter, defaultdict
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image, JpegImagePlugin
from scipy import stats

from assess import chain, rate, seal, store
from assess.cli import cli
from assess.study import shipped_scales

from test_rating_browser import wait_ready

# One worker runs the whole module (pytest-xdist --dist loadgroup): its module-scoped set and
# server are made once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("whole_trial")]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXAMPLE = ROOT / "examples" / "nct06217627"
SCREEN = {"width": 1280, "height": 800}

# Smaller photos than the example's (for speed); the design is the full one. As in the example,
# the canvas is smaller than every camera's photos, so all are scaled down alike.
SIZE = (640, 480)
NORMALIZE = {"long_edge": 576, "display_long_edge": 576, "quality": 90, "aspect": "4:3",
             "fit": "crop"}
BLINDING_SEED = 5_270_611_913_214  # a long seed: randomize warns about short ones
NOISE = 0.2  # share of answers one level off the truth (half up, half down)
NOISE_SEED = 17
SCALES = shipped_scales()


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The example's generator and the e2e server helper, loaded by path (neither is a package).
example = _load(EXAMPLE / "generate.py", "nct06217627_generate")
e2e = _load(HERE / "conftest.py", "assess_e2e_servers")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def invoke(*args: str):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


@dataclass
class Run:
    """Everything one scripted trial produced."""

    images: Path
    rater_dir: Path
    key_dir: Path
    db: Path
    out: Path
    key: dict[str, dict[str, str]]  # code -> key row
    truth: dict[tuple[str, str, str, str], int]
    arms: dict[str, str]
    items: list[rate.Item]
    answers: dict[str, object]  # item -> score, (better, first) or "cannot:<reason>"
    resumed_at: str = ""
    resumed_progress: str = ""
    status: str = ""
    score_output: str = ""
    audit_output: str = ""
    audit_exit: int = -1
    shots: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    fingerprint: str = ""  # of the coordinator key that signed the set


# --------------------------------------------------------------------------------- the rater


def true_level(run: Run, code: str) -> int:
    row = run.key[code]
    return run.truth[(row["participant"], row["timepoint"], row["region"], row["view"])]


def noisy(level: int, scale_id: str, rng: np.random.Generator) -> int:
    """The true level, one level off with probability NOISE (kept on the scale)."""
    values = SCALES[scale_id].values
    step = int(rng.choice([-1, 0, 1], p=[NOISE / 2, 1 - NOISE, NOISE / 2]))
    return level + step if level + step in values else level


def open_browser(browser, chromium: str):
    """A browser of its own (a new process), so that closing it is a real break."""
    own = browser.browser_type.launch(executable_path=chromium, args=e2e.CHROMIUM_ARGS)
    page = own.new_context(viewport=SCREEN).new_page()
    page.set_default_timeout(30_000)
    return own, page


def sign_in(page, url: str, rater: str, code: str) -> None:
    page.goto(url + "/")
    wait_ready(page, item="__signin__")
    page.get_by_label("Rater id").fill(rater)
    page.get_by_label("Access code").fill(code)
    page.get_by_label("Access code").press("Enter")
    # The page trades the sign-in for its session cookie and reloads (the "__session__" run).
    page.wait_for_selector('.assess-ready:not([data-item="__signin__"]):not([data-item="__session__"])',
                           state="attached")
    page.locator("button", has_text="Sign out").wait_for()


def photos_loaded(page) -> None:
    page.wait_for_function("() => [...document.querySelectorAll('.assess-photo img')]"
                           ".every(img => img.complete && img.naturalWidth > 0)")


def screenshot(page, run: Run, name: str) -> None:
    path = run.out.parent / "screens" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=path)
    run.shots[name] = path


def rate_singles(page, run: Run, start: int, stop: int, rng, shot_at: int | None = None) -> None:
    """Rate items ``start`` to ``stop`` by keyboard: the true level with noise."""
    for i in range(start, stop):
        it = run.items[i]
        wait_ready(page, item=it.item, rated=i, mode="rate")
        if i == shot_at:
            photos_loaded(page)
            screenshot(page, run, "rating-screen")
        answer = noisy(true_level(run, it.photos[0]), it.scale, rng)
        page.keyboard.press(str(answer))
        run.answers[it.item] = answer


def lock(page, n: int, code: str) -> None:
    """Submit and sign: tick, re-enter the access code, submit."""
    wait_ready(page, item="__summary__", rated=n, mode="summary")
    page.get_by_text("I have finished and want to submit my ratings").click()
    page.get_by_label("Your access code, to sign").fill(code)
    page.locator("button:not([disabled])", has_text="Submit and lock").click()
    wait_ready(page, item="__locked__")


# --------------------------------------------------------------------------------- the set


def make_set(root: Path, **generate) -> Run:
    images, assignments = root / "images", root / "assignments"
    t0 = time.perf_counter()
    synth = example.generate(images, size=SIZE, normalize=NORMALIZE, **generate)
    signing_key = root / "coordinator.key"  # the coordinator's, outside both folders
    fingerprint = seal.generate_key(signing_key)
    t1 = time.perf_counter()
    result = invoke("randomize", "--study", images / "study.toml", "--images", images,
                    "--out", assignments, "--set-id", "trial", "--seed", BLINDING_SEED,
                    "--signing-key", signing_key)
    assert result.exit_code == 0, result.output
    t2 = time.perf_counter()
    set_dir = assignments / "trial"
    rater_dir, key_dir = set_dir / "rater", set_dir / "key"
    arms = {r["participant"]: r["arm"] for r in read_csv(images / "participants.csv")}
    truth = {(r["participant"], r["timepoint"], r["region"], r["view"]): int(r["level"])
             for r in read_csv(images / "truth.csv")}
    assert truth == synth.truth
    run = Run(images=images, rater_dir=rater_dir, key_dir=key_dir,
              db=root / "results" / "ratings.sqlite", out=root / "results" / "trial",
              key={r["code"]: r for r in read_csv(key_dir / "key.csv")}, truth=truth, arms=arms,
              items=list(rate.load_rater_set(rater_dir).worklist("derm1").items), answers={},
              fingerprint=fingerprint)
    run.seconds.update({"generate": t1 - t0, "randomize": t2 - t1})
    return run


def serve(run: Run, cwd: Path):
    return e2e.RaterServer(run.rater_dir, run.db, cwd).start()


def score(run: Run) -> None:
    t0 = time.perf_counter()
    result = invoke("score", "--rater-dir", run.rater_dir, "--key", run.key_dir, "--db", run.db,
                    "--participants", run.images / "participants.csv", "--out", run.out)
    assert result.exit_code == 0, result.output
    run.score_output = result.output
    run.seconds["score"] = time.perf_counter() - t0


def report_screenshot(browser, chromium: str, run: Run, name: str) -> None:
    own, page = open_browser(browser, chromium)
    try:
        page.goto((run.out / "report.html").as_uri())
        page.wait_for_load_state("load")
        # The results, past the integrity checks and the methods.
        page.locator("h2", has_text="Results by region").evaluate("h => h.scrollIntoView()")
        screenshot(page, run, name)
    finally:
        own.close()


@pytest.fixture(scope="module")
def trial(tmp_path_factory, browser, chromium) -> Run:
    """The example's full design, rated in Chromium, scored and audited."""
    root = tmp_path_factory.mktemp("trial")
    t_start = time.perf_counter()
    run = make_set(root)
    access = dict((r["rater"], r["access_code"]) for r in read_csv(run.key_dir / "access.csv"))
    server = serve(run, root)
    try:
        rng = np.random.default_rng(NOISE_SEED)
        n = len(run.items)
        half = n // 2
        # The picture for the documentation: a face with visible lines.
        shot_at = next(i for i, it in enumerate(run.items)
                       if it.region == "face" and true_level(run, it.photos[0]) >= 3)
        t0 = time.perf_counter()

        # First sitting: half of the worklist, then the browser is closed.
        own, page = open_browser(browser, chromium)
        sign_in(page, server.url, "derm1", access["derm1"])
        rate_singles(page, run, 0, half, rng, shot_at=shot_at)
        wait_ready(page, item=run.items[half].item, rated=half, mode="rate")
        own.close()

        # Second sitting in a new browser: resumes at the first unrated item.
        own, page = open_browser(browser, chromium)
        sign_in(page, server.url, "derm1", access["derm1"])
        marker = page.locator(".assess-ready")
        run.resumed_at = marker.get_attribute("data-item")
        run.resumed_progress = page.get_by_text(re.compile(r"^\d+ of \d+ rated")).first.inner_text()
        # The first photo of this sitting cannot be assessed: X, then the reason's key.
        flagged = run.items[half]
        wait_ready(page, item=flagged.item, rated=half, mode="rate")
        page.keyboard.press("x")
        wait_ready(page, item=flagged.item, rated=half, mode="cannot")
        page.keyboard.press("1")
        run.answers[flagged.item] = "cannot:out_of_focus"
        rate_singles(page, run, half + 1, n, rng)
        lock(page, n, access["derm1"])
        own.close()
        run.seconds["rating"] = time.perf_counter() - t0
        run.seconds["per item"] = run.seconds["rating"] / n
        print(f"\n{n} items rated in {run.seconds['rating']:.1f} s")
    finally:
        server.stop()

    run.status = invoke("status", run.rater_dir, "--db", run.db, "--key", run.key_dir).output
    score(run)
    t0 = time.perf_counter()
    audit = invoke("audit-set", run.rater_dir, "--key", run.key_dir)
    run.seconds["audit"] = time.perf_counter() - t0
    run.audit_output, run.audit_exit = audit.output, audit.exit_code
    report_screenshot(browser, chromium, run, "report")
    run.seconds["total"] = time.perf_counter() - t_start
    print("\nwhole trial, seconds:", {k: round(v, 2) for k, v in run.seconds.items()})
    print(run.status, run.score_output, run.audit_output, sep="\n")
    publish(run.shots, {"rating-screen": "rating-screen.png", "report": "report.png"})
    return run


def publish(shots: dict[str, Path], names: dict[str, str]) -> None:
    """Copy the screenshots to ``$ASSESS_SCREENSHOTS`` (e.g. ``docs``) when it is set."""
    target = os.environ.get("ASSESS_SCREENSHOTS")
    if not target:
        return
    target_dir = Path(target) if Path(target).is_absolute() else ROOT / target
    target_dir.mkdir(parents=True, exist_ok=True)
    for name, file_name in names.items():
        # 256 colours: a third of the size, no visible change on a screen of flat widgets.
        with Image.open(shots[name]) as shot:
            shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
                target_dir / file_name, optimize=True)


# --------------------------------------------------------------------------------- expectations


def first_showings(run: Run) -> pd.DataFrame:
    """The answers typed for first showings, joined to the key and the arms (cannot-assess out)."""
    rows = []
    for item, answer in run.answers.items():
        row = run.key[item]
        if row["repeat_of"] or isinstance(answer, str):
            continue
        rows.append({"participant": row["participant"], "arm": run.arms[row["participant"]],
                     "timepoint": row["timepoint"], "region": row["region"], "view": row["view"],
                     "score": answer})
    return pd.DataFrame(rows)


def kappa(a, b, levels, weights: str | None) -> float:
    """Cohen's kappa over the declared levels, straight from its definition."""
    k = len(levels)
    index = {v: i for i, v in enumerate(levels)}
    table = np.zeros((k, k))
    for x, y in zip(a, b):
        table[index[x], index[y]] += 1
    table /= table.sum()
    i, j = np.indices((k, k))
    disagreement = {None: (i != j).astype(float), "linear": np.abs(i - j) / (k - 1),
                    "quadratic": ((i - j) / (k - 1)) ** 2}[weights]
    expected = np.outer(table.sum(axis=1), table.sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):  # one level only: undefined
        return 1 - (disagreement * table).sum() / (disagreement * expected).sum()


# --------------------------------------------------------------------------------- the tests


def test_the_example_is_the_trials_design_and_its_two_visits_used_different_cameras(trial):
    participants = Counter(trial.arms.values())
    assert participants == {"UC-MSC secretome": 19, "UC-explant secretome": 30}
    slots = Counter((trial.arms[p], r, v, t) for p, t, r, v in trial.truth)
    for tp in ("baseline", "month12"):
        assert slots[("UC-MSC secretome", "face", "", tp)] == 19
        assert slots[("UC-MSC secretome", "neck", "", tp)] == 19
        assert slots[("UC-explant secretome", "hands", "left", tp)] == 30
        assert slots[("UC-explant secretome", "hands", "right", tp)] == 30
    assert len(slots) == 8
    repeats = sum(1 for row in trial.key.values() if row["repeat_of"])
    assert (len(trial.items), repeats) == (196 + 20, 20)

    # The raw photos of the two visits share no size, JPEG quantization or chroma subsampling,
    # and the follow-up has rotated and HEIC files: a different camera.
    raw: dict[str, set] = defaultdict(set)
    formats: dict[str, Counter] = defaultdict(Counter)
    for path in sorted(trial.images.iterdir()):
        if path.suffix.lower() not in (".jpg", ".heic"):
            continue
        tp = path.stem.split("_")[1]
        formats[tp][path.suffix.lower()] += 1
        if path.suffix.lower() == ".jpg":
            with Image.open(path) as im:
                raw[tp].add(("size", tuple(sorted(im.size))))
                raw[tp].add(("tables", repr(im.quantization)))
                raw[tp].add(("subsampling", JpegImagePlugin.get_sampling(im)))
                raw[tp].add(("make", im.getexif().get(0x010F)))
    assert raw["baseline"] and raw["month12"] and not raw["baseline"] & raw["month12"]
    assert formats["month12"][".heic"] > 0 and formats["baseline"][".heic"] == 0


def test_the_rater_rates_every_item_by_keyboard_across_a_break_and_every_answer_is_kept(trial):
    n = len(trial.items)
    half = n // 2
    assert trial.resumed_at == trial.items[half].item
    assert trial.resumed_progress.startswith(f"{half} of {n} rated")
    current = store.current_ratings(trial.db)
    saved = {r.item: (f"cannot:{r.cannot_assess}" if r.cannot_assess else int(r.score))
             for r in current.itertuples()}
    assert saved == trial.answers
    assert len(store.all_events(trial.db)) == n  # one event per item: nothing lost, nothing doubled
    assert list(store.locks(trial.db)) == ["derm1"]
    status = trial.status.splitlines()
    assert status[0].split() == ["rater", "rated", "cannot", "assess", "repeats", "done", "time",
                                 "spent", "last", "activity", "locked", "failed", "sign-ins"]
    assert status[1].split()[:4] == ["derm1", f"{n}/{n}", "1", "20/20"]
    assert "yes" in status[1] and status[1].split()[-1] == "0"


def test_the_reports_paired_results_equal_scipys_wilcoxon_on_the_typed_answers(trial):
    summary = pd.read_csv(trial.out / "summary.csv", keep_default_na=False)
    within = summary[summary["analysis"] == "within arm"]
    data = first_showings(trial)
    expected_units = set()
    for (arm, region, view), grp in data.groupby(["arm", "region", "view"]):
        wide = grp.pivot(index="participant", columns="timepoint", values="score")
        both = wide.dropna()
        before, after = both["baseline"].to_numpy(float), both["month12"].to_numpy(float)
        improvement = before - after  # both scales: lower is better
        ref = stats.wilcoxon(improvement, zero_method="wilcox", correction=False, method="approx")
        row = within[(within["arm"] == arm) & (within["region"] == region)
                     & (within["view"] == view)]
        assert len(row) == 1, (arm, region, view)
        row = row.iloc[0]
        expected_units.add((arm, region, view))
        assert row["timepoint"] == "month12" and row["scale"] == ("merz-hand" if region == "hands"
                                                                   else "wsrs")
        assert int(row["n_pairs"]) == len(both)
        assert int(row["n_excluded"]) == len(wide) - len(both)
        assert float(row["statistic"]) == pytest.approx(float(ref.statistic), rel=1e-12)
        assert float(row["z"]) == pytest.approx(-abs(float(ref.zstatistic)), rel=1e-12)
        assert float(row["p"]) == pytest.approx(float(ref.pvalue), rel=1e-12)
        nonzero = improvement[improvement != 0]
        ranks = stats.rankdata(np.abs(nonzero))
        t_plus, t_minus = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
        assert float(row["effect_r"]) == pytest.approx(
            np.sign(t_plus - t_minus) * abs(ref.zstatistic) / np.sqrt(nonzero.size), rel=1e-12)
        assert float(row["rank_biserial"]) == pytest.approx((t_plus - t_minus) / (t_plus + t_minus),
                                                            rel=1e-12)
        assert float(row["mean_change"]) == pytest.approx((after - before).mean(), rel=1e-12)
        assert float(row["baseline_mean"]) == pytest.approx(before.mean(), rel=1e-12)
        assert float(row["followup_mean"]) == pytest.approx(after.mean(), rel=1e-12)
        assert int(row["responders"]) == int((improvement >= 1).sum())
    assert {(r.arm, r.region, r.view) for r in within.itertuples()} == expected_units
    # The flagged photo's participant drops out of that region's paired test.
    flagged = next(k for k, v in trial.answers.items() if isinstance(v, str))
    f = trial.key[flagged]
    row = within[(within["region"] == f["region"]) & (within["view"] == f["view"])].iloc[0]
    assert int(row["n_excluded"]) >= 1
    # Different scales or regions per arm: no between-arm test, a note says why.
    between = summary[summary["analysis"] == "between arms"]
    assert len(between) and (between["test"] == "").all()
    assert between["note"].str.startswith("not tested").all()
    assert "cannot assess" in trial.score_output and "Wrote" in trial.score_output
    html = (trial.out / "report.html").read_text(encoding="utf-8")
    assert "UC-MSC secretome" in html and "UC-explant secretome" in html


def test_the_disguised_repeats_give_the_kappa_the_typed_answers_imply(trial):
    reliability = pd.read_csv(trial.out / "reliability.csv", keep_default_na=False)
    intra = reliability[reliability["analysis"] == "intra-rater (repeats)"]
    pairs = defaultdict(list)
    for code, row in trial.key.items():
        first = row["repeat_of"]
        if not first:
            continue
        a, b = trial.answers[first], trial.answers[code]
        if isinstance(a, str) or isinstance(b, str):
            continue
        scale = "merz-hand" if row["region"] == "hands" else "wsrs"
        pairs[scale].append((a, b, true_level(trial, code)))
    assert set(intra["scale"]) == set(pairs)
    sim = np.random.default_rng(1)
    for scale_id, got in pairs.items():
        a, b, levels_true = ([g[k] for g in got] for k in range(3))
        levels = SCALES[scale_id].values
        row = intra[intra["scale"] == scale_id].iloc[0]
        # Exactly what the answers typed imply.
        assert int(row["n"]) == len(got)
        assert float(row["kappa"]) == pytest.approx(kappa(a, b, levels, None), rel=1e-12)
        assert float(row["kappa_linear"]) == pytest.approx(kappa(a, b, levels, "linear"), rel=1e-12)
        assert float(row["kappa_quadratic"]) == pytest.approx(kappa(a, b, levels, "quadratic"),
                                                              rel=1e-12)
        assert float(row["exact_agreement"]) == pytest.approx(np.mean(np.equal(a, b)), rel=1e-12)
        # And what the noise allows: the kappas of 2000 raters with the same noise on the same
        # photos; the one observed lies within their central 99%.
        truth = np.asarray(levels_true)
        draws = [np.where(np.isin(truth + steps, levels), truth + steps, truth)
                 for steps in sim.choice([-1, 0, 1], p=[NOISE / 2, 1 - NOISE, NOISE / 2],
                                         size=(2, 2000, truth.size))]
        for weights, column in ((None, "kappa"), ("quadratic", "kappa_quadratic")):
            simulated = [kappa(x, y, levels, weights) for x, y in zip(*draws)]
            low, high = np.nanpercentile(simulated, [0.5, 99.5])
            assert low <= float(row[column]) <= high, (scale_id, column, low, high)


AUDITED_PROPERTIES = {
    # property in the audit's table -> what issue it answers
    "width": "dimensions", "height": "dimensions", "display width": "dimensions",
    "display height": "dimensions", "format": "format", "display format": "format",
    "quantization tables": "quantization tables", "display quantization tables": "quantization tables",
    "file size": "file size", "display file size": "file size",
    "Huffman tables": "Huffman tables", "display Huffman tables": "Huffman tables",
    "chroma subsampling": "subsampling", "display chroma subsampling": "subsampling",
    "metadata segments": "metadata", "display metadata segments": "metadata",
    "JPEG segment layout": "metadata", "display JPEG segment layout": "metadata",
    "mtime": "timestamps", "display mtime": "timestamps",
    "code": "codes", "position in derm1's worklist": "position in the worklist",
}


def audit_table(output: str) -> dict[str, tuple[str, float, float]]:
    """property -> (kind, AUC, p) from the table ``assess audit-set --key`` prints."""
    rows = {}
    for line in output.splitlines():
        m = re.match(r"^(.+?)\s{2,}(fixed|randomized|pixels)\s+([\d.]+)\s+(\S+)\s", line)
        if m:
            rows[m.group(1)] = (m.group(2), float(m.group(3)), float(m.group(4)))
    return rows


def test_the_audit_is_clean_and_no_file_property_tells_the_timepoint(trial):
    assert trial.audit_exit == 0, trial.audit_output
    assert trial.audit_output.rstrip().splitlines()[-1].startswith("clean: ")
    table = audit_table(trial.audit_output)
    assert set(AUDITED_PROPERTIES) <= set(table)
    for name in AUDITED_PROPERTIES:
        kind, auc, p = table[name]
        # Fixed properties are made equal for every photo of a region by the pipeline, whatever
        # the camera; codes and worklist places are drawn at random and balanced between the
        # timepoints by the randomizer (restricted randomization). Neither may separate them.
        assert kind in ("fixed", "randomized"), name
        assert auc <= 0.55, (name, kind, auc, p)


def test_a_database_changed_behind_the_apps_back_is_refused_by_score_naming_what_changed(
        trial, tmp_path):
    # The untouched database: verified, its chain head in the report and in `assess verify`.
    heads = {rater: wl.head for (_, rater), wl in store.verify(trial.db).check().worklists.items()}
    assert chain.short(heads["derm1"]) in (trial.out / "report.html").read_text(encoding="utf-8")
    verified = invoke("verify", trial.rater_dir, "--db", trial.db)
    assert verified.exit_code == 0 and chain.short(heads["derm1"]) in verified.output
    # Someone with write access drops the guard triggers and changes one score.
    tampered = tmp_path / "ratings.sqlite"
    shutil.copy(trial.db, tampered)
    item, old = next((k, v) for k, v in trial.answers.items() if isinstance(v, int) and v < 4)
    with closing(sqlite3.connect(tampered)) as conn:
        event = conn.execute("SELECT MAX(id) FROM events WHERE item = ?", (item,)).fetchone()[0]
        conn.executescript("DROP TRIGGER events_append_only_update; "
                           "DROP TRIGGER events_append_only_delete; "
                           f"UPDATE events SET score = {old + 1} WHERE id = {event};")
    out = tmp_path / "scores"
    result = CliRunner().invoke(cli, ["score", "--rater-dir", str(trial.rater_dir), "--key",
                                      str(trial.key_dir), "--db", str(tampered), "--participants",
                                      str(trial.images / "participants.csv"), "--out", str(out)])
    assert result.exit_code == 1
    assert f"derm1, item {item}, event {event}: its content no longer matches its hash" in result.output
    assert "guard trigger events_append_only_update is missing" in result.output
    assert "guard trigger events_append_only_delete is missing" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())  # nothing written
    assert store.current_ratings(tampered).set_index("item").loc[item, "score"] == old + 1


# --------------------------------------------------------------------------------- pairs

BETTER_KEYS = {-2: "1", -1: "2", 0: "3", 1: "4", 2: "5"}  # left much better … right much better
FIRST_KEYS = {"left": "j", "cannot_tell": "k", "right": "l"}


def answer_first(page, key: str, rated: int) -> None:
    """Press the "which was first" key and wait for the pair to be saved (``rated`` on screen).

    A press that lands while the page is still drawing the other answer can be drawn over (the
    pair stays on screen, its second question unanswered, as a rater would see); press again then,
    as they would. Nothing is saved twice: the pair is saved once both questions are answered."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        page.keyboard.press(key)
        try:
            page.wait_for_selector(f'.assess-ready[data-rated="{rated}"]', state="attached",
                                   timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == 2 or page.locator(
                    "[class*='st-key-first-'] [data-testid='stBaseButton-primary']").count():
                raise


@pytest.fixture(scope="module")
def pairs_trial(tmp_path_factory, browser, chromium) -> Run:
    """A few participants of the same design in ``pairs`` presentation, rated side by side."""
    root = tmp_path_factory.mktemp("pairs")
    run = make_set(root, arms={"UC-MSC secretome": (2, ("face", "neck")),
                               "UC-explant secretome": (2, ("hands",))}, presentation="pairs")
    access = dict((r["rater"], r["access_code"]) for r in read_csv(run.key_dir / "access.csv"))
    server = serve(run, root)
    try:
        own, page = open_browser(browser, chromium)
        sign_in(page, server.url, "derm1", access["derm1"])
        for i, it in enumerate(run.items):
            wait_ready(page, item=it.item, rated=i, mode="rate")
            left, right = it.photos
            baseline_side = "left" if run.key[left]["timepoint"] == "baseline" else "right"
            follow = right if baseline_side == "left" else left
            base = left if baseline_side == "left" else right
            gain = true_level(run, base) - true_level(run, follow)  # lower is better
            towards_right = min(gain, 2) if baseline_side == "left" else -min(gain, 2)
            # Which was first: right for most, wrong once, "cannot tell" once.
            first = {1: "cannot_tell", 2: "right" if baseline_side == "left" else "left"}.get(
                i, baseline_side)
            if i == 0:
                photos_loaded(page)
                screenshot(page, run, "pair-screen")
            page.keyboard.press(BETTER_KEYS[towards_right])
            page.locator('[data-testid="stBaseButton-primary"]').first.wait_for()
            answer_first(page, FIRST_KEYS[first].upper(), i + 1)
            better = rate.BETTER_CHOICES[towards_right + 2][0]
            run.answers[it.item] = (better, first)
        lock(page, len(run.items), access["derm1"])
        own.close()
    finally:
        server.stop()
    score(run)
    publish(run.shots, {"pair-screen": "pair-screen.png"})
    return run


def test_pairs_are_rated_side_by_side_and_scored_into_improvement_and_a_blinding_index(pairs_trial):
    run = pairs_trial
    saved = {r.item: (r.better, r.first) for r in store.current_ratings(run.db).itertuples()}
    assert saved == run.answers
    reliability = pd.read_csv(run.out / "reliability.csv", keep_default_na=False)
    index = reliability[reliability["analysis"] == "blinding index"].iloc[0]
    identified = wrong = cannot = 0
    for item, (better, first) in run.answers.items():
        left = next(it for it in run.items if it.item == item).photos[0]
        if run.key[left]["repeat_of"]:
            continue  # disguised repeats serve intra-rater reliability only
        baseline_side = "left" if run.key[left]["timepoint"] == "baseline" else "right"
        if first == "cannot_tell":
            cannot += 1
        elif first == baseline_side:
            identified += 1
        else:
            wrong += 1
    assert (int(index["identified"]), int(index["wrong"]), int(index["cannot_tell"])) == (
        identified, wrong, cannot)
    assert float(index["binomial_p"]) == pytest.approx(
        stats.binomtest(identified, identified + wrong, 0.5).pvalue, rel=1e-12)
    summary = pd.read_csv(run.out / "summary.csv", keep_default_na=False)
    pairs = summary[summary["analysis"] == "within arm (pairs)"]
    assert int(pairs["n_pairs"].astype(int).sum()) == sum(
        1 for it in run.items if not run.key[it.photos[0]]["repeat_of"])


# --------------------------------------------------------------------------------- the seal


def copy_of_set(run: Run, tmp_path: Path) -> tuple[Path, Path]:
    """The rated set's rater and key folders, copied to be tampered with."""
    import shutil

    target = tmp_path / "trial"
    shutil.copytree(run.rater_dir.parent, target)
    return target / "rater", target / "key"


def score_copy(run: Run, rater_dir: Path, key_dir: Path, out: Path, *extra: str):
    return invoke("score", "--rater-dir", rater_dir, "--key", key_dir, "--db", run.db,
                  "--participants", run.images / "participants.csv", "--out", out, *extra)


def test_the_score_and_its_report_show_the_fingerprint_randomize_printed(trial):
    assert f"signed by coordinator key {trial.fingerprint}" in trial.score_output
    assert trial.fingerprint in (trial.out / "report.html").read_text(encoding="utf-8")
    assert f"signed by coordinator key {trial.fingerprint}" in trial.audit_output


def test_a_reversed_study_file_is_refused_by_score_naming_it(trial, tmp_path):
    rater_dir, key_dir = copy_of_set(trial, tmp_path)
    study = key_dir / "study.toml"
    text = study.read_text(encoding="utf-8")
    reversed_text = re.sub(r'timepoints = \["baseline", "month12"\]',
                           'timepoints = ["month12", "baseline"]', text)
    assert reversed_text != text
    study.write_text(reversed_text, encoding="utf-8")
    out = tmp_path / "results"
    result = score_copy(trial, rater_dir, key_dir, out, "--fingerprint", trial.fingerprint)
    assert result.exit_code == 1
    assert f"{study}: changed since the set was sealed" in result.output
    assert not (out / "report.html").exists()


def test_a_re_sealed_key_is_refused_by_score_naming_the_seal_and_both_keys(trial, tmp_path):
    rater_dir, key_dir = copy_of_set(trial, tmp_path)
    key_csv = key_dir / "key.csv"
    rows = key_csv.read_text(encoding="utf-8").splitlines()
    swapped = [r.replace(",baseline,", ",@,").replace(",month12,", ",baseline,").replace(",@,", ",month12,")
               for r in rows]
    key_csv.write_text("\n".join(swapped) + "\n", encoding="utf-8")
    seal.generate_key(tmp_path / "other.key")
    other = seal.load_signing_key(tmp_path / "other.key")
    seal.write_seal(rater_dir, key_dir, "trial", other)  # every sha256 of key/ rewritten and signed
    out = tmp_path / "results"
    result = score_copy(trial, rater_dir, key_dir, out)
    assert result.exit_code == 1
    assert (f"{key_dir / 'seal.json'}: is signed by key {other.fingerprint}, but "
            f"{rater_dir / 'set.json'} names key {trial.fingerprint}") in result.output
    # the same set with the rater folder re-signed too: only the pinned fingerprint refuses it
    meta_path = rater_dir / "set.json"
    meta = meta_path.read_text(encoding="utf-8").replace(trial.fingerprint, other.fingerprint)
    meta_path.write_text(meta, encoding="utf-8")
    seal.write_seal(rater_dir, key_dir, "trial", other)
    result = score_copy(trial, rater_dir, key_dir, out, "--fingerprint", trial.fingerprint)
    assert result.exit_code == 1
    assert (f"is signed by key {other.fingerprint}, not by the expected coordinator key "
            f"{trial.fingerprint}") in result.output
    assert not (out / "report.html").exists()
