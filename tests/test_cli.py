"""End-to-end tests of the ``faceprint`` command on real images.

Each test runs ``faceprint ...`` in this process (the ``cli`` fixture of conftest.py: Typer's
CliRunner, models loaded once) and checks exit code, stdout (JSON or tables) and stderr:
named errors are one line on stderr (or a JSON error object on stdout with ``--json``) with
exit code 2 (bad input) / 3 (model), never a traceback.  Two tests start real processes, so
the entry points themselves stay covered: ``python -m faceprint.cli`` and the ``faceprint``
console script.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage
from servers import server_env  # tests/ is on sys.path: src/ first on PYTHONPATH, the caller's FACEPRINT_* settings dropped
from support import CliResult

from faceprint.engine import shipped_calibration_path

MODEL_ID = "sface-2021dec-int8bq+flip"
SHIPPED_CAL = shipped_calibration_path(MODEL_ID)
needs_shipped_calibration = pytest.mark.skipif(not SHIPPED_CAL.is_file(), reason=f"shipped calibration table {SHIPPED_CAL.name} not built yet")


# --- running the command ----------------------------------------------------------


def ok_json(cli: Callable[..., CliResult], *args: Any) -> Any:
    """Run with --json, expect exit 0 and a JSON document on stdout."""
    proc = cli(*args, "--json")
    assert proc.returncode == 0, proc.describe()
    assert "Traceback" not in proc.stderr, proc.describe()
    return proc.json()


def json_error(cli: Callable[..., CliResult], *args: Any, code: int = 2) -> dict[str, str]:
    """Run with --json, expect exit ``code``, a JSON {"error": {...}} on stdout and no traceback."""
    proc = cli(*args, "--json")
    assert proc.returncode == code, proc.describe()
    assert "Traceback" not in proc.stderr, proc.describe()
    doc = proc.json()
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message"}, doc
    return doc["error"]


def error_line(proc: CliResult, code: int = 2) -> str:
    """Expect exit ``code`` and exactly one ``error: ...`` line on stderr (no traceback); return it."""
    assert proc.returncode == code, proc.describe()
    assert "Traceback" not in proc.stderr, proc.describe()
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.describe()
    return lines[0]


def _check_png(path: Path) -> tuple[int, int]:
    assert path.is_file(), path
    with PILImage.open(path) as im:
        assert im.format == "PNG"
        im.load()
        return im.size


def test_python_m_entry_point() -> None:
    """A real ``python -m faceprint.cli`` process (the package's __main__)."""
    proc = subprocess.run([sys.executable, "-m", "faceprint.cli", "--help"], env=server_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "python -m faceprint.cli" in proc.stdout
    for command in ("detect", "embed", "verify", "models", "calibrate", "eval", "demo"):
        assert command in proc.stdout


def test_console_script_entry_point() -> None:
    """The installed ``faceprint`` script (``faceprint.cli:main``) in a real process: help, and a
    named error's exit code and one-line message coming back through ``main``."""
    from importlib.metadata import entry_points

    declared = [ep.value for ep in entry_points(group="console_scripts", name="faceprint")]
    if not declared:
        pytest.skip("faceprint is not installed (no console script to run)")
    assert declared == ["faceprint.cli:main"]
    script = Path(sys.executable).with_name("faceprint")
    assert script.is_file(), f"faceprint is installed but {script} is missing"
    proc = subprocess.run([str(script), "--help"], env=server_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: faceprint" in proc.stdout and "verify" in proc.stdout and "serve" in proc.stdout
    proc = subprocess.run([str(script), "verify", "a.jpg", "b.jpg", "--fmr", "2"], env=server_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "--fmr" in lines[0] and "Traceback" not in proc.stderr, proc.stderr


# --- detect -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def group(data_dir: Path) -> Path:
    path = data_dir / "samples" / "group-photos"
    if not path.is_dir():
        pytest.skip(f"group photos not found at {path}")
    return path


def test_detect_eight_faces_json(group: Path, cli: Any) -> None:
    out = ok_json(cli, "detect", group / "016_8.jpg")
    assert (out["width"], out["height"]) == (800, 533)
    assert len(out["faces"]) == 8
    for face in out["faces"]:
        box = face["box"]
        assert set(box) == {"x", "y", "w", "h"} and box["w"] > 0 and box["h"] > 0
        assert 0 <= box["x"] < 800 and 0 <= box["y"] < 533
        assert len(face["landmarks"]) == 5 and all(len(p) == 2 for p in face["landmarks"])
        assert 0.85 <= face["score"] <= 1.0  # default --min-score
    assert out["drawn"] is None


def test_detect_draw_writes_png_of_input_size(group: Path, tmp_path: Path, cli: Any) -> None:
    drawn = tmp_path / "out.png"
    out = ok_json(cli, "detect", group / "016_8.jpg", "--draw", drawn)
    assert out["drawn"] == str(drawn) and len(out["faces"]) == 8
    with PILImage.open(group / "016_8.jpg") as src:
        assert _check_png(drawn) == src.size
    with PILImage.open(drawn) as im, PILImage.open(group / "016_8.jpg") as src:
        assert np.abs(np.asarray(im.convert("RGB"), int) - np.asarray(src.convert("RGB"), int)).max() > 100  # boxes were drawn


def test_detect_draw_bad_target(group: Path, tmp_path: Path, cli: Any) -> None:
    err = json_error(cli, "detect", group / "016_8.jpg", "--draw", tmp_path / "missing" / "out.png")
    assert err["code"] == "invalid_input" and str(tmp_path / "missing" / "out.png") in err["message"]
    line = error_line(cli("detect", group / "016_8.jpg", "--draw", tmp_path / "out.txt"))
    assert str(tmp_path / "out.txt") in line and ".png" in line


def test_detect_human_table(group: Path, cli: Any) -> None:
    proc = cli("detect", group / "016_8.jpg")
    assert proc.returncode == 0, proc.describe()
    assert "8 face(s)" in proc.stdout and "score" in proc.stdout


# --- the bad-input corpus through `detect --json` --------------------------------------


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _bomb_png(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose IHDR claims width x height RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _png_chunk(b"IEND", b""))


def _photo(group: Path) -> PILImage.Image:
    with PILImage.open(group / "016_8.jpg") as im:
        return im.convert("RGB")


def _zero_byte(tmp: Path, group: Path) -> Path:
    (p := tmp / "empty.jpg").write_bytes(b"")
    return p


def _truncated_jpeg(tmp: Path, group: Path) -> Path:
    data = (group / "016_8.jpg").read_bytes()
    (p := tmp / "cut.jpg").write_bytes(data[: len(data) // 2])
    return p


def _text_as_jpg(tmp: Path, group: Path) -> Path:
    (p := tmp / "notes.jpg").write_text("this is not a picture\n" * 20)
    return p


def _one_pixel(tmp: Path, group: Path) -> Path:
    PILImage.new("RGB", (1, 1), (10, 20, 30)).save(p := tmp / "dot.png")
    return p


def _bomb(tmp: Path, group: Path) -> Path:
    _bomb_png(p := tmp / "bomb.png", 30000, 30000)
    return p


def _cmyk_jpeg(tmp: Path, group: Path) -> Path:
    _photo(group).convert("CMYK").save(p := tmp / "cmyk.jpg", quality=95)
    with PILImage.open(p) as im:
        assert im.mode == "CMYK"
    return p


def _grey16_png(tmp: Path, group: Path) -> Path:
    grey = np.asarray(_photo(group).convert("L")).astype(np.uint16) * 257
    PILImage.fromarray(grey).save(p := tmp / "grey16.png")
    with PILImage.open(p) as im:
        assert im.mode == "I;16"
    return p


def _animated_gif(tmp: Path, group: Path) -> Path:
    first = _photo(group)
    first.save(p := tmp / "anim.gif", save_all=True, append_images=[PILImage.new("RGB", first.size, (0, 0, 255))], duration=100, loop=0)
    return p


def _heic(tmp: Path, group: Path) -> Path:
    pytest.importorskip("pillow_heif")
    import pillow_heif

    pillow_heif.register_heif_opener()
    _photo(group).save(p := tmp / "photo.heic", format="HEIF", quality=90)
    return p


def _missing(tmp: Path, group: Path) -> Path:
    return tmp / "no-such-file.jpg"


def _directory(tmp: Path, group: Path) -> Path:
    (p := tmp / "folder.jpg").mkdir()
    return p


def _markup_name(tmp: Path, group: Path) -> Path:
    """A file name that rich would read as markup ("[/]" closes a tag that was never opened)."""
    (tmp / "d[").mkdir()
    (p := tmp / "d[" / "]e.jpg").write_bytes(b"")
    return p


def _sample(name: str) -> Callable[[Path, Path], Path]:
    return lambda tmp, group: group / name


FACES = "faces"  # expected outcome: exit 0 and a face count in [lo, hi]
CORPUS: list[tuple[str, Callable[[Path, Path], Path], str, Any]] = [
    ("zero_byte", _zero_byte, "image_decode_error", "empty file"),
    ("truncated_jpeg", _truncated_jpeg, "image_decode_error", "truncated or corrupt"),
    ("text_renamed_jpg", _text_as_jpg, "image_decode_error", "not a recognised image format"),
    ("missing_file", _missing, "image_decode_error", "not found"),
    ("directory", _directory, "image_decode_error", "directory"),
    ("markup_in_name", _markup_name, "image_decode_error", "empty file"),
    ("png_30000x30000", _bomb, "image_too_large", "pixels"),
    ("one_pixel_png", _one_pixel, FACES, (0, 0)),
    ("cmyk_jpeg", _cmyk_jpeg, FACES, (8, 8)),
    ("grey_16bit_png", _grey16_png, FACES, (6, 8)),  # grey costs a face or so; a white/black decode finds none
    ("animated_gif", _animated_gif, FACES, (8, 8)),  # first frame only (the second is plain blue)
    ("heic", _heic, FACES, (8, 8)),
    ("sample_no_face_017_0", _sample("017_0.jpg"), FACES, (0, 0)),
    ("sample_eight_faces_016_8", _sample("016_8.jpg"), FACES, (8, 8)),
]


@pytest.mark.parametrize(("make", "expected", "detail"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_bad_input_corpus_detect_json(tmp_path: Path, group: Path, make: Callable[[Path, Path], Path], expected: str, detail: Any, cli: Any) -> None:
    path = make(tmp_path, group)
    proc = cli("detect", path, "--json")
    assert "Traceback" not in proc.stderr, proc.describe()
    assert proc.returncode in (0, 2), proc.describe()
    doc = json.loads(proc.stdout)
    if expected == FACES:
        assert proc.returncode == 0, proc.describe()
        assert isinstance(doc["faces"], list)
        lo, hi = detail
        assert lo <= len(doc["faces"]) <= hi, f"{len(doc['faces'])} faces, expected {lo}..{hi}"
        assert doc["image"] == str(path)
    else:
        assert proc.returncode == 2, proc.describe()
        assert doc["error"]["code"] == expected, doc
        assert doc["error"]["code"] in ("image_decode_error", "image_too_large", "invalid_input")
        assert str(path) in doc["error"]["message"] and detail in doc["error"]["message"], doc


@pytest.mark.parametrize("make", [_zero_byte, _markup_name, _bomb], ids=["zero_byte", "markup_in_name", "png_30000x30000"])
def test_bad_input_human_error_is_one_line_naming_the_file(tmp_path: Path, group: Path, make: Callable[[Path, Path], Path], cli: Any) -> None:
    path = make(tmp_path, group)
    proc = cli("detect", path)
    line = error_line(proc)
    assert str(path) in line  # neither wrapped at the terminal width nor eaten as markup
    assert proc.stdout.strip() == ""


# --- embed --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def abel(lfw: Path) -> tuple[Path, Path]:
    a, b = lfw / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg", lfw / "Abel_Pacheco" / "Abel_Pacheco_0002.jpg"
    if not (a.is_file() and b.is_file()):
        pytest.skip("Abel_Pacheco images missing from lfw-dev")
    return a, b


@pytest.fixture(scope="module")
def other_person(lfw: Path) -> Path:
    path = lfw / "Tony_Blair" / "Tony_Blair_0001.jpg"
    if not path.is_file():
        pytest.skip("Tony_Blair_0001 missing from lfw-dev")
    return path


def _vector(template: dict[str, Any]) -> np.ndarray:
    return np.asarray(template["vector"], dtype=np.float64)


def test_embed_json_one_unit_template(abel: tuple[Path, Path], cli: Any) -> None:
    out = ok_json(cli, "embed", abel[0])
    assert out["image"] == str(abel[0])
    (t,) = out["templates"]
    assert t["model_id"] == MODEL_ID and t["dim"] == 128
    v = _vector(t)
    assert v.shape == (128,) and np.all(np.isfinite(v))
    assert abs(np.linalg.norm(v) - 1.0) < 1e-4
    assert {"box", "landmarks", "score"} <= set(t["face"])


def test_embed_no_flip_is_another_model(abel: tuple[Path, Path], cli: Any) -> None:
    flip = _vector(ok_json(cli, "embed", abel[0])["templates"][0])
    (t,) = ok_json(cli, "embed", abel[0], "--no-flip")["templates"]
    assert t["model_id"] == "sface-2021dec-int8bq"
    v = _vector(t)
    assert abs(np.linalg.norm(v) - 1.0) < 1e-4
    assert 0.8 < float(v @ flip) < 0.99999  # same face, but not the same vector


def test_embed_no_face(group: Path, cli: Any) -> None:
    path = group / "017_0.jpg"
    line = error_line(cli("embed", path))
    assert "no face" in line and str(path) in line
    err = json_error(cli, "embed", path)
    assert err["code"] == "no_face" and str(path) in err["message"]


def test_embed_all_faces(group: Path, cli: Any) -> None:
    out = ok_json(cli, "embed", group / "016_8.jpg", "--all")
    assert len(out["templates"]) == 8
    vecs = np.stack([_vector(t) for t in out["templates"]])
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    sims = vecs @ vecs.T
    assert sims[~np.eye(8, dtype=bool)].max() < 0.9  # eight different people


# --- verify -------------------------------------------------------------------------------


@needs_shipped_calibration
def test_verify_same_person(abel: tuple[Path, Path], cli: Any) -> None:
    out = ok_json(cli, "verify", *abel)
    assert out["match"] is True
    assert out["fmr"] == 0.001 and out["calibration"] == "lfw-dev" and out["model_id"] == MODEL_ID
    assert out["score"] >= out["threshold"]
    assert 0 < out["score_fmr"] <= 0.001
    assert out["a"]["source"] == str(abel[0]) and out["b"]["source"] == str(abel[1])


@needs_shipped_calibration
def test_verify_different_people(abel: tuple[Path, Path], other_person: Path, cli: Any) -> None:
    out = ok_json(cli, "verify", abel[0], other_person)
    assert out["match"] is False
    assert out["score"] < out["threshold"]
    assert out["score_fmr"] > 0.001


@needs_shipped_calibration
def test_verify_stricter_fmr_raises_threshold(abel: tuple[Path, Path], cli: Any) -> None:
    default = ok_json(cli, "verify", *abel)
    strict = ok_json(cli, "verify", *abel, "--fmr", "1e-6")
    assert strict["fmr"] == 1e-6
    assert strict["threshold"] > default["threshold"]
    assert strict["score"] == default["score"]


@pytest.mark.parametrize("bad", ["2", "0", "-0.1", "1"])
def test_verify_fmr_out_of_range(abel: tuple[Path, Path], bad: str, cli: Any) -> None:
    line = error_line(cli("verify", *abel, "--fmr", bad))
    assert "--fmr" in line and "between 0 and 1" in line
    err = json_error(cli, "verify", *abel, "--fmr", bad)
    assert err["code"] == "invalid_input" and "--fmr" in err["message"]


@needs_shipped_calibration
def test_verify_human_output(abel: tuple[Path, Path], cli: Any) -> None:
    proc = cli("verify", *abel)
    assert proc.returncode == 0, proc.describe()
    assert "SAME PERSON" in proc.stdout and "threshold" in proc.stdout and "lfw-dev" in proc.stdout


def test_verify_missing_image(abel: tuple[Path, Path], tmp_path: Path, cli: Any) -> None:
    err = json_error(cli, "verify", abel[0], tmp_path / "nope.jpg")
    assert err["code"] == "image_decode_error" and str(tmp_path / "nope.jpg") in err["message"]


# --- models ---------------------------------------------------------------------------------


def test_models_json(cli: Any) -> None:
    rows = {r["id"]: r for r in ok_json(cli, "models")}
    for model_id, kind in (("yunet-2023mar-int8bq", "detector"), ("sface-2021dec-int8bq", "embedder")):
        r = rows[model_id]
        assert r["kind"] == kind and r["available"] is True
        assert len(r["sha256"]) == 64 and int(r["sha256"], 16) >= 0
        assert r["licence"] in ("MIT", "Apache-2.0")
        assert Path(r["path"]).is_file()


def test_models_human_table(cli: Any) -> None:
    proc = cli("models")
    assert proc.returncode == 0, proc.describe()
    assert "faceprint models" in proc.stdout
    assert "licence" in proc.stdout and "sha256" in proc.stdout
    assert "detector" in proc.stdout and "embedder" in proc.stdout
    assert any(ch in proc.stdout for ch in "┃|")  # table borders


# --- calibrate ----------------------------------------------------------------------------------

CAL_IDENTITIES, CAL_IMAGES = 6, 10  # 60 images: 270 genuine and 1,500 impostor pairs (enough for FMR 1e-3)


@pytest.fixture(scope="module")
def identity_dir(lfw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<tmp>/<Name>/<symlinks to LFW images> for the first identities with >= CAL_IMAGES images."""
    names = [d.name for d in sorted(lfw.iterdir()) if d.is_dir() and len(list(d.glob("*.jpg"))) >= CAL_IMAGES][:CAL_IDENTITIES]
    if len(names) < CAL_IDENTITIES:
        pytest.skip("not enough LFW identities with many images")
    root = tmp_path_factory.mktemp("identities")
    for name in names:
        (root / name).mkdir()
        for img in sorted((lfw / name).glob("*.jpg"))[:CAL_IMAGES]:
            (root / name / img.name).symlink_to(img)
    return root


@pytest.fixture(scope="module")
def calibration(identity_dir: Path, tmp_path_factory: pytest.TempPathFactory, cli: Any) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("cal") / "cal.json"
    summary = ok_json(cli, "calibrate", "--folders", identity_dir, "--out", out, "--name", "my-team")
    return out, summary


@pytest.mark.slow
def test_calibrate_folders(calibration: tuple[Path, dict[str, Any]]) -> None:
    from faceprint.metrics.verification import CalibrationTable

    out, s = calibration
    n = CAL_IDENTITIES * CAL_IMAGES
    assert s["out"] == str(out) and s["model_id"] == MODEL_ID
    assert (s["images"], s["identities"], s["failed"]) == (n, CAL_IDENTITIES, 0)
    genuine = CAL_IDENTITIES * CAL_IMAGES * (CAL_IMAGES - 1) // 2
    assert s["genuine"] == genuine and s["impostor"] == n * (n - 1) // 2 - genuine
    thresholds = {float(k): v for k, v in s["thresholds"].items()}
    assert 0.1 in thresholds and 0.001 in thresholds and 1e-4 not in thresholds  # 1,500 impostors state 1e-3, not 1e-4
    ordered = [thresholds[k] for k in sorted(thresholds, reverse=True)]
    assert ordered == sorted(ordered)  # lower FMR, higher threshold

    table = CalibrationTable.load(out)
    assert table.model_id == MODEL_ID and table.name == "my-team"
    assert (table.n_impostor, table.n_genuine) == (s["impostor"], s["genuine"])
    assert table.threshold_for(1e-3) == pytest.approx(thresholds[0.001])


@needs_shipped_calibration
def test_verify_with_own_calibration(calibration: tuple[Path, dict[str, Any]], abel: tuple[Path, Path], cli: Any) -> None:
    from faceprint.metrics.verification import CalibrationTable

    out, _ = calibration
    table = CalibrationTable.load(out)
    mine = ok_json(cli, "verify", *abel, "--calibration", out)
    shipped = ok_json(cli, "verify", *abel)
    assert mine["calibration"] == "my-team" and shipped["calibration"] == "lfw-dev"
    assert mine["threshold"] == pytest.approx(table.threshold_for(1e-3), abs=1e-6)
    assert mine["score"] == shipped["score"]


def test_verify_own_calibration_cannot_state_tiny_fmr(calibration: tuple[Path, dict[str, Any]], abel: tuple[Path, Path], cli: Any) -> None:
    out, _ = calibration
    err = json_error(cli, "verify", *abel, "--calibration", out, "--fmr", "1e-5")
    assert err["code"] == "calibration_error" and "my-team" in err["message"]


def test_verify_unreadable_calibration(tmp_path: Path, abel: tuple[Path, Path], cli: Any) -> None:
    bad = tmp_path / "cal.json"
    bad.write_text("{not json")
    err = json_error(cli, "verify", *abel, "--calibration", bad)
    assert err["code"] == "calibration_error" and str(bad) in err["message"]


@pytest.mark.parametrize("which", ["neither", "both"])
def test_calibrate_needs_exactly_one_source(tmp_path: Path, which: str, cli: Any) -> None:
    args: list[Any] = ["calibrate", "--out", tmp_path / "cal.json"]
    if which == "both":
        args += ["--folders", tmp_path, "--pairs", tmp_path / "pairs.txt"]
    line = error_line(cli(*args))
    assert "exactly one of --folders" in line
    assert json_error(cli, *args)["code"] == "invalid_input"
    assert not (tmp_path / "cal.json").exists()


def test_calibrate_unwritable_out(identity_dir: Path, tmp_path: Path, cli: Any) -> None:
    target = tmp_path / "no-such-folder" / "cal.json"
    err = json_error(cli, "calibrate", "--folders", identity_dir, "--out", target)
    assert err["code"] == "invalid_input" and str(target) in err["message"]


def test_calibrate_folders_not_a_directory(tmp_path: Path, cli: Any) -> None:
    err = json_error(cli, "calibrate", "--folders", tmp_path / "nope", "--out", tmp_path / "cal.json")
    assert err["code"] == "invalid_input" and str(tmp_path / "nope") in err["message"]


# --- eval pairs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lfw_pairs(data_dir: Path, lfw: Path) -> Path:
    path = data_dir / "lfw-dev" / "pairs.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.mark.slow
def test_eval_pairs_smoke(lfw_pairs: Path, lfw: Path, tmp_path: Path, cli: Any) -> None:
    out_dir = tmp_path / "eval"
    r = ok_json(cli, "eval", "pairs", "--pairs", lfw_pairs, "--root", lfw, "--limit", 6, "--out", out_dir)
    folds = int(lfw_pairs.read_text().split()[0])
    assert (r["folds"], r["genuine"], r["impostor"], r["pairs"]) == (folds, 6 * folds, 6 * folds, 12 * folds)
    assert r["model_id"] == MODEL_ID and r["failures_to_enrol"] == 0
    assert r["accuracy_mean"] > 0.9 and len(r["fold_accuracies"]) == folds
    assert 0.9 < r["auc"] <= 1.0 and 0.0 <= r["eer"] < 0.1
    # 30 impostor pairs cannot state FAR 1e-2 (needs 100) or 1e-3 (needs 1,000): null with a note, not a number
    for key, needed in (("1e-2", 100), ("1e-3", 1000)):
        assert f"tar_at_far_{key}" in r
        assert r[f"tar_at_far_{key}"] is None
        assert f"needs at least {needed} impostor" in r[f"note_far_{key}"]
    assert _check_png(out_dir / "roc.png")[0] > 100
    _check_png(out_dir / "scores.png")
    saved = json.loads((out_dir / "results.json").read_text())
    assert saved["accuracy_mean"] == r["accuracy_mean"] and saved["tar_at_far_1e-3"] is None
    assert r["files"]["roc"] == str(out_dir / "roc.png") and r["files"]["results"] == str(out_dir / "results.json")


def test_eval_pairs_bad_header(tmp_path: Path, lfw: Path, cli: Any) -> None:
    bad = tmp_path / "pairs.txt"
    bad.write_text("hello world\nAbel_Pacheco 1 2\n")
    err = json_error(cli, "eval", "pairs", "--pairs", bad, "--root", lfw, "--out", tmp_path / "out")
    assert err["code"] == "invalid_input" and str(bad) in err["message"] and "header" in err["message"]
    line = error_line(cli("eval", "pairs", "--pairs", bad, "--root", lfw, "--out", tmp_path / "out"))
    assert str(bad) in line
    assert not (tmp_path / "out").exists()


def test_eval_pairs_missing_file_and_root(tmp_path: Path, lfw_pairs: Path, cli: Any) -> None:
    err = json_error(cli, "eval", "pairs", "--pairs", tmp_path / "nope.txt", "--root", tmp_path)
    assert err["code"] == "invalid_input" and str(tmp_path / "nope.txt") in err["message"]
    err = json_error(cli, "eval", "pairs", "--pairs", lfw_pairs)
    assert err["code"] == "invalid_input" and "--root" in err["message"]


def test_eval_pairs_out_is_a_file(lfw_pairs: Path, lfw: Path, tmp_path: Path, cli: Any) -> None:
    (target := tmp_path / "taken").write_text("x")
    err = json_error(cli, "eval", "pairs", "--pairs", lfw_pairs, "--root", lfw, "--limit", 1, "--out", target)
    assert err["code"] == "invalid_input" and str(target) in err["message"]


# --- demo ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_shipped_calibration
def test_demo_json(data_dir: Path, cli: Any) -> None:
    d = ok_json(cli, "demo", "--data", data_dir)
    det, ver = d["detection"], d["verification"]
    n_images = len(json.loads((data_dir / "samples" / "group-photos" / "annotations.json").read_text())["images"])
    assert det["images"] == len(det["rows"]) == n_images == 18
    assert det["counts_matching_annotations"] == n_images, [r for r in det["rows"] if r["expected"] != r["found"]]
    assert ver["pairs"] == len(ver["rows"]) > 0
    assert ver["accuracy"] >= 0.9 and ver["correct"] == sum(r["correct"] for r in ver["rows"])
    assert ver["fmr"] == 0.001 and ver["model_id"] == MODEL_ID
    assert math.isfinite(ver["threshold"])


def test_demo_missing_data(tmp_path: Path, cli: Any) -> None:
    err = json_error(cli, "demo", "--data", tmp_path)
    assert err["code"] == "invalid_input" and str(tmp_path) in err["message"] and "FACEPRINT_DATA" in err["message"]
