// CUDA kernels of bias_act, upfirdn2d and the fused filtered_lrelu.
//
// Same conventions as ops_cpu.cpp: filters arrive flipped for a correlation with their gain folded
// in, as float32 (float64 for double inputs); half inputs are computed in float. The activation
// and polyphase index maths come from ops_common.h, which the CPU kernels (and their tests) share.
// Only c10/cuda headers are used (ATen/cuda/CUDAContext.h pulls in cuSPARSE headers).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include <type_traits>

#include "ops_common.h"

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

using ops::TapRange;

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 * 32 ? (b > 0 ? b : 1) : 65535 * 32);
}

// ---------------------------------------------------------------------------------------------
// bias_act: x viewed as [rows, inner], bias index = row % C.

template <int A, typename scalar_t>
__global__ void bias_act_fwd_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ b,
                                    scalar_t* __restrict__ y, int64_t n, int64_t C, int64_t inner,
                                    float alpha, float gain, float clamp) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    acc_t v = static_cast<acc_t>(x[i]);
    if (b) v += static_cast<acc_t>(b[(i / inner) % C]);
    y[i] = static_cast<scalar_t>(ops::clamp_fwd(ops::act_fwd<A>(v, acc_t(alpha)) * acc_t(gain), acc_t(clamp)));
  }
}

template <int A, typename scalar_t>
__global__ void bias_act_grad_kernel(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
                                     const scalar_t* __restrict__ b, scalar_t* __restrict__ dx, int64_t n,
                                     int64_t C, int64_t inner, float alpha, float gain, float clamp) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    acc_t v = static_cast<acc_t>(x[i]);
    if (b) v += static_cast<acc_t>(b[(i / inner) % C]);
    const acc_t yv = ops::act_fwd<A>(v, acc_t(alpha)) * acc_t(gain);
    const acc_t g = static_cast<acc_t>(dy[i]) * acc_t(gain) * ops::act_grad<A>(v, acc_t(alpha)) *
                    ops::clamp_grad(yv, acc_t(clamp));
    dx[i] = static_cast<scalar_t>(g);
  }
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

// ---------------------------------------------------------------------------------------------
// upfirdn2d: one thread per output sample; separable filters are the outer product w[ky] * w[kx].

template <typename scalar_t, typename w_t>
__global__ void upfirdn2d_kernel(const scalar_t* __restrict__ x, const w_t* __restrict__ w,
                                 scalar_t* __restrict__ y, int64_t planes, int H, int W, int Ho, int Wo,
                                 int upx, int upy, int downx, int downy, int px0, int py0, int fw, int fh,
                                 bool separable) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t n = planes * Ho * Wo;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int ox = static_cast<int>(i % Wo);
    const int oy = static_cast<int>((i / Wo) % Ho);
    const int64_t p = i / (int64_t(Wo) * Ho);
    const scalar_t* xp = x + p * H * W;
    const TapRange ty = ops::tap_range(oy, upy, downy, py0, fh, H);
    const TapRange tx = ops::tap_range(ox, upx, downx, px0, fw, W);
    acc_t acc = 0;
    for (int a = 0; a < ty.count; a++) {
      const int ky = ty.k0 + upy * a;
      const scalar_t* row = xp + int64_t(ty.s0 + a) * W;
      acc_t racc = 0;
      for (int b = 0; b < tx.count; b++) {
        const int kx = tx.k0 + upx * b;
        const acc_t wk = separable ? acc_t(w[kx]) : acc_t(w[ky * fw + kx]);
        racc += wk * static_cast<acc_t>(row[tx.s0 + b]);
      }
      acc += separable ? acc_t(w[ky]) * racc : racc;
    }
    y[i] = static_cast<scalar_t>(acc);
  }
}

// ---------------------------------------------------------------------------------------------
// filtered_lrelu, fused per output tile in shared memory:
//   input tile (+bias) -> [horizontal up pass] -> vertical up pass + activation (tile of the
//   upsampled signal) -> [vertical down pass] -> horizontal down pass -> output tile.
// The upsampled signal only ever exists tile by tile in shared memory.

struct FlreluGeom {
  int H, W, Hm, Wm, Ho, Wo;
  int up, down, px0, py0;
  int fuw, fuh, fdw, fdh;
  bool fu_sep, fd_sep;
  int TH, TW;  // output tile
};

