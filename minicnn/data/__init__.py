"""``minicnn.data``: datasets and batches. Plain NumPy; it never imports ``minicnn.nn``.

    fashion_mnist.py   find, verify, download and parse Fashion-MNIST's IDX files
    loader.py          DataLoader: shuffled, normalised float32 batches from uint8 images
"""
from .fashion_mnist import CLASSES, CorruptFileError, DataNotFoundError, load_fashion_mnist
from .loader import FASHION_MNIST_MEAN, FASHION_MNIST_STD, DataLoader, normalize

__all__ = ["load_fashion_mnist", "DataNotFoundError", "CorruptFileError", "CLASSES", "DataLoader", "normalize",
           "FASHION_MNIST_MEAN", "FASHION_MNIST_STD"]
