"""The engine contract: the array functions every engine provides, and which engine runs them.

``minicnn/functional/`` computes every op's numbers through the functions below and never knows which engine
runs them. An engine is a module with these functions, arrays in and arrays out (NCHW, C-contiguous, float32
or float64; settings as (height, width) pairs of ints, already checked by ``minicnn/shapes.py``):

    conv2d_forward(x, weight, bias, stride, padding, dilation, groups, out_size, relu=False, keep_input=False)
                                                                         → (y, saved)
    conv2d_backward(grad_y, weight, saved, x_shape, stride, padding, dilation, groups,
                    need_input, need_weight, need_bias)                  → (grad_x, grad_weight, grad_bias)
    max_pool2d_forward(x, kernel, stride, padding, dilation, out_size)  → (y, argmax)
    max_pool2d_backward(grad_y, argmax, in_size)                        → grad_x
    avg_pool2d_forward(x, kernel, stride, padding, out_size, count_include_pad, divisor_override) → y
    avg_pool2d_backward(grad_y, in_size, kernel, stride, padding, count_include_pad, divisor_override) → grad_x
    global_avg_pool2d_forward(x) → y             global_avg_pool2d_backward(grad_y, in_size) → grad_x
    blur_pool2d_forward(x, stride, out_size) → y  blur_pool2d_backward(grad_y, in_size, stride) → grad_x
    relu_forward(x) → y                          relu_backward(grad_y, y) → grad_x
    linear_forward(x, weight, bias, relu=False) → y
    linear_backward(grad_y, x, weight, y, need_input, need_weight, need_bias) → (grad_x, grad_weight, grad_bias)
    matmul(a, b) → a @ b
    sgd_step(param, grad, buffer, lr, momentum, dampening, weight_decay, nesterov, first)   (in place)
    expect(op, dtype), ready(op, dtype)          a backward of ``op`` will come / is about to run (autograd
                                                 calls them; an engine may compile ahead, or do nothing)

A backward returns None for each gradient that is not needed. ``saved`` is the engine's own record of what the
backward needs; it has at least the attributes ``x`` (the input, when ``keep_input``) and ``y`` (the output,
when ``relu``), so that the plain engine can finish a backward whose forward the fast engine ran.

Two engines keep this contract:

- ``plain`` (``minicnn/plain/``): loop nests a reader can follow, compiled by Numba through its documented
  API. It handles everything the contract can express.
- ``fast`` (``minicnn/fast/``): minicnn's speed, built on Numba internals, LLVM code and BLAS threads; it is
  imported only when first used. The functions in ``SHARED`` it takes from the plain engine: loops it would
  write no differently.

The fast engine runs by default. ``MINICNN_ENGINE=plain`` or ``use_engine("plain")`` chooses the plain one.
Where the fast engine cannot run a call (it cannot be imported on this Numba or llvmlite, a kernel fails to
compile, or the call's configuration is one it does not handle, such as dilation), that call runs on the plain
engine and a warning says why, once per reason.
"""
from __future__ import annotations

import importlib
import os
import warnings

from . import plain

__all__ = ["use_engine", "engine_name", "fast_engine", "CONTRACT", "SHARED", "ENGINES"]

ENGINES = ("fast", "plain")

#: The contract's function names (``tests/test_engine.py`` checks every engine has each, with one signature).
CONTRACT = ("conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward",
            "avg_pool2d_backward", "global_avg_pool2d_forward", "global_avg_pool2d_backward", "blur_pool2d_forward",
            "blur_pool2d_backward", "relu_forward", "relu_backward", "linear_forward", "linear_backward", "matmul",
            "sgd_step", "expect", "ready")

#: Contract functions both engines run from the plain engine (the fast engine has none of its own).
SHARED = ("sgd_step",)


def _check_name(name, source):
    if name not in ENGINES:
        raise ValueError(f"{source}: expected one of {', '.join(ENGINES)}, got {name!r}")
    return name


_chosen = _check_name(os.environ.get("MINICNN_ENGINE", "fast") or "fast", "MINICNN_ENGINE")
_fast = None              # the fast engine's contract module, once imported
_fast_error = None        # why it could not be imported
_broken = {}              # contract function → the error the fast engine raised running it
_warned = set()


def use_engine(name: str) -> None:
    """Run every op from now on on engine ``name``: ``"fast"`` (the default) or ``"plain"``."""
    global _chosen
    _chosen = _check_name(name, "use_engine")


def engine_name() -> str:
    """The engine chosen: ``"fast"`` or ``"plain"`` (a call the fast engine cannot run still runs on plain)."""
    return _chosen


def fast_engine():
    """The fast engine's contract module, imported on first use; None (with one warning) when it cannot be."""
    global _fast, _fast_error
    if _fast is None and _fast_error is None:
        try:
            _fast = importlib.import_module("minicnn.fast.contract")
        except Exception as error:                  # noqa: BLE001 (any failure: a missing Numba internal, ...)
            _fast_error = error
            _warn(f"the fast engine cannot be imported ({type(error).__name__}: {error}); every op runs on the "
                  "plain engine")
    return _fast


def _warn(message):
    if message not in _warned:
        _warned.add(message)
        warnings.warn(f"minicnn: {message}", RuntimeWarning, stacklevel=4)


def _dispatch(name):
    plain_function = getattr(plain, name)

    def call(*args, **kwargs):
        if _chosen == "fast" and name not in _broken:
            fast = _fast or fast_engine()
            if fast is not None:
                try:
                    return getattr(fast, name)(*args, **kwargs)
                except fast.Unsupported as reason:
                    _warn(f"{name}: the fast engine does not handle {reason}; the plain engine runs it")
                except MemoryError:
                    raise
                except Exception as error:           # noqa: BLE001 (a kernel that cannot compile or run here)
                    _broken[name] = error
                    _warn(f"{name}: the fast engine failed ({type(error).__name__}: {error}); the plain engine "
                          "runs it from now on")
        return plain_function(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"The contract's ``{name}`` on the chosen engine (see ``minicnn/plain/`` for its loops)."
    return call


for _name in CONTRACT:
    globals()[_name] = getattr(plain, _name) if _name in SHARED else _dispatch(_name)
