"""Evaluation reports: metric functions against hand-computed cases and scikit-learn, every
``faceprint eval`` kind on real lfw-dev images, and the HTML reports opened in headless
Chromium (screenshot, no console errors, every embedded image decodes)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from faceprint.evaluation.bias import _ratio, all_pairs, bias_report, group_aware_thresholds
from faceprint.metrics import verification as metrics

CHROMIUM = Path("/usr/bin/chromium")


# ------------------------------------------------------------------ metrics, by hand and against scikit-learn
def test_roc_matches_scikit_learn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    gen = np.round(rng.normal(0.6, 0.15, 500), 3)  # rounded: ties, as real scores have
    imp = np.round(rng.normal(0.1, 0.12, 3000), 3)
    fmr, tar, thr = metrics.roc(gen, imp)
    y = np.r_[np.ones(len(gen)), np.zeros(len(imp))]
    s = np.r_[gen, imp]
    skf, skt, skthr = sk.roc_curve(y, s, drop_intermediate=False)
    assert np.allclose(fmr, skf) and np.allclose(tar, skt)
    assert np.allclose(thr[1:], skthr[1:])
    assert metrics.auc(gen, imp) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-9)


def test_hand_computed_rates_eer_and_erc() -> None:
    gen = np.array([0.9, 0.8, 0.7, 0.3])
    imp = np.array([0.1, 0.2, 0.35, 0.5])
    assert metrics.fnmr_at_threshold(gen, 0.75) == 0.5  # 0.7 and 0.3 fall short
    assert metrics.fmr_at_threshold(imp, 0.35) == 0.5  # >= counts
    e, t = metrics.eer(gen, imp)
    assert e == pytest.approx(0.25) and 0.3 < t <= 0.7  # one of four either way
    # error versus reject: the worst-quality comparison is the failing one
    scores, quality = np.array([0.2, 0.9, 0.8, 0.3]), np.array([10, 90, 80, 50])
    assert metrics.error_versus_reject(scores, quality, 0.5, [0.0, 0.25, 0.5]).tolist() == [0.5, 1 / 3, 0.0]
    # ties: broken by the tiebreak, so a coarse score cannot choose its own luck
    erc = metrics.error_versus_reject(scores, np.zeros(4), 0.5, [0.25], tiebreak=np.array([1, 0, 0, 0]))
    assert erc.tolist() == [2 / 3]  # rejects index 1 (lowest tiebreak, then position), keeps both failures


def test_all_pairs_and_group_rates_by_hand() -> None:
    # four images: identities 0,0,1,2; groups a,a,a,b (codes 0,0,0,1)
    v = np.array([[1, 0], [0.8, 0.6], [0.6, 0.8], [0, 1]], np.float32)
    t = all_pairs(v, np.array([0, 0, 1, 2]), np.array([0, 0, 0, 1]))
    assert np.allclose(t.gen_score, [0.8]) and len(t.imp_score) == 5
    assert np.allclose(np.sort(t.imp_score), [0.0, 0.6, 0.6, 0.8, 0.96], atol=1e-6)
    within_a = (t.imp_ga == 0) & (t.imp_gb == 0)
    assert np.allclose(np.sort(t.imp_score[within_a]), [0.6, 0.96], atol=1e-6)
    assert _ratio([0.002, 0.001]) == 2.0 and _ratio([0.0, 0.001]) is None and _ratio([0.1]) is None


def test_bias_report_on_synthetic_groups_with_a_known_differential() -> None:
    """Group b's impostors are made more alike than group a's: its FMR at the global threshold
    is higher, intervals bracket the estimates, and group thresholds equalise FMR."""
    rng = np.random.default_rng(1)
    n_id, per = 120, 3
    ids = np.repeat(np.arange(n_id), per)
    groups = (np.arange(n_id) % 2)[ids]
    centre = {0: rng.normal(size=32), 1: rng.normal(size=32)}
    proto = np.stack([rng.normal(size=32) + (1.2 if g else 0.6) * centre[g] for g in np.arange(n_id) % 2])
    v = proto[ids] + 0.5 * rng.normal(size=(len(ids), 32))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    t = all_pairs(v.astype(np.float32), ids, groups)
    res = bias_report(t, ["a", "b"], n_id, fmr=1e-2, bootstrap=200)
    a, b = res["groups"]["a"], res["groups"]["b"]
    assert b["fmr"] > a["fmr"] and res["fmr_differential"] == pytest.approx(b["fmr"] / a["fmr"])
    for g in (a, b):
        lo, hi = g["fmr_ci95"]
        assert lo <= g["fmr"] <= hi
    gt = group_aware_thresholds(t, ["a", "b"], n_id, fmr=1e-2)
    assert gt["thresholds"]["b"] > gt["thresholds"]["a"]
    assert gt["choose"]["fmr_ratio_group_aware"] < gt["choose"]["fmr_ratio_global"]


# ------------------------------------------------------------------ every kind on real images, then in a browser
def _eval(cli, *args: str, cwd: Path) -> dict:
    r = cli("eval", *args, "--json", cwd=cwd)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.describe()
    return r.json()


def _errata(tmp: Path) -> Path:
    """Two men of four photos each declared one person, and one photo of a third left out."""
    p = tmp / "errata.txt"
    p.write_text("# test errata\nsame Abdoulaye_Wade Abel_Pacheco\nimage Abdullah_0001.jpg\n")
    return p


ERRATA_PEOPLE = ("Abdoulaye_Wade", "Abel_Pacheco", "Abdullah")  # four photos each, all kept


def _lfw_subset(lfw: Path, dest: Path) -> dict[str, list[Path]]:
    """A small identity-folder set of lfw-dev that still holds what the reports measure, each
    photo linked, not copied: the errata's three men (all four photos), the first 12 women with
    4+ photos (4 each) and the first 9 other men with 3+ photos (3 each) -- genuine pairs for
    both genders -- and the first 24 people of one photo (distractors, more identities).
    48 identities, 111 photos: a third of the former first 150 identities' 324.  And a 49th,
    the last person of one photo, that ``--identities 48`` leaves out."""
    import csv

    gender = {r["identity"]: r["gender"] for r in csv.DictReader((lfw / "gender.csv").open())}
    photos = {d.name: sorted(d.glob("*.jpg")) for d in sorted((lfw / "images").iterdir()) if d.is_dir()}
    chosen = {n: photos[n] for n in ERRATA_PEOPLE}
    women = [n for n, ps in photos.items() if gender.get(n) == "female" and len(ps) >= 4][:12]
    men = [n for n, ps in photos.items() if gender.get(n) == "male" and len(ps) >= 3 and n not in chosen][:9]
    single = [n for n, ps in photos.items() if len(ps) == 1]
    single = single[:24] + single[-1:]
    chosen |= {n: photos[n][:4] for n in women} | {n: photos[n][:3] for n in men} | {n: photos[n] for n in single}
    out = {}
    for name in sorted(chosen):
        (dest / name).mkdir(parents=True)
        out[name] = [dest / name / p.name for p in chosen[name]]
        for link, p in zip(out[name], chosen[name]):
            link.symlink_to(p)
    return out


def _small_pairs(lfw: Path, dest: Path) -> Path:
    """An LFW-format pairs file of 2 folds x (50 same + 50 different) = 200 pairs over 32 photos:
    the first two people of 8+ photos in one fold, the next two in the other (28 same pairs
    each, 64 different).  The first two pairs of each class and fold use only four photos, so
    `budget --limit 2` embeds 8."""
    import itertools

    people = [d.name for d in sorted((lfw / "images").iterdir()) if len(list(d.glob("*.jpg"))) >= 8][:4]
    lines = ["2 50"]
    for a, b in (people[:2], people[2:]):
        same = [(a, i, j) for i, j in itertools.combinations(range(1, 9), 2)] + [(b, i, j) for i, j in itertools.combinations(range(1, 9), 2)]
        same.sort(key=lambda x: (x[2] - x[1], x[1], x[0]))  # (a 1 2), (b 1 2), (a 2 3), ...
        diff = sorted(itertools.product(range(1, 9), repeat=2), key=lambda x: (abs(x[0] - x[1]), x))  # (a 1, b 1), (a 2, b 2), ...
        lines += [f"{n}\t{i}\t{j}" for n, i, j in same[:50]] + [f"{a}\t{i}\t{b}\t{j}" for i, j in diff[:50]]
    dest.write_text("\n".join(lines) + "\n")
    return dest


def _reference(data_dir: Path, leaked: Path, dest: Path) -> Path:
    """A reference gallery for the leakage check: the smallest photo of six deepface identities,
    and a seventh identity 'leaked' holding a photo of a person in the audited set."""
    import cv2

    def area(p: Path) -> int:
        h, w = cv2.imread(str(p)).shape[:2]
        return h * w

    ids = sorted((data_dir / "samples" / "deepface" / "identities").iterdir())
    smallest = sorted(min((area(p), p) for p in d.glob("*.jpg")) for d in ids)[:6]
    for _, p in smallest:
        (dest / p.parent.name).mkdir(parents=True)
        (dest / p.parent.name / p.name).symlink_to(p)
    (dest / "leaked").mkdir()
    (dest / "leaked" / leaked.name).symlink_to(leaked.resolve())
    return dest


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, dict[str, list[Path]]]:
    """The identity folders the folder-mode reports read: (their root, name -> photos)."""
    lfw = data_dir / "lfw-dev"
    if not (lfw / "images").is_dir():
        pytest.skip("lfw-dev not found")
    root = tmp_path_factory.mktemp("reports") / "people"
    return root, _lfw_subset(lfw, root)


@pytest.fixture(scope="module")
def reports(subset: tuple[Path, dict[str, list[Path]]], data_dir: Path, cli) -> dict[str, dict]:
    lfw = data_dir / "lfw-dev"
    root, people = subset
    tmp = root.parent
    pairs = _small_pairs(lfw, tmp / "pairs.txt")
    reference = _reference(data_dir, people["Abel_Pacheco"][1], tmp / "reference")
    cache = tmp / "templates.npz"
    common = ["--root", str(root), "--identities", "48", "--cache", str(cache)]
    out = {
        # ~6,000 different-identity pairs in the set: 4,000 are sampled (the sampling branch)
        "verify": _eval(cli, "verify", *common, "--impostors", "4000", "--out", str(tmp / "verify"), cwd=tmp),
        "verify_pairs": _eval(cli, "verify", "--pairs", str(pairs), "--root", str(lfw / "images"), "--out", str(tmp / "verify-pairs"), cwd=tmp),
        "identify": _eval(cli, "identify", *common, "--out", str(tmp / "identify"), cwd=tmp),
        "bias": _eval(cli, "bias", *common, "--groups", str(lfw / "gender.csv"), "--bootstrap", "100", "--out", str(tmp / "bias"), cwd=tmp),
        "bias_errata": _eval(
            cli,
            "bias",
            *common,
            "--groups",
            str(lfw / "gender.csv"),
            "--bootstrap",
            "0",
            "--errata",
            str(_errata(tmp)),
            "--out",
            str(tmp / "bias-errata"),
            cwd=tmp,
        ),
        "dataset": _eval(cli, "dataset", *common, "--reference", str(reference), "--out", str(tmp / "dataset"), cwd=tmp),
        "idsim": _eval(cli, "idsim", "--root", str(root), "--identities", "44", "--out", str(tmp / "idsim"), cwd=tmp),
        "budget": _eval(cli, "budget", "--pairs", str(pairs), "--root", str(lfw / "images"), "--limit", "2", "--out", str(tmp / "budget"), cwd=tmp),
    }
    return out


@pytest.mark.slow
def test_each_kind_reports_its_figures(reports: dict[str, dict], subset: tuple[Path, dict[str, list[Path]]]) -> None:
    people = subset[1]
    v = reports["verify"]
    genuine = sum(len(ps) * (len(ps) - 1) // 2 for ps in people.values())
    assert v["genuine_pairs"] == genuine > 100 and v["impostor_pairs"] == 4000 and 0.95 < v["accuracy_mean"] <= 1 and 0 <= v["eer"] < 0.05
    assert [r["fmr"] for r in v["threshold_table"]][:3] == [0.1, 0.01, 0.001] and v["threshold_table"][2]["calibrated_threshold"] > 0
    vp = reports["verify_pairs"]
    assert vp["pairs"] == 200 and vp["tar_at_far_1e-2"] is not None and vp["tar_at_far_1e-4"] is None  # 100 impostor pairs cannot state 1e-4
    i = reports["identify"]
    assert i["rank1"] > 0.9 and i["rank5"] >= i["rank1"] and i["distractors"] > 0 and len(i["cmc"]) == 20
    b = reports["bias"]
    assert set(b["groups"]) == {"female", "male"} and b["attribute"] == "gender"
    for g in b["groups"].values():
        assert g["fnmr_ci95"] is not None and g["impostor_pairs"] > 0
    assert {"choose", "check", "thresholds"} <= set(b["group_thresholds"]) and len(b["split_robustness"]) == 5
    # --errata: the aliases' 4 x 4 cross pairs become genuine, the left-out photo's 3 genuine pairs go
    plain, fixed = reports["bias"], reports["bias_errata"]
    assert fixed["images_used"] == plain["images_used"] - 1
    assert fixed["overall"]["genuine_pairs"] == plain["overall"]["genuine_pairs"] + 16 - 3
    assert fixed["overall"]["impostor_pairs"] < plain["overall"]["impostor_pairs"] - 16
    d = reports["dataset"]
    assert d["detection_rate"] > 0.95 and 0 < d["quality"]["median"] <= 100 and d["consistency"]["mean"] > 0.4
    assert d["identities"] == 48 and d["images"] == 111 and d["separability"]["identity_pairs"] == 48 * 47 // 2  # the 49th left out
    lk = d["leakage"]
    assert lk["reference_identities"] == 7 and lk["flagged"] >= 1
    assert {"identity": "Abel_Pacheco", "reference": "leaked"} in [
        {"identity": x["identity"], "reference": x["reference"]} for x in lk["closest"] if x["score"] >= lk["threshold"]
    ]
    s = reports["idsim"]
    first44 = [ps for _, ps in sorted(people.items())[:44]]  # --identities 44: the last four left out
    assert s["pairs"] + s["pairs_without_face"] == sum(len(ps) - 1 for ps in first44 if len(ps) > 1)
    assert s["pairs"] >= 45 and 0.4 < s["mean"] < 1 and 0.8 < s["share_above_threshold"] <= 1 and len(s["worst"]) == 10
    bu = reports["budget"]
    names = [c["config"] for c in bu["configs"]]
    assert names[:4] == ["SFace + flip, detector 640", "SFace, detector 640", "SFace + flip, detector 160", "SFace, detector 160"]
    assert bu["pairs"] == 8 and bu["images"] == 8
    assert all(c["ms_per_image"] > 0 and 0.5 <= c["accuracy"] <= 1 for c in bu["configs"])
    assert [b["budget_ms"] for b in bu["best_within_budget"]] == [25, 50, 100, 200, 400]
    if "dlib ResNet + flip" in names:  # the dlib extra is installed: the fusion runs too
        assert any("score fusion" in n for n in names)
    for r in reports.values():
        html = Path(r["files"]["report"]).read_text()
        assert html.startswith("<!doctype html>") and "data:image/png;base64," in html and "http://" not in html and "https://" not in html


@pytest.mark.slow
def test_reports_open_in_a_browser_without_errors(reports: dict[str, dict], tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            # one page for every report: each goto is a new document (a new page costs ~0.5 s)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            for kind, r in reports.items():
                errors.clear()
                page.goto(Path(r["files"]["report"]).resolve().as_uri())
                assert page.locator("h1").inner_text()
                imgs = page.locator("img")
                assert imgs.count() >= 1
                assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"), kind
                shot = tmp_path / f"{kind}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 20_000
                assert errors == [], (kind, errors)
                if os.environ.get("FACEPRINT_SCREENSHOT_DIR"):
                    import shutil

                    shutil.copy2(shot, Path(os.environ["FACEPRINT_SCREENSHOT_DIR"]) / f"report-{kind}.png")
            page.close()
        finally:
            browser.close()


def test_bad_input_is_named(tmp_path: Path, data_dir: Path, cli) -> None:
    bad = tmp_path / "groups.csv"
    bad.write_text("image,identity\na.jpg,A\n")
    r = cli("eval", "bias", "--root", data_dir / "lfw-dev" / "images", "--groups", bad)
    assert r.returncode == 2 and "no attribute column" in r.stderr and "Traceback" not in r.stderr, r.describe()
    r = cli("eval", "verify")
    assert r.returncode == 2 and "--pairs" in r.stderr and "Traceback" not in r.stderr, r.describe()


def test_faceset_cache_is_kept_per_face_choice(tmp_path: Path, lfw: Path, engine) -> None:
    """The .npz cache several reports share is reused only for the same images, model and face
    choice: `eval verify` embeds the centre face, `eval dataset` the largest."""
    from faceprint.evaluation.faceset import load_faceset

    root = tmp_path / "ids"
    for name in ("Bill_Gates", "Laura_Bush"):
        (root / name).mkdir(parents=True)
        for p in sorted((lfw / name).glob("*.jpg"))[:2]:
            (root / name / p.name).symlink_to(p)
    cache = tmp_path / "templates.npz"
    calls: list[str] = []
    real = engine.embed_many

    class Counting:
        model_id, embedder = engine.model_id, engine.embedder

        def embed_many(self, paths, *, face: str = "largest"):
            calls.append(face)
            return real(paths, face=face)

    counting = Counting()
    first = load_faceset(counting, root, face="center", cache=cache)
    assert calls == ["center"] and first.ok.all()
    again = load_faceset(counting, root, face="center", cache=cache)
    assert calls == ["center"] and np.array_equal(again.vectors, first.vectors)  # from the cache
    load_faceset(counting, root, face="largest", cache=cache)
    assert calls == ["center", "largest"]  # another face choice: embedded again, not read back
    load_faceset(counting, root, face="largest", cache=cache)
    assert calls == ["center", "largest"]  # and now cached for that choice


def test_a_log_plot_with_no_positive_value_is_drawn_not_a_traceback(tmp_path: Path) -> None:
    """A tiny identification run (every FNIR 0) used to crash matplotlib's log axis."""
    from faceprint.evaluation.plots import plot_lines

    out = plot_lines({"m": ([1e-3, 1e-2], [0.0, 0.0])}, tmp_path / "f.png", title="t", xlabel="x", ylabel="y", xlog=True, ylog=True)
    assert Path(out).stat().st_size > 1000
