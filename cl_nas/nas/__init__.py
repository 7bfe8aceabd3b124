"""Proxy neural architecture search: rank architectures by training them on condensed data.

Pieces, one per module: the search space (:mod:`cl_nas.models.space`), what candidates train on (:mod:`.proxy`),
the Optuna objective (:mod:`.objective`), a study as a fault-tolerant work queue (:mod:`.queue`),
proxy searches and the full-data ground truth (:mod:`.search`, :mod:`.ground_truth`), the zero-cost
control (:mod:`.zero_cost`), training costs (:mod:`.cost`), storages (:mod:`.storage`), rank statistics
(:mod:`.correlation`), the report (:mod:`.report`), a whole study
(:mod:`.study`: :class:`NASSettings` and :func:`run_study`), the proxy schedule tuned on a disjoint
sample (:mod:`.tuning`) and the ``cl-nas nas`` command (:mod:`.command`).
"""

from cl_nas.models.space import (
    Dimension,
    InfeasibleArchitecture,
    SearchSpace,
    SearchSpaceError,
    convnet_space,
    parse_space_overrides,
)
from cl_nas.nas.correlation import Correlation, correlate
from cl_nas.nas.ground_truth import GroundTruth, GroundTruthConfig, Resolution, Rung, open_ground_truth, resolution
from cl_nas.nas.objective import ArchitectureObjective, ArchScore, read_scores
from cl_nas.nas.proxy import (
    EARLY_STOP,
    PROXIES,
    Proxy,
    TrainingData,
    file_data,
    full_data,
    get_proxy,
    proxy_data,
    proxy_names,
)
from cl_nas.nas.queue import QueueStatus, open_queue, queue_status, run_worker
from cl_nas.nas.search import PRUNERS, SAMPLERS, Search, open_search
from cl_nas.nas.storage import DEFAULT_STORAGE, StorageError, mask_url, open_storage
from cl_nas.nas.study import NASSettings, run_study
from cl_nas.nas.zero_cost import NASWOT, naswot_score

__all__ = [
    "DEFAULT_STORAGE",
    "EARLY_STOP",
    "PROXIES",
    "PRUNERS",
    "SAMPLERS",
    "ArchScore",
    "ArchitectureObjective",
    "Correlation",
    "Dimension",
    "GroundTruth",
    "GroundTruthConfig",
    "InfeasibleArchitecture",
    "NASWOT",
    "NASSettings",
    "Proxy",
    "QueueStatus",
    "Resolution",
    "Rung",
    "Search",
    "SearchSpace",
    "SearchSpaceError",
    "StorageError",
    "TrainingData",
    "convnet_space",
    "correlate",
    "file_data",
    "full_data",
    "get_proxy",
    "mask_url",
    "naswot_score",
    "open_ground_truth",
    "open_queue",
    "open_search",
    "open_storage",
    "parse_space_overrides",
    "proxy_data",
    "proxy_names",
    "queue_status",
    "read_scores",
    "resolution",
    "run_study",
    "run_worker",
]
