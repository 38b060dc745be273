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


def test_the_governor_goes_to_one_thread_when_runs_are_held_up_and_back_after(monkeypatch):
    """Runs on every thread slower than one thread alone: down to one thread, for the backoff; then every thread
    again; runs as quick as expected keep every thread."""
    import numba
    clock = [100.0]
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock[0])
    calls = []
    monkeypatch.setattr(numba, "set_num_threads", calls.append)
    governor = threads.Governor()
    governor.enabled, governor.full = True, 2
    work = governor.work()
    timed = [i for i in range(5000) if governor.run_serially(work)]
    assert timed == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3072, 4096]
    governor.observe(work, 1.0, serial=True)
    for _ in range(20):
        governor.observe(work, 0.6, serial=False)               # faster than one thread: keep both
    assert governor.threads() == 2 and calls == []
    for _ in range(5):
        governor.observe(work, 3.0, serial=False)               # a moment's contention: ridden out
    assert governor.threads() == 2 and calls == []
    for _ in range(30):
        governor.observe(work, 3.0, serial=False)               # slower than one thread alone, again and again
    assert calls == [1] and governor.threads() == 1
    clock[0] += governor.FIRST_BACKOFF + 0.01
    assert governor.threads() == 2 and calls == [1, 2]          # tried again after the backoff
    assert governor.backoff == 2 * governor.FIRST_BACKOFF       # and the next backoff is longer


def test_the_governor_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("MINICNN_ADAPTIVE_THREADS", "0")
    governor = threads.Governor()
    work = governor.work()
    assert not governor.run_serially(work) and not governor.run_serially(work)
    governor.observe(work, 1.0, serial=True)
    for _ in range(20):
        governor.observe(work, 5.0, serial=False)
    assert governor.single_until is None


def test_the_numbers_do_not_depend_on_the_governor(monkeypatch):
    """The same training steps on every thread and kept to one thread give the same numbers to the bit (the
    work is cut into the same shares either way), so a busy machine cannot change a seeded run."""
    import numba
    import minicnn as mc
    import minicnn.functional as F
    from minicnn import models, nn, optim
    from minicnn.engine import fast_engine
    if fast_engine() is None:
        pytest.skip("the fast engine cannot be imported here")
    from minicnn.fast.threads import governor

    def three_steps():
        mc.manual_seed(0)
        model = nn.fuse(models.maxpool())
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x = mc.Tensor(np.random.default_rng(0).random((24, 1, 28, 28)).astype(np.float32))
        for _ in range(3):
            loss = F.cross_entropy(model(x), np.arange(24) % 10)
            opt.zero_grad(); loss.backward(); opt.step()           # noqa: E702
        return [p.numpy().copy() for p in model.parameters()]

    if governor.full < 2:
        pytest.skip("one thread only: nothing to compare")
    every = three_steps()
    monkeypatch.setattr(governor, "single_until", float("inf"))
    numba.set_num_threads(1)
    try:
        one = three_steps()
    finally:
        numba.set_num_threads(governor.full)
    for a, b in zip(every, one):
        np.testing.assert_array_equal(a, b)
