"""Grouping faces into people: constrained average-linkage clustering on calibrated similarity.

The algorithm (:func:`cluster_faces`)
-------------------------------------
1. **Good faces only seed and bridge.**  Faces whose quality is below
   ``min_quality`` (tiny, blurred, weakly detected) take no part in step 2.
2. **Average linkage.**  Every good face starts as its own cluster (or inside
   the person it already belongs to).  Repeatedly, the two clusters with the
   highest *mean pairwise cosine similarity* merge, while that mean passes the
   threshold the shipped calibration gives for ``link_fmr``.  With unit
   vectors the mean pairwise similarity of clusters A and B is
   ``sum(A) . sum(B) / (|A| |B|)``, so it is exact and costs one dot product;
   candidate pairs come from each face's ``knn`` nearest neighbours (a mean can
   only pass the threshold if some single pair does).
3. **Hard constraints.**  Two faces of one photo are different people
   (cannot-link).  People the user named, or whose faces the user confirmed,
   never merge with another person by themselves; people the user split are
   kept apart; a face the user said is "not this person" never joins them.
4. **Attach the rest.**  Each low-quality face joins the person whose faces it
   is most similar to on average, only if that mean passes the stricter
   ``attach_fmr`` threshold; otherwise it stays unknown.
5. Clusters with fewer than ``min_faces`` faces that are not already a
   person stay unknown faces (shown in the UI as such).

Incremental runs start from the people as they are and add only faces that
belong to nobody yet, so new photos join existing people without re-clustering
the library; a full run (``recluster``) starts again from every face that the
user has not placed.

Parameters and what they trade (:class:`ClusterParams`)
--------------------------------------------------------
``link_fmr``    lower: purer people, one person more often split in two;
                higher: fewer splits, more wrong merges.  Default 2e-5
                (cosine ~0.45 for SFace): on lfw-dev, pairwise precision
                0.999 and recall 0.988 (``benchmarks/clustering.py``).
``attach_fmr``  how sure a low-quality face must be to join someone.
``min_quality`` which faces may seed clusters (see :mod:`faceprint.library.cluster_gate`).
``min_faces``   the smallest group shown as a person.
``knn``         candidate neighbours per face: more finds more merges in very
                large people at more memory and time.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from faceprint.errors import InputError
from faceprint.metrics.verification import CalibrationTable

__all__ = ["ClusterInput", "ClusterParams", "ClusterResult", "cluster_faces", "knn_edges", "pairwise_scores"]


@dataclass(frozen=True)
class ClusterParams:
    link_fmr: float = 2e-5
    attach_fmr: float = 1e-6
    min_quality: float = 0.5
    min_faces: int = 2
    knn: int = 32

    def __post_init__(self) -> None:
        for name in ("link_fmr", "attach_fmr"):
            v = getattr(self, name)
            if not 0 < v < 1:
                raise InputError(f"{name} must be between 0 and 1, got {v}")
        if not 0 <= self.min_quality <= 1:
            raise InputError(f"min_quality must be between 0 and 1, got {self.min_quality}")
        if self.min_faces < 1 or self.knn < 1:
            raise InputError("min_faces and knn must be at least 1")

    def thresholds(self, calibration: CalibrationTable) -> tuple[float, float]:
        """(link, attach) cosine thresholds from the calibration."""
        return calibration.threshold_for(self.link_fmr), calibration.threshold_for(self.attach_fmr)


@dataclass
class ClusterInput:
    """Faces to group.  ``person`` holds current person ids (-1: nobody);
    ``locked`` marks faces the user placed (never moved); ``confirmed_people``
    are people that are named or hold user-placed faces (never merged by a run)."""

    face_ids: np.ndarray  # (n,) int64
    vectors: np.ndarray  # (n, d) float32 unit rows
    photo_ids: np.ndarray  # (n,) int64
    quality: np.ndarray  # (n,) float
    person: np.ndarray  # (n,) int64, -1 = none
    locked: np.ndarray  # (n,) bool
    confirmed_people: set[int] = field(default_factory=set)
    apart: set[tuple[int, int]] = field(default_factory=set)  # (min, max) person pairs
    rejections: set[tuple[int, int]] = field(default_factory=set)  # (face id, person id)


@dataclass
class ClusterResult:
    person: np.ndarray  # (n,) int64: existing id, new placeholder (-1, -2, ...) or 0 = unknown
    new_people: int
    merges: int
    attached: int
    link_threshold: float
    attach_threshold: float


def knn_edges(vectors: np.ndarray, queries: np.ndarray | None, k: int, threshold: float, block: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (i, j, sim) from each query row i to its k most similar rows j of ``vectors``
    (excluding itself when ``queries`` is None), keeping only sim >= threshold.

    Blocked exact products; only the pairs past the threshold are sorted (a face has few
    of them), so the cost is the products themselves: ~85 s for 100k x 100k on two cores
    (a full grouping of 100k faces took 94 s; incremental runs only query the new faces)."""
    q = vectors if queries is None else queries
    src, dst, sim = [], [], []
    if len(vectors) == 0 or len(q) == 0 or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    for lo in range(0, len(q), block):
        s = q[lo : lo + block] @ vectors.T
        if queries is None:
            s[np.arange(len(s)), np.arange(lo, lo + len(s))] = -np.inf
        rows, cols = np.nonzero(s >= threshold)
        vals = s[rows, cols]
        order = np.lexsort((-vals, rows))  # by row, best first
        rows, cols, vals = rows[order], cols[order], vals[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)  # position within its row
        keep = rank < k
        src.append(rows[keep] + lo)
        dst.append(cols[keep])
        sim.append(vals[keep])
    return np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64), np.concatenate(sim).astype(np.float32)


