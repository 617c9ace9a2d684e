"""Pair protocols, all-pairs scoring and the shipped calibration table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.engine import shipped_calibration_path
from faceprint.errors import InputError
from faceprint.evaluation.pairs import limit_pairs, read_csv_pairs, read_lfw_pairs
from faceprint.evaluation.protocol import all_pairs_scores
from faceprint.metrics.verification import CalibrationTable


def test_read_lfw_pairs(data_dir: Path) -> None:
    root = data_dir / "lfw-dev"
    pairs = read_lfw_pairs(root / "pairs.txt", root / "images")
    assert len(pairs) == 3000
    assert sum(p.same for p in pairs) == 1500
    assert sorted({p.fold for p in pairs}) == [0, 1, 2, 3, 4]
    assert all(p.a.is_file() and p.b.is_file() for p in pairs)
    first = pairs[0]
    assert first.same and first.a.name == "Abel_Pacheco_0001.jpg" and first.b.name == "Abel_Pacheco_0004.jpg"
    small = limit_pairs(pairs, 3)
    assert len(small) == 5 * 2 * 3 and sum(p.same for p in small) == 15


def test_bad_pairs_files(tmp_path: Path) -> None:
    f = tmp_path / "pairs.txt"
    f.write_text("hello world\n")
    with pytest.raises(InputError, match="pairs.txt: first line must be the LFW header"):
        read_lfw_pairs(f, tmp_path)
    f.write_text("1 2\nA 1 2\nB 1 C 2\n")
    with pytest.raises(InputError, match="promises 1 folds x 2 x 2 pairs = 4 lines, found 2"):
        read_lfw_pairs(f, tmp_path)
    with pytest.raises(InputError, match="not found"):
        read_lfw_pairs(tmp_path / "missing.txt", tmp_path)
    c = tmp_path / "pairs.csv"
    c.write_text("a,b,same\nx.jpg,y.jpg,yes\nx.jpg,z.jpg,maybe\n")
    with pytest.raises(InputError, match="line 3: label 'maybe'"):
        read_csv_pairs(c)


def test_all_pairs_scores_counts_and_alias_groups() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(7, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ids = np.array([0, 0, 1, 1, 1, 2, 3])
    gen, imp = all_pairs_scores(v, ids)
    assert len(gen) == 1 + 3 and len(imp) == 21 - 4
    brute_imp = sorted(float(v[i] @ v[j]) for i in range(7) for j in range(i + 1, 7) if ids[i] != ids[j])
    assert np.allclose(sorted(imp), brute_imp, atol=1e-6)
    # identities 2 and 3 are known to be one person: their cross pair leaves the impostor set
    gen2, imp2 = all_pairs_scores(v, ids, groups=np.array([0, 0, 1, 1, 1, 2, 2]))
    assert len(gen2) == 4 and len(imp2) == len(imp) - 1
    valid = np.array([True] * 6 + [False])
    _, imp3 = all_pairs_scores(v, ids, valid)
    assert len(imp3) == len(imp) - 6


def test_shipped_calibration_table() -> None:
    table = CalibrationTable.load(shipped_calibration_path("sface-2021dec-int8bq+flip"))
    assert table.model_id == "sface-2021dec-int8bq+flip" and table.name == "lfw-dev"
    assert table.n_impostor > 18_000_000 and table.n_genuine > 50_000
    assert table.min_fmr <= 1e-6
    t = [table.threshold_for(f) for f in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)]
    assert all(a < b for a, b in zip(t, t[1:]))
    assert 0.3 < table.threshold_for(1e-3) < 0.42  # SFace's upstream threshold 0.363 sits near FMR 1e-3
    assert abs(np.log10(table.fmr_for(table.threshold_for(1e-4))) + 4) < 0.01
