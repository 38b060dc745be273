"""The small products of ``minicnn/kernels/matmul.py`` as their definitions read: one entry at a time."""
import numpy as np

from ..kernels.matmul import ADD, STORE, STORE_RELU  # noqa: F401  (the same three modes)


def matmul_scatter_add(a, source, window, target, target_window, Q, initial, mode):
    """target[n, target_window[i]:][:Q] (+)= initial[i] + row i of a @ b[n], where row k of b[n] starts at
    source[n, window[k]]: added (mode ADD), stored (STORE) or stored as max(·, 0) (STORE_RELU); one row at a time."""
    for n in range(source.shape[0]):
        for i in range(a.shape[0]):
            row = np.array([initial[i] + sum(a[i, k] * source[n, int(window[k]) + q] for k in range(a.shape[1]))
                            for q in range(Q)], dtype=target.dtype)
            start = int(target_window[i])
            if mode == ADD:
                target[n, start:start + Q] += row
            elif mode == STORE:
                target[n, start:start + Q] = row
            else:
                target[n, start:start + Q] = np.where(row <= 0, 0, row)


def matmul_nt_add(a, source, window, out):
    """out += Σ_n a[n] @ b[n]ᵀ for a (B, M, Q), b[n] as in ``matmul_scatter_add``: one dot product at a time."""
    B, M, Q = a.shape
    for n in range(B):
        for i in range(M):
            for k in range(len(window)):
                out[i, k] += np.dot(a[n, i], source[n, int(window[k]):int(window[k]) + Q])