class _Clusters:
    """Union of faces with the sums, photo sets and constraints that decide merges."""

    def __init__(self, inp: ClusterInput, members: list[list[int]], person: list[int]) -> None:
        d = inp.vectors.shape[1]
        m = len(members)
        self.inp = inp
        self.sum = np.zeros((m, d), np.float64)
        self.size = np.zeros(m, np.int64)
        self.photos: list[set[int]] = []
        self.rejects: list[set[int]] = []
        self.person = list(person)
        self.members = members
        self.active = np.ones(m, bool)
        self.version = np.zeros(m, np.int64)
        self.neighbours: list[set[int]] = [set() for _ in range(m)]
        rej: dict[int, set[int]] = {}
        for f, p in inp.rejections:
            rej.setdefault(int(f), set()).add(int(p))
        for c, faces in enumerate(members):
            self.sum[c] = inp.vectors[faces].sum(axis=0)
            self.size[c] = len(faces)
            self.photos.append({int(inp.photo_ids[f]) for f in faces})
            r: set[int] = set()
            for f in faces:
                r |= rej.get(int(inp.face_ids[f]), set())
            self.rejects.append(r)

    def linkage(self, a: int, others: np.ndarray) -> np.ndarray:
        return (self.sum[others] @ self.sum[a]) / (self.size[others] * self.size[a])

    def may_merge(self, a: int, b: int) -> bool:
        if self.photos[a] & self.photos[b]:
            return False  # two faces of one photo are two people
        pa, pb = self.person[a], self.person[b]
        if pa >= 0 and pb >= 0 and pa != pb:
            conf = self.inp.confirmed_people
            if pa in conf or pb in conf or (min(pa, pb), max(pa, pb)) in self.inp.apart:
                return False
        if (pa >= 0 and pa in self.rejects[b]) or (pb >= 0 and pb in self.rejects[a]):
            return False
        return True

    def merge(self, a: int, b: int) -> int:
        """Merge b into a (or a into b when only b is a person); returns the survivor."""
        if self.person[a] < 0 and self.person[b] >= 0:
            a, b = b, a
        self.sum[a] += self.sum[b]
        self.size[a] += self.size[b]
        self.photos[a] |= self.photos[b]
        self.rejects[a] |= self.rejects[b]
        self.members[a].extend(self.members[b])
        self.members[b] = []
        self.active[b] = False
        self.version[a] += 1
        self.version[b] += 1
        self.neighbours[a] |= self.neighbours[b]
        self.neighbours[a].discard(a)
        self.neighbours[a].discard(b)
        for c in self.neighbours[b]:
            if c != a:
                self.neighbours[c].discard(b)
                self.neighbours[c].add(a)
        self.neighbours[b] = set()
        return a


