"""Trees compiled to machine code: the fast path of small predictions.

``efimero models compile`` (and a deploy to an environment with ``compile: true``) turns
each booster of a version into a shared library with treelite + tl2cgen. Serving then calls
the library's generated ``predict`` through :mod:`ctypes`, one row at a time: about 10 µs a
model instead of XGBoost's 100–600 µs of per-call overhead (``bench/bench_predict.py``).
Only :mod:`ctypes` and numpy are needed here; treelite, tl2cgen and a C compiler are needed
only to compile (:mod:`efimero.registry.compile`).

The ABI is the one tl2cgen generates for XGBoost's float32 trees::

    union Entry { int missing; float fvalue; int qvalue; };
    void predict(union Entry* data, int pred_margin, float* result);

``result`` is accumulated into (the caller zeroes it) and holds ``num_target × max_class``
floats, post-processed (softmax, sigmoid, identity) as XGBoost's ``predict`` would. A
library is only ever opened after its checksum matched, and only used after its predictions
matched XGBoost's on a fixed sample (:func:`efimero.registry.compile.load_compiled`).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

_MISSING = -1
"""``Entry.missing``: the bit pattern tl2cgen reads as a missing value (XGBoost's NaN)."""


class CompiledTrees:
    """One booster compiled to a shared library, predicting rows like ``Booster.predict``.

    Raises:
        OSError: the library cannot be opened (wrong platform, damaged file).
        ValueError: the library's trees are not float32 trees of ``n_features`` features.
    """

    def __init__(self, library: Path, n_features: int) -> None:
        self.library = library
        handle = ctypes.CDLL(str(library))
        self._predict = handle.predict
        self._predict.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self._predict.restype = None
        handle.get_num_target.restype = ctypes.c_int32
        handle.get_num_feature.restype = ctypes.c_int32
        handle.get_threshold_type.restype = ctypes.c_char_p
        handle.get_leaf_output_type.restype = ctypes.c_char_p
        n_targets = handle.get_num_target()
        classes = (ctypes.c_int32 * n_targets)()
        handle.get_num_class(classes)
        types = (handle.get_threshold_type(), handle.get_leaf_output_type())
        if handle.get_num_feature() != n_features or types != (b"float32", b"float32"):
            raise ValueError(
                f"{library.name}: expected float32 trees of {n_features} features. Got "
                f"{handle.get_num_feature()} features and {types[0].decode()}/{types[1].decode()} trees instead."
            )
        self.n_features = n_features
        self.n_outputs = n_targets * max(classes)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """``(rows, outputs)`` float32 outputs of float rows (NaN means missing, as in XGBoost)."""
        return self.predict_entries(entries(matrix, self.n_features))

    def predict_entries(self, rows: np.ndarray) -> np.ndarray:
        """:meth:`predict` of rows already converted by :func:`entries` (once for several models)."""
        result = np.zeros((rows.shape[0], self.n_outputs), dtype=np.float32)
        row_bytes, out_bytes = rows.strides[0], result.strides[0]
        data, out = rows.ctypes.data, result.ctypes.data
        for row in range(rows.shape[0]):
            self._predict(data + row * row_bytes, 0, out + row * out_bytes)
        return result


def entries(matrix: np.ndarray, n_features: int) -> np.ndarray:
    """Rows as the generated code reads them: C-contiguous float32, NaN marked missing.

    Raises:
        ValueError: ``matrix`` is not a 2-D array of ``n_features`` columns.
    """
    rows = np.ascontiguousarray(matrix, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] != n_features:
        raise ValueError(f"expected rows of {n_features} features. Got shape {rows.shape} instead.")
    missing = np.isnan(rows)
    if missing.any():
        rows = rows.copy()
        rows.view(np.int32)[missing] = _MISSING
    return rows