struct TileSizes {
  int AH, AW;  // activated region
  int IH, IW;  // input region
  size_t floats;
};

OPS_HD inline int input_span(int a_len, int up, int taps) {
  // Input samples touched by a_len consecutive upsampled positions (worst case over alignment).
  return (a_len + taps - 2) / up + 2;
}

OPS_HD inline TileSizes tile_sizes(const FlreluGeom& g, int TH, int TW) {
  TileSizes t;
  t.AH = (TH - 1) * g.down + g.fdh;
  t.AW = (TW - 1) * g.down + g.fdw;
  t.IH = input_span(t.AH, g.up, g.fuh);
  t.IW = input_span(t.AW, g.up, g.fuw);
  size_t f = size_t(t.IH) * t.IW + size_t(t.AH) * t.AW;
  if (g.fu_sep) f += size_t(t.IH) * t.AW;
  if (g.fd_sep) f += size_t(TH) * t.AW;
  t.floats = f;
  return t;
}

template <typename scalar_t, typename w_t>
__global__ void filtered_lrelu_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ b,
                                      const w_t* __restrict__ fu, const w_t* __restrict__ fd,
                                      scalar_t* __restrict__ y, FlreluGeom g, int C, float gain, float slope,
                                      float clamp) {
  using acc_t = at::opmath_type<scalar_t>;
  extern __shared__ unsigned char smem_raw[];
  acc_t* smem = reinterpret_cast<acc_t*>(smem_raw);

  const int64_t p = blockIdx.z;
  const int oy0 = blockIdx.y * g.TH, ox0 = blockIdx.x * g.TW;
  const int TH = min(g.TH, g.Ho - oy0), TW = min(g.TW, g.Wo - ox0);
  const int AH = (TH - 1) * g.down + g.fdh, AW = (TW - 1) * g.down + g.fdw;
  const int Ay0 = oy0 * g.down, Ax0 = ox0 * g.down;  // first activated row / column of the tile
  // Input rows/cols that feed the activated region.
  const int sy0 = ops::ceil_div(Ay0 - g.py0, g.up);
  const int sx0 = ops::ceil_div(Ax0 - g.px0, g.up);
  const int IH = ops::floor_div(Ay0 + AH - 1 - g.py0 + g.fuh - 1, g.up) - sy0 + 1;
  const int IW = ops::floor_div(Ax0 + AW - 1 - g.px0 + g.fuw - 1, g.up) - sx0 + 1;
  const int AWs = (g.TW - 1) * g.down + g.fdw;  // row stride of the full-size tile buffers
  const TileSizes full = tile_sizes(g, g.TH, g.TW);

  acc_t* X = smem;                                    // [IH][IW]
  acc_t* HX = X + size_t(full.IH) * full.IW;          // [IH][AWs] (separable fu)
  acc_t* A = HX + (g.fu_sep ? size_t(full.IH) * AWs : 0);  // [AH][AWs]
  acc_t* D = A + size_t(full.AH) * AWs;               // [TH][AWs] (separable fd)

  const scalar_t* xp = x + p * g.H * g.W;
  const acc_t bias = b ? static_cast<acc_t>(b[p % C]) : acc_t(0);
  for (int i = threadIdx.x; i < IH * IW; i += blockDim.x) {
    const int r = i / IW, c = i % IW;
    const int sy = sy0 + r, sx = sx0 + c;
    const bool inside = sy >= 0 && sy < g.H && sx >= 0 && sx < g.W;
    X[r * IW + c] = inside ? static_cast<acc_t>(xp[int64_t(sy) * g.W + sx]) + bias : acc_t(0);
  }
  __syncthreads();

  const acc_t ag = gain, as = slope, ac = clamp;
  if (g.fu_sep) {
    for (int i = threadIdx.x; i < IH * AW; i += blockDim.x) {
      const int r = i / AW, c = i % AW;
      const TapRange t = ops::tap_range_unbounded(Ax0 + c, g.up, 1, g.px0, g.fuw);
      acc_t acc = 0;
      for (int k = 0; k < t.count; k++) acc += acc_t(fu[t.k0 + g.up * k]) * X[r * IW + (t.s0 + k - sx0)];
      HX[r * AWs + c] = acc;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < AH * AW; i += blockDim.x) {
      const int r = i / AW, c = i % AW;
      const TapRange t = ops::tap_range_unbounded(Ay0 + r, g.up, 1, g.py0, g.fuh);
      acc_t acc = 0;
      for (int k = 0; k < t.count; k++) acc += acc_t(fu[t.k0 + g.up * k]) * HX[(t.s0 + k - sy0) * AWs + c];
      A[r * AWs + c] = ops::flrelu_act(acc, as, ag, ac);
    }
  } else {
    for (int i = threadIdx.x; i < AH * AW; i += blockDim.x) {
      const int r = i / AW, c = i % AW;
      const TapRange ty = ops::tap_range_unbounded(Ay0 + r, g.up, 1, g.py0, g.fuh);
      const TapRange tx = ops::tap_range_unbounded(Ax0 + c, g.up, 1, g.px0, g.fuw);
      acc_t acc = 0;
      for (int a = 0; a < ty.count; a++) {
        const int ky = ty.k0 + g.up * a;
        const acc_t* row = X + (ty.s0 + a - sy0) * IW;
        for (int k = 0; k < tx.count; k++) acc += acc_t(fu[ky * g.fuw + tx.k0 + g.up * k]) * row[tx.s0 + k - sx0];
      }
      A[r * AWs + c] = ops::flrelu_act(acc, as, ag, ac);
    }
  }
  __syncthreads();

  scalar_t* yp = y + p * g.Ho * g.Wo;
  if (g.fd_sep) {
    for (int i = threadIdx.x; i < TH * AW; i += blockDim.x) {
      const int r = i / AW, c = i % AW;
      acc_t acc = 0;
      for (int k = 0; k < g.fdh; k++) acc += acc_t(fd[k]) * A[(r * g.down + k) * AWs + c];
      D[r * AWs + c] = acc;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < TH * TW; i += blockDim.x) {
      const int r = i / TW, c = i % TW;
      acc_t acc = 0;
      for (int k = 0; k < g.fdw; k++) acc += acc_t(fd[k]) * D[r * AWs + c * g.down + k];
      yp[int64_t(oy0 + r) * g.Wo + ox0 + c] = static_cast<scalar_t>(acc);
    }
  } else {
    for (int i = threadIdx.x; i < TH * TW; i += blockDim.x) {
      const int r = i / TW, c = i % TW;
      acc_t acc = 0;
      for (int ky = 0; ky < g.fdh; ky++) {
        const acc_t* row = A + (r * g.down + ky) * AWs + c * g.down;
        for (int kx = 0; kx < g.fdw; kx++) acc += acc_t(fd[ky * g.fdw + kx]) * row[kx];
      }
      yp[int64_t(oy0 + r) * g.Wo + ox0 + c] = static_cast<scalar_t>(acc);
    }
  }
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

}  // namespace

