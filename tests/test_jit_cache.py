"""Compilation is lazy and cached on disk: importing compiles nothing, a second process reuses the machine
code, a read-only package folder falls back to the user-wide cache, and a helper process compiles the backward
kernels ahead. Each check runs in a fresh process."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

try:
    import minicnn.fast.contract  # noqa: F401
    FAST = True
except ImportError:
    FAST = False
needs_fast = pytest.mark.skipif(not FAST, reason="the fast engine cannot be imported here")

PROBE_IMPORT = """
import json, numba, minicnn
from minicnn.plain import activation as p_act, conv as p_conv, pool as p_pool
before = {f"{m.__name__}.{name}": len(obj.signatures) for m in (p_act, p_conv, p_pool)
          for name, obj in vars(m).items() if isinstance(obj, numba.core.dispatcher.Dispatcher)}
from minicnn.fast import activation, blas, by_size, conv, in_shares, pool
compiled = dict(before)
for m in (activation, blas, conv, pool):
    for name, obj in vars(m).items():
        jitted = [obj] if isinstance(obj, numba.core.dispatcher.Dispatcher) else []
        jitted += [obj.serial, obj.parallel] if isinstance(obj, by_size) else []
        jitted += obj.dispatchers() if isinstance(obj, in_shares) else []
        for k, d in enumerate(jitted):
            compiled[f"{m.__name__}.{name}.{k}"] = len(d.signatures)
