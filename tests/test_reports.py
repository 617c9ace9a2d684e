"""Evaluation reports: metric functions against hand-computed cases and scikit-learn, every
``faceprint eval`` kind on real lfw-dev images, and the HTML reports opened in headless
Chromium (screenshot, no console errors, every embedded image decodes)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from faceprint.metrics import verification as metrics
from faceprint.evaluation.bias import _ratio, all_pairs, bias_report, group_aware_thresholds
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


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, cli) -> dict[str, dict]:
    lfw = data_dir / "lfw-dev"
    if not (lfw / "images").is_dir():
        pytest.skip("lfw-dev not found")
    tmp = tmp_path_factory.mktemp("reports")
    cache = tmp / "templates.npz"
    common = ["--root", str(lfw / "images"), "--identities", "150", "--cache", str(cache)]
    out = {
        "verify": _eval(cli, "verify", *common, "--impostors", "20000", "--out", str(tmp / "verify"), cwd=tmp),
        "verify_pairs": _eval(cli, "verify", "--pairs", str(lfw / "pairs.txt"), "--root", str(lfw / "images"), "--limit", "20", "--out", str(tmp / "verify-pairs"), cwd=tmp),
        "identify": _eval(cli, "identify", *common, "--out", str(tmp / "identify"), cwd=tmp),
        "bias": _eval(cli, "bias", *common, "--groups", str(lfw / "gender.csv"), "--bootstrap", "100", "--out", str(tmp / "bias"), cwd=tmp),
        "bias_plain": _eval(cli, "bias", *common, "--groups", str(lfw / "gender.csv"), "--bootstrap", "0", "--out", str(tmp / "bias-plain"), cwd=tmp),
        "bias_errata": _eval(cli, "bias", *common, "--groups", str(lfw / "gender.csv"), "--bootstrap", "0", "--errata", str(_errata(tmp)), "--out", str(tmp / "bias-errata"), cwd=tmp),
        "dataset": _eval(cli, "dataset", *common, "--reference", str(data_dir / "samples" / "deepface" / "identities"), "--out", str(tmp / "dataset"), cwd=tmp),
        "idsim": _eval(cli, "idsim", "--root", str(lfw / "images"), "--identities", "150", "--out", str(tmp / "idsim"), cwd=tmp),
        "budget": _eval(cli, "budget", "--pairs", str(lfw / "pairs.txt"), "--root", str(lfw / "images"), "--limit", "2", "--out", str(tmp / "budget"), cwd=tmp),
    }
    return out


def test_each_kind_reports_its_figures(reports: dict[str, dict]) -> None:
    v = reports["verify"]
    assert v["genuine_pairs"] > 100 and v["impostor_pairs"] > 10_000 and 0.95 < v["accuracy_mean"] <= 1 and 0 <= v["eer"] < 0.05
    assert [r["fmr"] for r in v["threshold_table"]][:3] == [0.1, 0.01, 0.001] and v["threshold_table"][2]["calibrated_threshold"] > 0
    vp = reports["verify_pairs"]
    assert vp["pairs"] == 200 and "tar_at_far_1e-2" in vp and vp["tar_at_far_1e-4"] is None  # 100 impostor pairs cannot state 1e-4
    i = reports["identify"]
    assert i["rank1"] > 0.9 and i["rank5"] >= i["rank1"] and i["distractors"] > 0 and len(i["cmc"]) == 20
    b = reports["bias"]
    assert set(b["groups"]) == {"female", "male"} and b["attribute"] == "gender"
    for g in b["groups"].values():
        assert g["fnmr_ci95"] is not None and g["impostor_pairs"] > 0
    assert {"choose", "check", "thresholds"} <= set(b["group_thresholds"]) and len(b["split_robustness"]) == 5
    # --errata: the aliases' 4 x 4 cross pairs become genuine, the left-out photo's 3 genuine pairs go
    plain, fixed = reports["bias_plain"], reports["bias_errata"]
    assert fixed["images_used"] == plain["images_used"] - 1
    assert fixed["overall"]["genuine_pairs"] == plain["overall"]["genuine_pairs"] + 16 - 3
    assert fixed["overall"]["impostor_pairs"] < plain["overall"]["impostor_pairs"] - 16
    d = reports["dataset"]
    assert d["detection_rate"] > 0.95 and 0 < d["quality"]["median"] <= 100 and d["consistency"]["mean"] > 0.4
    assert d["leakage"]["reference_identities"] >= 5 and d["separability"]["identity_pairs"] > 1000
    s = reports["idsim"]
    assert s["pairs"] > 100 and 0.4 < s["mean"] < 1 and 0.8 < s["share_above_threshold"] <= 1 and len(s["worst"]) == 10
    bu = reports["budget"]
    names = [c["config"] for c in bu["configs"]]
    assert names[:4] == ["SFace + flip, detector 640", "SFace, detector 640", "SFace + flip, detector 160", "SFace, detector 160"]
    assert all(c["ms_per_image"] > 0 and 0.5 <= c["accuracy"] <= 1 for c in bu["configs"])
    assert [b["budget_ms"] for b in bu["best_within_budget"]] == [25, 50, 100, 200, 400]
    if "dlib ResNet + flip" in names:  # the dlib extra is installed: the fusion runs too
        assert any("score fusion" in n for n in names)
    for r in reports.values():
        html = Path(r["files"]["report"]).read_text()
        assert html.startswith("<!doctype html>") and "data:image/png;base64," in html and "http://" not in html and "https://" not in html


def test_reports_open_in_a_browser_without_errors(reports: dict[str, dict], tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            for kind, r in reports.items():
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                errors: list[str] = []
                page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
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
