"""Export a model to ONNX, so that it runs elsewhere (ONNX Runtime on a server or a phone, and the many
runtimes that read ONNX): ``minicnn.onnx.export(model, example_input, "model.onnx")``.

Needs the optional extra ``pip install "minicnn[onnx]"`` (the ``onnx`` package builds the graph with its
helper API; ``onnxruntime`` runs it). Each layer becomes the ONNX operators that compute the same numbers::

    Conv2d            Conv (strides, pads, dilations, group)           padding='same' as explicit pads
    Conv2dReLU        Conv, Relu                                       LinearReLU: Gemm, Relu
    Linear            Gemm (transB = 1: x @ Wᵀ + b)
    MaxPool2d         MaxPool (kernel_shape, strides, pads, dilations, ceil_mode)
    AvgPool2d         AveragePool (count_include_pad, ceil_mode)
    GlobalAvgPool2d   GlobalAveragePool                                AdaptiveAvgPool2d(1) too
    BlurPool2d        Pad (reflect), Conv with the fixed [1 2 1]ᵀ[1 2 1]/16 filter, one per channel
    ReLU, Flatten     Relu, Flatten                                    Dropout: nothing (evaluation)

The batch size is left free (the input is ``N × C × H × W`` with ``N`` named, not fixed). A layer with no
export here (``MaxUnpool2d``, adaptive pooling to other sizes, a custom Module) raises an error naming it.
Weights are stored as float32 initializers named by the model's ``state_dict`` keys.
"""
from __future__ import annotations

import numpy as np

from . import nn
from .serialization import atomic_write
from .shapes import pair, same_padding
from .tensor import Tensor

__all__ = ["export", "OPSET"]

#: The ONNX operator set the graphs use.
OPSET = 17


class _Graph:
    """The nodes and initializers being built, and a counter for fresh value names."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, stem):
        self.count += 1
        return f"{stem}_{self.count}"

    def constant(self, name, array, dtype=np.float32):
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array, dtype=dtype), name))
        return name

    def node(self, op, inputs, stem, **attributes):
        out = self.name(stem)
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attributes))
        return out


def _conv(graph, x, prefix, layer, relu):
    kernel = tuple(layer.kernel_size)
    if isinstance(layer.padding, str):
        (top, bottom), (left, right) = same_padding(kernel, layer.dilation) if layer.padding == "same" else (
            (0, 0), (0, 0))
    else:
        (top, left), (bottom, right) = layer.padding, layer.padding
    inputs = [x, graph.constant(prefix + "weight", layer.weight.numpy())]
    if layer.bias is not None:
        inputs.append(graph.constant(prefix + "bias", layer.bias.numpy()))
    y = graph.node("Conv", inputs, "conv", kernel_shape=list(kernel), strides=list(layer.stride),
                   pads=[top, left, bottom, right], dilations=list(layer.dilation), group=layer.groups)
    return graph.node("Relu", [y], "relu") if relu else y


def _linear(graph, x, prefix, layer, relu):
    inputs = [x, graph.constant(prefix + "weight", layer.weight.numpy())]
    if layer.bias is not None:
        inputs.append(graph.constant(prefix + "bias", layer.bias.numpy()))
    y = graph.node("Gemm", inputs, "gemm", transB=1)
    return graph.node("Relu", [y], "relu") if relu else y


def _pool(graph, x, layer, op, **extra):
    kernel = pair(layer.kernel_size, "kernel_size", "export")
    stride = pair(layer.stride, "stride", "export")
    (ph, pw) = pair(layer.padding, "padding", "export")
    return graph.node(op, [x], op.lower(), kernel_shape=list(kernel), strides=list(stride), pads=[ph, pw, ph, pw],
                      ceil_mode=int(layer.ceil_mode), **extra)


def _blur(graph, x, prefix, layer):
    pads = graph.constant(prefix + "blur_pads", [0, 0, 1, 1, 0, 0, 1, 1], np.int64)     # one row/column each side
    padded = graph.node("Pad", [x, pads], "pad", mode="reflect")
    b = np.array([1.0, 2.0, 1.0])
    weight = np.tile((np.outer(b, b) / 16.0)[None, None], (layer.channels, 1, 1, 1))
    return graph.node("Conv", [padded, graph.constant(prefix + "blur_filter", weight)], "blur", kernel_shape=[3, 3],
                      strides=[layer.stride, layer.stride], group=layer.channels)


def _layer(graph, x, prefix, layer):
    """The ONNX nodes of one layer on input value ``x``; returns the output value's name."""
    kind = type(layer)
    if kind in (nn.Conv2d, nn.Conv2dReLU):
        return _conv(graph, x, prefix, layer, relu=kind is nn.Conv2dReLU)
    if kind in (nn.Linear, nn.LinearReLU):
        return _linear(graph, x, prefix, layer, relu=kind is nn.LinearReLU)
    if kind is nn.ReLU:
        return graph.node("Relu", [x], "relu")
    if kind is nn.MaxPool2d:
        if layer.return_indices:
            raise NotImplementedError(f"export: {prefix.rstrip('.') or 'the model'}: MaxPool2d(return_indices=True) "
                                      "has no export here")
        return _pool(graph, x, layer, "MaxPool", dilations=list(pair(layer.dilation, "dilation", "export")))
    if kind is nn.AvgPool2d:
        if layer.divisor_override is not None:
            raise NotImplementedError(f"export: {prefix.rstrip('.')}: AvgPool2d(divisor_override=...) has no ONNX "
                                      "operator")
        return _pool(graph, x, layer, "AveragePool", count_include_pad=int(layer.count_include_pad))
    if kind is nn.GlobalAvgPool2d or (kind is nn.AdaptiveAvgPool2d and layer.output_size in (1, (1, 1))):
        return graph.node("GlobalAveragePool", [x], "gap")
    if kind is nn.BlurPool2d:
        return _blur(graph, x, prefix, layer)
    if kind is nn.Flatten:
        if layer.start_dim != 1 or layer.end_dim != -1:
            raise NotImplementedError(f"export: {prefix.rstrip('.')}: Flatten other than (1, -1) has no export here")
        return graph.node("Flatten", [x], "flatten", axis=1)
    if kind is nn.Dropout:
        return x                                         # evaluation: dropout does nothing
    if kind is nn.Sequential:
        for name, child in layer.named_children():
            x = _layer(graph, x, f"{prefix}{name}.", child)
        return x
    where = prefix.rstrip(".") or "the model"
    raise NotImplementedError(f"export: {where} ({kind.__name__}) has no ONNX export here (exported: "
                              "Conv2d, Linear, their fused forms, ReLU, MaxPool2d, AvgPool2d, GlobalAvgPool2d, "
                              "BlurPool2d, Flatten, Dropout, Sequential)")


