"""A simulated user labels a photo library from the ground truth: names 20 people, answers 200 suggestions.

The library is lfw-dev indexed by faceprint (or --library, a library file made
by ``faceprint index`` / ``benchmarks/clustering.py``; it is copied, not changed).
Ground truth: each photo's face nearest the image centre is labelled with its
identity folder (alias identities of scripts/lfw_errata.txt share a label, photos
it lists as mislabelled are left out); other faces are bystanders, not scored.

1. The user names the 20 largest people, each with the identity most of its
   labelled faces belong to (an identity is named once).
2. The user answers suggestions one at a time, always the first in the queue:
   yes when most of the candidate's labelled faces are that person, no when
   not, skip when the candidate has no labelled face.
3. Scores (pairwise and BCubed precision / recall / F1 over labelled faces;
   a face of nobody is a cluster of its own) before naming, after naming, and
   after the answers plus a further incremental clustering run; and a check
   that no answered face is contradicted afterwards (a yes-face outside the
   person, a no-face inside it).

    .venv/bin/python benchmarks/simulated_user.py [--library lfw.db] [--names 20] [--answers 200] [--identities N]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import ERRATA, data_dir, emit, lfw_folder, library_truth, machine

from faceprint import Engine
from faceprint.library import Library, pairwise_scores


def scores(lib: Library, truth: dict[int, str]) -> dict[str, float]:
    person = {f.id: f.person_id for f in lib.store.faces()}
    ids = sorted(truth)
    pred = [person[i] if person.get(i) is not None else f"alone-{i}" for i in ids]
    return {k: round(v, 4) for k, v in pairwise_scores(pred, [truth[i] for i in ids]).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--library", default=None, help="an existing library of lfw-dev (copied); default: index lfw-dev now")
    ap.add_argument("--identities", type=int, default=None, help="index only the first N identity folders (smoke runs)")
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
                lib.index(lfw_folder(data_dir(args.data) / "lfw-dev" / "images", args.identities, Path(tmp)))
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
            answered: list[tuple[int, list[int], str]] = []
            replies: Counter[str] = Counter()
            t0 = time.perf_counter()
            for _ in range(args.answers):
                queue = lib.suggestions(limit=1)
                if not queue:
                    break
                s = queue[0]
                kind, _, cid = s.candidate.partition(":")
                faces = [f.id for f in lib.store.faces(person_id=int(cid))] if kind == "person" else [int(cid)]
                labels = Counter(truth[f] for f in faces if f in truth)
                if not labels:
                    reply = "skip"
                else:
                    reply = "yes" if labels.most_common(1)[0][0] == named.get(s.person_id, s.person_name) else "no"
                lib.answer(s.person_id, s.candidate, reply)
                replies[reply] += 1
                if reply != "skip":
                    answered.append((s.person_id, faces, reply))
            seconds = time.perf_counter() - t0
            after_answers = scores(lib, truth)
            lib.cluster()  # a later run must not undo any answer
            after_rerun = scores(lib, truth)
            person = {f.id: f.person_id for f in lib.store.faces()}
            contradicted = sum(
                1 for pid, faces, reply in answered for f in faces
                if f in person and ((reply == "yes" and person[f] != pid) or (reply == "no" and person[f] == pid))
            )
            lib.cluster(recluster=True)
            person = {f.id: f.person_id for f in lib.store.faces()}
            contradicted_full = sum(
                1 for pid, faces, reply in answered for f in faces
                if f in person and ((reply == "yes" and person[f] != pid) or (reply == "no" and person[f] == pid))
            )
    res = {
        "benchmark": "simulated_user",
        "machine": machine(),
        "labelled_faces": len(truth),
        "link_fmr": args.link_fmr or ClusterParams().link_fmr,
        "named_people": len(named),
        "answers": dict(replies),
        "answers_total": sum(replies.values()),
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
