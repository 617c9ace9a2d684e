"""Suggestions (active labelling): the questions whose answers improve the people most.

Two kinds of question, both answered yes / no / skip:

* **join** -- "Is this Alice?" (a named person) or "Are these the same person?"
  (an unnamed one): is a *candidate* -- an unnamed person (a group) or a face that
  belongs to nobody -- the same person as the target?  A yes merges the candidate
  into the target (user-confirmed); a no keeps them apart for good (a face:
  "not this person").
* **member** -- "Is this really Alice?": does a face that clustering placed in a
  person by itself belong there?  Asked for faces whose *support* (mean cosine
  similarity to their three closest fellow members; in a pair, the pair's
  similarity) is below the attach threshold, i.e. not clearly close to anyone
  in the person.  A yes confirms the face and the person; a no takes the face
  out for good.

Join scores are the mean cosine similarity between the candidate's faces and the
target's faces.  Against a named person, at or above the clustering link
threshold (FMR ``link_fmr``) the candidate is attached automatically
(:func:`apply_confident`; a low-quality face only at the attach threshold, as in
clustering) unless the user placed its faces; from the ask threshold
(FMR :data:`ASK_FMR`) up to there it is a question; below, nothing.  Between two
unnamed people (the smaller is the candidate) every pair from the ask threshold
up is a question: clustering has already joined what it was sure of, so what is
left there was kept apart by the quality gate, by a confirmation, or by the
average linkage.  Candidates that share a photo with the target (two faces of
one photo are two people), that the user kept apart from it, or that hold a face
the user rejected from it are never asked about.

**Order.**  Questions about named people come first (the user named them: those
are the people they care about), then the rest; within each, by how much an
answer would help: the faces it would place (one for a member question) times
how uncertain it is, ``0.25 + u`` where ``u`` is 1 at the clustering's link
threshold -- the decision it was least sure of -- and falls linearly to 0 at the
ask threshold below and the attach threshold above.  One question per
candidate: the target it is most similar to.  Each answer changes the people,
so the queue is recomputed after every answer (:meth:`Library.suggestions`
caches it until the library changes).

The functions take what they read -- the library's store, the model id whose
templates they compare, the clustering parameters and the calibration table --
not the :class:`~faceprint.library.library.Library` that holds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from faceprint.errors import InputError

if TYPE_CHECKING:
    from faceprint.library.cluster import ClusterParams
    from faceprint.library.store import LibraryStore, StoredFace
    from faceprint.metrics.verification import CalibrationTable

__all__ = ["ASK_FMR", "Suggestion", "answer", "apply_confident", "suggestions"]

ASK_FMR = 1e-3  # join questions about named people
ASK_UNNAMED_FMR = 3e-4  # between unnamed people: each candidate meets every group, so chance matches are many
SUPPORT_NEIGHBOURS = 3  # a member's support: mean similarity to its closest fellow members
_BLOCK = 2048


@dataclass(frozen=True)
class Suggestion:
    person_id: int
    person_name: str | None  # None: an unnamed person
    candidate: str  # "person:<id>" or "face:<id>"
    face_ids: tuple[int, ...]  # the candidate's faces, best quality first
    score: float  # join: mean cosine similarity to the person's faces; member: the face's support
    priority: float
    kind: str = "join"  # "join" or "member"

    @property
    def question(self) -> str:
        if self.kind == "member":
            return f"Is this really {self.person_name}?" if self.person_name else "Is this the same person as the others?"
        return f"Is this {self.person_name}?" if self.person_name else "Are these the same person?"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "question": self.question,
            "person_id": self.person_id,
            "person_name": self.person_name,
            "candidate": self.candidate,
            "face_ids": list(self.face_ids),
            "score": round(self.score, 4),
            "priority": round(self.priority, 3),
        }


@dataclass
class _Group:
    """A person (target) or a candidate (an unnamed person, or a face of nobody)."""

    key: str
    person: int | None
    name: str | None
    faces: list[StoredFace]  # best quality first
    confirmed: bool  # the user placed faces here (or named it): only the user moves it
    poor: bool = False  # a single low-quality face: attached only when clearly close
    sum: np.ndarray = field(init=False)
    photos: set[tuple[int, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.sum = np.sum([f.vector for f in self.faces], axis=0, dtype=np.float64)
        self.photos = {(f.photo_id, f.frame) for f in self.faces}

    @property
    def n(self) -> int:
        return len(self.faces)


@dataclass
class _State:
    people: dict[int, _Group]
    candidates: list[_Group]
    t_ask: float
    t_ask_unnamed: float
    t_link: float
    t_attach: float

    def uncertainty(self, s: float, named: bool = True) -> float:
        if s < self.t_link:
            lo = self.t_ask if named else self.t_ask_unnamed
            u = (s - lo) / (self.t_link - lo) if self.t_link > lo else 1.0
        else:
            u = 1.0 - (s - self.t_link) / (self.t_attach - self.t_link) if self.t_attach > self.t_link else 0.0
        return float(min(1.0, max(0.0, u)))


def _state(store: LibraryStore, model_id: str, params: ClusterParams, calibration: CalibrationTable) -> _State:
    faces = store.faces(model_id=model_id, with_vectors=True)
    names = {r["id"]: r["name"] for r in store.read("SELECT id, name FROM people")}
    hidden = {r["id"] for r in store.read("SELECT id FROM people WHERE hidden=1")}
    by_person: dict[int, list[StoredFace]] = {}
    candidates: list[_Group] = []
    for f in faces:
        if f.person_id in hidden:  # the user hid them: neither asked about nor asked for
            continue
        if f.person_id is None:  # poor faces too: a question can place what clustering must not
            candidates.append(_Group(f"face:{f.id}", None, None, [f], False, poor=f.quality < params.min_quality))
        else:
            by_person.setdefault(f.person_id, []).append(f)
    people: dict[int, _Group] = {}
    for pid, fs in by_person.items():
        fs.sort(key=lambda f: (-f.quality, f.id))
        name = names.get(pid)
        g = _Group(f"person:{pid}", pid, name, fs, bool(name) or any(f.assigned == "user" for f in fs))
        people[pid] = g
        if not name:
            candidates.append(g)
    cal = calibration
    return _State(
        people,
        candidates,
        cal.threshold_for(ASK_FMR),
        cal.threshold_for(max(ASK_UNNAMED_FMR, params.link_fmr)),
        cal.threshold_for(params.link_fmr),
        cal.threshold_for(params.attach_fmr),
    )


def _joins(st: _State, store: LibraryStore) -> list[tuple[_Group, _Group, float]]:
    """(target, candidate, mean similarity) for every allowed pair at or above the ask threshold."""
    if not st.people or not st.candidates:
        return []
    apart = store.apart()
    rejected = store.rejections()
    targets = list(st.people.values())
    T = np.stack([t.sum / t.n for t in targets]).astype(np.float32)
    size = np.array([t.n for t in targets])
    out: list[tuple[_Group, _Group, float]] = []
    for lo in range(0, len(st.candidates), _BLOCK):
        block = st.candidates[lo : lo + _BLOCK]
        S = np.stack([c.sum / c.n for c in block]).astype(np.float32) @ T.T
        rows, cols = np.nonzero(S >= st.t_ask)
        for r, j in zip(rows.tolist(), cols.tolist()):
            c, t = block[r], targets[j]
            if t.person == c.person or (not t.name and S[r, j] < st.t_ask_unnamed):
                continue
            if not t.name and c.person is not None and (int(size[j]), -int(t.person or 0)) < (c.n, -c.person):
                continue  # two unnamed people: asked once, the smaller about the larger
            if c.person is not None and (min(t.person, c.person), max(t.person, c.person)) in apart:  # type: ignore[type-var]
                continue
            if c.photos & t.photos or any((f.id, t.person) in rejected for f in c.faces):
                continue
            out.append((t, c, float(S[r, j])))
    return out


def _confident(st: _State, t: _Group, c: _Group, s: float) -> bool:
    """Attached to a named person without asking (see :func:`apply_confident`)."""
    return bool(t.name) and not c.confirmed and s >= (st.t_attach if c.poor else st.t_link)


def _doubtful_members(st: _State) -> list[tuple[_Group, StoredFace, float]]:
    """Faces placed in a person by clustering (not by the user) that are not clearly close to
    any of the person's faces: support below the attach threshold."""
    out: list[tuple[_Group, StoredFace, float]] = []
    for p in st.people.values():
        auto = [i for i, f in enumerate(p.faces) if f.assigned != "user"]
        if p.n < 2 or not auto:
            continue
        if p.n == 2:  # one question per pair: about the poorer face, if clustering placed both
            if len(auto) == 2:
                s = float(p.faces[0].vector @ p.faces[1].vector)
                if s < st.t_attach:
                    out.append((p, p.faces[1], s))
            continue
        V = np.stack([f.vector for f in p.faces]).astype(np.float32)
        k = min(SUPPORT_NEIGHBOURS, p.n - 1)
        for lo in range(0, len(auto), _BLOCK):
            idx = auto[lo : lo + _BLOCK]
            S = V[idx] @ V.T
            S[np.arange(len(idx)), idx] = -np.inf  # not itself
            support = -np.partition(-S, k - 1, axis=1)[:, :k].mean(axis=1)
            for i, s in zip(idx, support.tolist()):
                if s < st.t_attach:
                    out.append((p, p.faces[i], float(s)))
    return out


