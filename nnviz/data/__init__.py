"""Datasets for nnviz: one :class:`Dataset` shape for toy sets, bundled sets,
MNIST / Fashion-MNIST, CIFAR-10, HDF5 files and image folders.  Qt-free."""

from .dataset import Dataset, DatasetError
from .registry import default_data_dir, default_lr, list_datasets, load_dataset
from .toy import TOY_NAMES, make_toy

__all__ = ["Dataset", "DatasetError", "load_dataset", "list_datasets", "make_toy",
           "TOY_NAMES", "default_data_dir", "default_lr"]
