"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import REPO, run_cli

# Databases the tests create are encrypted at rest (the default): with a key of their own, not
# the user's (~/.config/faceprint/key); subprocesses and test servers inherit it.
if not os.environ.get("FACEPRINT_KEY") and not os.environ.get("FACEPRINT_KEY_FILE"):
    import tempfile

    os.environ["FACEPRINT_KEY_FILE"] = str(Path(tempfile.mkdtemp(prefix="faceprint-test-key-")) / "key")

# BLAS and OpenMP pools get one thread, in this process (the fixture below: for the libraries
# already loaded) and in every process the tests start (the environment).  On two cores
# already busy with the tests' own servers and models, multi-threaded OpenBLAS / FAISS pools
# spin: a 395 x 395 solve took 94 ms instead of 1.2 ms, a PQ codebook 5-20 s instead of 0.3 s.
# The tests check behaviour, not speed (benchmarks/ measures speed, with the defaults).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    import faiss  # noqa: F401 -- loaded first, so its OpenMP pool is limited too
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared face data folder: ``$FACEPRINT_DATA`` or ``<repo>/../shared/data``; skips the test if absent."""
    path = Path(os.environ.get("FACEPRINT_DATA", REPO / ".." / "shared" / "data")).resolve()
    if not path.is_dir():
        pytest.skip(f"shared face data not found at {path}; set FACEPRINT_DATA")
    return path


@pytest.fixture(scope="session")
def engine():
    """One Engine with the default models for the whole session (models load once)."""
    from faceprint import Engine, Settings

    return Engine(Settings())


@pytest.fixture(scope="session")
def lfw(data_dir: Path) -> Path:
    path = data_dir / "lfw-dev" / "images"
    if not path.is_dir():
        pytest.skip(f"lfw-dev images not found at {path}")
    return path


@pytest.fixture(scope="session")
def cli():
    """``cli("verify", a, b, "--json")`` runs the faceprint command in-process; see ``support.run_cli``."""
    return run_cli


# -- the real engines of the scale-out tests (tests/test_scale_*.py), on 127.0.0.1 -------------------


@pytest.fixture(scope="module")
def pg():
    from scale_engines import start_or_skip

    from faceprint.scale.local import LocalPostgres

    engine = start_or_skip(LocalPostgres)
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def milvus():
    from scale_engines import start_or_skip

    from faceprint.scale.local import LocalMilvus

    engine = start_or_skip(LocalMilvus)
    yield engine
    engine.stop()
