"""Checking gradients and closeness: what the test suite uses, public so you can check your own ops.

``gradcheck(fn, *inputs)`` compares the gradient that backward computes with central finite differences,

    dL/dx_i ≈ (L(x + eps·e_i) − L(x − eps·e_i)) / (2·eps),    L(x) = Σ fn(x) · G,

where G is a *random* upstream gradient (not all ones: a plain ``.sum()`` would not notice a gradient that is
permuted or transposed). Run it in float64: in float32 the differences drown in rounding.
"""
from __future__ import annotations

import numpy as np

from .tensor import Tensor

__all__ = ["gradcheck", "assert_close"]


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-6, name: str = "value") -> None:
    """Raise AssertionError showing the worst mismatches side by side when arrays differ beyond tolerance."""
    actual = np.asarray(actual.data if isinstance(actual, Tensor) else actual, dtype=np.float64)
    expected = np.asarray(expected.data if isinstance(expected, Tensor) else expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"{name}: shape {actual.shape} != expected {expected.shape}")
    close = np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return
    error = np.abs(actual - expected)
    error[np.isnan(error)] = np.inf
    worst = np.argsort(error, axis=None)[::-1][:5]
    rows = [f"  at {np.unravel_index(i, actual.shape)}: got {actual.flat[i]:.8g}, expected {expected.flat[i]:.8g}"
            for i in worst]
    raise AssertionError(f"{name}: {np.count_nonzero(~close)} of {close.size} elements differ "
                         f"(rtol={rtol}, atol={atol}); worst:\n" + "\n".join(rows))


def gradcheck(fn, *inputs, eps: float = 1e-6, rtol: float = 1e-4, atol: float = 1e-6, seed: int = 0) -> bool:
    """Check the analytic gradient of ``fn`` against central finite differences, for every input that
    requires grad.

    Args:
        fn: a function of the inputs returning a Tensor (the op under test, with any settings bound).
        inputs: Tensors (float64, ``requires_grad=True`` for those to check) or other arguments.
        eps: the finite-difference step. rtol, atol: tolerances of the comparison.
        seed: seeds the random upstream gradient G.
    Returns True; raises AssertionError with the mismatching numbers side by side otherwise.

    >>> import numpy as np, minicnn as mc
    >>> x = mc.Tensor(np.random.rand(3, 4), requires_grad=True, dtype=np.float64)
    >>> gradcheck(lambda t: (t * t).exp(), x)
    True
    """
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 for meaningful differences, got {t.dtype}")
        t.grad = None
    out = fn(*inputs)
    G = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(G)

    def loss() -> float:
        return float(np.sum(fn(*inputs).data * G))

    for k, t in enumerate(checked):
        analytic = np.zeros(t.shape) if t.grad is None else t.grad
        numeric = np.zeros(t.shape)
        flat = t.data.reshape(-1)          # a view: perturbing it perturbs the input in place
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            up = loss()
            flat[i] = saved - eps
            down = loss()
            flat[i] = saved
            numeric.flat[i] = (up - down) / (2 * eps)
        assert_close(analytic, numeric, rtol=rtol, atol=atol,
                     name=f"gradient of input {k} (shape {t.shape}): analytic (got) vs finite differences (expected)")
    return True
