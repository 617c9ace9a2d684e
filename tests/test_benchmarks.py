"""The benchmark scripts run end to end at smoke size and print the JSON they promise.

Each script runs in this process (``runpy``, as ``python benchmarks/x.py ARGS`` would run it:
``__main__``, its own argv, stdout captured), which spares a new interpreter and its imports
per script.  Scripts that start worker processes still do (spawn re-runs the script as
``__mp_main__`` in the worker).  What a script may change in the process is put back after it:
the environment, argv, sys.path, OpenCV's and the BLAS / OpenMP thread counts, and Pillow's
LOAD_TRUNCATED_IMAGES (face_recognition, throughput.py's baseline, sets it on import: every
later decode of a truncated JPEG in this process would pass).  The smokes run
with one BLAS / OpenMP thread: at smoke size threads only add overhead, and on a shared machine
spinning OpenMP / OpenBLAS threads cost 10-100x (FAISS codebook training, PAD's Newton solves)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys
from pathlib import Path

import pytest
from support import REPO

BENCHMARKS = REPO / "benchmarks"


def _run(script: str, *args: str, data_dir: Path) -> dict:
    """``python benchmarks/<script> ARGS`` in this process; its stdout parsed as JSON."""
    import cv2
    import faiss  # noqa: F401 -- loaded before threadpool_limits, so its OpenMP pool is limited and restored too
    from PIL import ImageFile
    from threadpoolctl import threadpool_limits

    path = BENCHMARKS / script
    env, argv, sys_path, cv2_threads = dict(os.environ), sys.argv, list(sys.path), cv2.getNumThreads()
    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    had_common = "_common" in sys.modules
    os.environ["FACEPRINT_DATA"] = str(data_dir)
    sys.argv = [str(path), *args]
    sys.path.insert(0, str(BENCHMARKS))
    out = io.StringIO()
    try:
        with threadpool_limits(limits=1), contextlib.redirect_stdout(out):
            try:
                runpy.run_path(str(path), run_name="__main__")
            except SystemExit as exc:
                assert exc.code in (None, 0), f"{script} exited with {exc.code!r}"
    finally:
        os.environ.clear()
        os.environ.update(env)
        sys.argv, sys.path[:] = argv, sys_path
        cv2.setNumThreads(cv2_threads)
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated
        if not had_common:
            sys.modules.pop("_common", None)  # benchmarks/_common, not whatever a later test means by that name
    return json.loads(out.getvalue())


@pytest.mark.slow
def test_verification_benchmark_smoke(data_dir: Path, tmp_path: Path) -> None:
    res = _run("verification.py", "--limit", "4", "--out", str(tmp_path), data_dir=data_dir)
    assert res["pairs"] == 40 and res["failures_to_enrol"] == 0
    assert res["accuracy_mean"] >= 0.9
    assert 0 <= res["eer"] <= 0.2
    assert "tar_at_far_1e-3" in res and res["model_id"] == "sface-2021dec-int8bq+flip"
    assert (tmp_path / "roc.png").stat().st_size > 1000 and (tmp_path / "det.png").stat().st_size > 1000


@pytest.mark.slow
def test_throughput_benchmark_smoke(data_dir: Path) -> None:
    res = _run("throughput.py", "--n", "4", "--runs", "1", data_dir=data_dir)
    assert res["images"] == 4
    assert res["faceprint"]["templates"] == 4 and res["faceprint"]["images_per_s"] > 0
    baseline = res["face_recognition"]
    if "error" in baseline:
        pytest.skip(baseline["error"])
    assert baseline["encodings"] >= 3 and res["ratio"] > 0


@pytest.mark.slow
def test_identification_benchmark_smoke(data_dir: Path) -> None:
    res = _run("identification.py", "--identities", "40", data_dir=data_dir)
    assert res["gallery_subjects"] == 40 and res["mated_probes"] > 20
    assert 0.8 <= res["rank1"] <= res["rank5"] <= 1.0
    assert "fnir_at_fpir_1e-2" in res and "calibrated_fpir_1e-3" in res


@pytest.mark.slow
def test_search_benchmark_smoke(data_dir: Path) -> None:
    res = _run("search.py", "--smoke", data_dir=data_dir)
    assert [s["n"] for s in res["sizes"]] == [2000, 5000]
    for size in res["sizes"]:
        assert size["chosen_kind"] in size["indexes"] or size["chosen_kind"] in {i["kind"] for i in size["indexes"].values()}
        assert {"exact", "pqscan", "hnsw"} <= set(size["indexes"])
        for index in size["indexes"].values():
            assert 0.5 <= index["recall_at_1"] <= 1.0 and index["single"]["p99_ms"] > 0 and index["bytes_per_template"] > 0
        pq = size["indexes"]["pqscan"]
        assert pq["recall_at_1"] >= 0.95 and pq["params"]["trained_on"] > 0
        assert [r["candidates"] for r in pq["sweep_candidates"]] == [128, 1024]
        assert [r["expansion_search"] for r in size["indexes"]["hnsw"]["sweep_expansion_search"]] == [64, 256]
    assert {"pqscan_i8", "exact_i8", "hnsw_i8"} <= set(res["sizes"][-1]["indexes"])
    assert res["latency_runs"] == 1 and res["pqscan_params"]["threads"] == 1


@pytest.mark.slow
def test_clustering_benchmark_smoke(data_dir: Path) -> None:
    res = _run("clustering.py", "--identities", "40", data_dir=data_dir)
    assert res["photos"] >= res["labelled_faces"] > 80 and res["identities"] <= 40
    assert res["index"]["errors"] == 0 and res["index"]["second_over_first"] < 0.1
    for name in ("faceprint_incremental", "faceprint_full_recluster", "baseline_immich_dbscan"):
        assert 0.9 <= res[name]["pairwise_precision"] <= 1.0 and 0 < res[name]["pairwise_f1"] <= 1.0
    assert res["faceprint_incremental"]["pairwise_f1"] >= res["baseline_immich_dbscan"]["pairwise_f1"]


@pytest.mark.slow
def test_simulated_user_benchmark_smoke(data_dir: Path) -> None:
    # a strict link FMR leaves joins for the user to answer even in a small library
    res = _run("simulated_user.py", "--identities", "60", "--names", "5", "--answers", "20", "--link-fmr", "1e-7", "--workers", "1", data_dir=data_dir)
    assert res["named_people"] == 5 and res["labelled_faces"] > 100 and res["link_fmr"] == 1e-7
    assert 0 < res["answers_total"] <= 20 and res["answers"].get("yes", 0) > 0
    assert res["contradicted_answered_faces"] == 0 and res["contradicted_after_full_recluster"] == 0
    assert res["after_answers_and_rerun"]["pairwise_recall"] > res["before"]["pairwise_recall"]
    for stage in ("after_answers", "after_answers_and_rerun"):
        assert res[stage]["pairwise_f1"] >= res["before"]["pairwise_f1"]


@pytest.mark.slow
def test_quality_benchmark_smoke(data_dir: Path, tmp_path: Path) -> None:
    plot = tmp_path / "erc.png"
    res = _run("quality.py", "--pairs-per-fold", "8", "--workers", "1", "--timing-faces", "5", "--timing-runs", "1", "--plot", str(plot), data_dir=data_dir)
    assert res["pairs"] == 80 and res["genuine_pairs"] + res["genuine_pairs_without_a_face"] == 40
    curves = res["fnmr"]
    assert {"unified", "random", "sharpness", "recognizability"} <= set(curves)
    assert all(len(c) == len(res["fractions"]) for c in curves.values())
    assert all(0.0 <= v <= 1.0 for c in curves.values() for v in c)
    assert res["timing"]["quality_ms_per_face"] > 0 and res["timing"]["faces"] > 0
    assert set(res["passes"]) == {"unified_cuts_fnmr_40pct_at_10pct", "unified_beats_random", "unified_beats_every_component", "quality_at_most_3ms_per_face"}
    assert plot.stat().st_size > 10_000


@pytest.mark.slow
def test_pad_benchmark_smoke(data_dir: Path) -> None:
    res = _run("pad.py", "--every", "10", "--photos", "4", "--timing-runs", "1", "--timing-faces", "5", data_dir=data_dir)
    assert res["subjects"] == 9 and res["faces"] > 80 and res["timing"]["faces"] == 5
    loso = res["leave_one_subject_out"]
    assert set(loso) == {"fused (texture + context)", "texture only", "context only", "one-class (live faces only)"}
    for v in loso.values():
        assert 0.0 <= v["acer"] <= 0.5 and set(v["bpcer_at_apcer"]) == {"10%", "1%"}
    assert {s["truth"] for s in res["samples"].values()} == {"spoof_print", "spoof_screen", "live"}
    assert res["timing"]["pad_ms_per_face"] > 0 and res["timing"]["ratio_pad_to_embed"] > 0
    assert {"acer_at_most_5pct", "bpcer_at_apcer10_at_most_5pct", "samples_all_correct", "cross_source_mean_acer_at_most_20pct"} <= set(res["passes"])
    cross = res["cross_source"]
    assert cross["faces"] > res["faces"] and cross["leave_one_source_out"]["sources"] == ["nuaa-train", "video-selfreplay", "webcam-collect"]
    for v in cross["leave_one_source_out"]["per_source"].values():
        assert 0.0 <= v["acer"] <= 1.0 and v["faces"] > 0
    assert "nuaa-train" in cross["shipped_model_per_source"]
    for v in cross["leave_one_source_out"]["per_source"].values():
        assert 0.0 <= v["low_confidence"] <= 1.0
    assert "nuaa-train" in cross["leave_one_subject_out_all_sources"]["per_source"]
    # a smoke run samples the sources, so its figures cannot be the shipped model's
    assert cross["shipped_model_is_this_configuration"] is False and res["passes"]["shipped_model_is_the_cross_source_one"] is False
    photos = res["bona_fide_photos_other_cameras"]
    assert set(photos) >= {"lfw-dev", "deepface"} and all(v["faces"] <= 4 and 0.0 <= v["low_confidence"] <= 1.0 for v in photos.values())


@pytest.mark.slow
def test_synthetic_benchmark_smoke(data_dir: Path) -> None:
    res = _run("synthetic.py", "--real", "40", "--every", "6", "--people", "12", data_dir=data_dir)
    assert res["faces"]["lfw"] > 30 and min(res["faces"].values()) > 10
    assert {"auc", "generator_seen", "generator_held_out"} <= set(res["reframed"])
    assert set(res["leave_one_generator_out"]) == {"stylegan3", "generated-photos", "sfhq-t2i"}
    assert set(res["ffhq_aligned_real"]["held_out"]) == {"lfw", "nuaa", "webcam", "samples"}
    for v in res["leave_one_generator_out"].values():
        assert 0.0 <= v["auc"] <= 1.0
    said = res["shipped_model"]["verdicts"]
    assert {"stylegan3 as generated", "lfw real, aligned like FFHQ", "sfhq-t2i re-framed"} <= set(said)
    for v in said.values():
        assert v["faces"] == 0 or abs(v["synthetic"] + v["cannot tell"] + v["no evidence"] - 1) < 1e-3
    ia = res["identity_aware"]
    assert ia["people"] >= 10 and ia["impostor"]["median_z"] < ia["genuine"]["median_z"]
    assert set(res["passes"]) == {
        "ffhq_aligned_real_flagged_at_most_3pct",
        "leave_one_generator_out_auc_at_least_0_95",
        "reframed_auc_at_least_0_9",
        "file_history_control_near_chance",
        "identity_check_flags_impostors_not_genuine",
        "v1_layout_cross_generator_auc_at_least_0_9",
    }


@pytest.mark.slow
def test_encryption_benchmarks_smoke(data_dir: Path) -> None:
    res = _run("encryption.py", "--smoke", data_dir=data_dir)
    checks = res["checks"]
    assert checks["plain"]["raw_vector_bytes_present"] and not checks["aesgcm_column"]["raw_vector_bytes_present"]
    assert checks["aesgcm_column"]["tampered_value_refused"] and res["aesgcm_file"]["round_trip_equal"]
    res = _run("encrypted_gallery.py", "--smoke", data_dir=data_dir)
    assert res["clear"]["templates"] == res["encrypted"]["templates"] == 25_000
    assert res["encrypted"]["index_kind"] == "pqscan" and res["ratio_encrypted_over_clear"]["identify_p50_ms"] > 0


@pytest.mark.slow
def test_scale_out_benchmark_smoke(data_dir: Path) -> None:
    """benchmarks/scale_out.py at smoke size, on engines it starts on loopback: the embedded and the
    PostgreSQL + Milvus galleries rank lfw-dev probes alike, Milvus's HNSW finds the exact top-1,
    and two replicas take a mixed load with no 5xx, nothing lost or phantom.  (Its ray part runs
    by hand: `python benchmarks/scale_out.py --smoke --parts ray`.)"""
    pytest.importorskip("psycopg", reason="the scale-out benchmark needs faceprint[scale]")
    pytest.importorskip("pymilvus", reason="the scale-out benchmark needs faceprint[scale]")
    # the ray part is left to tests/test_scale_batch.py: a Ray driver in this test process would
    # hold its connection state (one token per process) for every later test the worker runs
    res = _run("scale_out.py", "--smoke", "--parts", "identification,recall,load", data_dir=data_dir)
    print(json.dumps({k: res[k] for k in ("identification", "recall", "checks")}, indent=1))
    assert res["identification"]["rank1_difference_pt"] <= 0.1 and res["identification"]["candidate_lists_equal"] >= 0.99
    assert res["recall"]["recall_at_1_chosen"] >= 0.99
    shared = res["load"]["postgresql_milvus_two_replicas"]
    assert shared["errors_5xx"] == 0 and shared["lost_subjects"] == 0 and shared["phantom_subjects"] == 0 and shared["index_consistent"], shared
    assert res["ok"], res["checks"]


@pytest.mark.slow
def test_library_ui_benchmark_smoke(data_dir: Path) -> None:
    res = _run("library_ui.py", "--people", "300", "--runs", "2", data_dir=data_dir)
    [size] = res["sizes"]
    assert size["people"] == 300 and size["faces"] >= 300
    assert set(size["pages_ms"]) >= {"people_page_1", "people_page_middle", "people_by_name", "people_search", "person_page"}
    assert all(0 < v < 5000 for v in size["pages_ms"].values()) and size["people_page_after_a_change_ms"] > 0
