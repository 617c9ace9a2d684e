"""Model registry (checksums, licences, missing packages) and settings."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from faceprint.errors import InputError, ModelError
from faceprint.models import registry
from faceprint.settings import Settings


def test_default_models_are_installed_and_verified() -> None:
    for model_id in ("yunet-2023mar-int8bq", "sface-2021dec-int8bq"):
        path = registry.verified_path(model_id)
        assert path is not None and path.is_file()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == registry.get_spec(model_id).sha256


def test_every_model_ships_its_licence_text() -> None:
    for spec in registry.list_models():
        if spec.licence_file.startswith("https://"):
            continue  # dlib itself comes from its own package with its licence
        text = (registry.LICENSE_DIR / spec.licence_file).read_text()
        assert len(text) > 500, spec.id


def test_checksum_mismatch_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = registry.get_spec("sface-2021dec-int8bq")
    pkg = tmp_path / "fakepkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    bad = bytearray(registry.model_path(real.id).read_bytes())
    bad[1000] ^= 0xFF  # one flipped byte
    (pkg / real.relpath).write_bytes(bytes(bad))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.REGISTRY, "tampered", dataclasses.replace(real, id="tampered", package="fakepkg"))
    with pytest.raises(ModelError, match="checksum mismatch"):
        registry.verified_path("tampered")


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(registry.get_spec("dlib-resnet-v1"), id="ghost", package="no_such_package_xyz")
    monkeypatch.setitem(registry.REGISTRY, "ghost", spec)
    with pytest.raises(ModelError, match=r"faceprint\[dlib\]"):
        registry.model_path("ghost")
    with pytest.raises(ModelError, match="unknown model id 'nope'"):
        registry.get_spec("nope")


def test_settings_layering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "faceprint.toml"
    cfg.write_text("[faceprint]\nfmr = 1e-4\nflip = false\nmin_face_score = 0.7\n")
    monkeypatch.setenv("FACEPRINT_CONFIG", str(cfg))
    monkeypatch.setenv("FACEPRINT_MIN_FACE_SCORE", "0.5")
    s = Settings.load(detect_max_side=800)
    assert (s.fmr, s.flip, s.min_face_score, s.detect_max_side) == (1e-4, False, 0.5, 800)
    monkeypatch.setenv("FACEPRINT_FLIP", "maybe")
    with pytest.raises(InputError, match="flip='maybe'"):
        Settings.load()
    monkeypatch.delenv("FACEPRINT_FLIP")
    cfg.write_text("[faceprint]\nfmrr = 1e-4\n")
    with pytest.raises(InputError, match="unknown setting.*fmrr"):
        Settings.load()
