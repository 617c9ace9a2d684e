"""Vector indexes (faceprint.gallery.index): exact, PQ scan and HNSW on seeded unit vectors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import FaceprintError, InputError
from faceprint.gallery.index import (
    ExactIndex,
    HNSWIndex,
    IndexCorruptError,
    PQScanIndex,
    VectorIndex,
    header_path,
    index_for,
    make_index,
    read_header,
)

DIM = 128


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def random_unit(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32))


def clustered(n_centres: int, per: int, seed: int, sigma: float = 0.06) -> np.ndarray:
    """Face-like templates: members of a cluster have cosine ~0.7 with each other."""
    rng = np.random.default_rng(seed)
    c = random_unit(n_centres, seed + 100)
    return unit(np.repeat(c, per, axis=0) + sigma * rng.standard_normal((n_centres * per, DIM), dtype=np.float32))


def brute(gallery: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = queries @ gallery.T
    order = np.argsort(-s, axis=1)[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


def best_scores(gallery: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Each query's true best score (float32)."""
    return (queries @ gallery.T).max(axis=1)


def recall_at_1(found: np.ndarray, gallery: np.ndarray, queries: np.ndarray, best: np.ndarray | None = None) -> float:
    """Share of queries whose returned top 1 scores (in float32) as high as the true best (ties
    count); ``best``: the queries' best scores if already known (``best_scores``)."""
    best = best_scores(gallery, queries) if best is None else best
    got = np.einsum("ij,ij->i", gallery[found[:, 0]], queries)
    return float(np.mean(got >= best - 1e-5))


KINDS = [
    pytest.param(lambda **kw: ExactIndex(DIM, **kw), id="exact"),
    pytest.param(lambda **kw: PQScanIndex(DIM, **kw), id="pqscan"),
    # one insertion thread: usearch's multi-threaded build differs run to run, and once gave a
    # recall of 0.9895 under the 0.99 bar (issue 14: the flake); a fixed build is deterministic
    pytest.param(lambda **kw: HNSWIndex(DIM, **{"threads": 1, **kw}), id="hnsw"),
]


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread():
    """The PQ scan's FAISS calls run on one OpenMP thread in this module, as before after it.
    Its threads spin-wait at every barrier, and on a busy 2-core machine a descheduled one
    stalls the others: the 20k PQ build took 0.4 s alone but 14-24 s beside other work (on one
    thread 0.35-0.5 s either way).  What the tests measure does not depend on the thread count."""
    try:
        import faiss
    except ImportError:  # the PQ tests fail on their own, with the package's message
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def big() -> dict[str, np.ndarray]:
    """20k gallery (12k clustered + 8k random) and 1,000 mated queries + 200 random probes.

    Mated queries are what a face search sees: a held-out image of a gallery
    identity (800), or a noisy copy (cosine ~0.7) of a random gallery vector (200).
    Random probes have no mate at all: their nearest neighbour barely beats the
    next one, the hardest case for a graph index.
    """
    rng = np.random.default_rng(7)
    members = clustered(2000, 7, seed=1).reshape(2000, 7, DIM)  # 2k identities x 7 images
    rand = random_unit(8000, seed=2)
    gallery = np.concatenate([members[:, :6].reshape(-1, DIM), rand])
    gallery = gallery[rng.permutation(len(gallery))]
    noisy = unit(rand[:200] + 0.06 * rng.standard_normal((200, DIM), dtype=np.float32))
    queries = np.concatenate([members[:800, 6], noisy])
    gallery, queries, probes = np.ascontiguousarray(gallery), np.ascontiguousarray(queries), random_unit(200, seed=3)
    # the true best scores, once for every test that judges an index against them
    return {"gallery": gallery, "queries": queries, "probes": probes, "best": best_scores(gallery, queries), "best_probes": best_scores(gallery, probes)}


@pytest.fixture(scope="module")
def hnsw_big(big: dict[str, np.ndarray]) -> HNSWIndex:
    ix = HNSWIndex(DIM)
    ix.add(np.arange(len(big["gallery"])), big["gallery"])
    return ix


# -- exact ---------------------------------------------------------------------------


