"""Tests of faceprint.metrics.verification and .plots against brute-force references."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import CalibrationError, InputError
from faceprint.metrics import verification as metrics
from faceprint.metrics.verification import (
    CalibrationTable,
    auc,
    best_accuracy_threshold,
    build_calibration,
    det_curve,
    eer,
    fmr_at_threshold,
    fnmr_at_threshold,
    kfold_accuracy,
    roc,
    tar_at_far,
    threshold_at_fmr,
)

# --------------------------------------------------------------------------- references


def brute_roc(gen: np.ndarray, imp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    thr = sorted(set(gen.tolist()) | set(imp.tolist()), reverse=True)
    fmr = [0.0] + [sum(1 for s in imp if s >= t) / len(imp) for t in thr]
    tar = [0.0] + [sum(1 for s in gen if s >= t) / len(gen) for t in thr]
    return np.array(fmr), np.array(tar), np.array([math.inf] + thr)


def brute_auc(gen: np.ndarray, imp: np.ndarray) -> float:
    g = gen[:, None]
    i = imp[None, :]
    return float(((g > i).sum() + 0.5 * (g == i).sum()) / (gen.size * imp.size))


def normal_sf(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def tied_scores(seed: int, n: int, m: int, shift: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gen = np.round(rng.normal(shift, 1.0, n), 1)  # rounding makes many ties, within and across
    imp = np.round(rng.normal(0.0, 1.0, m), 1)
    return gen, imp


def png_pixels_std(path: Path) -> float:
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        return float(np.asarray(im.convert("RGB"), dtype=np.float64).std())


# --------------------------------------------------------------------------- ROC / AUC / EER


@pytest.mark.parametrize("sizes", [(37, 53), (53, 37), (1, 9), (9, 1)])
@pytest.mark.parametrize("seed", range(4))
def test_roc_matches_brute_force_with_ties(seed: int, sizes: tuple[int, int]) -> None:
    gen, imp = tied_scores(seed, *sizes)
    fmr, tar, thr = roc(gen, imp)
    bf, bt, bthr = brute_roc(gen, imp)
    np.testing.assert_array_equal(thr, bthr)
    np.testing.assert_allclose(fmr, bf, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tar, bt, rtol=0, atol=1e-15)
    assert (fmr[0], tar[0]) == (0.0, 0.0) and (fmr[-1], tar[-1]) == (1.0, 1.0)
    assert np.all(np.diff(thr) < 0)


def test_det_is_roc_with_fnmr() -> None:
    gen, imp = tied_scores(1, 20, 30)
    fmr, tar, thr = roc(gen, imp)
    dfmr, fnmr, dthr = det_curve(gen, imp)
    np.testing.assert_array_equal(dfmr, fmr)
    np.testing.assert_array_equal(dthr, thr)
    np.testing.assert_allclose(fnmr, 1 - tar)


def test_roc_float32_and_mixed_dtypes() -> None:
    gen, imp = tied_scores(2, 40, 60)
    f64 = roc(gen, imp)
    f32 = roc(gen.astype(np.float32), imp.astype(np.float32))
    mixed = roc(gen.astype(np.float32), imp)
    np.testing.assert_array_equal(f32[0], brute_roc(gen.astype(np.float32), imp.astype(np.float32))[0])
    assert f64[0].shape == f32[0].shape
    np.testing.assert_array_equal(mixed[1], brute_roc(gen.astype(np.float32).astype(np.float64), imp)[1])


@pytest.mark.parametrize("seed", range(8))
def test_auc_matches_mann_whitney_brute_force(seed: int) -> None:
    gen, imp = tied_scores(seed, 1 + 17 * seed, 5 + 23 * seed, shift=0.3)
    assert auc(gen, imp) == pytest.approx(brute_auc(gen, imp), abs=1e-14)


def test_auc_all_ties_is_half() -> None:
    assert auc([0.5, 0.5], [0.5, 0.5, 0.5]) == 0.5


def test_perfect_separation() -> None:
    gen = np.array([0.8, 0.9, 0.95, 0.7])
    imp = np.array([0.1, 0.2, 0.3, 0.69])
    assert auc(gen, imp) == 1.0
    rate, t = eer(gen, imp)
    assert rate == 0.0
    assert fmr_at_threshold(imp, t) == 0.0 and fnmr_at_threshold(gen, t) == 0.0
    assert auc(imp, gen) == 0.0


def test_identical_distributions_auc_near_half() -> None:
    rng = np.random.default_rng(7)
    gen, imp = rng.normal(size=20_000), rng.normal(size=30_000)
    assert auc(gen, imp) == pytest.approx(0.5, abs=0.01)
    assert eer(gen, imp)[0] == pytest.approx(0.5, abs=0.01)


def test_gaussian_closed_forms() -> None:
    rng = np.random.default_rng(3)
    d = 2.0
    gen, imp = rng.normal(d, 1.0, 100_000), rng.normal(0.0, 1.0, 100_000)
    assert auc(gen, imp) == pytest.approx(1 - normal_sf(d / math.sqrt(2)), abs=3e-3)
    rate, t = eer(gen, imp)
    assert rate == pytest.approx(normal_sf(d / 2), abs=3e-3)
    assert t == pytest.approx(d / 2, abs=0.03)


@pytest.mark.parametrize("seed", range(10))
def test_eer_brackets_brute_force(seed: int) -> None:
    gen, imp = tied_scores(seed, 15 + seed, 25 + 3 * seed, shift=1.0)
    rate, t = eer(gen, imp)
    fmr, tar, _ = brute_roc(gen, imp)
    fnmr = 1 - tar
    # Linear interpolation at the crossing lies between these two bounds.
    assert np.min((fmr + fnmr) / 2) - 1e-12 <= rate <= np.min(np.maximum(fmr, fnmr)) + 1e-12
    assert min(gen.min(), imp.min()) <= t <= max(gen.max(), imp.max())


def test_eer_simple_exact_case() -> None:
    # (FMR, FNMR) at t = 4, 3.5: (0, .5), (.5, .5) -> crossing exactly at the point t = 3.5.
    assert eer([3.0, 4.0], [1.0, 3.5]) == (0.5, 3.5)
    # at t = 4, 3: (0, .5), (.5, 0) -> interpolated half-way.
    assert eer([3.0, 4.0], [1.0, 3.0]) == (0.25, 3.5)


# --------------------------------------------------------------------------- operating points


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_threshold_at_fmr_is_exact(dtype: type) -> None:
    rng = np.random.default_rng(11)
    imp = rng.normal(size=10_000).astype(dtype)
    m = imp.size
    for fmr in (1e-4, 2.5e-4, 1e-3, 0.0123, 0.29, 0.5, 0.99999):
        t = threshold_at_fmr(imp, fmr)
        k = math.floor(round(fmr * m, 9))
        assert np.count_nonzero(imp >= t) == k  # no ties: exactly k impostors at/above
        assert fmr_at_threshold(imp, t) <= fmr
        below = np.nextafter(dtype(t), dtype(-np.inf))
        assert np.count_nonzero(imp >= below) > k  # and it is the smallest such threshold
        assert float(dtype(t)) == t  # representable in the scores' dtype
    assert threshold_at_fmr(imp, 1.0) == float(imp.min())


def test_threshold_at_fmr_with_ties_never_exceeds_fmr() -> None:
    imp = np.array([0.1, 0.2, 0.5, 0.5, 0.5, 0.9])
    t = threshold_at_fmr(imp, 3 / 6)  # 3rd+1 highest is tied at 0.5: only 1 can be above
    assert fmr_at_threshold(imp, t) == 1 / 6
    assert 0.5 < t <= 0.9


def test_threshold_at_fmr_too_small_raises() -> None:
    imp = np.arange(999, dtype=np.float64)
    with pytest.raises(CalibrationError, match="needs at least 1000 impostor scores to state FMR 0.001"):
        threshold_at_fmr(imp, 1e-3)
    assert threshold_at_fmr(np.arange(1000.0), 1e-3) == np.nextafter(998.0, np.inf)
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(InputError):
            threshold_at_fmr(imp, bad)


def test_rates_and_tar_at_far() -> None:
    gen = np.array([0.2, 0.5, 0.5, 0.9])
    imp = np.array([0.1, 0.3, 0.5, 0.6, 0.7])
    assert fmr_at_threshold(imp, 0.5) == 3 / 5
    assert fnmr_at_threshold(gen, 0.5) == 1 / 4
    tar, t = tar_at_far(gen, imp, 0.4)
    assert t == np.nextafter(0.5, 1.0)
    assert tar == 0.25


def test_float32_threshold_comparisons_are_exact() -> None:
    imp = np.array([0.1, 0.2], dtype=np.float32)
    # 0.1 (float64) is below float32(0.1): the float32 score 0.1f must count as >= 0.1.
    assert fmr_at_threshold(imp, 0.1) == 1.0
    # a float64 threshold just above float32(0.2) must not round down onto it.
    assert fmr_at_threshold(imp, float(np.float32(0.2)) + 1e-12) == 0.0


def test_invalid_inputs() -> None:
    with pytest.raises(InputError, match="empty"):
        auc([], [1.0])
    with pytest.raises(InputError, match="non-finite"):
        roc([1.0, np.nan], [0.0])
    with pytest.raises(InputError, match="1-D"):
        eer(np.zeros((2, 2)), [0.0])
    with pytest.raises(InputError):
        best_accuracy_threshold([0.1, 0.2], [0, 2])


# --------------------------------------------------------------------------- accuracy


def brute_best_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    cands = np.concatenate([scores, [np.inf]])
    return max(float(np.mean((scores >= t) == labels)) for t in cands)


@pytest.mark.parametrize("seed", range(8))
def test_best_accuracy_threshold_is_optimal(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.random(60) < 0.5
    scores = np.round(rng.normal(labels * 1.0, 1.0), 1)
    t = best_accuracy_threshold(scores, labels)
    assert np.mean((scores >= t) == labels) == pytest.approx(brute_best_accuracy(scores, labels))


def test_best_accuracy_threshold_is_midpoint() -> None:
    assert best_accuracy_threshold([0.1, 0.2, 0.6, 0.9], [0, 0, 1, 1]) == pytest.approx(0.4)
    assert best_accuracy_threshold([0.1, 0.2], [1, 1]) == 0.1  # accept all
    t = best_accuracy_threshold([0.1, 0.2], [0, 0])  # reject all
    assert t > 0.2


def test_kfold_separable_is_perfect() -> None:
    rng = np.random.default_rng(5)
    labels = np.arange(600) % 2 == 0
    scores = np.where(labels, rng.uniform(0.6, 1.0, 600), rng.uniform(-1.0, 0.4, 600))
    folds = np.arange(600) % 10
    r = kfold_accuracy(scores, labels, folds)
    assert r["accuracy_mean"] == 1.0 and r["accuracy_std"] == 0.0
    assert r["fold_accuracies"] == [1.0] * 10
    assert len(r["thresholds"]) == 10 and all(0.4 < t < 0.6 for t in r["thresholds"])


def test_kfold_threshold_never_uses_test_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fold 0 separates at 0.5; folds 1 and 2 at 0.85.  A threshold picked on
    # the other folds (~0.85) rejects every positive of fold 0 -> accuracy 0.5.
    # If fold 0 leaked into the choice, fold 0 would score higher.
    scores = np.array(
        [0.4, 0.4, 0.6, 0.6]  # fold 0
        + [0.8, 0.8, 0.9, 0.9]  # fold 1
        + [0.8, 0.8, 0.9, 0.9]  # fold 2
    )
    labels = np.array([0, 0, 1, 1] * 3, dtype=bool)
    folds = np.repeat([0, 1, 2], 4)

    seen: list[np.ndarray] = []
    real = metrics.best_accuracy_threshold

    def spy(s: np.ndarray, y: np.ndarray) -> float:
        seen.append(np.asarray(s).copy())
        return real(s, y)

    monkeypatch.setattr(metrics, "best_accuracy_threshold", spy)
    r = kfold_accuracy(scores, labels, folds)
    assert r["fold_accuracies"][0] == 0.5
    assert r["thresholds"][0] == pytest.approx(0.85)
    assert len(seen) == 3
    for fid, s in zip(r["folds"], seen):
        assert s.size == 8
        assert not np.isin(s, scores[folds == fid]).all()
    # Fold 0's training set holds none of fold 0's scores.
    assert not np.isin(seen[0], [0.4, 0.6]).any()


def test_kfold_needs_two_folds() -> None:
    with pytest.raises(InputError, match="at least 2 folds"):
        kfold_accuracy([0.1, 0.9], [0, 1], [3, 3])


# --------------------------------------------------------------------------- calibration


@pytest.fixture(scope="module")
def normal_table() -> tuple[CalibrationTable, np.ndarray]:
    rng = np.random.default_rng(2024)
    imp = rng.standard_normal(2_000_000)
    gen = rng.normal(4.0, 1.0, 5_000)
    table = build_calibration(gen, imp, name="synthetic", model_id="test-model", source="N(0,1) impostors")
    return table, imp


def test_build_calibration_grid(normal_table: tuple[CalibrationTable, np.ndarray]) -> None:
    table, imp = normal_table
    assert table.fmr_grid[0] == 1e-1 and table.fmr_grid[-1] == 1e-6
    assert len(table.fmr_grid) == 16
    assert table.n_impostor == 2_000_000 and table.n_genuine == 5_000
    for fmr, t in zip(table.fmr_grid, table.thresholds):
        assert t == threshold_at_fmr(imp, fmr)
    assert all(np.diff(table.thresholds) > 0)
    assert all(0 <= v <= 1 for v in table.fnmr)
    assert table.tail_fmr[0] == 1.0 and table.tail_fmr[-1] == 1 / 2_000_000
    assert 150 <= len(table.tail_fmr) <= 200


def test_threshold_for_grid_exact_and_monotonic(normal_table: tuple[CalibrationTable, np.ndarray]) -> None:
    table, _ = normal_table
    for fmr, t in zip(table.fmr_grid, table.thresholds):
        assert table.threshold_for(fmr) == t
    fmrs = np.geomspace(1.0, table.min_fmr, 3000)
    ts = [table.threshold_for(f) for f in fmrs]
    assert all(np.diff(ts) >= 0)


def test_fmr_for_inverts_threshold_for(normal_table: tuple[CalibrationTable, np.ndarray]) -> None:
    table, imp = normal_table
    for x in np.geomspace(0.3, 1e-5, 40):
        t = table.threshold_for(x)
        assert table.fmr_for(t) == pytest.approx(x, rel=1e-6)
        # and it means what it says on the sample and on the true distribution
        assert fmr_at_threshold(imp, t) == pytest.approx(x, rel=0.05, abs=2e-6)
        assert normal_sf(t) == pytest.approx(x, rel=0.25)


def test_fmr_for_clamps(normal_table: tuple[CalibrationTable, np.ndarray]) -> None:
    table, imp = normal_table
    assert table.fmr_for(float(imp.max()) + 1.0) == pytest.approx(1 / 2_000_000)
    assert table.fmr_for(float(imp.min()) - 1.0) == 1.0
    assert table.fmr_for(0.0) == pytest.approx(0.5, abs=0.01)


def test_threshold_for_errors(normal_table: tuple[CalibrationTable, np.ndarray]) -> None:
    table, _ = normal_table
    with pytest.raises(CalibrationError, match="below the smallest FMR.*5e-07"):
        table.threshold_for(1e-7)
    for bad in (0.0, -1.0, 1.5, float("nan")):
        with pytest.raises(CalibrationError, match=r"\(0, 1\]"):
            table.threshold_for(bad)
    assert table.threshold_for(5e-7) == table.tail_scores[-1]


def test_round_trip_save_load(normal_table: tuple[CalibrationTable, np.ndarray], tmp_path: Path) -> None:
    table, _ = normal_table
    path = table.save(tmp_path / "cal.json")
    text = path.read_text()
    assert text.startswith('{\n "format"')
    loaded = CalibrationTable.load(path)
    assert loaded == table
    assert loaded.threshold_for(3e-4) == table.threshold_for(3e-4)
    assert CalibrationTable.from_dict(json.loads(json.dumps(table.to_dict()))) == table


def test_no_genuine_gives_nan_fnmr_and_null_json(tmp_path: Path) -> None:
    imp = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    table = build_calibration(None, imp, name="x", model_id="m", source="s")
    assert table.fmr_grid[-1] == 1e-3 and len(table.fmr_grid) == 7
    assert all(math.isnan(v) for v in table.fnmr) and table.n_genuine == 0
    loaded = CalibrationTable.load(table.save(tmp_path / "c.json"))
    assert json.loads((tmp_path / "c.json").read_text())["fnmr"][0] is None
    assert all(math.isnan(v) for v in loaded.fnmr)
    assert loaded.thresholds == table.thresholds


def test_build_calibration_errors() -> None:
    imp = np.arange(100.0)
    with pytest.raises(CalibrationError, match="needs at least 1000 impostor scores"):
        build_calibration(None, imp, name="x", model_id="m", source="s", fmr_grid=[1e-2, 1e-3])
    with pytest.raises(CalibrationError, match="needs at least 10 impostor scores"):
        build_calibration(None, imp[:5], name="x", model_id="m", source="s")


def test_from_dict_names_the_problem(normal_table: tuple[CalibrationTable, np.ndarray], tmp_path: Path) -> None:
    good = normal_table[0].to_dict()

    def broken(**change: object) -> dict:
        d = dict(good)
        for k, v in change.items():
            if v is ...:
                del d[k]
            else:
                d[k] = v
        return d

    cases = [
        (broken(thresholds=...), "lacks key.*thresholds"),
        (broken(extra=1), "unknown key.*extra"),
        (broken(n_impostor="2000000"), "n_impostor"),
        (broken(thresholds=good["thresholds"][:-1]), "same length"),
        (broken(tail_fmr="abc"), "tail_fmr"),
        (broken(thresholds=list(reversed(good["thresholds"]))), "thresholds must not decrease"),
        (broken(fmr_grid=["a"] * len(good["fmr_grid"])), "fmr_grid must hold numbers"),
        (broken(version=99), "version"),
    ]
    for d, pattern in cases:
        with pytest.raises(CalibrationError, match=pattern):
            CalibrationTable.from_dict(d)
    with pytest.raises(CalibrationError, match="must be a JSON object"):
        CalibrationTable.from_dict([1, 2])  # type: ignore[arg-type]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CalibrationError, match="not valid JSON") as info:
        CalibrationTable.load(bad)
    assert str(bad) in str(info.value)
    with pytest.raises(CalibrationError, match="cannot read"):
        CalibrationTable.load(tmp_path / "missing.json")


# --------------------------------------------------------------------------- plots


def test_plots_write_non_blank_pngs(tmp_path: Path) -> None:
    from faceprint.evaluation import plot_det, plot_roc, plot_score_histogram

    rng = np.random.default_rng(1)
    gen = rng.normal(2.5, 1.0, 2_000).astype(np.float32)
    imp = rng.normal(0.0, 1.0, 200_000).astype(np.float32)
    fmr, tar, _ = roc(gen, imp)
    dfmr, fnmr, _ = det_curve(gen, imp)
    fmr2, tar2, _ = roc(gen + 0.5, imp)
    p1 = plot_roc({"model A": (fmr, tar), "model B": (fmr2, tar2)}, tmp_path / "roc.png")
    p2 = plot_det({"model A": (dfmr, fnmr)}, tmp_path / "sub" / "det.png")
    p3 = plot_score_histogram(gen, imp, tmp_path / "hist.png", thresholds={"FMR 1e-3": threshold_at_fmr(imp, 1e-3)})
    for p in (p1, p2, p3):
        assert p.is_file() and p.stat().st_size > 1000
        assert png_pixels_std(p) > 0


def test_plot_rejects_bad_curves(tmp_path: Path) -> None:
    from faceprint.evaluation.plots import plot_roc

    with pytest.raises(InputError):
        plot_roc({}, tmp_path / "x.png")
    with pytest.raises(InputError, match="equal length"):
        plot_roc({"a": ([0.1, 0.2], [0.5])}, tmp_path / "x.png")
