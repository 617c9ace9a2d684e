"""Training of the synthetic-face model (:mod:`faceprint.forensics.synthetic` loads and
scores it).

What only training needs lives here: the layout Gaussian fitted on generated faces, the
texture logistic detector (with :func:`faceprint.liveness.training.fit_logistic` and
:func:`~faceprint.liveness.training.standardise`, shared with the PAD trainer), k-fold
cross-validation over files, the texture detector's shift to ``TEXTURE_REAL_FLAG`` and the
model as a JSON-able dict (``faceprint train-synthetic`` writes it).  Features come from
:func:`faceprint.forensics.synthetic.synthetic_set_features`, which evaluation uses as well.
Deterministic; NumPy only.

The shipped ``synthetic-v2`` is fitted by :func:`fit_reframed` through :func:`train_reframed`
(``make synthetic-model`` on the shared data, ``faceprint train-synthetic`` on a user's
folders): every face is also seen *re-framed*
(:func:`reframed_variants`): real photos warped onto the FFHQ layout at a generator's output
size (they must not be flagged), every face cropped / rescaled / JPEG-saved, and every face
shrunk to a ~460 px thumbnail JPEG-saved twice (how the diffusion set is stored).  The
residual detector learns generated against real across all of these; the layout Gaussian
(fitted on the generated sets that are aligned) is added to it clipped, and the operating
point is the ``V2_REAL_QUANTILE`` of real faces aligned like FFHQ *from real sources the
fit never saw* (leave-one-real-source-out): see :func:`fit_reframed`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceprint.alignment import similarity_transform
from faceprint.errors import InputError
from faceprint.forensics.synthetic import FAMILIES, LAYOUT_DIMS, SyntheticModel, layout_distance, sigmoid, synthetic_features
from faceprint.liveness.training import fit_logistic, standardise
from faceprint.metrics import auc
from faceprint.types import Image

__all__ = [
    "FFHQ_LAYOUT",
    "LAYOUT_MARGIN",
    "LAYOUT_QUANTILE",
    "TEXTURE_REAL_FLAG",
    "VARIANTS",
    "ffhq_aligned",
    "fit_reframed",
    "fit_synthetic",
    "fused_scores",
    "reframed",
    "reframed_report",
    "reframed_variants",
    "thumbnailed",
    "train_reframed",
    "train_synthetic",
    "variant_features",
]

LAYOUT_QUANTILE = 0.99  # the layout radius: this share of the generated training faces stay within it (score 0.5)
LAYOUT_MARGIN = 1.0
TEXTURE_REAL_FLAG = 0.01  # the texture detector is shifted so this share of real faces (out of fold) reach 0.5


def _fit_gaussian(x: np.ndarray) -> dict[str, Any]:
    core = x[:, :LAYOUT_DIMS]
    mean = core.mean(0)
    cov = np.cov(core.T) + np.eye(LAYOUT_DIMS) * 1e-8
    dist = np.array([layout_distance(r, mean, cov) for r in x])
    return {"mean": mean.tolist(), "cov": cov.tolist(), "radius": float(np.quantile(dist, LAYOUT_QUANTILE) * LAYOUT_MARGIN)}


def fit_synthetic(
    feats: dict[str, np.ndarray], y: np.ndarray, *, c: float = 0.01, detectors: Sequence[str] = ("layout",), version: str = "synthetic-custom"
) -> dict[str, Any]:
    """A model dict from per-family feature matrices and labels ``y`` (1 = synthetic): the
    layout Gaussian is fitted on the synthetic faces only, the texture logistic on both."""
    out = []
    for name in detectors:
        if name == "layout":
            out.append({"name": "layout", "family": "layout", "kind": "gaussian", **_fit_gaussian(feats["layout"][y == 1])})
        elif name == "texture":
            x = feats["texture"]
            mean, scale = standardise(x)
            coef, b = fit_logistic((x - mean) / scale, y, c)
            out.append(
                {
                    "name": "texture",
                    "family": "texture",
                    "kind": "logistic",
                    "mean": mean.tolist(),
                    "scale": scale.tolist(),
                    "coef": coef.tolist(),
                    "intercept": b,
                }
            )
        else:
            raise InputError(f"unknown synthetic-face detector {name!r} (known: layout, texture)")
    return {"version": version, "threshold": 0.5, "detectors": out}


def train_synthetic(
    features: dict[str, np.ndarray],
    synthetic: Sequence[bool],
    *,
    c: float = 0.01,
    detectors: Sequence[str] = ("layout",),
    version: str = "synthetic-custom",
    folds: int = 5,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit on everything; measure by ``folds``-fold cross-validation over files (each file in
    exactly one test fold, folds stratified by class, deterministic).  ``features``: family ->
    (N, d) matrix.  Returns (model, evaluation with fused and per-detector out-of-fold AUC)."""
    y = np.asarray(synthetic, int)
    if (y == 1).sum() < max(folds, 12) or (y == 0).sum() < folds:
        raise InputError(
            f"{int((y == 1).sum())} synthetic and {int((y == 0).sum())} real faces: at least {max(folds, 12)} synthetic and {folds} real are needed"
        )
    fold = np.empty(len(y), int)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        fold[idx] = np.arange(idx.size) % folds
    per = {d: np.zeros(len(y)) for d in detectors}  # out-of-fold logits
    for k in range(folds):
        m = SyntheticModel(fit_synthetic({f: v[fold != k] for f, v in features.items()}, y[fold != k], c=c, detectors=detectors, version="fold"))
        for i in np.flatnonzero(fold == k):
            lg = m.logits({f: v[i] for f, v in features.items()})
            for d in detectors:
                per[d][i] = lg[d]
        if progress:
            progress(1)
    model = fit_synthetic(features, y, c=c, detectors=detectors, version=version)
    if "texture" in detectors:  # shift: only TEXTURE_REAL_FLAG of the real faces (out of fold) reach 0.5
        shift = float(np.quantile(per["texture"][y == 0], 1.0 - TEXTURE_REAL_FLAG))
        per["texture"] = per["texture"] - shift
        for d in model["detectors"]:
            if d["name"] == "texture":
                d["intercept"] -= shift
    oof = np.array([sigmoid(max(per[d][i] for d in detectors)) for i in range(len(y))])
    per = {d: np.array([sigmoid(v) for v in per[d]]) for d in detectors}
    ev = {
        "auc": auc(oof[y == 1], oof[y == 0]),
        "accuracy": float(np.mean((oof >= 0.5) == (y == 1))),
        "detected": float(np.mean(oof[y == 1] >= 0.5)),
        "real_flagged": float(np.mean(oof[y == 0] >= 0.5)),
        "synthetic": int(y.sum()),
        "real": int((y == 0).sum()),
        "folds": folds,
        "per_detector_auc": {d: auc(per[d][y == 1], per[d][y == 0]) for d in detectors},
        "oof": oof,
    }
    model["training"] = {**{k: v for k, v in ev.items() if k != "oof"}, "c": c, "detectors": list(detectors)}
    return model, ev


