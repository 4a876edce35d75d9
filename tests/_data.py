"""MNIST IDX files for tests: read the real ones, write small fake ones.

Independent of ``keras_gradreg.datasets`` (the tests check that module
against these), and of ``../shared``.
"""

import gzip

import numpy as np

IMAGES = "{}-images-idx3-ubyte.gz"
LABELS = "{}-labels-idx1-ubyte.gz"


def read_idx(path, count=None) -> np.ndarray:
    """The uint8 array of a gzipped IDX file (its first ``count`` rows)."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big")
             for i in range(dims)]
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)
    return array if count is None else array[:count]


def read_mnist(folder, split: str, count: int):
    """``(x, y)``: float32 images (count, 28, 28, 1) in [0, 1], int32 labels.

    ``split`` is ``"train"`` or ``"t10k"`` (the files' prefix).
    """
    x = read_idx(folder / IMAGES.format(split), count)[..., None] / 255.0
    y = read_idx(folder / LABELS.format(split), count)
    return x.astype("float32"), y.astype("int32")


def write_idx(path, array) -> None:
    """Writes ``array`` as a gzipped unsigned-byte IDX file."""
    array = np.asarray(array)
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def write_mnist(folder, train, test) -> None:
    """Writes the four MNIST files: ``train`` and ``test`` are
    ``(images (n, 28, 28) uint8-valued, labels (n,))``."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        write_idx(folder / IMAGES.format(prefix), images)
        write_idx(folder / LABELS.format(prefix), labels)


def stripe_mnist(folder, train: int = 100, test: int = 20, seed: int = 0):
    """Noisy images with a faint class-dependent stripe: learnable in a few
    steps. Returns ``folder``."""
    rng = np.random.default_rng(seed)
    splits = []
    for count in (train, test):
        labels = rng.integers(0, 10, count)
        images = rng.integers(0, 90, (count, 28, 28))
        for image, label in zip(images, labels):
            image[2 * label: 2 * label + 6] += 60
        splits.append((images, labels))
    write_mnist(folder, *splits)
    return folder
