"""A simulated user labels a photo library from the ground truth: names 20 people, answers 200 suggestions.

The library is lfw-dev indexed by faceprint (or --library, a library file made
by ``faceprint index`` / ``benchmarks/clustering.py``; it is copied, not changed).
Ground truth: each photo's face nearest the image centre is labelled with its
identity folder (alias identities of scripts/lfw_errata.txt share a label, photos
it lists as mislabelled are left out); other faces are bystanders, not scored.

1. The user names the 20 largest people, each with the identity most of its
   labelled faces belong to (an identity is named once).
2. The user answers suggestions one at a time, always the first in the queue:
   yes when the label most of the candidate's labelled faces carry is the
   target person's (a named person's name, else the label most of its other
   labelled faces carry), no when not, skip when either side has no label.
3. Scores (pairwise and BCubed precision / recall / F1 over labelled faces;
   a face of nobody is a cluster of its own) before naming, after naming, and
   after the answers plus a further incremental clustering run; and a check
   that no answered face is contradicted afterwards, after an incremental run
   and after a full re-clustering (a yes-face not with the target's faces, a
   no-face with them; "the target's faces" are those of its label, wherever
   most of them are now: merges and re-clustering change person ids).

    .venv/bin/python benchmarks/simulated_user.py [--library lfw.db] [--names 20] [--answers 200] [--identities N] [--workers N]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import ERRATA, data_dir, emit, lfw_folder, library_truth, machine

from faceprint import Engine
from faceprint.library import Library, pairwise_scores


def scores(lib: Library, truth: dict[int, str]) -> dict[str, float]:
    person = {f.id: f.person_id for f in lib.store.faces()}
    ids = sorted(truth)
    pred = [person[i] if person.get(i) is not None else f"alone-{i}" for i in ids]
    return {k: round(v, 4) for k, v in pairwise_scores(pred, [truth[i] for i in ids]).items()}


def _majority(truth: dict[int, str], faces: list[int]) -> str | None:
    labels = Counter(truth[f] for f in faces if f in truth)
    return labels.most_common(1)[0][0] if labels else None


def _contradicted(lib: Library, answered: list[tuple[list[int], list[int], str]]) -> int:
    """Answered faces the library now contradicts: after a yes, not with the target's faces
    (the person holding most of them, whatever its id is now); after a no, with them."""
    person = {f.id: f.person_id for f in lib.store.faces()}
    bad = 0
    for faces, target, reply in answered:
        where = Counter(person[f] for f in target if person.get(f) is not None)
        core = where.most_common(1)[0][0] if where else None
        for f in faces:
            together = core is not None and person.get(f) == core
            bad += (reply == "yes" and not together) or (reply == "no" and together)
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--library", default=None, help="an existing library of lfw-dev (copied); default: index lfw-dev now")
    ap.add_argument("--identities", type=int, default=None, help="index only the first N identity folders (smoke runs)")
    ap.add_argument("--workers", type=int, default=None, help="indexing worker processes (default: one per core; 1: in this process)")
    ap.add_argument("--errata", default=str(ERRATA), help="known LFW label errors ('' for none): aliases share a label, mislabelled photos are left out")
    ap.add_argument("--names", type=int, default=20)
    ap.add_argument("--answers", type=int, default=200)
    ap.add_argument("--link-fmr", type=float, default=None, help="re-group the library at this link FMR first (a stricter one leaves more for the user)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "library.db"
        if args.library:
            shutil.copy2(args.library, db)
        from faceprint import Settings
        from faceprint.library import ClusterParams

        params = ClusterParams(link_fmr=args.link_fmr) if args.link_fmr else None
        with Library(db, Engine(Settings.load()), params=params) as lib:
            if not args.library:
                lib.index(lfw_folder(data_dir(args.data) / "lfw-dev" / "images", args.identities, Path(tmp)), workers=args.workers)
            if args.link_fmr:
                lib.cluster(recluster=True)
            truth = library_truth(lib, Path(args.errata) if args.errata else None)
            before = scores(lib, truth)

            # 1. name the largest people after the identity most of their faces are
            named: dict[int, str] = {}
            used: set[str] = set()
            for p in lib.store.people():
                if len(named) >= args.names:
                    break
                labels = Counter(truth[f.id] for f in lib.store.faces(person_id=p["id"]) if f.id in truth)
                if not labels:
                    continue
                name = labels.most_common(1)[0][0]
                if name in used:
                    continue
                lib.rename(p["id"], name)
                named[p["id"]] = name
                used.add(name)
            after_naming = scores(lib, truth)

            # 2. answer the queue from the ground truth
            answered: list[tuple[list[int], list[int], str]] = []  # (answered faces, the target's faces, reply)
            replies: Counter[str] = Counter()
            by_kind: dict[str, Counter[str]] = {}
            by_fifty: list[Counter[str]] = []
            t0 = time.perf_counter()
            for _ in range(args.answers):
                queue = lib.suggestions(limit=1)
                if not queue:
                    break
                s = queue[0]
                kind, _, cid = s.candidate.partition(":")
                cand = [f.id for f in lib.store.faces(person_id=int(cid))] if kind == "person" else [int(cid)]
                target = [f.id for f in lib.store.faces(person_id=s.person_id) if f.id not in cand]
                cand_label = _majority(truth, cand)
                target_label = named.get(s.person_id) or _majority(truth, target)
                if cand_label is None or target_label is None:
                    reply = "skip"
                else:
                    reply = "yes" if cand_label == target_label else "no"
                lib.answer(s.person_id, s.candidate, reply)
                replies[reply] += 1
                k = s.kind if s.person_name is None else f"{s.kind} (named)"
                by_kind.setdefault(k, Counter())[reply] += 1
                if sum(replies.values()) % 50 == 1:
                    by_fifty.append(Counter())
                by_fifty[-1][reply] += 1
                if reply != "skip":  # what the answer was about: the candidate's faces of its label
                    answered.append(([f for f in cand if truth.get(f) == cand_label], [f for f in target if truth.get(f) == target_label], reply))
            seconds = time.perf_counter() - t0
            after_answers = scores(lib, truth)
            lib.cluster()  # a later run must not undo any answer
            after_rerun = scores(lib, truth)
            contradicted = _contradicted(lib, answered)
            lib.cluster(recluster=True)
            contradicted_full = _contradicted(lib, answered)
    res = {
        "benchmark": "simulated_user",
        "machine": machine(),
        "labelled_faces": len(truth),
        "link_fmr": args.link_fmr or ClusterParams().link_fmr,
        "named_people": len(named),
        "answers": dict(replies),
        "answers_total": sum(replies.values()),
        "questions_by_kind": {k: dict(v) for k, v in by_kind.items()},
        "replies_per_50_answers": [dict(c) for c in by_fifty],
        "answer_seconds_each": round(seconds / max(1, sum(replies.values())), 3),
        "before": before,
        "after_naming": after_naming,
        "after_answers": after_answers,
        "after_answers_and_rerun": after_rerun,
        "contradicted_answered_faces": contradicted,
        "contradicted_after_full_recluster": contradicted_full,
    }
    res["precision_rose"] = after_rerun["pairwise_precision"] > before["pairwise_precision"]
    res["recall_rose"] = after_rerun["pairwise_recall"] > before["pairwise_recall"]
    emit(res)


if __name__ == "__main__":
    main()
