"""End-to-end throughput: decode -> detect -> align -> embed (with flip) per image.

faceprint (YuNet + SFace + flip fusion, through Engine.embed_many) against the
face_recognition library's own pipeline (load_image_file + face_locations +
face_encodings, its defaults: HOG with one upsample, 5-point landmarks, dlib
ResNet) on the same LFW-dev images in the same run.  Each side runs --runs
times; the median images/second is reported, with the ratio.

    .venv/bin/python benchmarks/throughput.py [--data DIR] [--n 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from _common import data_dir, emit, machine

from faceprint import Engine


def sample_images(root: Path, n: int, seed: int = 0) -> list[Path]:
    files = sorted(root.glob("images/*/*.jpg"))
    random.Random(seed).shuffle(files)
    return files[:n]


def timed(fn: Callable[[], int], runs: int) -> tuple[list[float], int]:
    times, faces = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        faces = fn()
        times.append(time.perf_counter() - t0)
    return times, faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--n", type=int, default=500, help="number of LFW-dev images (default 500)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per side; the median is reported")
    args = ap.parse_args()
    files = sample_images(data_dir(args.data) / "lfw-dev", args.n)

    engine = Engine()
    engine.embed_many(files[:2])  # load models outside the timed runs

    def faceprint_run() -> int:
        return sum(1 for r in engine.embed_many(files) if not isinstance(r, Exception))

    fp_times, fp_faces = timed(faceprint_run, args.runs)
    result = {
        "benchmark": "throughput",
        "images": len(files),
        "runs": args.runs,
        "faceprint": {
            "pipeline": f"decode + {engine.detector.model_id} + ArcFace alignment + {engine.model_id}",
            "images_per_s": round(len(files) / statistics.median(fp_times), 2),
            "run_seconds": [round(t, 2) for t in fp_times],
            "templates": fp_faces,
        },
    }
    try:
        import face_recognition
    except ImportError as exc:
        result["face_recognition"] = {
            "error": f"baseline not installed ({exc}); pip install --no-deps face_recognition==1.3.0 beside dlib-bin and face_recognition_models"
        }
        result["ratio"] = None
    else:

        def baseline_run() -> int:
            n = 0
            for f in files:
                img = face_recognition.load_image_file(str(f))
                n += len(face_recognition.face_encodings(img, face_recognition.face_locations(img)))
            return n

        for f in files[:2]:  # load dlib models outside the timed runs
            face_recognition.face_encodings(face_recognition.load_image_file(str(f)))
        fr_times, fr_faces = timed(baseline_run, args.runs)
        fr_ips = len(files) / statistics.median(fr_times)
        result["face_recognition"] = {
            "pipeline": "face_recognition 1.3.0: load_image_file + face_locations (HOG, upsample 1) + face_encodings (5-point, ResNet, 1 jitter)",
            "images_per_s": round(fr_ips, 2),
            "run_seconds": [round(t, 2) for t in fr_times],
            "encodings": fr_faces,
        }
        result["ratio"] = round(result["faceprint"]["images_per_s"] / fr_ips, 2)
    result["machine"] = machine()
    emit(result)


if __name__ == "__main__":
    main()
