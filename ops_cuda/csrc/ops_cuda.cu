// CUDA kernels of bias_act, upfirdn2d and the fused filtered_lrelu.
//
// Same conventions as ops_cpu.cpp: filters arrive flipped for a correlation with their gain folded
// in, as float32 (float64 for double inputs); half inputs are computed in float. The activation
// and polyphase index maths come from ops_common.h, which the CPU kernels (and their tests) share.
// Only c10/cuda headers are used (ATen/cuda/CUDAContext.h pulls in cuSPARSE headers).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include <string>
#include <tuple>
#include <type_traits>

#include "ops_common.h"
#include "ops_cuda_kernels.h"

// A CUDA build of PyTorch ships the generated c10/cuda/impl/cuda_cmake_macros.h; a CPU-only wheel
// (where these sources are only compile-checked, never loaded) does not, so there the launches go
// to the default stream of the tensor's device through the plain CUDA runtime.
#if __has_include(<c10/cuda/impl/cuda_cmake_macros.h>)
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define OPS_DEVICE_GUARD(t) c10::cuda::CUDAGuard ops_device_guard_(t.device())
#define OPS_CURRENT_STREAM() static_cast<cudaStream_t>(c10::cuda::getCurrentCUDAStream())
#define OPS_LAUNCH_CHECK() C10_CUDA_KERNEL_LAUNCH_CHECK()
#else
#include <cuda_runtime.h>
namespace {
struct DeviceGuard {  // restores the previous device on scope exit
  int previous = 0;
  explicit DeviceGuard(int index) {
    cudaGetDevice(&previous);
    cudaSetDevice(index);
  }
  ~DeviceGuard() { cudaSetDevice(previous); }
};
}  // namespace
#define OPS_DEVICE_GUARD(t) DeviceGuard ops_device_guard_(t.device().index())
#define OPS_CURRENT_STREAM() static_cast<cudaStream_t>(nullptr)
#define OPS_LAUNCH_CHECK()                                                                      \
  do {                                                                                          \
    cudaError_t err = cudaGetLastError();                                                       \
    TORCH_CHECK(err == cudaSuccess, "CUDA kernel launch failed: ", cudaGetErrorString(err));    \
  } while (0)
#endif

namespace {

using namespace ops_cuda_kernels;

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 * 32 ? (b > 0 ? b : 1) : 65535 * 32);
}

#define OPS_LAUNCH_ACT(act, KERNEL, ...)                                                                     \
  switch (act) {                                                                                             \
    case ops::ACT_LINEAR: KERNEL<ops::ACT_LINEAR, scalar_t><<<grid, kThreads, 0, stream>>>(__VA_ARGS__); break; \
    case ops::ACT_RELU: KERNEL<ops::ACT_RELU, scalar_t><<<grid, kThreads, 0, stream>>>(__VA_ARGS__); break;     \
    case ops::ACT_LRELU: KERNEL<ops::ACT_LRELU, scalar_t><<<grid, kThreads, 0, stream>>>(__VA_ARGS__); break;   \
    case ops::ACT_TANH: KERNEL<ops::ACT_TANH, scalar_t><<<grid, kThreads, 0, stream>>>(__VA_ARGS__); break;     \
    case ops::ACT_SIGMOID: KERNEL<ops::ACT_SIGMOID, scalar_t><<<grid, kThreads, 0, stream>>>(__VA_ARGS__); break; \
    case ops::ACT_ELU: KERNEL<ops::ACT_ELU, scalar_t><<<grid, kThreads, 0, stream>>>(__VA_ARGS__); break;       \
    case ops::ACT_SELU: KERNEL<ops::ACT_SELU, scalar_t><<<grid, kThreads, 0, stream>>>(__VA_ARGS__); break;     \
    case ops::ACT_SOFTPLUS: KERNEL<ops::ACT_SOFTPLUS, scalar_t><<<grid, kThreads, 0, stream>>>(__VA_ARGS__); break; \
    case ops::ACT_SWISH: KERNEL<ops::ACT_SWISH, scalar_t><<<grid, kThreads, 0, stream>>>(__VA_ARGS__); break;   \
    default: TORCH_CHECK(false, "bias_act: unknown activation id ", act);                                   \
  }

