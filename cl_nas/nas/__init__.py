"""Proxy neural architecture search: rank architectures by training them on condensed data.

Pieces, one per module: the search space (:mod:`.space`), what candidates train on (:mod:`.proxy`),
the Optuna objective (:mod:`.objective`), a study as a fault-tolerant work queue (:mod:`.queue`),
proxy searches and the full-data ground truth (:mod:`.search`, :mod:`.ground_truth`), storages
(:mod:`.storage`), rank statistics (:mod:`.correlation`), the report (:mod:`.report`) and the
``cl-nas nas`` command (:mod:`.command`).
"""

from cl_nas.nas.correlation import Correlation, correlate, mean_std
from cl_nas.nas.ground_truth import GroundTruthConfig, open_ground_truth
from cl_nas.nas.objective import ArchitectureObjective, ArchScore, read_scores
from cl_nas.nas.proxy import EARLY_STOP, TrainingData, file_data, full_data, proxy_data, proxy_names
from cl_nas.nas.queue import QueueStatus, open_queue, queue_status, run_worker
from cl_nas.nas.search import PRUNERS, SAMPLERS, Search, open_search
from cl_nas.nas.space import (
    Dimension,
    InfeasibleArchitecture,
    SearchSpace,
    SearchSpaceError,
    convnet_space,
    parse_space_overrides,
)
from cl_nas.nas.storage import DEFAULT_STORAGE, StorageError, mask_url, open_storage

__all__ = [
    "DEFAULT_STORAGE",
    "EARLY_STOP",
    "PRUNERS",
    "SAMPLERS",
    "ArchScore",
    "ArchitectureObjective",
    "Correlation",
    "Dimension",
    "GroundTruthConfig",
    "InfeasibleArchitecture",
    "QueueStatus",
    "Search",
    "SearchSpace",
    "SearchSpaceError",
    "StorageError",
    "TrainingData",
    "convnet_space",
    "correlate",
    "file_data",
    "full_data",
    "mask_url",
    "mean_std",
    "open_ground_truth",
    "open_queue",
    "open_search",
    "open_storage",
    "parse_space_overrides",
    "proxy_data",
    "proxy_names",
    "queue_status",
    "read_scores",
    "run_worker",
]