# --- synthetic-v2: trained and measured on re-framed faces --------------------------------------
#: The 5 landmarks of an FFHQ-aligned picture, in fractions of its side (the mean of the shared
#: StyleGAN3 and generated.photos faces: the layout Gaussian's mean in synthetic-v1).
FFHQ_LAYOUT = np.array([[0.37774, 0.46685], [0.61987, 0.46991], [0.49590, 0.60977], [0.38724, 0.71666], [0.60225, 0.72063]])
VARIANTS = ("orig", "ffhq", "reframe", "thumb")
V2_C = 0.001  # L2 of the residual detector (strong: it must not learn the training's real sources)
V2_LAYOUT_CLIP = 2.0  # the layout logit is clipped to +-this before it is added
V2_REAL_QUANTILE = 0.99  # operating point: this share of unseen-source real faces aligned like FFHQ stay below it
V2_NOTE = (
    "score 0-1: how much this face's fine-detail noise statistics, plus where it sits in the picture, resemble the generated faces "
    "the model was fitted on (StyleGAN3, generated.photos, SFHQ-T2I diffusion thumbnails); 0.5 is the operating point, set so that "
    "about 1% of real faces aligned like FFHQ, from photo sources the fit never saw, reach it. It cannot tell that a face is real: "
    "at that point it flags very few generated faces (from a generator it was not fitted on, almost none), so not flagged means "
    "only no strong evidence. The layout score cannot decide alone: real portraits, profile and passport crops aligned like FFHQ "
    "sit where generators put faces. Clean, high-resolution camera photos score higher than other real photos."
)
ALIGNED_SET_SPREAD = 0.03  # a generated set whose eye positions vary less than this (share of the picture) is "aligned"


