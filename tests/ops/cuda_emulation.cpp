// Runs the CUDA kernels of ops_cuda_kernels.h on the CPU, one emulated thread per block, so the
// tests can check their tile and index maths without a GPU. Every kernel processes its work as
// `for (i = threadIdx.x; i < n; i += blockDim.x)` between __syncthreads(), so with blockDim = 1
// and the blocks run one after another the results equal a real launch. Test-only code.
#include <torch/extension.h>

#include <cstring>
#include <vector>

struct EmuDim3 {
  unsigned x = 0, y = 0, z = 0;
};
static EmuDim3 blockIdx, threadIdx, blockDim, gridDim;
static std::vector<unsigned char> emu_smem;
inline unsigned char* ops_emu_smem() { return emu_smem.data(); }
#define __syncthreads() ((void)0)

#include "ops_cuda_kernels.h"

using namespace ops_cuda_kernels;

static void one_thread_grid() {
  blockIdx = EmuDim3{};
  threadIdx = EmuDim3{};
  blockDim = EmuDim3{1, 1, 1};
  gridDim = EmuDim3{1, 1, 1};
}

torch::Tensor filtered_lrelu_emu(torch::Tensor x, torch::Tensor fu, torch::Tensor fd, torch::Tensor b, int64_t up,
                                 int64_t down, int64_t px0, int64_t px1, int64_t py0, int64_t py1, double gain,
                                 double slope, double clamp) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous() && x.dim() == 4, "float32 NCHW x expected");
  size_t smem = 0;
  FlreluGeom g = flrelu_geometry(x.size(2), x.size(3), up, down, px0, px1, py0, py1, fu.size(-1), fu.size(0),
                                 fu.dim() == 1, fd.size(-1), fd.size(0), fd.dim() == 1, sizeof(float), 48 * 1024,
                                 smem);
  TORCH_CHECK(g.Wo > 0 && g.Ho > 0 && smem > 0, "bad geometry");
  const int N = x.size(0), C = x.size(1);
  auto y = torch::full({N, C, g.Ho, g.Wo}, NAN, x.options());
  emu_smem.assign(smem, 0xFF);  // NaN everywhere: reading a buffer before writing it shows up
  one_thread_grid();
  const float* bp = b.numel() ? b.data_ptr<float>() : nullptr;
  for (int z = 0; z < N * C; z++)
    for (int by = 0; by < (g.Ho + g.TH - 1) / g.TH; by++)
      for (int bx = 0; bx < (g.Wo + g.TW - 1) / g.TW; bx++) {
        blockIdx = EmuDim3{unsigned(bx), unsigned(by), unsigned(z)};
        std::memset(emu_smem.data(), 0xFF, emu_smem.size());
        filtered_lrelu_kernel<float, float>(x.data_ptr<float>(), bp, fu.data_ptr<float>(), fd.data_ptr<float>(),
                                            y.data_ptr<float>(), g, C, float(gain), float(slope), float(clamp));
      }
  return y;
}

// dx of the fused backward kernel (fu / fd in correlation order, as the host code receives them).
torch::Tensor filtered_lrelu_grad_emu(torch::Tensor dy, torch::Tensor x, torch::Tensor fu, torch::Tensor fd,
                                      torch::Tensor b, int64_t up, int64_t down, int64_t px0, int64_t px1,
                                      int64_t py0, int64_t py1, double gain, double slope, double clamp) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous() && x.dim() == 4, "float32 NCHW x expected");
  TORCH_CHECK(dy.scalar_type() == at::kFloat && dy.is_contiguous(), "contiguous float32 dy expected");
  size_t smem = 0;
  FlreluGeom g = flrelu_geometry(x.size(2), x.size(3), up, down, px0, px1, py0, py1, fu.size(-1), fu.size(0),
                                 fu.dim() == 1, fd.size(-1), fd.size(0), fd.dim() == 1, sizeof(float), 48 * 1024,
                                 smem);
  TORCH_CHECK(g.Wo > 0 && g.Ho > 0 && dy.size(2) == g.Ho && dy.size(3) == g.Wo, "bad geometry");
  flrelu_grad_tiles(g, sizeof(float), 48 * 1024, smem);
  TORCH_CHECK(smem > 0, "filters too large");
  const int N = x.size(0), C = x.size(1);
  auto dx = torch::full_like(x, NAN);
  const auto fut = fu.flip(fu.dim() == 1 ? at::IntArrayRef{0} : at::IntArrayRef{0, 1}).contiguous();
  const auto fdt = fd.flip(fd.dim() == 1 ? at::IntArrayRef{0} : at::IntArrayRef{0, 1}).contiguous();
  emu_smem.assign(smem, 0xFF);
  one_thread_grid();
  const float* bp = b.numel() ? b.data_ptr<float>() : nullptr;
  for (int z = 0; z < N * C; z++)
    for (int by = 0; by < (g.H + g.TH - 1) / g.TH; by++)
      for (int bx = 0; bx < (g.W + g.TW - 1) / g.TW; bx++) {
        blockIdx = EmuDim3{unsigned(bx), unsigned(by), unsigned(z)};
        std::memset(emu_smem.data(), 0xFF, emu_smem.size());  // NaN: unwritten reads show up
        filtered_lrelu_grad_kernel<float, float>(dy.data_ptr<float>(), x.data_ptr<float>(), bp,
                                                 fu.data_ptr<float>(), fut.data_ptr<float>(),
                                                 fdt.data_ptr<float>(), dx.data_ptr<float>(), g, C, float(gain),
                                                 float(slope), float(clamp));
      }
  return dx;
}