def cluster_faces(inp: ClusterInput, calibration: CalibrationTable, params: ClusterParams | None = None, *, recluster: bool = False) -> ClusterResult:
    """Group faces into people (see the module docstring)."""
    params = params or ClusterParams()
    n = len(inp.face_ids)
    t_link, t_attach = params.thresholds(calibration)
    out = np.zeros(n, np.int64)
    if n == 0:
        return ClusterResult(out, 0, 0, 0, t_link, t_attach)
    person = inp.person.copy()
    if recluster:
        person[~inp.locked] = -1  # start again from every face the user has not placed
    good = (inp.quality >= params.min_quality) | inp.locked
    # initial clusters: one per existing person (all of its faces), one per unplaced good face
    groups: dict[int, list[int]] = {}
    for i in np.flatnonzero(person >= 0):
        groups.setdefault(int(person[i]), []).append(int(i))
    members: list[list[int]] = list(groups.values())
    cperson: list[int] = list(groups.keys())
    face_cluster = np.full(n, -1, np.int64)
    for c, faces in enumerate(members):
        face_cluster[faces] = c
    for i in np.flatnonzero((person < 0) & good):
        face_cluster[i] = len(members)
        members.append([int(i)])
        cperson.append(-1)
    cl = _Clusters(inp, members, cperson)

    # candidate pairs: kNN edges from unplaced good faces to every good or placed face
    seeds = np.flatnonzero(face_cluster >= 0)
    new = np.flatnonzero((person < 0) & good)
    heap: list[tuple[float, int, int, int, int]] = []
    if len(new) and len(seeds) > 1:
        sv = inp.vectors[seeds]
        src, dst, _ = knn_edges(sv, inp.vectors[new], params.knn + 1, t_link)
        for s, d in zip(new[src].tolist(), seeds[dst].tolist()):
            a, b = int(face_cluster[s]), int(face_cluster[d])
            if a != b:
                cl.neighbours[a].add(b)
                cl.neighbours[b].add(a)
        for a in range(len(members)):
            nb = np.fromiter(cl.neighbours[a], np.int64) if cl.neighbours[a] else None
            if nb is None:
                continue
            nb = nb[nb > a]
            if len(nb):
                link = cl.linkage(a, nb)
                for b, v in zip(nb[link >= t_link].tolist(), link[link >= t_link].tolist()):
                    heapq.heappush(heap, (-v, a, b, 0, 0))
    merges = 0
    while heap:
        negv, a, b, va, vb = heapq.heappop(heap)
        if not (cl.active[a] and cl.active[b]) or cl.version[a] != va or cl.version[b] != vb:
            continue
        if not cl.may_merge(a, b):
            continue
        c = cl.merge(a, b)
        merges += 1
        if cl.neighbours[c]:
            nb = np.fromiter(cl.neighbours[c], np.int64)
            link = cl.linkage(c, nb)
            for d, v in zip(nb[link >= t_link].tolist(), link[link >= t_link].tolist()):
                heapq.heappush(heap, (-v, min(c, d), max(c, d), int(cl.version[min(c, d)]), int(cl.version[max(c, d)])))

    # attach unplaced low-quality faces where they clearly belong
    alive = np.flatnonzero(cl.active & (cl.size > 0))
    attached = 0
    weak = np.flatnonzero((person < 0) & ~good)
    if len(weak) and len(alive):
        centres = cl.sum[alive] / cl.size[alive, None]
        scores = inp.vectors[weak] @ centres.T.astype(np.float32)  # mean similarity to each cluster
        for row, i in enumerate(weak.tolist()):
            order = np.argsort(-scores[row])
            for j in order[:5]:
                if scores[row, j] < t_attach:
                    break
                c = int(alive[j])
                if int(inp.photo_ids[i]) in cl.photos[c] or (cl.person[c] >= 0 and (int(inp.face_ids[i]), cl.person[c]) in inp.rejections):
                    continue
                cl.members[c].append(i)
                cl.photos[c].add(int(inp.photo_ids[i]))
                attached += 1
                break

    # label: existing people keep their ids; new clusters big enough become new people
    new_people = 0
    for c in np.flatnonzero(cl.active).tolist():
        faces = cl.members[c]
        if not faces:
            continue
        if cl.person[c] >= 0:
            out[faces] = cl.person[c]
        elif len(faces) >= params.min_faces:
            new_people += 1
            out[faces] = -new_people
    return ClusterResult(out, new_people, merges, attached, t_link, t_attach)


def pairwise_scores(pred: Sequence[object], truth: Sequence[object]) -> dict[str, float]:
    """Pairwise precision / recall / F1 and BCubed precision / recall / F1 of a clustering."""
    from collections import Counter

    pred, truth = list(pred), list(truth)
    if len(pred) != len(truth):
        raise InputError("pred and truth must be the same length")

    def pairs(c: Counter) -> int:
        return sum(v * (v - 1) // 2 for v in c.values())

    pc, tc, bc = Counter(pred), Counter(truth), Counter(zip(pred, truth))
    same_pred, same_truth, both = pairs(pc), pairs(tc), pairs(bc)
    p = both / same_pred if same_pred else 1.0
    r = both / same_truth if same_truth else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    bp = float(np.mean([bc[(a, b)] / pc[a] for a, b in zip(pred, truth)])) if pred else 1.0
    br = float(np.mean([bc[(a, b)] / tc[b] for a, b in zip(pred, truth)])) if pred else 1.0
    bf = 2 * bp * br / (bp + br) if bp + br else 0.0
    return {"pairwise_precision": p, "pairwise_recall": r, "pairwise_f1": f, "bcubed_precision": bp, "bcubed_recall": br, "bcubed_f1": bf}
