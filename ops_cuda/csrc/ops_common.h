// Per-element maths shared by the C++ (CPU) and CUDA kernels, so the CPU tests exercise the exact
// formulas the GPU runs: activations and their derivatives, clamping, and the polyphase index maths
// of upfirdn2d (which input samples and which filter taps contribute to an output sample).
#pragma once

#include <math.h>

#ifdef __CUDACC__
#define OPS_HD __host__ __device__
#else
#define OPS_HD
#endif

namespace ops {

// Activation ids; the order matches ACT_IDS in ops_cuda/_native_ops.py.
enum Act : int {
  ACT_LINEAR = 0,
  ACT_RELU = 1,
  ACT_LRELU = 2,
  ACT_TANH = 3,
  ACT_SIGMOID = 4,
  ACT_ELU = 5,
  ACT_SELU = 6,
  ACT_SOFTPLUS = 7,
  ACT_SWISH = 8,
};

// SELU constants (Klambauer et al. 2017), as used by torch.nn.functional.selu.
constexpr double SELU_ALPHA = 1.6732632423543772848170429916717;
constexpr double SELU_SCALE = 1.0507009873554804934193349852946;
// torch's softplus switches to the identity above this input (beta = 1).
constexpr double SOFTPLUS_THRESHOLD = 20.0;

template <typename T>
OPS_HD inline T sigmoid(T x) {
  return T(1) / (T(1) + exp(-x));
}

template <int A, typename T>
OPS_HD inline T act_fwd(T x, T alpha) {
  if (A == ACT_LINEAR) return x;
  if (A == ACT_RELU) return x > T(0) ? x : T(0);
  if (A == ACT_LRELU) return x > T(0) ? x : x * alpha;
  if (A == ACT_TANH) return tanh(x);
  if (A == ACT_SIGMOID) return sigmoid(x);
  if (A == ACT_ELU) return x > T(0) ? x : expm1(x);
  if (A == ACT_SELU) return T(SELU_SCALE) * (x > T(0) ? x : T(SELU_ALPHA) * expm1(x));
  if (A == ACT_SOFTPLUS) return x > T(SOFTPLUS_THRESHOLD) ? x : log1p(exp(x));
  if (A == ACT_SWISH) return x * sigmoid(x);
  return x;
}

// d act(x) / dx, written to agree with torch's backward formulas (e.g. relu'(0) = 0, lrelu'(0) = alpha).
template <int A, typename T>
OPS_HD inline T act_grad(T x, T alpha) {
  if (A == ACT_LINEAR) return T(1);
  if (A == ACT_RELU) return x > T(0) ? T(1) : T(0);
  if (A == ACT_LRELU) return x > T(0) ? T(1) : alpha;
  if (A == ACT_TANH) {
    T t = tanh(x);
    return T(1) - t * t;
  }
  if (A == ACT_SIGMOID) {
    T s = sigmoid(x);
    return s * (T(1) - s);
  }
  if (A == ACT_ELU) return x > T(0) ? T(1) : exp(x);
  if (A == ACT_SELU) return x > T(0) ? T(SELU_SCALE) : T(SELU_SCALE * SELU_ALPHA) * exp(x);
  if (A == ACT_SOFTPLUS) {
    if (x > T(SOFTPLUS_THRESHOLD)) return T(1);
    T z = exp(x);
    return z / (z + T(1));
  }
  if (A == ACT_SWISH) {
    T s = sigmoid(x);
    return s + x * s * (T(1) - s);
  }
  return T(1);
}

// clamp < 0 means "no clamp".
template <typename T>
OPS_HD inline T clamp_fwd(T y, T clamp) {
  if (clamp < T(0)) return y;
  return y > clamp ? clamp : (y < -clamp ? -clamp : y);
}

// The clamp for a known clamp >= 0 (no early return, so row loops over it vectorise).
template <typename T>
OPS_HD inline T clamp_on(T y, T clamp) {
  y = y > clamp ? clamp : y;
  return y < -clamp ? -clamp : y;
}

// Gradient of the clamp: passes where -clamp <= y <= clamp (inclusive, like torch.clamp).
template <typename T>
OPS_HD inline T clamp_grad(T y, T clamp) {
  if (clamp < T(0)) return T(1);
  return (y >= -clamp && y <= clamp) ? T(1) : T(0);
}

// filtered_lrelu's nonlinearity: clamp(lrelu(v, slope) * gain); the _noclamp / _clamped forms
// are the same for a clamp known to be off / on.
template <typename T>
OPS_HD inline T flrelu_act_noclamp(T v, T slope, T gain) {
  return (v > T(0) ? v : v * slope) * gain;
}

template <typename T>
OPS_HD inline T flrelu_act_clamped(T v, T slope, T gain, T clamp) {
  return clamp_on(flrelu_act_noclamp(v, slope, gain), clamp);
}

template <typename T>
OPS_HD inline T flrelu_act(T v, T slope, T gain, T clamp) {
  return clamp < T(0) ? flrelu_act_noclamp(v, slope, gain) : flrelu_act_clamped(v, slope, gain, clamp);
}

// ... and its derivative with respect to v (the backward passes multiply the incoming gradient by
// it). lrelu'(0) = slope like torch; the clamp passes -clamp <= y <= clamp inclusive like
// torch.clamp. Again with _noclamp / _clamped forms whose row loops vectorise.
template <typename T>
OPS_HD inline T flrelu_grad_noclamp(T v, T slope, T gain) {
  return v > T(0) ? gain : slope * gain;
}

template <typename T>
OPS_HD inline T flrelu_grad_clamped(T v, T slope, T gain, T clamp) {
  const T y = flrelu_act_noclamp(v, slope, gain);
  return (y >= -clamp && y <= clamp) ? flrelu_grad_noclamp(v, slope, gain) : T(0);
}

template <typename T>
OPS_HD inline T flrelu_grad(T v, T slope, T gain, T clamp) {
  return clamp < T(0) ? flrelu_grad_noclamp(v, slope, gain) : flrelu_grad_clamped(v, slope, gain, clamp);
}

OPS_HD inline int floor_div(int a, int b) {  // b > 0
  int q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

OPS_HD inline int ceil_div(int a, int b) {  // b > 0
  return -floor_div(-a, b);
}

// Polyphase taps of one output sample along one axis of upfirdn2d:
//   out[o] = sum_k w[k] * U[o * down + k - pad0],  U = input with up-1 zeros after each sample,
// (w already flipped for a convolution). Only k with (o * down + k - pad0) % up == 0 hit a real
// input sample s = (o * down + k - pad0) / up. The contributing pairs are
//   s = s0 + t, k = k0 + up * t  for t in [0, count),
// restricted to 0 <= s < n_in.
struct TapRange {
  int s0;
  int k0;
  int count;
};

OPS_HD inline TapRange tap_range(int o, int up, int down, int pad0, int taps, int n_in) {
  int j0 = o * down - pad0;  // position in the zero-inserted signal of tap k = 0
  int s_lo = ceil_div(j0, up);
  int s_hi = floor_div(j0 + taps - 1, up);
  if (s_lo < 0) s_lo = 0;
  if (s_hi > n_in - 1) s_hi = n_in - 1;
  TapRange r;
  r.s0 = s_lo;
  r.k0 = s_lo * up - j0;
  r.count = s_hi >= s_lo ? s_hi - s_lo + 1 : 0;
  return r;
}

// Same without the bounds on s (used where the input is surrounded by an explicit zero margin).
OPS_HD inline TapRange tap_range_unbounded(int o, int up, int down, int pad0, int taps) {
  int j0 = o * down - pad0;
  int s_lo = ceil_div(j0, up);
  int s_hi = floor_div(j0 + taps - 1, up);
  TapRange r;
  r.s0 = s_lo;
  r.k0 = s_lo * up - j0;
  r.count = s_hi >= s_lo ? s_hi - s_lo + 1 : 0;
  return r;
}

// Output length of upfirdn2d along one axis.
OPS_HD inline int upfirdn_out_size(int n_in, int up, int down, int pad0, int pad1, int taps) {
  return floor_div(n_in * up + pad0 + pad1 - taps + down, down);
}

}  // namespace ops
