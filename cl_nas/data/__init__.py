"""Datasets as in-memory tensors: named loaders, the data root, splits."""

from cl_nas.data.images import DatasetInfo, ImageDataset, stratified_split
from cl_nas.data.registry import (
    DATA_ENV_VAR,
    TRAIN_SPLIT_HASHES,
    DatasetSplits,
    DatasetUnavailableError,
    available_datasets,
    canonical_name,
    dataset_info,
    load_dataset,
    resolve_data_root,
)

__all__ = [
    "DATA_ENV_VAR",
    "TRAIN_SPLIT_HASHES",
    "DatasetInfo",
    "DatasetSplits",
    "DatasetUnavailableError",
    "ImageDataset",
    "available_datasets",
    "canonical_name",
    "dataset_info",
    "load_dataset",
    "resolve_data_root",
    "stratified_split",
]
