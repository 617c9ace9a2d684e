"""The identity gallery: an SQLite store of subjects and templates, a vector index beside it,
and 1:N identification with open-set decisions at a stated FPIR."""

from faceprint.gallery.gallery import Candidate, EnrollResult, Gallery, Identification, default_db_path, fmr_for_fpir
from faceprint.gallery.store import Store, StoreError, Subject, SubjectExists, SubjectNotFound

__all__ = [
    "Candidate",
    "EnrollResult",
    "Gallery",
    "Identification",
    "Store",
    "StoreError",
    "Subject",
    "SubjectExists",
    "SubjectNotFound",
    "default_db_path",
    "fmr_for_fpir",
]