print(json.dumps(compiled))
"""

PROBE_RUN = """
import json, numpy as np
from minicnn.fast import activation
activation.relu_forward(np.ones(3, dtype=np.float32))
stats = activation._relu_forward.serial.stats
print(json.dumps({"path": stats.cache_path, "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


def run(code, env_updates, patch_read_only=False):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(env_updates)
    if patch_read_only:   # as if the package folder were read-only (root ignores file modes, so we simulate it)
        code = ("import numba.core.caching as c\n"
                "def refuse(self): raise OSError('read-only file system')\n"
                "c.InTreeCacheLocator.ensure_cache_path = refuse\n") + code
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_fast
@pytest.mark.slow
def test_import_compiles_nothing():
    compiled = run(PROBE_IMPORT, {})
    assert len(compiled) >= 10 and all(n == 0 for n in compiled.values()), compiled


@needs_fast
@pytest.mark.slow
def test_a_second_process_reuses_the_disk_cache(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    first, second = run(PROBE_RUN, env), run(PROBE_RUN, env)
    assert first["path"].startswith(str(tmp_path))
    assert second["hits"] >= 1 and second["misses"] == 0


@needs_fast
@pytest.mark.slow
def test_a_read_only_package_folder_falls_back_to_the_user_cache(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)}
    first = run(PROBE_RUN, env, patch_read_only=True)
    second = run(PROBE_RUN, env, patch_read_only=True)
    assert first["path"].startswith(str(tmp_path)), first
    assert second["hits"] >= 1 and second["misses"] == 0


PROBE_DEPENDENT = """
import sys
from minicnn.fast import depends_on
folder = sys.argv[1]
sys.path.insert(0, folder)
depends_on(folder + "/outer.py", folder + "/inner.py")
import outer
print(outer.twice_inner())
"""


@needs_fast
@pytest.mark.slow
def test_editing_a_kernel_file_rebuilds_the_kernels_that_compiled_it_in(tmp_path):
    """A cached kernel holds the machine code of every jitted function it calls, and Numba checks it only
    against its own file: without ``depends_on`` the second run below would still print 2 (checked: it does
    with the locator left out)."""
    (tmp_path / "inner.py").write_text("import numba\n@numba.njit(cache=True)\ndef value():\n    return 1\n")
    (tmp_path / "outer.py").write_text("import numba\nfrom inner import value\n"
                                       "@numba.njit(cache=True)\ndef twice_inner():\n    return 2 * value()\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}

    def run_probe():
        done = subprocess.run([sys.executable, "-c", PROBE_DEPENDENT, str(tmp_path)], env=env,
                              capture_output=True, text=True, check=True)
        return int(done.stdout.strip().splitlines()[-1])
    assert run_probe() == 2
    assert run_probe() == 2                                       # from the cache
    (tmp_path / "inner.py").write_text("import numba\n@numba.njit(cache=True)\ndef value():\n    return 5\n")
    assert run_probe() == 10


PROBE_PLAIN_PYTHON = """
import json, numpy as np, minicnn as mc
from minicnn import nn
mc.manual_seed(0)
m = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(),
                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 2 * 2, 2))
x = mc.Tensor(np.linspace(-1, 1, 2 * 64, dtype=np.float32).reshape(2, 1, 8, 8), requires_grad=True)
y = m(x)
y.sum().backward()
print(json.dumps([y.numpy().ravel().tolist(), x.grad.ravel().tolist()]))
"""


@pytest.mark.slow
def test_numba_disable_jit_runs_the_same_model_as_plain_python():
    """``NUMBA_DISABLE_JIT=1`` (stepping through kernels in a debugger) runs the plain engine as Python (the fast
    engine, whose LLVM code no Python can run, refuses to load) and gives the compiled fast engine's results."""
    compiled = run(PROBE_PLAIN_PYTHON, {})
    plain = run(PROBE_PLAIN_PYTHON, {"NUMBA_DISABLE_JIT": "1"})
    for a, b in zip(compiled, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@needs_fast
@pytest.mark.slow
def test_the_other_vector_width_computes_the_same(tmp_path):
    """``kernels/vectors.py`` writes its tiles and copies in the CPU's vector width (256 or 512 bits). The
    width this machine does not use is compiled here through ``MINICNN_VECTOR_BYTES`` (LLVM splits or joins
    the vectors), with a cache of its own, and the convolution and product kernels are checked against their
    references again, float32, in a fresh process."""
    from minicnn.fast.vectors import VECTOR_BYTES
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(MINICNN_VECTOR_BYTES=str(96 - VECTOR_BYTES), NUMBA_CACHE_DIR=str(tmp_path))
    chosen = "(fast_conv_equals_plain or spread_from_split or small_matmuls) and float32"
    done = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider",
                           "-k", chosen, os.path.join(os.path.dirname(__file__), "test_kernels.py")],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "deselected" in done.stdout, done.stdout[-500:]


PROBE_AHEAD = """
import json, numpy as np
from minicnn.fast import activation, ahead
before = ahead.is_cached("relu", np.float64)
ahead.expect("relu", np.float64)              # what a ReLU's forward says when a backward will follow
helper = ahead._helper
ahead.ready("relu", np.float64)               # what its backward says before running the kernel
after = ahead.is_cached("relu", np.float64)
for size in (3, 1 << 15):                     # the serial and the parallel version
    activation.relu_backward(np.ones(size), np.ones(size))
stats = [activation._relu_backward.serial.stats, activation._relu_backward.parallel.stats]
print(json.dumps({"before": before, "after": after, "helper": helper is not None,
                  "finished": sorted(helper.finished) if helper else None,
                  "hits": sum(sum(s.cache_hits.values()) for s in stats),
                  "misses": sum(sum(s.cache_misses.values()) for s in stats)}))
"""


@needs_fast
@pytest.mark.slow
def test_the_helper_compiles_ahead_what_the_backward_then_loads(tmp_path):
    """``kernels/ahead.py``: asked by ``expect``, a helper process compiles a group's kernels into the disk cache;
    after ``ready`` this process loads them from it (cache hits, no compile of its own). A second process finds
    them cached and starts no helper; ``MINICNN_COMPILE_AHEAD=0`` starts none either."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    first = run(PROBE_AHEAD, env)
    assert first["before"] is False and first["helper"] and first["finished"] == ["relu float64"], first
    assert first["after"] is True and first["hits"] == 2 and first["misses"] == 0, first
    second = run(PROBE_AHEAD, env)
    assert second["before"] is True and not second["helper"] and second["misses"] == 0, second
    off = run(PROBE_AHEAD, {"NUMBA_CACHE_DIR": str(tmp_path / "off"), "MINICNN_COMPILE_AHEAD": "0"})
    assert off["before"] is False and not off["helper"] and off["misses"] == 2, off


PROBE_TAKE_BACK = """
import json, numpy as np
from minicnn.fast import activation, ahead, pool
f64 = np.dtype("float64")
for group in ("global_avg_pool2d", "relu", "max_pool2d"):   # a forward's order: the first is sent, two wait
    ahead.expect(group, f64)
helper = ahead._helper
waiting = list(helper.waiting)
ahead.ready("relu", f64)                 # not begun by the helper: taken back, compiled here as it runs
ahead.ready("global_avg_pool2d", f64)    # the helper's: waited for, max_pool2d compiled here meanwhile
stolen = ahead.is_cached("max_pool2d", f64) and not helper.waiting
for size in (3, 1 << 15):
    activation.relu_backward(np.ones(size), np.ones(size))
relu = [activation._relu_backward.serial.stats, activation._relu_backward.parallel.stats]
print(json.dumps({"waiting": waiting, "stolen": stolen, "finished": sorted(helper.finished),
                  "global_cached": ahead.is_cached("global_avg_pool2d", f64),
                  "relu_misses": sum(sum(s.cache_misses.values()) for s in relu)}))
"""


@needs_fast
@pytest.mark.slow
def test_groups_the_helper_has_not_begun_compile_here(tmp_path):
    """The helper gets one group at a time, the oldest first; ``ready`` takes back a group it has not begun (the
    kernels then compile here as they run), and spends a wait for the helper's group compiling the newest group
    still waiting. So neither process idles while the other has a queue."""
    out = run(PROBE_TAKE_BACK, {"NUMBA_CACHE_DIR": str(tmp_path)})
    assert out["waiting"] == ["relu float64", "max_pool2d float64"], out
    assert out["finished"] == ["global_avg_pool2d float64"] and out["global_cached"], out
    assert out["stolen"] and out["relu_misses"] == 2, out


@needs_fast
def test_ahead_names_an_unknown_group():
    from minicnn.fast import ahead
    with pytest.raises(ValueError, match=r"group: expected one of .*'conv2d'.*got 'conv3d'"):
        ahead.expect("conv3d", np.float32)


@needs_fast
def test_each_group_compiles_the_signatures_its_backward_runs(rng):
    """The helper compiles a group by running its kernels on tiny arrays. A training step's backward must then
    need no other signature of those kernels, or the helper's work would be for nothing (a silent loss of the
    cold start's time, never a wrong result). Sizes: every pooled gradient has at least 16,384 numbers (the
    parallel versions), the linear layer's ReLU fewer (the serial one)."""
    import minicnn as mc
    import minicnn.functional as F
    from minicnn import nn
    from minicnn.fast import ahead
    for compile_group, _ in ahead.GROUPS.values():
        compile_group(np.float32)
    kernels = [kernel for _, listed in ahead.GROUPS.values() for kernel in listed()]
    assert all(kernel.signatures for kernel in kernels)
    before = [len(kernel.signatures) for kernel in kernels]
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.GlobalAvgPool2d(),
                          nn.Flatten(), nn.Linear(16, 10), nn.ReLU(), nn.Linear(10, 3))
    x = mc.Tensor(rng.standard_normal((64, 1, 16, 16)).astype(np.float32), requires_grad=True)
    F.cross_entropy(model(x), rng.integers(0, 3, 64)).backward()
    assert x.grad is not None
    assert [len(kernel.signatures) for kernel in kernels] == before, [
        (kernel.py_func.__name__, [str(s) for s in kernel.signatures]) for kernel in kernels]
