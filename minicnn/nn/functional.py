"""``minicnn.nn.functional`` is ``minicnn.functional``, as ``torch.nn.functional`` is where PyTorch code looks."""
import sys

from .. import functional

sys.modules[__name__] = functional
