"""Suggestions (active labelling): "Is this Alice?" questions for named people.

For every named person P and every *candidate* -- an unnamed person (a cluster)
or a face that belongs to nobody -- the mean cosine similarity between the
candidate's faces and P's faces decides:

* at or above the clustering link threshold (FMR 2e-5): the candidate is P's
  beyond reasonable doubt and is attached automatically (``apply_confident``),
  unless the user placed its faces;
* between the ask threshold (FMR 1e-3) and the link threshold: a question;
* below: nothing.

Named people are also asked about their own doubtful members: faces placed in them
automatically whose mean similarity to the person's other faces is below the link
threshold ("Is this really Alice?"; a no takes the face out for good).

Questions are ordered by how much an answer would help: the number of faces it
would place, times how uncertain it is (highest in the middle of the band).  A
yes merges the candidate into P (user-confirmed); a no keeps them apart for
good (a face: "not this person"); a skip hides the question until the user asks
for skipped ones again.  Each answer changes the people, so the queue is
recomputed after every answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from faceprint.errors import InputError

if TYPE_CHECKING:
    from faceprint.library.library import Library

__all__ = ["ASK_FMR", "Suggestion", "answer", "apply_confident", "suggestions"]

ASK_FMR = 1e-3


@dataclass(frozen=True)
class Suggestion:
    person_id: int
    person_name: str
    candidate: str  # "person:<id>" or "face:<id>"
    face_ids: tuple[int, ...]  # the candidate's faces, best quality first
    score: float  # mean cosine similarity to the person's faces
    priority: float

    def to_dict(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "person_name": self.person_name, "candidate": self.candidate, "face_ids": list(self.face_ids), "score": round(self.score, 4), "priority": round(self.priority, 3)}


def _state(lib: Library) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """Named people (sum, n, automatically placed members) and candidates (key, sum, n,
    faces, confirmed, person)."""
    faces = lib.store.faces(model_id=lib.model_id, with_vectors=True)
    names = {r["id"]: r["name"] for r in lib.store.read("SELECT id, name FROM people")}
    named: dict[int, dict[str, Any]] = {}
    groups: dict[int, list[Any]] = {}
    cands: list[dict[str, Any]] = []
    for f in faces:
        if f.person_id is None:  # poor faces too: a person can place what clustering must not
            cands.append({"key": f"face:{f.id}", "sum": f.vector.astype(np.float64), "n": 1, "faces": [f], "confirmed": f.quality < lib.params.min_quality, "person": None})
            continue
        groups.setdefault(f.person_id, []).append(f)
    for pid, fs in groups.items():
        s = np.sum([f.vector for f in fs], axis=0, dtype=np.float64)
        if names.get(pid):
            named[pid] = {"name": names[pid], "sum": s, "n": len(fs), "auto": [f for f in fs if f.assigned != "user"]}
        else:
            cands.append({"key": f"person:{pid}", "sum": s, "n": len(fs), "faces": sorted(fs, key=lambda f: -f.quality), "confirmed": any(f.assigned == "user" for f in fs), "person": pid})
    return named, cands


def _scores(lib: Library) -> tuple[list[tuple[int, dict[str, Any], float]], dict[int, dict[str, Any]], float, float]:
    named, cands = _state(lib)
    t_ask = lib.engine.calibration.threshold_for(ASK_FMR)
    t_link = lib.engine.calibration.threshold_for(lib.params.link_fmr)
    out: list[tuple[int, dict[str, Any], float]] = []
    if not named or not cands:
        return out, named, t_ask, t_link
    apart = lib.store.apart()
    rejected = lib.store.rejections()
    pids = list(named)
    P = np.stack([named[p]["sum"] / named[p]["n"] for p in pids])
    C = np.stack([c["sum"] / c["n"] for c in cands])
    S = C @ P.T  # mean pairwise similarity (unit vectors)
    for ci, c in enumerate(cands):
        for pj, pid in enumerate(pids):
            s = float(S[ci, pj])
            if s < t_ask:
                continue
            if c["person"] is not None and (min(pid, c["person"]), max(pid, c["person"])) in apart:
                continue
            if any((f.id, pid) in rejected for f in c["faces"]):
                continue
            out.append((pid, c, s))
    return out, named, t_ask, t_link


def _doubtful_members(lib: Library, named: dict[int, dict[str, Any]], t_link: float) -> list[tuple[int, Any, float]]:
    """Faces placed in a named person automatically whose mean similarity to the person's
    other faces is below the link threshold: "Is this really Alice?"."""
    out = []
    for pid, p in named.items():
        if p["n"] < 3:
            continue
        for f in p["auto"]:
            s = float((p["sum"] - f.vector) @ f.vector) / (p["n"] - 1)
            if s < t_link:
                out.append((pid, f, s))
    return out


def apply_confident(lib: Library) -> int:
    """Attach unnamed people that are a named person's beyond doubt; returns faces moved."""
    scored, _, _, t_link = _scores(lib)
    best: dict[str, tuple[float, int, dict[str, Any]]] = {}
    for pid, c, s in scored:
        if s >= t_link and (c["key"] not in best or s > best[c["key"]][0]):
            best[c["key"]] = (s, pid, c)
    moved = 0
    for s, pid, c in best.values():
        if c["person"] is not None and not c["confirmed"]:
            moved += lib.store.attach_auto(pid, c["person"])
        elif c["person"] is None:
            f = c["faces"][0]
            with lib.store.transaction() as db:
                moved += db.execute("UPDATE faces SET person_id=?, assigned='auto' WHERE id=? AND person_id IS NULL", (pid, f.id)).rowcount
    return moved