// ---------------------------------------------------------------------------------------------
// Host entry points (bound to Python in cuda_bind.cpp).

at::Tensor bias_act_fwd_cuda(at::Tensor x, at::Tensor b, int64_t dim, int64_t act, double alpha, double gain,
                             double clamp) {
  TORCH_CHECK(x.is_cuda() && x.is_contiguous(), "bias_act: x must be a contiguous CUDA tensor");
  check_cuda(b, x, "bias_act: b");
  OPS_DEVICE_GUARD(x);
  auto y = at::empty_like(x);
  if (x.numel() == 0) return y;
  int64_t C, inner;
  bias_act_geometry(x, dim, C, inner);
  cudaStream_t stream = OPS_CURRENT_STREAM();
  const int grid = blocks_for(x.numel());
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "bias_act_fwd_cuda", [&] {
    const scalar_t* bp = b.numel() ? b.data_ptr<scalar_t>() : nullptr;
    OPS_LAUNCH_ACT(act, bias_act_fwd_kernel, x.data_ptr<scalar_t>(), bp, y.data_ptr<scalar_t>(), x.numel(), C,
                   inner, float(alpha), float(gain), float(clamp));
  });
  OPS_LAUNCH_CHECK();
  return y;
}

at::Tensor bias_act_grad_cuda(at::Tensor dy, at::Tensor x, at::Tensor b, int64_t dim, int64_t act, double alpha,
                              double gain, double clamp) {
  TORCH_CHECK(x.is_cuda() && x.is_contiguous(), "bias_act_grad: x must be a contiguous CUDA tensor");
  TORCH_CHECK(dy.sizes() == x.sizes() && dy.is_contiguous() && dy.scalar_type() == x.scalar_type(),
              "bias_act_grad: dy must be contiguous and match x");
  check_cuda(b, x, "bias_act_grad: b");
  OPS_DEVICE_GUARD(x);
  auto dx = at::empty_like(x);
  if (x.numel() == 0) return dx;
  int64_t C, inner;
  bias_act_geometry(x, dim, C, inner);
  cudaStream_t stream = OPS_CURRENT_STREAM();
  const int grid = blocks_for(x.numel());
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "bias_act_grad_cuda", [&] {
    const scalar_t* bp = b.numel() ? b.data_ptr<scalar_t>() : nullptr;
    OPS_LAUNCH_ACT(act, bias_act_grad_kernel, dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), bp,
                   dx.data_ptr<scalar_t>(), x.numel(), C, inner, float(alpha), float(gain), float(clamp));
  });
  OPS_LAUNCH_CHECK();
  return dx;
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

