import numpy as np
import pytest

import minicnn as mc


def fast_engine_or_skip():
    """The fast engine's contract module, or skip the test where it cannot be imported."""
    fast = mc.engine.fast_engine()
    if fast is None:
        pytest.skip("the fast engine cannot be imported here (see the warning); the plain engine serves")
    return fast


@pytest.fixture(params=["plain", "fast"])
def engine(request):
    """Run a test once on each engine (``mc.use_engine``), then restore the engine chosen before."""
    if request.param == "fast":
        fast_engine_or_skip()
    before = mc.engine_name()
    mc.use_engine(request.param)
    yield request.param
    mc.use_engine(before)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def torch_or_skip():
    """PyTorch is optional: parity tests run when it is installed (``pip install torch==2.13.0``)."""
    return pytest.importorskip("torch")


def t64(array, requires_grad=True):
    """A float64 Tensor for gradient checks."""
    return mc.Tensor(array, requires_grad=requires_grad, dtype=np.float64)


def distinct(rng, shape):
    """Random float64 values with no ties and none near zero (no kinks for max or ReLU to sit on)."""
    n = int(np.prod(shape))
    values = rng.permutation(n).astype(np.float64) / n - 0.5 + 0.5 / n      # distinct, spaced ≥ 1/n apart
    values = values + np.where(values >= 0, 0.05, -0.05)                    # keep away from zero
    return values.reshape(shape)
