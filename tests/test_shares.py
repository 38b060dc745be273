"""``fast/shares.py``: a serial worker run on every thread, called through its machine code's address."""
import numba
import numpy as np
import pytest

in_shares = pytest.importorskip("minicnn.fast.shares", reason="the fast engine cannot be imported here", exc_type=ImportError).in_shares


@numba.njit(cache=False)
def _record_share(args, t, T):
    """out[i] = t for the items of share t; seen[t] += 1."""
    out, seen = args
    for i in range(t * out.size // T, (t + 1) * out.size // T):
        out[i] = t
    seen[t] += 1


@numba.njit(cache=False)
def _fail_on_share(args, t, T):
    (out,) = args
    if t == T - 1:
        raise ValueError("share failed")
    out[t] = 1


@pytest.mark.parametrize("T", [1, 2, 3, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_every_share_runs_once_on_its_own_items(T, dtype):
    run = in_shares(_record_share)
    out, seen = np.full(23, -1, dtype), np.zeros(T, np.int64)
    run((out, seen), T)
    expected = np.repeat(np.arange(T), np.diff([t * 23 // T for t in range(T + 1)]))
    np.testing.assert_array_equal(out, expected.astype(dtype))
    np.testing.assert_array_equal(seen, np.ones(T))


def test_each_argument_type_gets_its_own_compiled_worker():
    run = in_shares(_record_share)
    for dtype in (np.float32, np.float64, np.float32):
        run((np.zeros(4, dtype), np.zeros(2, np.int64)), 2)
    assert len(run._addresses) == 2 and len(set(run._addresses.values())) == 2
    assert len(_record_share.signatures) >= 2


def test_an_error_in_a_worker_reaches_the_caller():
    with pytest.raises(ValueError, match="share failed"):
        in_shares(_fail_on_share)((np.zeros(2),), 2)