def _encode(px: np.ndarray, ext: str, quality: int = 90) -> np.ndarray:
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(px, cv2.COLOR_RGB2BGR), params)
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 RGB array
        raise InputError("cannot encode the re-framed picture")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _resize(px: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(px, (max(8, int(w)), max(8, int(h))), interpolation=cv2.INTER_AREA if w < px.shape[1] else cv2.INTER_CUBIC)


def ffhq_aligned(image: Image, landmarks: np.ndarray, size: int, rng: np.random.Generator) -> Image:
    """The picture warped so its 5 landmarks land on ``FFHQ_LAYOUT`` at ``size`` x ``size``
    (how FFHQ / CelebA-HQ portraits, and generators trained on them, frame a face); a face
    larger than that is shrunk with area averaging first; saved as PNG or JPEG q90-95."""
    dst = FFHQ_LAYOUT * size
    lm = np.asarray(landmarks, np.float64)
    m = similarity_transform(lm, dst)
    s = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    px = image.pixels
    if s < 0.5:
        f = 1.5 * s
        px = cv2.resize(px, (max(1, round(px.shape[1] * f)), max(1, round(px.shape[0] * f))), interpolation=cv2.INTER_AREA)
        m = similarity_transform(lm * (px.shape[1] / image.width, px.shape[0] / image.height), dst)
    out = cv2.warpAffine(px, m, (size, size), flags=cv2.INTER_CUBIC if s > 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return Image(_encode(out, ".png") if rng.random() < 0.5 else _encode(out, ".jpg", int(rng.integers(90, 96))))


def reframed(image: Image, rng: np.random.Generator) -> Image:
    """A random 60-90% window of each side, rescaled 0.5-1.25x, saved as JPEG q75-90 (a
    generated face re-framed like an ordinary photo; real faces get the same)."""
    h, w = image.height, image.width
    cw, ch = int(w * rng.uniform(0.6, 0.9)), int(h * rng.uniform(0.6, 0.9))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    f = rng.uniform(0.5, 1.25)
    c = _resize(np.ascontiguousarray(image.pixels[y0 : y0 + ch, x0 : x0 + cw]), round(cw * f), round(ch * f))
    return Image(_encode(c, ".jpg", int(rng.integers(75, 91))))


def thumbnailed(image: Image, rng: np.random.Generator) -> Image:
    """Resized to 447-477 px on the long side, JPEG-saved twice (q80-95, then q90): how the
    SFHQ-T2I diffusion faces are stored, given to real controls alike."""
    t = int(rng.integers(447, 478))
    f = t / max(image.height, image.width)
    c = _resize(image.pixels, round(image.width * f), round(image.height * f))
    return Image(_encode(_encode(c, ".jpg", int(rng.integers(80, 96))), ".jpg", 90))


def _rng(path: Path | str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(Path(path).name.encode())])


def reframed_variants(engine: Any, path: Path | str, *, seed: int = 17, thumbnail_done: bool = False) -> dict[str, tuple[Image, Any]]:
    """The face of one file as it is and re-framed (``VARIANTS``): variant -> (picture, the
    largest face found in it).  The re-framed pictures are searched for faces again, as an
    input would be; a variant with no face found is left out.  ``thumbnail_done``: the file
    is already a thumbnail (its ``thumb`` variant is itself).  Deterministic per file name."""
    from faceprint.errors import FaceprintError

    rng = _rng(path, seed)
    try:
        image, det = engine.pick(path, face="largest")
    except FaceprintError:
        return {}
    pics = {"ffhq": ffhq_aligned(image, det.landmarks, int(rng.choice([256, 512, 1024])), rng), "reframe": reframed(image, rng)}
    if not thumbnail_done:
        pics["thumb"] = thumbnailed(image, rng)
    out = {"orig": (image, det), **({"thumb": (image, det)} if thumbnail_done else {})}
    for name, pic in pics.items():
        found = engine.detector.detect(pic)
        if found:
            out[name] = (pic, max(found, key=lambda d: d.area))
    return out


def variant_features(
    engine: Any, paths: Sequence[Path | str], *, seed: int = 17, thumbnail_done: bool = False, progress: Callable[[int], None] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """variant -> family -> (N, d) features of the files' faces (see :func:`reframed_variants`);
    ``file`` -> the file index of each row (per variant)."""
    rows: dict[str, dict[str, list[Any]]] = {v: {**{f: [] for f in FAMILIES}, "file": []} for v in VARIANTS}
    for i, p in enumerate(paths):
        for v, (pic, det) in reframed_variants(engine, p, seed=seed, thumbnail_done=thumbnail_done).items():
            f = synthetic_features(pic, det)
            for k in FAMILIES:
                rows[v][k].append(f[k])
            rows[v]["file"].append(i)
        if progress:
            progress(1)
    return {
        v: {k: (np.asarray(x, np.float64) if x else np.zeros((0, len(FAMILIES[k]) if k in FAMILIES else 0))) for k, x in r.items()} for v, r in rows.items()
    }


Sets = Mapping[str, Mapping[str, Mapping[str, np.ndarray]]]  # set name -> variant -> family -> matrix


def _stack(sets: Sets, names: Sequence[str], variants: Sequence[str], family: str) -> np.ndarray:
    parts = [sets[n][v][family] for n in names for v in variants if v in sets[n] and len(sets[n][v][family])]
    return np.vstack(parts) if parts else np.zeros((0, len(FAMILIES[family])))


def _aligned_sets(generated: Sets) -> list[str]:
    out = []
    for name, s in generated.items():
        lay = s["orig"]["layout"]
        if len(lay) >= 5 and float(lay[:, :4].std(0).mean()) < ALIGNED_SET_SPREAD:
            out.append(name)
    return out


def _fit_once(generated: Sets, real: Sets, c: float, clip: float) -> dict[str, Any]:
    dets: list[dict[str, Any]] = []
    aligned = _aligned_sets(generated)
    if aligned:
        dets.append({"name": "layout", "family": "layout", "kind": "gaussian", **_fit_gaussian(_stack(generated, aligned, ("orig",), "layout"))})
    pos = _stack(generated, list(generated), VARIANTS, "residual")
    neg = _stack(real, list(real), VARIANTS, "residual")
    x = np.vstack([pos, neg])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    mean, scale = standardise(x)
    coef, b = fit_logistic((x - mean) / scale, y, c)
    dets.append(
        {"name": "residual", "family": "residual", "kind": "logistic", "mean": mean.tolist(), "scale": scale.tolist(), "coef": coef.tolist(), "intercept": b}
    )
    return {"version": "fold", "threshold": 0.5, "fusion": "sum", "layout_clip": clip, "detectors": dets, "training": {"aligned_sets": aligned}}


def fused_scores(model: SyntheticModel, feats: Mapping[str, np.ndarray]) -> np.ndarray:
    """The fused logit of each row of a family -> matrix dict."""
    n = len(feats["layout"])
    return np.array([model.fused_logit(model.logits({k: v[i] for k, v in feats.items() if k in FAMILIES})) for i in range(n)])


def fit_reframed(
    generated: Sets,
    real: Sets,
    *,
    c: float = V2_C,
    clip: float = V2_LAYOUT_CLIP,
    quantile: float = V2_REAL_QUANTILE,
    version: str = "synthetic-custom",
) -> dict[str, Any]:
    """The synthetic-v2 model from generated and real sets, each given as variant -> family ->
    matrix (:func:`variant_features`).  Residual logistic on every variant of both classes,
    plus the layout Gaussian of the aligned generated sets, added clipped to +-``clip``.  The
    operating point: each real set is scored (``ffhq`` variant: aligned like FFHQ) by a model
    fitted without it, and the intercept is shifted so that ``quantile`` of those pooled
    scores fall below 0.5 -- a threshold set on sources the model never saw, not on its own
    training faces.  Needs two real sets at least."""
    if len(real) < 2 or not generated:
        raise InputError("fit_reframed needs generated faces and at least two real sources (the operating point is set on an unseen source)")
    held = []
    per_source: dict[str, list[float]] = {}
    for r in real:
        m = SyntheticModel(_fit_once(generated, {k: v for k, v in real.items() if k != r}, c, clip))
        sc = fused_scores(m, real[r]["ffhq"])
        held.append(sc)
        per_source[r] = sc.tolist()
    shift = float(np.quantile(np.concatenate(held), quantile))
    model = _fit_once(generated, real, c, clip)
    for d in model["detectors"]:
        if d["kind"] == "logistic":
            d["intercept"] -= shift
    model["version"] = version
    model["note"] = V2_NOTE
    model["training"].update(
        {
            "c": c,
            "layout_clip": clip,
            "real_quantile": quantile,
            "operating_shift": shift,
            "generated_sets": {k: int(len(v["orig"]["layout"])) for k, v in generated.items()},
            "real_sets": {k: int(len(v["orig"]["layout"])) for k, v in real.items()},
            "unseen_source_aligned_real_flagged": {k: float(np.mean(np.asarray(v) >= shift)) for k, v in per_source.items()},
        }
    )
    return model


def reframed_report(generated: Sets, real: Sets, model: Mapping[str, Any], *, c: float = V2_C) -> dict[str, Any]:
    """What a re-framed fit can say of itself, held out where the data allows:

    * ``unseen_real_source_flagged``: each real source aligned like FFHQ, scored by a model
      fitted without it (the operating point is set on these), share flagged;
    * ``generator_held_out`` (two generated sets or more): each generated set scored by a model
      fitted without it -- AUC against every real source's faces as they come and aligned like
      FFHQ, and the share detected at the operating point (real sources were seen);
    * ``faces``: usable faces per set (as they come)."""
    out: dict[str, Any] = {
        "faces": {k: int(len(v["orig"]["layout"])) for k, v in {**generated, **real}.items()},
        "unseen_real_source_flagged": dict(model["training"]["unseen_source_aligned_real_flagged"]),
    }
    if len(generated) >= 2:
        held: dict[str, Any] = {}
        pooled = {v: {f: np.vstack([real[r][v][f] for r in real if len(real[r][v]["layout"])]) for f in FAMILIES} for v in ("orig", "ffhq")}
        for g in generated:
            m = SyntheticModel(fit_reframed({k: v for k, v in generated.items() if k != g}, real, c=c))
            sg = fused_scores(m, generated[g]["orig"])
            if not len(sg):
                continue
            held[g] = {
                "auc": round(auc(sg, fused_scores(m, pooled["orig"])), 4),
                "auc_vs_ffhq_aligned_real": round(auc(sg, fused_scores(m, pooled["ffhq"])), 4),
                "detected": round(float(np.mean(sg >= 0.0)), 4),
            }
        out["generator_held_out"] = held
    return out


def train_reframed(
    engine: Any,
    generated: Mapping[str, Sequence[Path | str]],
    real: Mapping[str, Sequence[Path | str]],
    *,
    version: str = "synthetic-custom",
    c: float = V2_C,
    thumbnails: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit the synthetic-v2 design on files: generated sets and real sources by name (each set
    read with its re-framed variants, :func:`variant_features`; ``thumbnails``: generated sets
    already stored as small twice-JPEG'd thumbnails).  Returns (model, :func:`reframed_report`).
    ``faceprint train-synthetic`` and ``make synthetic-model`` both come here."""
    if len([r for r in real.values() if r]) < 2:
        raise InputError(
            "the re-framed design needs real photos from two sources at least (give --real twice): its operating point is set on a source the fit did not see"
        )
    gen = {g: variant_features(engine, p, thumbnail_done=g in thumbnails, progress=progress) for g, p in generated.items() if p}
    reals = {r: variant_features(engine, p, progress=progress) for r, p in real.items() if p}
    for name, s in {**gen, **reals}.items():
        if not len(s["orig"]["layout"]):
            raise InputError(f"no face found in any picture of {name!r}")
    model = fit_reframed(gen, reals, c=c, version=version)
    return model, reframed_report(gen, reals, model, c=c)
