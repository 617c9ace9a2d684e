"""The photo library: index folders of photos, group faces into people, take corrections."""

from faceprint.library.cluster import ClusterParams, cluster_faces, pairwise_scores
from faceprint.library.indexer import IndexSummary, index_folder
from faceprint.library.library import Library
from faceprint.library.store import FaceNotFound, LibraryStore, PersonExists, PersonNotFound, default_library_path

__all__ = [
    "ClusterParams",
    "FaceNotFound",
    "IndexSummary",
    "Library",
    "LibraryStore",
    "PersonExists",
    "PersonNotFound",
    "cluster_faces",
    "default_library_path",
    "index_folder",
    "pairwise_scores",
]
