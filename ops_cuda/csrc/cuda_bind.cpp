// Python bindings of the CUDA kernels in ops_cuda.cu (kept out of the .cu so nvcc never has to
// compile pybind11). The function names match the CPU extension, so the same Python wrappers
// (ops_cuda/_native_ops.py) drive both.
#include <torch/extension.h>

at::Tensor bias_act_fwd_cuda(at::Tensor x, at::Tensor b, int64_t dim, int64_t act, double alpha, double gain,
                             double clamp);
at::Tensor bias_act_grad_cuda(at::Tensor dy, at::Tensor x, at::Tensor b, int64_t dim, int64_t act, double alpha,
                              double gain, double clamp);
at::Tensor upfirdn2d_cuda(at::Tensor x, at::Tensor w, int64_t upx, int64_t upy, int64_t downx, int64_t downy,
                          int64_t px0, int64_t px1, int64_t py0, int64_t py1);
at::Tensor filtered_lrelu_fwd_cuda(at::Tensor x, at::Tensor fu, at::Tensor fd, at::Tensor b, int64_t up,
                                   int64_t down, int64_t px0, int64_t px1, int64_t py0, int64_t py1, double gain,
                                   double slope, double clamp);
std::tuple<at::Tensor, at::Tensor> filtered_lrelu_grad_cuda(at::Tensor dy, at::Tensor x, at::Tensor fu,
                                                            at::Tensor fd, at::Tensor b, int64_t up, int64_t down,
                                                            int64_t px0, int64_t px1, int64_t py0, int64_t py1,
                                                            double gain, double slope, double clamp);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "ops_cuda CUDA kernels (bias_act, upfirdn2d, fused filtered_lrelu)";
  m.def("bias_act_fwd", &bias_act_fwd_cuda, "bias + activation + gain + clamp");
  m.def("bias_act_grad", &bias_act_grad_cuda, "gradient of bias_act with respect to x");
  m.def("upfirdn2d", &upfirdn2d_cuda, "upsample, pad, FIR filter (pre-flipped), downsample");
  m.def("filtered_lrelu_fwd", &filtered_lrelu_fwd_cuda, "fused upsample + lrelu/clamp + downsample");
  m.def("filtered_lrelu_grad", &filtered_lrelu_grad_cuda,
        "fused first-order backward of filtered_lrelu: (dx, dx sums per plane)");
}
