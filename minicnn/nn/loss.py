"""The loss modules: ``CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``, each holding its options and calling its
``minicnn.functional`` op (``functional/loss.py`` has the formulas and the options' meaning)."""
from .. import functional as F
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss"]


class CrossEntropyLoss(Module):
    """``F.cross_entropy(input, target, ...)`` with its options fixed: PyTorch's arguments and defaults."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__()
        F.loss._legacy("CrossEntropyLoss", size_average=size_average, reduce=reduce)
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, F.loss._reduction(reduction,
                                                                                                 "CrossEntropyLoss")
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class NLLLoss(Module):
    """``F.nll_loss(input, target, ...)`` with its options fixed."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean"):
        super().__init__()
        F.loss._legacy("NLLLoss", size_average=size_average, reduce=reduce)
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, F.loss._reduction(reduction, "NLLLoss")

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(Module):
    """``F.mse_loss(input, target, reduction)``."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        F.loss._legacy("MSELoss", size_average=size_average, reduce=reduce)
        self.reduction = F.loss._reduction(reduction, "MSELoss")

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)
