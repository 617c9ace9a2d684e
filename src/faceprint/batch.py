"""Batch analysis on a Ray cluster: a Ray Data pipeline over an actor pool holding loaded models.

``faceprint index DIR --ray ADDRESS`` (and the library's :meth:`~faceprint.library.Library.index`
with ``ray=``) hands the photos that need analysing to :func:`ray_map`: a Ray Data dataset of
the items, ``map_batches`` over a pool of actors that each load one :class:`~faceprint.engine.Engine`
(detector, aligner, quality model, embedder) once and then run the caller's function on every
item of each batch they get.  Results stream back to the driver in completion order; the driver
writes them (the store is written by one process, as with the local indexer, so resume, skip,
move and duplicate handling are the same code).

Faults: an actor that dies (a node lost, the OOM killer, a SIGKILL) is restarted by Ray and
its batch is run again (``max_restarts`` / ``max_task_retries`` unbounded); a result that
reaches the driver twice is dropped by its item number, so no item is written twice and none
is missing.  ``ADDRESS`` is a running cluster (``HOST:PORT`` of its head, or ``auto``), or
``local``: a one-machine cluster started for the run, bound to 127.0.0.1, with a token made for
it, stopped at the end.  On loopback addresses faceprint sets what keeps Ray 2.60 on loopback
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; without it the head resolves 127.0.0.1 to the
machine's network address); usage statistics are always off (no data leaves the machine).
"""

from __future__ import annotations

import logging
import os
import pickle
import secrets
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import InputError
from faceprint.settings import Settings

__all__ = ["DEFAULT_BATCH", "RAY_ENV", "RayError", "process_token", "ray_map", "ray_session", "ray_settings_env"]

logger = logging.getLogger("faceprint")

#: photos per batch handed to an actor: benchmarks/scale_out.py --parts ray measured 1, 4 and 16 on
#: 600 lfw-dev photos (12.3, 16.5 and 18.8 photos/s on 2 cores): fewer, larger tasks cost Ray less
#: scheduling; a killed actor's batch (at most this many photos) is what is analysed again
DEFAULT_BATCH = 16
#: the environment every Ray process of a loopback cluster needs (the driver included)
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


class RayError(InputError):
    """Ray is not installed, or the cluster cannot be reached."""

    exit_code = 2
    code = "ray_error"


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return address == "local" or host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def ray_settings_env(address: str) -> dict[str, str]:
    """The environment a driver (and the processes it starts) needs for ``address``."""
    env = {"RAY_USAGE_STATS_ENABLED": "0"}
    if _is_loopback(address):
        env.update(RAY_ENV)
    return env


_TOKEN_DIR: Any = None


def process_token() -> str:
    """A token file (0600, in a private temp dir removed at exit) for the local clusters of this
    process.  Ray reads the token once per process: a head this process starts itself (tests:
    ``LocalRay(token_path=...)``) must use this same file."""
    global _TOKEN_DIR
    if _TOKEN_DIR is None:
        _TOKEN_DIR = tempfile.TemporaryDirectory(prefix="faceprint-ray-")
        token = Path(_TOKEN_DIR.name) / "token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    return str(Path(_TOKEN_DIR.name) / "token")


@contextmanager
def ray_session(address: str, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Connect to the Ray cluster at ``address`` (or start a local one: ``local``) for the
    duration of the block; yields the ``ray`` module."""
    if not address:
        raise RayError("--ray needs a cluster address (HOST:PORT of its head, auto) or 'local'")
    os.environ.update(ray_settings_env(address))
    if address == "local" and not os.environ.get("RAY_AUTH_TOKEN_PATH"):
        # Ray reads the token once per process: one token for every local cluster this process starts
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN_PATH"] = process_token()
    try:
        import ray
        from ray._private import ray_constants
    except ImportError:
        raise RayError("Ray is not installed: pip install 'faceprint[scale]'") from None
    if _is_loopback(address):
        # Ray read RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it was first imported, perhaps before
        # we set it: without this it "canonicalises" 127.0.0.1 to the machine's network address
        ray_constants.ENABLE_RAY_CLUSTER = False
    if ray.is_initialized():
        yield ray
        return
    kw: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False, "include_dashboard": False}
    try:
        if address == "local":
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, _node_ip_address="127.0.0.1", **kw)
        else:
            if _is_loopback(address):
                kw["_node_ip_address"] = "127.0.0.1"
            kw.pop("include_dashboard")
            ray.init(address=address, **kw)
    except Exception as exc:
        raise RayError(f"cannot start or reach the Ray cluster at {address!r} ({' '.join(str(exc).split())[:300]})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


class _Analyser:
    """One Ray actor: loads the models once, then runs ``fn(engine, item)`` per item of a batch."""

    def __init__(self, fn: Callable[[Any, Any], Any], settings: dict[str, Any]) -> None:
        import cv2

        from faceprint.engine import Engine

        cv2.setNumThreads(1)  # one core per actor: the pool is the parallelism
        self.fn = fn
        self.engine = Engine(Settings(**settings))
        _ = self.engine.detector, self.engine.embedder  # load now, not inside the first batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = [pickle.dumps(self.fn(self.engine, pickle.loads(item)), protocol=pickle.HIGHEST_PROTOCOL) for item in batch["item"]]
        return {"i": batch["i"], "result": np.array(out, dtype=object)}


def ray_map(
    fn: Callable[[Any, Any], Any],
    items: Sequence[Any],
    *,
    settings: Settings | None = None,
    actors: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    cpus_per_actor: float | None = None,
) -> Iterator[tuple[int, Any]]:
    """``(k, fn(engine, items[k]))`` for every item, in completion order, computed on the Ray
    cluster this process is connected to (:func:`ray_session`).  ``fn`` must be a module-level
    function (or a ``functools.partial`` of one) so the actors can import it."""
    import ray

    if not items:
        return
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # one INFO line per dataset otherwise
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.execution_options.preserve_order = False
    cpus = float(ray.cluster_resources().get("CPU", 1))
    if actors is None:
        # one actor per CPU, but leave Ray Data half a CPU for the rest of the pipeline (with
        # every CPU taken by actors the read tasks wait forever: a deadlock on small clusters)
        actors = max(1, int(cpus))
    per_actor = cpus_per_actor if cpus_per_actor is not None else max(0.1, min(1.0, (cpus - 0.5) / actors))
    n = len(items)
    rows = [{"i": k, "item": pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL)} for k, x in enumerate(items)]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(n, (n + batch_size - 1) // batch_size)))
    ds = ds.map_batches(
        _Analyser,
        fn_constructor_args=(fn, (settings or Settings.load()).to_dict()),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=max(1, min(actors, n))),
        num_cpus=per_actor,
        # Ray Data's actor pools restart an actor that died and run the batch it held again
        # (max_restarts / max_task_retries -1: its defaults; tests/test_scale_out.py kills actors)
    )
    seen: set[int] = set()
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for k, blob in zip(batch["i"], batch["result"]):
            k = int(k)
            if k in seen:  # a batch retried after its actor died reached us twice: written once
                continue
            seen.add(k)
            yield k, pickle.loads(blob)
    missing = n - len(seen)
    if missing:
        raise RayError(f"the Ray pipeline ended with {missing} of {n} items unanswered")
