"""Data sets: the catalogue, readers, toy generators, fetching and resident tensors."""
from .catalogue import DATASETS, DatasetInfo, SourceFile, dataset_names, get_info
from .fetch import available, fetch, locate, search_dirs
from .resident import ResidentDataset, Split, load_dataset

__all__ = ["DATASETS", "DatasetInfo", "SourceFile", "dataset_names", "get_info",
           "available", "fetch", "locate", "search_dirs", "ResidentDataset", "Split", "load_dataset"]
