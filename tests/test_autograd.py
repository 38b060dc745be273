"""The autograd walk and the Tensor's ops: graph shape, accumulation, broadcasting, gradient checks."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn.testing import assert_close, gradcheck

from conftest import distinct, t64


def test_a_node_used_twice_gets_both_contributions():
    x = mc.Tensor([3.0], requires_grad=True)
    y = x * x + x           # x feeds three uses
    y.backward()
    assert x.grad.tolist() == [7.0]


def test_diamond_graph():
    x = mc.Tensor([2.0], requires_grad=True)
    a, b = x * 3, x.exp()
    (a * b).backward()      # d/dx 3x·eˣ = 3eˣ + 3x·eˣ
    assert x.grad[0] == pytest.approx(3 * np.exp(2) + 6 * np.exp(2), rel=1e-6)


def test_a_2000_op_chain_does_not_hit_the_recursion_limit():
    x = mc.Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(2000):
        y = y * 1.0005
    y.backward()
    assert x.grad[0] == pytest.approx(1.0005 ** 2000, rel=1e-3)


def test_gradients_accumulate_until_zero_grad():
    w = mc.Tensor([1.0, 2.0], requires_grad=True)
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    assert w.grad.tolist() == [6.0, 6.0]
    w.zero_grad()
    (w * 3).sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]


def test_no_grad_records_nothing():
    w = mc.Tensor([1.0], requires_grad=True)
    with mc.no_grad():
        y = w * 2
        assert not mc.is_grad_enabled()
    assert mc.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf


def test_detach_cuts_the_graph():
    w = mc.Tensor([2.0], requires_grad=True)
    (w * w.detach()).backward()
    assert w.grad.tolist() == [2.0]        # the detached factor is a constant


def test_backward_through_a_freed_graph_says_so():
    w = mc.Tensor([2.0], requires_grad=True)
    y = (w * w).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    z = (w * w).sum()
    z.backward(retain_graph=True)
    z.backward()
    assert w.grad.tolist() == [4.0 + 4.0 + 4.0]


def test_backward_on_a_non_scalar_needs_a_gradient():
    w = mc.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad can be omitted only for a one-element tensor.*\(2,\)"):
        (w * 2).backward()
    with pytest.raises(ValueError, match=r"grad must have the tensor's shape \(2,\), got \(3,\)"):
        (w * 2).backward(np.ones(3))
    (w * 2).backward(np.array([1.0, 10.0]))
    assert w.grad.tolist() == [2.0, 20.0]


def test_backward_without_requires_grad_says_so():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mc.Tensor([1.0]).sum().backward()


def test_only_wanted_gradients_are_computed():
    x = mc.Tensor(np.ones((2, 3)))                     # like an input image: no gradient wanted
    w = mc.Tensor(np.ones((3, 3)), requires_grad=True)
    (x @ w).sum().backward()
    assert x.grad is None and w.grad is not None


def test_dtypes():
    assert mc.Tensor([1, 2, 3]).dtype == np.float32                     # ints become float32
    assert mc.Tensor(np.ones(2, dtype=np.float64)).dtype == np.float32  # float64 is computed in float32 ...
    assert mc.Tensor(np.ones(2), dtype=np.float64).dtype == np.float64  # ... unless asked for
    assert (mc.Tensor([1.0]) * 2.5).dtype == np.float32                 # Python numbers do not promote
    assert (mc.Tensor([1.0]) + np.float64(2)).dtype == np.float32
    with pytest.raises(TypeError, match="numeric"):
        mc.Tensor(["a"])
    with pytest.raises(TypeError, match="float32 or float64"):
        mc.Tensor([1], dtype=np.int32)


def test_tensor_basics():
    t = mc.Tensor(np.arange(6).reshape(2, 3))
    assert t.shape == (2, 3) and t.ndim == 2 and t.numel() == 6 and len(t) == 2 and t.size() == (2, 3) and t.size(1) == 3
    assert isinstance(t.numpy(), np.ndarray)
    assert mc.Tensor([[4.0]]).item() == 4.0
    with pytest.raises(ValueError, match="one-element"):
        t.item()
    assert "requires_grad=True" in repr(mc.Tensor([1.0], requires_grad=True))


# ----- broadcasting is undone in one place, both ways --------------------------------------------------------
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("shapes", [((3, 4), (4,)), ((4,), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((), (2, 2))])
def test_broadcast_gradients(op, shapes, rng):
    a = t64(distinct(rng, shapes[0]) + 2)
    b = t64(distinct(rng, shapes[1]) + 2)
    gradcheck(getattr(F, op), a, b)
    assert a.grad.shape == a.shape and b.grad.shape == b.shape


def test_unbroadcast_names_the_op_on_a_wrong_gradient():
    from minicnn.autograd import Function

    class Broken(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum(keepdims=True)

        @staticmethod
        def backward(ctx, grad):
            return np.ones((5, 5))

    x = mc.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Broken.backward returned a gradient of shape \(5, 5\) for an input of shape \(2, 3\)"):
        Broken.apply(x).sum().backward()


# ----- gradient checks of every Tensor op (float64, random upstream gradient) --------------------------------
UNARY = {
    "neg": lambda t: -t,
    "pow2": lambda t: t ** 2,
    "pow_frac": lambda t: (t * t + 1) ** 1.5,
    "exp": lambda t: t.exp(),
    "log": lambda t: (t * t).log(),
    "rsub": lambda t: 3.0 - t,
    "rdiv": lambda t: 2.0 / t,
    "sum_all": lambda t: t.sum(),
    "sum_axis": lambda t: t.sum(axis=1),
    "sum_keep": lambda t: t.sum(axis=(0, 2), keepdims=True),
    "mean_all": lambda t: t.mean(),
    "mean_axis": lambda t: t.mean(axis=-1, keepdims=True),
    "max_all": lambda t: t.max(),
    "max_axis": lambda t: t.max(axis=1),
    "max_keep": lambda t: t.max(axis=(0, 2), keepdims=True),
    "reshape": lambda t: t.reshape(4, -1) * 1.5,
    "transpose": lambda t: t.transpose(0, 2),
    "permute": lambda t: t.permute(2, 0, 1),
    "T": lambda t: t.T,
    "flatten": lambda t: t.flatten(1),
    "slice": lambda t: t[1:, ::2, 1],
    "index_array": lambda t: t[[0, 0, 1]],      # a repeated index gets both gradients
    "relu": lambda t: t.relu(),
    "log_softmax": lambda t: F.log_softmax(t, axis=1),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_gradcheck_unary(name, rng):
    x = t64(distinct(rng, (2, 3, 4)))
    assert gradcheck(UNARY[name], x)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 2)), ((3, 4), (2, 4, 5))])
def test_gradcheck_matmul(shapes, rng):
    a, b = t64(rng.standard_normal(shapes[0])), t64(rng.standard_normal(shapes[1]))
    gradcheck(lambda p, q: p @ q, a, b)
    assert_close((a @ b).numpy(), a.numpy() @ b.numpy())


def test_max_splits_the_gradient_among_ties():
    x = mc.Tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]


def test_gradcheck_fails_on_a_wrong_gradient():
    """The checker itself must be able to fail: a deliberately wrong backward is caught with numbers shown."""
    from minicnn.autograd import Function

    class WrongSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved
            return grad * x          # should be 2x

    x = t64(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(AssertionError, match=r"3 of 3 elements differ[\s\S]*got .*expected"):
        gradcheck(WrongSquare.apply, x)


def test_under_no_grad_no_op_is_told_that_a_gradient_is_wanted():
    from minicnn.autograd import Function
    seen = []

    class Spy(Function):
        @staticmethod
        def forward(ctx, x):
            seen.append(ctx.needs_input_grad)
            return x

    w = mc.Tensor([1.0], requires_grad=True)
    Spy.apply(w)
    with mc.no_grad():
        Spy.apply(w)
    assert seen == [(True,), (False,)]