torch::Tensor upfirdn2d_emu(torch::Tensor x, torch::Tensor w, int64_t upx, int64_t upy, int64_t downx,
                            int64_t downy, int64_t px0, int64_t px1, int64_t py0, int64_t py1) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous() && x.dim() == 4, "float32 NCHW x expected");
  const int fw = w.size(-1), fh = w.size(0);
  const int N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int Wo = ops::upfirdn_out_size(W, upx, downx, px0, px1, fw);
  const int Ho = ops::upfirdn_out_size(H, upy, downy, py0, py1, fh);
  auto y = torch::full({N, C, Ho, Wo}, NAN, x.options());
  one_thread_grid();
  upfirdn2d_kernel<float, float>(x.data_ptr<float>(), w.data_ptr<float>(), y.data_ptr<float>(), int64_t(N) * C,
                                 H, W, Ho, Wo, upx, upy, downx, downy, px0, py0, fw, fh, w.dim() == 1);
  return y;
}

template <int A>
static void bias_act_run(bool grad, const float* dy, const float* x, const float* b, float* out, int64_t n,
                         int64_t C, int64_t inner, float alpha, float gain, float clamp) {
  if (grad)
    bias_act_grad_kernel<A, float>(dy, x, b, out, n, C, inner, alpha, gain, clamp);
  else
    bias_act_fwd_kernel<A, float>(x, b, out, n, C, inner, alpha, gain, clamp);
}

// grad=false: y = bias_act(x); grad=true: dx for the upstream gradient dy.
torch::Tensor bias_act_emu(torch::Tensor dy, torch::Tensor x, torch::Tensor b, int64_t dim, int64_t act,
                           double alpha, double gain, double clamp, bool grad) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous(), "contiguous float32 x expected");
  const int64_t C = x.size(dim);
  int64_t inner = 1;
  for (int64_t i = dim + 1; i < x.dim(); i++) inner *= x.size(i);
  auto out = torch::full_like(x, NAN);
  one_thread_grid();
  const float* bp = b.numel() ? b.data_ptr<float>() : nullptr;
  const float* dyp = grad ? dy.data_ptr<float>() : nullptr;
  const float a = alpha, g = gain, c = clamp;
  float* o = out.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  switch (act) {
    case ops::ACT_LINEAR: bias_act_run<ops::ACT_LINEAR>(grad, dyp, xp, bp, o, x.numel(), C, inner, a, g, c); break;
    case ops::ACT_RELU: bias_act_run<ops::ACT_RELU>(grad, dyp, xp, bp, o, x.numel(), C, inner, a, g, c); break;
    case ops::ACT_LRELU: bias_act_run<ops::ACT_LRELU>(grad, dyp, xp, bp, o, x.numel(), C, inner, a, g, c); break;
    case ops::ACT_TANH: bias_act_run<ops::ACT_TANH>(grad, dyp, xp, bp, o, x.numel(), C, inner, a, g, c); break;
    case ops::ACT_SIGMOID: bias_act_run<ops::ACT_SIGMOID>(grad, dyp, xp, bp, o, x.numel(), C, inner, a, g, c); break;
    case ops::ACT_ELU: bias_act_run<ops::ACT_ELU>(grad, dyp, xp, bp, o, x.numel(), C, inner, a, g, c); break;
    case ops::ACT_SELU: bias_act_run<ops::ACT_SELU>(grad, dyp, xp, bp, o, x.numel(), C, inner, a, g, c); break;
    case ops::ACT_SOFTPLUS: bias_act_run<ops::ACT_SOFTPLUS>(grad, dyp, xp, bp, o, x.numel(), C, inner, a, g, c); break;
    case ops::ACT_SWISH: bias_act_run<ops::ACT_SWISH>(grad, dyp, xp, bp, o, x.numel(), C, inner, a, g, c); break;
    default: TORCH_CHECK(false, "unknown act");
  }
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("filtered_lrelu_fwd", &filtered_lrelu_emu);
  m.def("filtered_lrelu_grad", &filtered_lrelu_grad_emu);
  m.def("upfirdn2d", &upfirdn2d_emu);
  m.def("bias_act", &bias_act_emu);
}