at::Tensor filtered_lrelu_fwd_cuda(at::Tensor x, at::Tensor fu, at::Tensor fd, at::Tensor b, int64_t up,
                                   int64_t down, int64_t px0, int64_t px1, int64_t py0, int64_t py1, double gain,
                                   double slope, double clamp) {
  TORCH_CHECK(x.is_cuda() && x.dim() == 4 && x.is_contiguous(),
              "filtered_lrelu: x must be a contiguous [N, C, H, W] CUDA tensor");
  check_filter(fu, x, "filtered_lrelu (fu)");
  check_filter(fd, x, "filtered_lrelu (fd)");
  check_cuda(b, x, "filtered_lrelu: b");
  TORCH_CHECK(up >= 1 && down >= 1, "filtered_lrelu: up and down must be >= 1");
  OPS_DEVICE_GUARD(x);
  FlreluGeom g{};
  g.H = x.size(2);
  g.W = x.size(3);
  g.up = up;
  g.down = down;
  g.px0 = px0;
  g.py0 = py0;
  g.fu_sep = fu.dim() == 1;
  g.fd_sep = fd.dim() == 1;
  g.fuw = fu.size(-1);
  g.fuh = fu.size(0);
  g.fdw = fd.size(-1);
  g.fdh = fd.size(0);
  g.Wm = ops::upfirdn_out_size(g.W, up, 1, px0, px1, g.fuw);
  g.Hm = ops::upfirdn_out_size(g.H, up, 1, py0, py1, g.fuh);
  g.Wo = ops::upfirdn_out_size(g.Wm, 1, down, 0, 0, g.fdw);
  g.Ho = ops::upfirdn_out_size(g.Hm, 1, down, 0, 0, g.fdh);
  TORCH_CHECK(g.Wm > 0 && g.Hm > 0 && g.Wo > 0 && g.Ho > 0,
              "filtered_lrelu: the output would be empty; check the padding and filter sizes");
  const int N = x.size(0), C = x.size(1);
  auto y = at::empty({N, C, g.Ho, g.Wo}, x.options());
  if (x.numel() == 0) return y.zero_();
  TORCH_CHECK(int64_t(N) * C <= 65535, "filtered_lrelu: at most 65535 images x channels per call on CUDA");
  const size_t acc_size = x.scalar_type() == at::kDouble ? sizeof(double) : sizeof(float);
  // The largest square-ish output tile whose buffers fit in 48 KB of shared memory.
  const int tiles[][2] = {{16, 32}, {16, 16}, {8, 16}, {8, 8}, {4, 8}, {4, 4}, {2, 2}, {1, 1}};
  size_t smem = 0;
  for (const auto& t : tiles) {
    g.TH = t[0];
    g.TW = t[1];
    smem = tile_sizes(g, g.TH, g.TW).floats * acc_size;
    if (smem <= 48 * 1024) break;
  }
  TORCH_CHECK(smem <= 48 * 1024, "filtered_lrelu: the filters are too large for the CUDA kernel; use impl='ref'");
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