void bias_act_geometry(const at::Tensor& x, int64_t dim, int64_t& C, int64_t& inner) {
  C = x.dim() ? x.size(dim) : 1;
  inner = 1;
  for (int64_t i = dim + 1; i < x.dim(); i++) inner *= x.size(i);
  if (inner == 0) inner = 1;
}

void check_cuda(const at::Tensor& t, const at::Tensor& x, const char* what) {
  TORCH_CHECK(t.numel() == 0 || (t.is_cuda() && t.device() == x.device() && t.is_contiguous()), what,
              " must be a contiguous CUDA tensor on x's device");
}


at::ScalarType filter_type(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

void check_filter(const at::Tensor& w, const at::Tensor& x, const char* name) {
  TORCH_CHECK((w.dim() == 1 || w.dim() == 2) && w.numel() > 0 && w.is_contiguous() &&
                  w.scalar_type() == filter_type(x) && w.device() == x.device(),
              name, ": the filter must be a contiguous non-empty 1-D or 2-D float32 (float64 for double x) "
              "tensor on x's device");
}

// What bias_act's forward and gradient share: the checks of x and b, the device, the output (like
// x), the launch geometry, the dtype dispatch and the launch check. `launch(bp, out, C, inner, grid,
// stream)` starts the kernel with typed pointers (scalar_t is the pointee type of `out`).
template <typename Launch>
at::Tensor bias_act_launch(const std::string& what, const at::Tensor& x, const at::Tensor& b, int64_t dim,
                           const Launch& launch) {
  TORCH_CHECK(x.is_cuda() && x.is_contiguous(), what, ": x must be a contiguous CUDA tensor");
  check_cuda(b, x, (what + ": b").c_str());
  OPS_DEVICE_GUARD(x);
  auto out = at::empty_like(x);
  if (x.numel() == 0) return out;
  int64_t C, inner;
  bias_act_geometry(x, dim, C, inner);
  const cudaStream_t stream = OPS_CURRENT_STREAM();
  const int grid = blocks_for(x.numel());
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "bias_act_cuda", [&] {
    const scalar_t* bp = b.numel() ? b.data_ptr<scalar_t>() : nullptr;
    launch(bp, out.data_ptr<scalar_t>(), C, inner, grid, stream);
  });
  OPS_LAUNCH_CHECK();
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Host entry points (bound to Python in cuda_bind.cpp).

at::Tensor bias_act_fwd_cuda(at::Tensor x, at::Tensor b, int64_t dim, int64_t act, double alpha, double gain,
                             double clamp) {
  return bias_act_launch("bias_act", x, b, dim, [&](auto bp, auto yp, int64_t C, int64_t inner, int grid,
                                                    cudaStream_t stream) {
    using scalar_t = std::remove_pointer_t<decltype(yp)>;
    OPS_LAUNCH_ACT(act, bias_act_fwd_kernel, x.data_ptr<scalar_t>(), bp, yp, x.numel(), C, inner, float(alpha),
                   float(gain), float(clamp));
  });
}

at::Tensor bias_act_grad_cuda(at::Tensor dy, at::Tensor x, at::Tensor b, int64_t dim, int64_t act, double alpha,
                              double gain, double clamp) {
  TORCH_CHECK(dy.sizes() == x.sizes() && dy.is_contiguous() && dy.scalar_type() == x.scalar_type(),
              "bias_act_grad: dy must be contiguous and match x");
  return bias_act_launch("bias_act_grad", x, b, dim, [&](auto bp, auto dxp, int64_t C, int64_t inner, int grid,
                                                         cudaStream_t stream) {
    using scalar_t = std::remove_pointer_t<decltype(dxp)>;
    OPS_LAUNCH_ACT(act, bias_act_grad_kernel, dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), bp, dxp,
                   x.numel(), C, inner, float(alpha), float(gain), float(clamp));
  });
}