def apply_confident(store: LibraryStore, *, model_id: str, params: ClusterParams, calibration: CalibrationTable) -> int:
    """Attach unnamed people (and faces of nobody) that are a named person's beyond doubt;
    returns the faces moved."""
    st = _state(store, model_id, params, calibration)
    best: dict[str, tuple[float, _Group, _Group]] = {}
    for t, c, s in _joins(st, store):
        if _confident(st, t, c, s) and (c.key not in best or s > best[c.key][0]):
            best[c.key] = (s, t, c)
    moved = 0
    for _, t, c in best.values():
        assert t.person is not None
        if c.person is not None:
            moved += store.attach_auto(t.person, c.person)
        else:
            with store.transaction() as db:
                moved += db.execute("UPDATE faces SET person_id=?, assigned='auto' WHERE id=? AND person_id IS NULL", (t.person, c.faces[0].id)).rowcount
    return moved


def suggestions(
    store: LibraryStore,
    *,
    model_id: str,
    params: ClusterParams,
    calibration: CalibrationTable,
    limit: int = 50,
    include_skipped: bool = False,
) -> list[Suggestion]:
    """The open questions, most useful first (see the module docstring)."""
    st = _state(store, model_id, params, calibration)
    skipped = set() if include_skipped else store.skipped()
    best: dict[str, Suggestion] = {}
    for t, c, s in _joins(st, store):
        assert t.person is not None
        if _confident(st, t, c, s) or (t.person, c.key) in skipped:
            continue
        sug = Suggestion(t.person, t.name, c.key, tuple(f.id for f in c.faces[:12]), s, c.n * (0.25 + st.uncertainty(s, bool(t.name))))
        if c.key not in best or s > best[c.key].score:  # one question per candidate: its likeliest person
            best[c.key] = sug
    for p, f, s in _doubtful_members(st):
        key = f"face:{f.id}"
        assert p.person is not None
        if (p.person, key) not in skipped:
            best.setdefault(key, Suggestion(p.person, p.name, key, (f.id,), s, 0.25 + st.uncertainty(s), kind="member"))
    return sorted(best.values(), key=lambda x: (x.person_name is None, -x.priority, -x.score, x.candidate))[:limit]


def answer(store: LibraryStore, person_id: int, candidate: str, reply: str, *, actor: str = "local") -> None:
    """Apply a reply (``yes`` / ``no`` / ``skip``) to "Is ``candidate`` this person?" (a join
    question) or "Does this face of the person belong there?" (a member question: the
    candidate is a face the person already holds)."""
    kind, _, raw = candidate.partition(":")
    if kind not in ("person", "face") or not raw.isdigit():
        raise InputError(f"candidate must be 'person:<id>' or 'face:<id>', got {candidate!r}")
    if reply not in ("yes", "no", "skip"):
        raise InputError(f"reply must be yes, no or skip, got {reply!r}")
    cid = int(raw)
    store.person(person_id)  # raises PersonNotFound
    if reply == "skip":
        store.skip(person_id, candidate)
    elif reply == "yes":
        if kind == "person":
            store.merge_people(person_id, cid, actor=actor)
        else:  # the face is theirs, and so (the user saw them) are the person's faces
            store.assign_face(cid, person_id, confirm=True, actor=actor)
    elif kind == "person":
        store.person(cid)
        store.keep_apart(person_id, cid, actor=actor)
    else:
        store.reject_face(cid, person_id, actor=actor)
