"""The 'cuda' implementations (CUDA kernels). Importing this module builds or loads the extension
(only attempted when torch.cuda.is_available()); a failed build becomes an import error, which the
dispatcher turns into one warning and a fallback to the reference ops."""

from __future__ import annotations

from ops_cuda import _native, _native_ops

_IMPLS = _native_ops.make_impls(_native.load_extension("cuda"), "cuda")

bias_act_cuda = _IMPLS["bias_act"]
upfirdn2d_cuda = _IMPLS["upfirdn2d"]
filtered_lrelu_cuda = _IMPLS["filtered_lrelu"]