at::Tensor upfirdn2d_cuda(at::Tensor x, at::Tensor w, int64_t upx, int64_t upy, int64_t downx, int64_t downy,
                          int64_t px0, int64_t px1, int64_t py0, int64_t py1) {
  TORCH_CHECK(x.is_cuda() && x.dim() == 4 && x.is_contiguous(),
              "upfirdn2d: x must be a contiguous [N, C, H, W] CUDA tensor");
  check_filter(w, x, "upfirdn2d");
  TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: up/down must be >= 1");
  OPS_DEVICE_GUARD(x);
  const bool separable = w.dim() == 1;
  const int fw = w.size(-1), fh = w.size(0);
  const int N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int Wo = ops::upfirdn_out_size(W, upx, downx, px0, px1, fw);
  const int Ho = ops::upfirdn_out_size(H, upy, downy, py0, py1, fh);
  TORCH_CHECK(Wo > 0 && Ho > 0, "upfirdn2d: the output would be empty; use a larger input or more padding");
  auto y = at::empty({N, C, Ho, Wo}, x.options());
  if (x.numel() == 0) return y.zero_();
  cudaStream_t stream = OPS_CURRENT_STREAM();
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "upfirdn2d_cuda", [&] {
    using w_t = std::conditional_t<std::is_same<scalar_t, double>::value, double, float>;
    upfirdn2d_kernel<scalar_t, w_t><<<blocks_for(y.numel()), kThreads, 0, stream>>>(
        x.data_ptr<scalar_t>(), w.data_ptr<w_t>(), y.data_ptr<scalar_t>(), int64_t(N) * C, H, W, Ho, Wo, upx,
        upy, downx, downy, px0, py0, fw, fh, separable);
  });
  OPS_LAUNCH_CHECK();
  return y;
}

// The checks and tile geometry forward and backward share; `what` names the op in errors.
FlreluGeom checked_flrelu_geometry(const char* what, const at::Tensor& x, const at::Tensor& fu, const at::Tensor& fd,
                                   const at::Tensor& b, int64_t up, int64_t down, int64_t px0, int64_t px1,
                                   int64_t py0, int64_t py1, size_t& smem) {
  const std::string name(what);
  TORCH_CHECK(x.is_cuda() && x.dim() == 4 && x.is_contiguous(), name, ": x must be a contiguous [N, C, H, W] CUDA tensor");
  check_filter(fu, x, (name + " (fu)").c_str());
  check_filter(fd, x, (name + " (fd)").c_str());
  check_cuda(b, x, (name + ": b").c_str());
  TORCH_CHECK(up >= 1 && down >= 1, name, ": up and down must be >= 1");
  const size_t acc_size = x.scalar_type() == at::kDouble ? sizeof(double) : sizeof(float);
  FlreluGeom g = flrelu_geometry(x.size(2), x.size(3), up, down, px0, px1, py0, py1, fu.size(-1), fu.size(0),
                                 fu.dim() == 1, fd.size(-1), fd.size(0), fd.dim() == 1, acc_size, 48 * 1024, smem);
  TORCH_CHECK(g.Wm > 0 && g.Hm > 0 && g.Wo > 0 && g.Ho > 0, name,
              ": the output would be empty; check the padding and filter sizes");
  TORCH_CHECK(int64_t(x.size(0)) * x.size(1) <= 65535, name, ": at most 65535 images x channels per call on CUDA");
  return g;
}

