"""Bad input gets a clear error naming the argument, what was expected and what came; never a wrong answer."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import nn, optim


def img(*shape):
    return mc.Tensor(np.zeros(shape, dtype=np.float32))


@pytest.mark.parametrize("call, error, message", [
    (lambda: nn.Conv2d(1, 6, 5)(img(28, 28)), ValueError, r"conv2d: expected a 4-D \(N, C, H, W\) or 3-D \(C, H, W\) input, got 2-D input of shape \(28, 28\)"),
    (lambda: nn.MaxPool2d(2)(img(1, 1, 1, 2, 2)), ValueError, r"max_pool2d: expected a 4-D .* got 5-D"),
    (lambda: nn.Conv2d(3, 6, 5)(img(2, 1, 28, 28)), ValueError, r"conv2d: expected input with 3 channels .*got 1 channels"),
    (lambda: nn.Conv2d(1, 6, 5)(img(1, 1, 3, 3)), ValueError, r"conv2d: kernel_size \(5, 5\) is larger than the padded input \(3, 3\)"),
    (lambda: nn.Conv2d(1, 6, 5, padding=1)(img(1, 1, 2, 2)), ValueError, r"larger than the padded input \(4, 4\)"),
    (lambda: nn.MaxPool2d(4)(img(1, 1, 3, 3)), ValueError, r"max_pool2d: kernel_size \(4, 4\) is larger than the padded input \(3, 3\)"),
    (lambda: nn.Conv2d(1, 6, 5, stride=0), ValueError, r"Conv2d: stride must be positive, got \(0, 0\)"),
    (lambda: F.conv2d(img(1, 1, 8, 8), img(2, 1, 3, 3), stride=(1, -1)), ValueError, r"conv2d: stride must be positive, got \(1, -1\)"),
    (lambda: nn.MaxPool2d(2, stride=0), ValueError, r"MaxPool2d: stride must be positive, got \(0, 0\)"),
    (lambda: F.avg_pool2d(img(1, 1, 8, 8), 2, stride=0), ValueError, r"avg_pool2d: stride must be positive"),
    (lambda: nn.Conv2d(1, 6, 5, padding=-1), ValueError, r"Conv2d: padding must be non-negative, got \(-1, -1\)"),
    (lambda: nn.MaxPool2d(3, padding=2), ValueError, r"MaxPool2d: padding must be at most half of kernel_size \(3, 3\), i.e. at most \(1, 1\), got \(2, 2\)"),
    (lambda: F.avg_pool2d(img(1, 1, 8, 8), 2, padding=(0, 2)), ValueError, r"avg_pool2d: padding must be at most half"),
    (lambda: nn.Conv2d(1, 6, 2.5), TypeError, r"Conv2d: kernel_size must be an int or a pair of ints, got 2.5"),
    (lambda: nn.Conv2d(0, 6, 3), ValueError, r"Conv2d: in_channels must be a positive int, got 0"),
    (lambda: nn.Linear(4, 2)(img(3, 5)), ValueError, r"linear: expected input with 4 features .*got input of shape \(3, 5\)"),
    (lambda: F.cross_entropy(img(4, 10), [0, 1, 2, 10]), ValueError, r"cross_entropy: target labels must be in \[0, 9\] for 10 classes, got 10"),
    (lambda: F.cross_entropy(img(4, 10), [0, 1, -1, 2]), ValueError, r"got -1"),
    (lambda: F.cross_entropy(img(4, 10), [0, 1]), ValueError, r"cross_entropy: expected target of shape \(4,\) .*got \(2,\)"),
    (lambda: F.cross_entropy(img(4, 10), np.array([0.5, 1, 2, 3])), TypeError, r"cross_entropy: target must hold integer class labels, got dtype float64"),
    (lambda: F.cross_entropy(img(4, 10, 1), [0, 1, 2, 3]), ValueError, r"cross_entropy: expected target of shape \(4, 1\) .*got \(4,\)"),
    (lambda: F.conv2d(img(1, 1, 8, 8), mc.Tensor(np.zeros((2, 1, 3, 3)), dtype=np.float64)), TypeError, r"conv2d: input, weight must have the same dtype, got input=float32, weight=float64"),
    (lambda: img(2, 3) @ img(4, 2), ValueError, r"matmul: inner dimensions differ: \(2, 3\) @ \(4, 2\)"),
    (lambda: img(2, 3).reshape(4, 2), ValueError, r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into shape \(4, 2\)"),
    (lambda: F.mse_loss(img(2, 3), img(3, 2)), ValueError, r"mse_loss: input and target must have the same shape"),
    (lambda: optim.SGD([mc.nn.Parameter([1.0])], lr=-1), ValueError, r"SGD: lr must be a finite, non-negative number, got -1"),
    (lambda: optim.SGD([], lr=0.1), ValueError, r"SGD: got an empty parameter list"),
    (lambda: optim.Adam([mc.nn.Parameter([1.0])], betas=(0.9, 1.0)), ValueError, r"Adam: betas must be two numbers in \[0, 1\)"),
    (lambda: nn.Dropout(1.5), ValueError, r"Dropout: p must be a probability in \[0, 1\], got 1.5"),
    (lambda: nn.BlurPool2d(6)(img(1, 3, 8, 8)), ValueError, r"BlurPool2d: expected input with 6 channels, got shape \(1, 3, 8, 8\)"),
    (lambda: F.blur_pool2d(img(1, 1, 1, 8)), ValueError, r"blur_pool2d: reflect padding needs an input of at least 2 × 2, got \(1, 8\)"),
    (lambda: F.blur_pool2d(img(1, 1, 8, 8), stride=0), ValueError, r"blur_pool2d: stride must be positive, got 0"),
    (lambda: mc.manual_seed(-1), ValueError, r"manual_seed: seed must be a non-negative int, got -1"),
])
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
