"""Compilation is lazy and cached on disk: importing compiles nothing, a second process reuses the machine
code, and a read-only package folder falls back to the user-wide cache. Each check runs in a fresh process."""
import json
import os
import subprocess
import sys

PROBE_IMPORT = """
import json, numba, minicnn
from minicnn.kernels import activation, by_size, conv, pool
compiled = {}
for m in (activation, conv, pool):
    for name, obj in vars(m).items():
        jitted = [obj] if isinstance(obj, numba.core.dispatcher.Dispatcher) else []
        jitted += [obj.serial, obj.parallel] if isinstance(obj, by_size) else []
        for k, d in enumerate(jitted):
            compiled[f"{m.__name__}.{name}.{k}"] = len(d.signatures)
print(json.dumps(compiled))
"""

PROBE_RUN = """
import json, numpy as np
from minicnn.kernels import activation
activation.relu_forward(np.ones(3, dtype=np.float32))
stats = activation.relu_forward.serial.stats
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


def test_import_compiles_nothing():
    compiled = run(PROBE_IMPORT, {})
    assert len(compiled) >= 10 and all(n == 0 for n in compiled.values()), compiled


def test_a_second_process_reuses_the_disk_cache(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    first, second = run(PROBE_RUN, env), run(PROBE_RUN, env)
    assert first["path"].startswith(str(tmp_path))
    assert second["hits"] >= 1 and second["misses"] == 0


def test_a_read_only_package_folder_falls_back_to_the_user_cache(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)}
    first = run(PROBE_RUN, env, patch_read_only=True)
    second = run(PROBE_RUN, env, patch_read_only=True)
    assert first["path"].startswith(str(tmp_path)), first
    assert second["hits"] >= 1 and second["misses"] == 0


def test_a_dependent_kernel_file_is_touched_when_its_dependency_is_newer(tmp_path):
    """Numba would keep a stale cache of conv.py's kernels after an edit of matmul.py: the edit must make
    conv.py newer, so that Numba rebuilds it."""
    import os
    import time
    from minicnn.kernels import refresh_dependents
    dependents = {"matmul.py": ("conv.py",)}
    for name in ("conv.py", "matmul.py"):
        (tmp_path / name).write_text("# kernel\n")
    old = time.time() - 100
    os.utime(tmp_path / "conv.py", (old, old))                      # matmul.py edited after conv.py
    assert refresh_dependents(str(tmp_path), dependents) == ["conv.py"]
    assert os.stat(tmp_path / "conv.py").st_mtime_ns > os.stat(tmp_path / "matmul.py").st_mtime_ns
    assert refresh_dependents(str(tmp_path), dependents) == []        # now up to date: nothing to do