at::Tensor filtered_lrelu_fwd_cuda(at::Tensor x, at::Tensor fu, at::Tensor fd, at::Tensor b, int64_t up,
                                   int64_t down, int64_t px0, int64_t px1, int64_t py0, int64_t py1, double gain,
                                   double slope, double clamp) {
  size_t smem = 0;
  FlreluGeom g = checked_flrelu_geometry("filtered_lrelu", x, fu, fd, b, up, down, px0, px1, py0, py1, smem);
  TORCH_CHECK(smem > 0, "filtered_lrelu: the filters are too large for the CUDA kernel; use impl='ref'");
  OPS_DEVICE_GUARD(x);
  const int N = x.size(0), C = x.size(1);
  auto y = at::empty({N, C, g.Ho, g.Wo}, x.options());
  if (x.numel() == 0) return y.zero_();
  dim3 grid((g.Wo + g.TW - 1) / g.TW, (g.Ho + g.TH - 1) / g.TH, N * C);
  cudaStream_t stream = OPS_CURRENT_STREAM();
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "filtered_lrelu_cuda", [&] {
    using w_t = std::conditional_t<std::is_same<scalar_t, double>::value, double, float>;
    const scalar_t* bp = b.numel() ? b.data_ptr<scalar_t>() : nullptr;
    filtered_lrelu_kernel<scalar_t, w_t><<<grid, kThreads, smem, stream>>>(
        x.data_ptr<scalar_t>(), bp, fu.data_ptr<w_t>(), fd.data_ptr<w_t>(), y.data_ptr<scalar_t>(), g, C,
        float(gain), float(slope), float(clamp));
  });
  OPS_LAUNCH_CHECK();
  return y;
}

// Fused first-order backward: dx, and the per-plane sums of dx [N, C] (db is their sum over N).
std::tuple<at::Tensor, at::Tensor> filtered_lrelu_grad_cuda(at::Tensor dy, at::Tensor x, at::Tensor fu,
                                                            at::Tensor fd, at::Tensor b, int64_t up, int64_t down,
                                                            int64_t px0, int64_t px1, int64_t py0, int64_t py1,
                                                            double gain, double slope, double clamp) {
  size_t smem = 0;
  FlreluGeom g = checked_flrelu_geometry("filtered_lrelu_grad", x, fu, fd, b, up, down, px0, px1, py0, py1, smem);
  OPS_DEVICE_GUARD(x);
  const bool fu_sep = fu.dim() == 1, fd_sep = fd.dim() == 1;
  const int N = x.size(0), C = x.size(1);
  TORCH_CHECK(dy.is_cuda() && dy.device() == x.device() && dy.is_contiguous() && dy.scalar_type() == x.scalar_type() &&
                  dy.dim() == 4 && dy.size(0) == N && dy.size(1) == C && dy.size(2) == g.Ho && dy.size(3) == g.Wo,
              "filtered_lrelu_grad: dy must be a contiguous CUDA tensor of x's dtype shaped like the output");
  flrelu_grad_tiles(g, x.scalar_type() == at::kDouble ? sizeof(double) : sizeof(float), 48 * 1024, smem);
  TORCH_CHECK(smem > 0, "filtered_lrelu_grad: the filters are too large for the CUDA kernel; use impl='ref'");
  auto dx = at::empty_like(x);
  if (x.numel() == 0) return {dx.zero_(), at::zeros({N, C}, x.options())};
  const auto fut = fu.flip(fu_sep ? at::IntArrayRef{0} : at::IntArrayRef{0, 1}).contiguous();
  const auto fdt = fd.flip(fd_sep ? at::IntArrayRef{0} : at::IntArrayRef{0, 1}).contiguous();
  dim3 grid((g.W + g.TW - 1) / g.TW, (g.H + g.TH - 1) / g.TH, N * C);
  cudaStream_t stream = OPS_CURRENT_STREAM();
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "filtered_lrelu_grad_cuda", [&] {
    using w_t = std::conditional_t<std::is_same<scalar_t, double>::value, double, float>;
    const scalar_t* bp = b.numel() ? b.data_ptr<scalar_t>() : nullptr;
    filtered_lrelu_grad_kernel<scalar_t, w_t><<<grid, kThreads, smem, stream>>>(
        dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), bp, fu.data_ptr<w_t>(), fut.data_ptr<w_t>(),
        fdt.data_ptr<w_t>(), dx.data_ptr<scalar_t>(), g, C, float(gain), float(slope), float(clamp));
  });
  OPS_LAUNCH_CHECK();
  return {dx, dx.sum({2, 3})};
}
