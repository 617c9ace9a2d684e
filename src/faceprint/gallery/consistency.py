"""Identity consistency: how well a new face agrees with an enrolled person's authentic
references -- a gallery statistic over templates, no image model involved.

The best similarity of the new face to the references is placed, as a z-score, on the
distribution of each reference's best similarity to the *other* references.  A face far below
it is a different person, or a face generated to resemble this one (the identity-aware
synthetic-face check: it needs no knowledge of any generator).  :meth:`Gallery.consistency
<faceprint.gallery.gallery.Gallery.consistency>` runs it against a subject's templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from faceprint.errors import InputError

__all__ = ["IdentityConsistency", "identity_consistency"]


@dataclass(frozen=True)
class IdentityConsistency:
    """How a new face agrees with an enrolled person's authentic references."""

    best: float  # highest cosine similarity to a reference
    mean: float  # mean cosine similarity to the references
    reference_mean: float  # mean similarity among the references themselves (leave-one-out best)
    reference_std: float
    z: float  # (best - reference_mean) / reference_std: how far below the references' own agreement
    outlier: bool
    references: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def identity_consistency(vector: np.ndarray, references: np.ndarray, *, z_threshold: float = -3.0, min_std: float = 0.05) -> IdentityConsistency:
    """Outlier score of a new face against a person's references (unit vectors, one model).

    Each reference's best similarity to the *other* references shows how well authentic
    photos of this person agree; the new face's best similarity is placed on that
    distribution as a z-score (``min_std`` floors the spread for small, tight sets).  A face
    far below (``z < z_threshold``) is inconsistent with the person: a different person, or
    a generated face made to resemble them."""
    refs = np.asarray(references, np.float64)
    if refs.ndim != 2 or refs.shape[0] < 2:
        raise InputError("the identity-aware check needs at least two reference templates of the person")
    sims = refs @ np.asarray(vector, np.float64)
    gram = refs @ refs.T
    np.fill_diagonal(gram, -np.inf)
    loo = gram.max(1)
    mu, sd = float(loo.mean()), max(float(loo.std()), min_std)
    z = (float(sims.max()) - mu) / sd
    return IdentityConsistency(
        best=float(sims.max()), mean=float(sims.mean()), reference_mean=mu, reference_std=sd, z=z, outlier=bool(z < z_threshold), references=int(refs.shape[0])
    )
