"""Taking a model elsewhere: its weights to and from PyTorch, safetensors files, and ONNX run by ONNX Runtime.
Each test runs when its optional package is installed (CI installs them all)."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import models, nn

from conftest import torch_or_skip

NAMES = list(models.MODELS)


def torch_twin(torch, module):
    """The same module tree in PyTorch, module by module (BlurPool2d: a fixed depthwise filter kept as a
    non-persistent buffer, so it adds no state_dict key, as minicnn's has none)."""
    tnn = torch.nn
    if isinstance(module, nn.Sequential):
        return tnn.Sequential(*[torch_twin(torch, m) for m in module])
    kind = type(module)
    if kind is nn.Conv2d:
        return tnn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                          module.dilation, module.groups, module.bias is not None)
    if kind is nn.Linear:
        return tnn.Linear(module.in_features, module.out_features, module.bias is not None)
    if kind is nn.MaxPool2d:
        return tnn.MaxPool2d(module.kernel_size, module.stride, module.padding, module.dilation,
                             ceil_mode=module.ceil_mode)
    if kind is nn.AvgPool2d:
        return tnn.AvgPool2d(module.kernel_size, module.stride, module.padding, module.ceil_mode,
                             module.count_include_pad)
    if kind is nn.GlobalAvgPool2d:
        return tnn.AdaptiveAvgPool2d(1)
    if kind is nn.ReLU:
        return tnn.ReLU()
    if kind is nn.Flatten:
        return tnn.Flatten(module.start_dim, module.end_dim)
    if kind is nn.BlurPool2d:
        class BlurPool(tnn.Module):
            def __init__(self, channels, stride):
                super().__init__()
                b = torch.tensor([1.0, 2.0, 1.0])
                self.register_buffer("filter", (torch.outer(b, b) / 16).expand(channels, 1, 3, 3).clone(),
                                     persistent=False)
                self.stride, self.channels = stride, channels

            def forward(self, x):
                x = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
                return torch.nn.functional.conv2d(x, self.filter, stride=self.stride, groups=self.channels)
        return BlurPool(module.channels, module.stride)
    raise NotImplementedError(kind.__name__)


@pytest.mark.parametrize("name", NAMES)
def test_weights_move_to_pytorch_and_back_with_the_same_outputs(name):
    torch = torch_or_skip()
    mc.manual_seed(0)
    ours = models.build(name).eval()
    theirs = torch_twin(torch, ours).eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})      # strict
    x = np.random.default_rng(0).random((6, 1, 28, 28)).astype(np.float32)
    with mc.no_grad(), torch.no_grad():
        np.testing.assert_allclose(ours(mc.Tensor(x)).numpy(), theirs(torch.from_numpy(x)).numpy(), rtol=1e-4,
                                   atol=1e-5)
        # and back: a PyTorch-initialised model's weights into a fresh minicnn model, fused or not
        torch.manual_seed(1)
        trained = torch_twin(torch, ours).eval()
        back = models.build(name)
        back.load_state_dict({k: v.numpy() for k, v in trained.state_dict().items()})
        fused = nn.fuse(models.build(name))
        fused.load_state_dict({k: v.numpy() for k, v in trained.state_dict().items()})
        expected = trained(torch.from_numpy(x)).numpy()
        for model in (back.eval(), fused.eval()):
            np.testing.assert_allclose(model(mc.Tensor(x)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_safetensors_round_trip_and_pytorch_reads_it(tmp_path):
    pytest.importorskip("safetensors")
    mc.manual_seed(0)
    model = nn.fuse(models.maxpool())
    checkpoint = {"model": model.state_dict(), "epoch": 3, "lr": 0.01, "finished": True, "name": "maxpool"}
    mc.save(checkpoint, tmp_path / "run.safetensors")
    back = mc.load(tmp_path / "run.safetensors")
    assert (back["epoch"], back["lr"], back["finished"], back["name"]) == (3, 0.01, True, "maxpool")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(back["model"][key], value)
    mc.save(model.state_dict(), tmp_path / "weights.safetensors")
    try:
        import safetensors.torch
        import torch
    except ImportError:
        return
    loaded = safetensors.torch.load_file(str(tmp_path / "weights.safetensors"))
    assert list(loaded) == list(model.state_dict()) or sorted(loaded) == sorted(model.state_dict())
    twin = torch_twin(torch, models.maxpool())
    twin.load_state_dict(loaded)
    (tmp_path / "broken.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match="broken.safetensors is not a readable safetensors file"):
        mc.load(tmp_path / "broken.safetensors")


def run_onnx(path, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("name", NAMES)
def test_every_pyramid_exports_to_onnx_and_runs_the_same(name, fused, tmp_path):
    onnx = pytest.importorskip("onnx")
    import minicnn.onnx
    mc.manual_seed(0)
    model = models.build(name)
    if name == "nopool":
        model = nn.Sequential(*list(model)[:-1], nn.Dropout(0.3), list(model)[-1])     # dropout: gone in eval
    model = nn.fuse(model) if fused else model
    x = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    proto = minicnn.onnx.export(model, x, tmp_path / "m.onnx")
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version >= 17
    model.eval()
    with mc.no_grad():
        expected = model(mc.Tensor(x)).numpy()
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x), expected, rtol=1e-4, atol=1e-5)
    bigger = np.random.default_rng(1).random((7, 1, 28, 28)).astype(np.float32)           # the batch stays free
    with mc.no_grad():
        np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", bigger), model(mc.Tensor(bigger)).numpy(),
                                   rtol=1e-4, atol=1e-5)


LAYERS = [
    lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1),
    lambda: nn.Conv2d(3, 6, (3, 2), stride=(1, 2), padding=(2, 0), dilation=(2, 1), groups=3),
    lambda: nn.Conv2d(3, 4, 4, padding="same", bias=False),
    lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True),
    lambda: nn.MaxPool2d(2, 1, 0, dilation=2),
    lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda: nn.AvgPool2d((2, 3), (2, 1), (1, 0), count_include_pad=True),
    lambda: nn.GlobalAvgPool2d(),
    lambda: nn.AdaptiveAvgPool2d(1),
    lambda: nn.BlurPool2d(3, 2),
    lambda: nn.ReLU(),
]


@pytest.mark.parametrize("make", LAYERS, ids=lambda make: repr(make()))
def test_single_layers_export_to_onnx(make, tmp_path):
    pytest.importorskip("onnx")
    import minicnn.onnx
    mc.manual_seed(0)
    model = nn.Sequential(make())
    x = np.random.default_rng(0).standard_normal((2, 3, 11, 10)).astype(np.float32)
    minicnn.onnx.export(model, x, tmp_path / "layer.onnx")
    with mc.no_grad():
        expected = model(mc.Tensor(x)).numpy()
    np.testing.assert_allclose(run_onnx(tmp_path / "layer.onnx", x), expected, rtol=1e-4, atol=1e-5)


def test_a_layer_without_an_export_is_named(tmp_path):
    pytest.importorskip("onnx")
    import minicnn.onnx
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveMaxPool2d(2))
    with pytest.raises(NotImplementedError, match=r"export: 1 \(AdaptiveMaxPool2d\) has no ONNX export"):
        minicnn.onnx.export(model, np.zeros((1, 1, 8, 8), np.float32), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
