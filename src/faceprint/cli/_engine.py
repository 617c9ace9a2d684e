"""The CLI's Engine: models shared by every command run in this process.

One ``faceprint`` process runs one command, but the tests (and anything else that calls the
Typer app in-process) run many: each builds an Engine from settings read afresh
(:func:`faceprint.cli._common.make_engine`), and without this each would load the detector
and embedder again and warm their networks up anew (tests/test_cli.py and
test_cli_gallery.py: 68 model loads taking 3 s without the cache, 8 with it; the two files
run in ~41 s instead of ~51 s).  Here the two are cached per process, keyed on the whole
frozen :class:`~faceprint.settings.Settings` (so any setting that could change a model gets a
model of its own), and still built lazily, when the Engine first needs them, exactly as
:class:`~faceprint.engine.Engine` does.  Detector and embedder are thread-safe (each
serialises its network behind a lock), as the REST server already relies on when one Engine
serves many threads.  Imported on first use only: it pulls in OpenCV."""

from __future__ import annotations

from functools import lru_cache

from faceprint.detection import Detector
from faceprint.embedding import Embedder
from faceprint.engine import Engine, build_detector, build_embedder

_shared_detector = lru_cache(maxsize=4)(build_detector)
_shared_embedder = lru_cache(maxsize=4)(build_embedder)


class SharedModelsEngine(Engine):
    """An :class:`~faceprint.engine.Engine` whose detector and embedder come from the per-process cache."""

    @property
    def detector(self) -> Detector:
        with self._lock:
            if self._detector is None:
                self._detector = _shared_detector(self.settings)
            return self._detector

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = _shared_embedder(self.settings)
            return self._embedder


def clear() -> None:
    """Forget the cached models (the next Engine loads its own)."""
    _shared_detector.cache_clear()
    _shared_embedder.cache_clear()


__all__ = ["SharedModelsEngine", "clear"]