def suggestions(lib: Library, *, limit: int = 50, include_skipped: bool = False) -> list[Suggestion]:
    """The open questions, most useful first (see the module docstring)."""
    scored, named, t_ask, t_link = _scores(lib)
    skipped = set() if include_skipped else lib.store.skipped()
    mid, half = (t_ask + t_link) / 2, (t_link - t_ask) / 2
    best: dict[str, Suggestion] = {}
    for pid, c, s in scored:
        if s >= t_link and not c["confirmed"]:
            continue  # confident: attached automatically, not asked
        if (pid, c["key"]) in skipped:
            continue
        uncertainty = max(0.0, 1.0 - abs(s - mid) / half) if half > 0 else 1.0
        pr = c["n"] * (0.25 + uncertainty)
        sug = Suggestion(pid, named[pid]["name"], c["key"], tuple(f.id for f in c["faces"][:12]), s, pr)
        # one question per candidate: the person it is most likely to be
        if c["key"] not in best or s > best[c["key"]].score:
            best[c["key"]] = sug
    # members a named person holds by an automatic decision that fit them least
    for pid, f, s in _doubtful_members(lib, named, t_link):
        key = f"face:{f.id}"
        if (pid, key) in skipped:
            continue
        uncertainty = max(0.0, 1.0 - abs(s - mid) / half) if half > 0 else 1.0
        best.setdefault(key, Suggestion(pid, named[pid]["name"], key, (f.id,), s, 0.25 + uncertainty))
    return sorted(best.values(), key=lambda x: (-x.priority, -x.score, x.candidate))[:limit]


def answer(lib: Library, person_id: int, candidate: str, reply: str, *, actor: str = "local") -> None:
    """Apply a reply (``yes`` / ``no`` / ``skip``) to "Is ``candidate`` this person?"."""
    kind, _, raw = candidate.partition(":")
    if kind not in ("person", "face") or not raw.isdigit():
        raise InputError(f"candidate must be 'person:<id>' or 'face:<id>', got {candidate!r}")
    cid = int(raw)
    lib.store.person(person_id)  # raises PersonNotFound
    if reply == "skip":
        lib.store.skip(person_id, candidate)
    elif reply == "yes":
        if kind == "person":
            lib.store.merge_people(person_id, cid, actor=actor)
        else:
            lib.store.assign_face(cid, person_id, actor=actor)
    elif reply == "no":
        if kind == "person":
            lib.store.person(cid)
            lib.store.keep_apart(person_id, cid, actor=actor)
        else:
            lib.store.reject_face(cid, person_id, actor=actor)
    else:
        raise InputError(f"reply must be yes, no or skip, got {reply!r}")
