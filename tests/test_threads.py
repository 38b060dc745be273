"""Who runs on the cores: minicnn's products keep OpenBLAS on one thread and give the caller's setting back."""
import numpy as np
import pytest

threads = pytest.importorskip("minicnn.fast.threads", reason="the fast engine cannot be imported here",
                              exc_type=ImportError)


@pytest.mark.skipif(threads._OPENBLAS is None, reason="numpy's BLAS is not an OpenBLAS minicnn can find")
def test_single_threaded_blas_sets_one_thread_and_restores():
    set_threads, get_threads = threads._OPENBLAS
    before = get_threads()
    set_threads(2)
    try:
        if get_threads() != 2:
            pytest.skip("this OpenBLAS cannot run 2 threads here")
        seen = threads.single_threaded_blas(get_threads)()
        assert seen == 1
        assert get_threads() == 2
        with pytest.raises(ZeroDivisionError):                    # restored on errors too
            threads.single_threaded_blas(lambda: 1 / 0)()
        assert get_threads() == 2
    finally:
        set_threads(before)


def test_threading_layer_respects_the_users_choice(monkeypatch):
    import numba
    monkeypatch.setenv("NUMBA_THREADING_LAYER", "workqueue")
    monkeypatch.setattr(numba.config, "THREADING_LAYER", "workqueue")
    assert threads.choose_threading_layer() == "workqueue"


def test_matmul_runs_under_single_threaded_blas():
    """The ``@`` op still gives numpy's answer with the thread count changed around it."""
    import minicnn as mc
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    assert np.array_equal((mc.Tensor(a) @ mc.Tensor(b)).data, (a @ b).astype(np.float32))