def export(model: nn.Module, example_input, path, opset: int = OPSET, check: bool = True):
    """Write ``model`` as an ONNX graph to ``path`` (atomically) and return the ``onnx.ModelProto``.

    Args:
        model: an ``nn.Sequential`` of the layers listed in the module docstring (fused or not).
        example_input: a Tensor or array (N, C, H, W): its C, H, W fix the graph's input; N stays free.
        path: where to write the ``.onnx`` file.
        opset: the ONNX operator set (17 or later).
        check: run ``onnx.checker.check_model`` on the result.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ImportError("minicnn.onnx.export needs the onnx package: pip install \"minicnn[onnx]\"") from None
    if opset < 17:
        raise ValueError(f"export: opset must be 17 or later, got {opset}")
    x = example_input.data if isinstance(example_input, Tensor) else np.asarray(example_input)
    if x.ndim != 4:
        raise ValueError(f"export: example_input must be (N, C, H, W), got shape {x.shape}")
    graph = _Graph(helper, numpy_helper)
    output = _layer(graph, "input", "", model)
    with_batch = ["N"] + list(x.shape[1:])
    with __import__("minicnn").no_grad():
        was_training = model.training
        model.eval()
        try:
            out_shape = model(Tensor(x[:1].astype(np.float32))).shape
        finally:
            model.train(was_training)
    onnx_graph = helper.make_graph(
        graph.nodes, type(model).__name__, [helper.make_tensor_value_info("input", TensorProto.FLOAT, with_batch)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N"] + list(out_shape[1:]))], graph.initializers)
    proto = helper.make_model(onnx_graph, producer_name="minicnn", opset_imports=[helper.make_opsetid("", opset)])
    if check:
        onnx.checker.check_model(proto)
    with atomic_write(path) as f:
        f.write(proto.SerializeToString())
    return proto
