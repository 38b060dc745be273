"""The fully connected layer's products as numpy states them (twin of ``minicnn/kernels/linear.py``)."""


def linear_forward(x, weight, bias):
    return x @ weight.T + bias


def linear_backward_input(grad_out, weight):
    return grad_out @ weight


def linear_backward_weight(grad_out, x):
    return grad_out.T @ x
