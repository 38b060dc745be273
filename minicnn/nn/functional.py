"""``minicnn.nn.functional``: every function of ``minicnn.functional``, under the name PyTorch code imports
(``import torch.nn.functional as F``)."""
from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