def test_exact_top1_equals_brute_force_argmax() -> None:
    g, q = random_unit(3000, 1), random_unit(200, 2)
    ix = ExactIndex(DIM)
    ids = np.arange(3000, dtype=np.int64) * 7 + 3  # ids are not row numbers
    ix.add(ids, g)
    found, scores = ix.search(q, 5)
    order, best = brute(g, q, 5)
    assert found.dtype == np.int64 and scores.dtype == np.float32 and found.shape == (200, 5)
    np.testing.assert_array_equal(found[:, 0], ids[np.argmax(q @ g.T, axis=1)])
    np.testing.assert_array_equal(found, ids[order])
    np.testing.assert_allclose(scores, best, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_exact_blocked_search_matches_one_product(monkeypatch: pytest.MonkeyPatch) -> None:
    """Searching in row blocks (large galleries) merges to the same top k as one product."""
    import faceprint.gallery.index.exact as mod

    g, q = random_unit(5000, 11), random_unit(300, 12)
    ix = ExactIndex(DIM)
    ix.add(np.arange(5000), g)
    whole = ix.search(q, 10)
    monkeypatch.setattr(mod, "_BLOCK_ELEMS", 300 * 700)  # ~700 rows per block
    monkeypatch.setattr(mod, "_QUERY_CHUNK", 128)
    blocked = ix.search(q, 10)
    np.testing.assert_array_equal(whole[0], blocked[0])
    np.testing.assert_allclose(whole[1], blocked[1], atol=1e-6)


def test_exact_growth_is_amortised_and_removal_swaps_with_last() -> None:
    ix = ExactIndex(DIM)
    g = random_unit(1000, 5)
    for i in range(1000):
        ix.add(np.array([i]), g[i])
    assert len(ix) == 1000 and len(ix._ids) < 4000  # doubling, not one row at a time
    assert ix.remove(np.array([0, 500, 999, 12345])) == 3
    assert len(ix) == 997
    np.testing.assert_array_equal(ix.ids(), np.setdiff1d(np.arange(1000), [0, 500, 999]))
    found, _ = ix.search(g, 1)
    keep = np.setdiff1d(np.arange(1000), [0, 500, 999])
    np.testing.assert_array_equal(found[keep, 0], keep)  # every moved row is still found under its own id


# -- both kinds ----------------------------------------------------------------------


@pytest.mark.parametrize("make", KINDS)
def test_add_existing_id_replaces(make) -> None:
    ix: VectorIndex = make()
    g = random_unit(500, 21)
    ix.add(np.arange(500), g)
    new = random_unit(3, 22)
    ix.add(np.array([10, 20, 1000]), new)
    assert len(ix) == 501
    found, scores = ix.search(new, 1)
    np.testing.assert_array_equal(found[:, 0], [10, 20, 1000])
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    found, scores = ix.search(g[10], 3)  # the old vector of id 10 no longer scores 1 anywhere
    assert scores[0, 0] < 0.9
    assert 10 not in found[0] or scores[0, list(found[0]).index(10)] < 0.9


@pytest.mark.parametrize("make", KINDS)
def test_removed_ids_are_never_returned(make) -> None:
    ix: VectorIndex = make()
    g = random_unit(3000, 31)
    ix.add(np.arange(3000), g)
    gone = np.arange(0, 3000, 3)
    assert ix.remove(gone) == len(gone)
    assert ix.remove(gone) == 0  # already gone
    assert len(ix) == 2000
    found, _ = ix.search(g, 20)  # queries sit exactly on removed vectors too
    assert not np.isin(found, gone).any()
    assert (found >= 0).all()
    np.testing.assert_array_equal(ix.ids(), np.setdiff1d(np.arange(3000), gone))
    keep = np.setdiff1d(np.arange(3000), gone)
    assert np.mean(found[keep, 0] == keep) >= 0.99


@pytest.mark.parametrize("make", KINDS)
def test_k_larger_than_index_pads_with_minus_one(make) -> None:
    ix: VectorIndex = make()
    g = random_unit(3, 41)
    ix.add(np.array([5, 6, 7]), g)
    found, scores = ix.search(g, 5)
    assert found.shape == scores.shape == (3, 5)
    np.testing.assert_array_equal(np.sort(found[:, :3], axis=1), np.tile([5, 6, 7], (3, 1)))
    assert (found[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    np.testing.assert_array_equal(found[:, 0], [5, 6, 7])
    single, _ = ix.search(g[0], 5)  # a (dim,) query gives a (1, k) answer
    assert single.shape == (1, 5) and single[0, 0] == 5 and (single[0, 3:] == -1).all()


@pytest.mark.parametrize("make", KINDS)
def test_empty_index_search_returns_all_minus_one(make) -> None:
    ix: VectorIndex = make()
    found, scores = ix.search(random_unit(4, 51), 3)
    assert found.shape == (4, 3) and (found == -1).all() and np.isneginf(scores).all()
    assert len(ix) == 0 and ix.ids().shape == (0,) and ix.remove(np.array([1, 2])) == 0
    ix.add(np.array([1]), random_unit(1, 52))
    ix.remove(np.array([1]))
    found, _ = ix.search(random_unit(1, 53), 2)
    assert (found == -1).all()


@pytest.mark.parametrize("make", KINDS)
def test_bad_arguments_raise_input_error(make) -> None:
    ix: VectorIndex = make()
    g = random_unit(2, 61)
    with pytest.raises(InputError):
        ix.add(np.array([1, 1]), g)  # repeated ids
    with pytest.raises(InputError):
        ix.add(np.array([-1, 2]), g)
    with pytest.raises(InputError):
        ix.add(np.array([1]), g)  # count mismatch
    with pytest.raises(InputError):
        ix.add(np.array([1, 2]), g[:, :64])  # wrong dimension
    with pytest.raises(InputError):
        ix.add(np.array([1, 2]), g * 3)  # not unit rows
    with pytest.raises(InputError):
        ix.add(np.array([1, 2]), np.full((2, DIM), np.nan, np.float32))
    with pytest.raises(InputError):
        ix.search(g, 0)
    with pytest.raises(InputError):
        ix.search(g[:, :10], 1)
    assert len(ix) == 0  # nothing half-added


@pytest.mark.slow
def test_hnsw_recall_at_1_on_20k(big: dict[str, np.ndarray], hnsw_big: HNSWIndex) -> None:
    found, scores = hnsw_big.search(big["queries"], 10)
    assert recall_at_1(found, big["gallery"], big["queries"], big["best"]) >= 0.99
    # scores are cosine similarities: they equal the float dot products of the returned ids
    g = big["gallery"]
    np.testing.assert_allclose(scores[:, 0], np.einsum("ij,ij->i", g[found[:, 0]], big["queries"]), atol=1e-5)
    clustered_part = found[:800]  # held-out cluster members find a cluster mate first
    assert recall_at_1(clustered_part, g, big["queries"][:800], big["best"][:800]) >= 0.995


def test_hnsw_random_probes_need_a_wider_search(big: dict[str, np.ndarray], hnsw_big: HNSWIndex) -> None:
    """Unmated random probes: expansion_search trades latency for recall; 512 gets them too."""
    g, probes = big["gallery"], big["probes"]
    default_ef = hnsw_big.expansion_search
    try:
        hnsw_big.expansion_search = 512
        wide = recall_at_1(hnsw_big.search(probes, 10)[0], g, probes, big["best_probes"])
    finally:
        hnsw_big.expansion_search = default_ef
    narrow = recall_at_1(hnsw_big.search(probes, 10)[0], g, probes, big["best_probes"])
    assert wide >= 0.98 and wide >= narrow


def test_hnsw_distance_is_one_minus_dot() -> None:
    """usearch's ip distance for unit vectors is 1 - dot; the index turns it back into the cosine."""
    g = random_unit(50, 71)
    ix = HNSWIndex(DIM)
    ix.add(np.arange(50), g)
    q = random_unit(5, 72)
    found, scores = ix.search(q, 50)
    valid = found >= 0  # a graph may leave a few of 50 nodes unreached (seen in CI under load): compare what it returns
    assert valid.sum(axis=1).min() >= 40 and np.isneginf(scores[~valid]).all()
    expected = np.take_along_axis(q @ g.T, np.maximum(found, 0), axis=1)
    np.testing.assert_allclose(scores[valid], expected[valid], atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [ExactIndex, PQScanIndex, HNSWIndex], ids=["exact", "pqscan", "hnsw"])
def test_int8_quantised_recall(cls, big: dict[str, np.ndarray]) -> None:
    g, q = big["gallery"], big["queries"]
    ix = cls(DIM, quantize=True)
    assert ix.dtype == "i8"
    ix.add(np.arange(len(g)), g)
    found, scores = ix.search(q, 10)
    # int8 rounding (~0.002 per score) may swap near-tied neighbours (several images of one
    # identity), so judge the answer by its true score: within 0.02 of the best for 99% of queries
    true = np.einsum("ij,ij->i", g[found[:, 0]], q)
    best = big["best"]
    assert np.mean(best - true < 0.02) >= 0.99
    assert recall_at_1(found, g, q, best) >= 0.9
    assert np.max(np.abs(scores[:, 0] - true)) < 0.03  # the documented small quantisation error
    assert ix.nbytes < 0.5 * len(g) * DIM * 4 or cls is HNSWIndex


# -- PQ scan -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pq_big(big: dict[str, np.ndarray]) -> PQScanIndex:
    ix = PQScanIndex(DIM)
    ix.add(np.arange(len(big["gallery"])), big["gallery"])
    return ix


def test_pqscan_recall_on_20k_mated_queries(big: dict[str, np.ndarray], pq_big: PQScanIndex) -> None:
    g, q = big["gallery"], big["queries"]
    assert pq_big.trained and pq_big.params["trained_on"] == len(g)
    found, scores = pq_big.search(q, 10)
    assert recall_at_1(found, g, q, big["best"]) >= 0.995
    # returned scores are the exact cosines of the returned ids, best first
    np.testing.assert_allclose(scores, np.einsum("qkd,qd->qk", g[found], q), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_pqscan_random_probes_need_more_candidates(big: dict[str, np.ndarray], pq_big: PQScanIndex) -> None:
    """Unmated random probes: their best barely beats the next, and 4-bit codes misjudge
    scores by ~0.05, so the best can rank below the 512 default candidates; 2048 find it."""
    g, probes = big["gallery"], big["probes"]
    default = pq_big.candidates
    try:
        pq_big.candidates = 1  # only 4 * k candidates rescored: the approximate order shows
        narrow = recall_at_1(pq_big.search(probes, 10)[0], g, probes, big["best_probes"])
        pq_big.candidates = 2048
        wide = recall_at_1(pq_big.search(probes, 10)[0], g, probes, big["best_probes"])
    finally:
        pq_big.candidates = default
    middle = recall_at_1(pq_big.search(probes, 10)[0], g, probes, big["best_probes"])
    assert narrow < 0.8 and 0.9 <= middle and wide >= 0.99
    with pytest.raises(InputError):
        pq_big.candidates = 0


def test_pqscan_trains_at_1024_and_searches_exactly_before() -> None:
    g = random_unit(1500, 91)
    q = random_unit(40, 92)
    ix = PQScanIndex(DIM)
    ix.add(np.arange(1000), g[:1000])
    assert not ix.trained and ix.params["trained_on"] == 0
    found, _scores = ix.search(q, 5)
    exact = brute(g[:1000], q, 5)
    np.testing.assert_array_equal(found, exact[0])  # untrained: an exact search
    ix.add(np.arange(1000, 1500), g[1000:])
    assert ix.trained and ix.params["trained_on"] == 1500
    assert recall_at_1(ix.search(q, 5)[0], g, q) == 1.0


def test_pqscan_compaction_keeps_codes_in_step_with_vectors() -> None:
    """Removing most rows compacts codes and vectors together; every answer stays right."""
    g = random_unit(12_000, 93)
    ix = PQScanIndex(DIM)
    ix.add(np.arange(12_000), g)
    gone = np.arange(0, 12_000, 4)  # 3,000 tombstones > max(1024, n / 8): compacted
    ix.remove(gone)
    assert ix._n == len(ix) == 9000 and ix._pq.ntotal == 9000
    keep = np.setdiff1d(np.arange(12_000), gone)
    q = unit(g[keep[:300]] + 0.03 * np.random.default_rng(94).standard_normal((300, DIM), dtype=np.float32))
    found, _ = ix.search(q, 1)
    np.testing.assert_array_equal(found[:, 0], keep[:300])
    ix.add(keep[:10], g[keep[:10]])  # re-adding present ids replaces them
    assert len(ix) == 9000
    np.testing.assert_array_equal(ix.search(g[keep[:10]], 1)[0][:, 0], keep[:10])


def test_pqscan_falls_back_to_exact_when_tombstones_fill_the_candidates() -> None:
    rng = np.random.default_rng(95)
    q = random_unit(1, 96)
    near = unit(q + 0.02 * rng.standard_normal((600, DIM), dtype=np.float32))  # 600 near-copies of the query
    far = random_unit(4000, 97)
    ix = PQScanIndex(DIM, candidates=8)
    ix.add(np.arange(600), near)
    ix.add(np.arange(600, 4600), far)
    ix.remove(np.arange(600))  # 600 tombstones (< 1024: not compacted) hold every candidate slot
    assert ix._n == 4600
    found, scores = ix.search(q, 5)
    exact = brute(far, q, 5)
    np.testing.assert_array_equal(found[0], exact[0][0] + 600)
    np.testing.assert_allclose(scores[0], exact[1][0], atol=1e-5)


def test_pqscan_rejects_bad_parameters() -> None:
    with pytest.raises(InputError):
        PQScanIndex(DIM, pq_m=48)  # does not divide 128
    with pytest.raises(InputError):
        PQScanIndex(DIM, candidates=0)
    with pytest.raises(InputError):
        PQScanIndex(DIM, threads=-1)


# -- files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    KINDS
    + [
        pytest.param(lambda **kw: ExactIndex(DIM, quantize=True), id="exact-i8"),
        pytest.param(lambda **kw: PQScanIndex(DIM, quantize=True), id="pqscan-i8"),
        pytest.param(lambda **kw: HNSWIndex(DIM, quantize=True), id="hnsw-i8"),
    ],
)
def test_save_load_round_trip(make, tmp_path: Path) -> None:
    ix = make()
    g = random_unit(2000, 81)
    ix.add(np.arange(2000) * 2, g)
    ix.remove(np.arange(0, 200, 2))
    q = random_unit(50, 82)
    path = tmp_path / "gallery.index"
    ix.save(path, generation="gen-42:sface")
    before = ix.search(q, 10)  # after the save: saving an HNSW graph zeroes removed slots, which re-links a few nodes
    assert path.is_file() and header_path(path).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp files left behind
    header = read_header(path)
    assert header is not None
    assert header["generation"] == "gen-42:sface" and header["kind"] == ix.kind and header["dim"] == DIM
    assert header["count"] == len(ix) == 1900 and header["file_bytes"] == path.stat().st_size
    assert header["quantize"] == (ix.dtype != "f32")
    loaded = index_for(path, DIM)
    assert type(loaded) is type(ix) and len(loaded) == len(ix) and loaded.dtype == ix.dtype
    after = loaded.search(q, 10)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_allclose(before[1], after[1], atol=1e-6)
    np.testing.assert_array_equal(loaded.ids(), ix.ids())
    direct = type(ix).load(path, DIM)
    np.testing.assert_array_equal(direct.search(q, 10)[0], before[0])
    loaded.add(np.array([99_999]), random_unit(1, 83))  # a loaded index stays writable
    assert len(loaded) == 1901


def test_hnsw_params_survive_save_load(tmp_path: Path) -> None:
    ix = HNSWIndex(DIM, connectivity=8, expansion_add=40, expansion_search=77)
    ix.add(np.arange(100), random_unit(100, 91))
    ix.save(tmp_path / "x.index")
    loaded = index_for(tmp_path / "x.index", DIM)
    assert loaded.params == {"connectivity": 8, "expansion_add": 40, "expansion_search": 77, "metric": "ip"}


def test_generation_round_trip_and_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "g.index"
    assert read_header(path) is None
    ix = ExactIndex(DIM)
    ix.add(np.arange(10), random_unit(10, 101))
    ix.save(path, generation="1")
    assert read_header(path)["generation"] == "1"
    ix.add(np.arange(10, 20), random_unit(10, 102))
    ix.save(path, generation="2")
    h = read_header(path)
    assert h["generation"] == "2" and h["count"] == 20
    assert json.loads(header_path(path).read_text())["generation"] == "2"


@pytest.mark.parametrize("make", KINDS)
def test_truncated_index_file_raises_index_corrupt(make, tmp_path: Path) -> None:
    ix = make()
    ix.add(np.arange(500), random_unit(500, 111))
    path = tmp_path / "t.index"
    ix.save(path, generation="g")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 7, 5, 0):
        path.write_bytes(data[:cut])
        with pytest.raises(IndexCorruptError) as err:
            type(ix).load(path, DIM)
        assert err.value.code == "index_corrupt" and isinstance(err.value, FaceprintError)
        with pytest.raises(IndexCorruptError):
            index_for(path, DIM)  # also: size no longer matches the header


@pytest.mark.parametrize("make", KINDS)
def test_missing_mismatched_or_garbled_files_raise_index_corrupt(make, tmp_path: Path) -> None:
    path = tmp_path / "m.index"
    with pytest.raises(IndexCorruptError):
        index_for(path, DIM)  # nothing there
    with pytest.raises(IndexCorruptError):
        make().load(path, DIM)
    ix = make()
    ix.add(np.arange(20), random_unit(20, 121))
    ix.save(path)
    with pytest.raises(IndexCorruptError):
        index_for(path, 64)  # another model's dimension
    with pytest.raises(IndexCorruptError):
        type(ix).load(path, 64)
    header_path(path).write_text("{not json")
    assert read_header(path) is None
    with pytest.raises(IndexCorruptError):
        index_for(path, DIM)
    ix.save(path)
    path.write_bytes(os.urandom(path.stat().st_size))  # same size, garbage inside
    with pytest.raises(IndexCorruptError):
        index_for(path, DIM)
    other = ExactIndex if ix.kind == "hnsw" else HNSWIndex
    ix.save(path)
    with pytest.raises(IndexCorruptError):
        other.load(path, DIM)  # the other kind's file


def test_crash_between_index_and_header_looks_stale(tmp_path: Path) -> None:
    """The header is written last: an index written without its header is not taken for the new generation."""
    path = tmp_path / "c.index"
    small = ExactIndex(DIM)
    small.add(np.arange(10), random_unit(10, 131))
    small.save(path, generation="old")
    big = ExactIndex(DIM)
    big.add(np.arange(50), random_unit(50, 132))
    import faceprint.gallery.index.exact as mod

    def crash(*a, **k):
        raise OSError("disk gone")

    orig = mod._write_header
    mod._write_header = crash
    try:
        with pytest.raises(OSError):
            big.save(path, generation="new")
    finally:
        mod._write_header = orig
    assert read_header(path)["generation"] == "old"
    with pytest.raises(IndexCorruptError):
        index_for(path, DIM)  # file and header disagree: the caller rebuilds


# -- choosing ------------------------------------------------------------------------


def test_make_index_switches_kind_at_exact_limit() -> None:
    assert make_index(DIM).kind == "exact"
    assert make_index(DIM, 19_999).kind == "exact"
    assert make_index(DIM, 20_000).kind == "pqscan"
    assert make_index(DIM, 99, exact_limit=100).kind == "exact"
    assert make_index(DIM, 100, exact_limit=100).kind == "pqscan"
    p = make_index(DIM, 10**6, quantize=True, candidates=64, expansion_search=99)  # another kind's parameter is ignored
    assert isinstance(p, PQScanIndex) and p.dtype == "i8" and p.candidates == 64
    h = make_index(DIM, 10, kind="hnsw", quantize=True, expansion_search=99, threads=1, candidates=64)
    assert isinstance(h, HNSWIndex) and h.dtype == "i8" and h.params["expansion_search"] == 99 and h.threads == 1
    e = make_index(DIM, 10, quantize=True)
    assert isinstance(e, ExactIndex) and e.dtype == "i8"
    assert isinstance(make_index(DIM, 10**6, kind="exact"), ExactIndex)
    assert isinstance(e, VectorIndex) and isinstance(h, VectorIndex) and isinstance(p, VectorIndex)
    with pytest.raises(InputError):
        make_index(DIM, 10, kind="ivf")
    with pytest.raises(InputError):
        make_index(DIM, 10, bogus=1)
    with pytest.raises(InputError):
        make_index(0)
    with pytest.raises(InputError):
        make_index(DIM, quantize="i4")


@pytest.mark.parametrize("make", KINDS + [pytest.param(lambda **kw: HNSWIndex(DIM, quantize="f16"), id="hnsw-f16")])
def test_a_saved_index_holds_no_removed_vector(make, tmp_path: Path) -> None:
    """Erasure (issue 13): after remove() the next save writes no byte of the removed vectors --
    the PQ scan re-encodes before saving, the HNSW graph's freed slots are zeroed (usearch keeps
    a removed vector's bytes until its slot is reused), across several removals and a reload."""
    from faceprint.gallery.index import _to_storage

    ix = make()
    g = random_unit(3000, 91)
    ix.add(np.arange(3000), g)
    path = tmp_path / "g.index"
    ix.remove(np.array([5, 77, 1000]))
    ix.save(path)
    ix.remove(np.array([6]))
    ix.save(path)
    ix = index_for(path, DIM)
    ix.remove(np.array([10]))
    ix.save(path)
    data = path.read_bytes()

    def stored(i: int) -> bytes:
        return _to_storage(g[i][None], ix.dtype).tobytes()

    assert [i for i in (5, 77, 1000, 6, 10) if stored(i) in data] == []
    assert stored(7) in data  # a kept vector is there, so the check can fail
    assert len(ix) == 2995
