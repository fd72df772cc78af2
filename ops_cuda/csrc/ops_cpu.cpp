// CPU kernels of bias_act, upfirdn2d and the fused filtered_lrelu.
//
// All filters arrive already flipped for a convolution and scaled by their gain (see
// ops_cuda/_native_ops.py), so every kernel computes a correlation:
//   out[o] = sum_k w[k] * U[o * down + k - pad0]   (U = input with up-1 zeros after each sample).
// The polyphase index maths is in ops_common.h (shared with the CUDA kernels). The loops below are
// written so their innermost loop runs over contiguous memory, which -O3 vectorises.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ops_common.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>  // the AVX2 copies of the hot loops (see OPS_TARGET_AVX2)
#endif

namespace {

using ops::TapRange;

// ---------------------------------------------------------------------------------------------
// One resampling axis: sizes, and the zero margins a source row needs so the inner loops can read
// past its ends without bounds checks.
struct Axis {
  int n_in, n_out, up, down, pad0, taps;
  int L, R;  // zero samples needed before / after the row
  int stride() const { return L + n_in + R; }
};

Axis make_axis(int n_in, int up, int down, int pad0, int pad1, int taps) {
  Axis a{};
  a.n_in = n_in;
  a.up = up;
  a.down = down;
  a.pad0 = pad0;
  a.taps = taps;
  a.n_out = ops::upfirdn_out_size(n_in, up, down, pad0, pad1, taps);
  TORCH_CHECK(a.n_out > 0, "upfirdn2d: the output would be empty (input ", n_in, ", up ", up, ", down ",
              down, ", padding ", pad0, "/", pad1, ", ", taps, " taps); use a larger input or more padding");
  TapRange first = ops::tap_range_unbounded(0, up, down, pad0, taps);
  TapRange last = ops::tap_range_unbounded(a.n_out - 1, up, down, pad0, taps);
  int smin = std::min(first.s0, 0) - 1;
  int smax = std::max(last.s0 + ops::ceil_div(taps, up), n_in - 1) + 1;
  a.L = -smin + down;
  a.R = smax - (n_in - 1) + down;
  return a;
}

template <typename T>
inline void axpy(T* __restrict__ dst, const T* __restrict__ src, T w, int n) {
  for (int i = 0; i < n; i++) dst[i] += w * src[i];
}

// Portable build (no -march flags), but the hot loops get a second copy compiled for AVX2+FMA,
// chosen at run time when the CPU has it (GCC/Clang on x86 only).
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define OPS_AVX2_PATH 1
#define OPS_TARGET_AVX2 __attribute__((target("avx2,fma")))
inline bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#else
#define OPS_AVX2_PATH 0
#define OPS_TARGET_AVX2
inline bool cpu_has_avx2() { return false; }
#endif

// Defines a row kernel from one body twice, portable (name_base) and compiled for AVX2+FMA
// (name_avx2), and `name`, which calls the copy this CPU runs. PARAMS and ARGS are the
// parenthesised parameter and argument lists; the body is the last argument.
#define OPS_ROW_KERNEL(name, PARAMS, ARGS, ...)     \
  template <typename T>                             \
  void name##_base PARAMS {                         \
    __VA_ARGS__                                     \
  }                                                 \
  template <typename T>                             \
  OPS_TARGET_AVX2 void name##_avx2 PARAMS {         \
    __VA_ARGS__                                     \
  }                                                 \
  template <typename T>                             \
  inline void name PARAMS {                         \
    if (OPS_AVX2_PATH && cpu_has_avx2())            \
      name##_avx2 ARGS;                             \
    else                                            \
      name##_base ARGS;                             \
  }

// dst[0 .. n) += sum_t w[t] * src[t][0 .. n). Taps are taken four at a time so dst is read and
// written once per four taps instead of once per tap (the loops are load/store bound).
#define OPS_COMBINE_BODY                                                                   \
  int t = 0;                                                                               \
  for (; t + 4 <= count; t += 4) {                                                         \
    const T* __restrict__ a = src[t];                                                      \
    const T* __restrict__ b = src[t + 1];                                                  \
    const T* __restrict__ c = src[t + 2];                                                  \
    const T* __restrict__ d = src[t + 3];                                                  \
    const T wa = w[t], wb = w[t + 1], wc = w[t + 2], wd = w[t + 3];                        \
    for (int i = 0; i < n; i++) dst[i] += wa * a[i] + wb * b[i] + wc * c[i] + wd * d[i];   \
  }                                                                                        \
  if (t + 2 <= count) {                                                                    \
    const T* __restrict__ a = src[t];                                                      \
    const T* __restrict__ b = src[t + 1];                                                  \
    const T wa = w[t], wb = w[t + 1];                                                      \
    for (int i = 0; i < n; i++) dst[i] += wa * a[i] + wb * b[i];                           \
    t += 2;                                                                                \
  }                                                                                        \
  if (t < count) {                                                                         \
    const T* __restrict__ a = src[t];                                                      \
    const T wa = w[t];                                                                     \
    for (int i = 0; i < n; i++) dst[i] += wa * a[i];                                       \
  }

template <typename T>
void combine_base(T* __restrict__ dst, const T* const* src, const T* w, int count, int n) {
  OPS_COMBINE_BODY
}

template <typename T>
OPS_TARGET_AVX2 void combine_avx2(T* __restrict__ dst, const T* const* src, const T* w, int count, int n) {
  OPS_COMBINE_BODY
}

#if OPS_AVX2_PATH
// The float32 combine with every tap of a block of outputs accumulated in registers: each source
// element is loaded once and dst is read and written once per call. Blocks of 64 outputs keep
// eight independent FMA chains in flight (FMA latency x throughput); narrower tails split the taps
// over two chains instead.
OPS_TARGET_AVX2 void combine_avx2_f32(float* __restrict__ dst, const float* const* src, const float* w, int count,
                                      int n) {
  int i = 0;
  for (; i + 64 <= n; i += 64) {
    __m256 a0 = _mm256_loadu_ps(dst + i), a1 = _mm256_loadu_ps(dst + i + 8);
    __m256 a2 = _mm256_loadu_ps(dst + i + 16), a3 = _mm256_loadu_ps(dst + i + 24);
    __m256 a4 = _mm256_loadu_ps(dst + i + 32), a5 = _mm256_loadu_ps(dst + i + 40);
    __m256 a6 = _mm256_loadu_ps(dst + i + 48), a7 = _mm256_loadu_ps(dst + i + 56);
    for (int t = 0; t < count; t++) {
      const float* s = src[t] + i;
      const __m256 wt = _mm256_set1_ps(w[t]);
      a0 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s), a0);
      a1 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 8), a1);
      a2 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 16), a2);
      a3 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 24), a3);
      a4 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 32), a4);
      a5 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 40), a5);
      a6 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 48), a6);
      a7 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 56), a7);
    }
    _mm256_storeu_ps(dst + i, a0);
    _mm256_storeu_ps(dst + i + 8, a1);
    _mm256_storeu_ps(dst + i + 16, a2);
    _mm256_storeu_ps(dst + i + 24, a3);
    _mm256_storeu_ps(dst + i + 32, a4);
    _mm256_storeu_ps(dst + i + 40, a5);
    _mm256_storeu_ps(dst + i + 48, a6);
    _mm256_storeu_ps(dst + i + 56, a7);
  }
  for (; i + 16 <= n; i += 16) {
    __m256 a0 = _mm256_loadu_ps(dst + i), a1 = _mm256_loadu_ps(dst + i + 8);
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    int t = 0;
    for (; t + 2 <= count; t += 2) {
      const float* s = src[t] + i;
      const float* r = src[t + 1] + i;
      const __m256 ws = _mm256_set1_ps(w[t]), wr = _mm256_set1_ps(w[t + 1]);
      a0 = _mm256_fmadd_ps(ws, _mm256_loadu_ps(s), a0);
      a1 = _mm256_fmadd_ps(ws, _mm256_loadu_ps(s + 8), a1);
      b0 = _mm256_fmadd_ps(wr, _mm256_loadu_ps(r), b0);
      b1 = _mm256_fmadd_ps(wr, _mm256_loadu_ps(r + 8), b1);
    }
    if (t < count) {
      const __m256 ws = _mm256_set1_ps(w[t]);
      a0 = _mm256_fmadd_ps(ws, _mm256_loadu_ps(src[t] + i), a0);
      a1 = _mm256_fmadd_ps(ws, _mm256_loadu_ps(src[t] + i + 8), a1);
    }
    _mm256_storeu_ps(dst + i, _mm256_add_ps(a0, b0));
    _mm256_storeu_ps(dst + i + 8, _mm256_add_ps(a1, b1));
  }
  for (; i + 8 <= n; i += 8) {
    __m256 a0 = _mm256_loadu_ps(dst + i), b0 = _mm256_setzero_ps();
    int t = 0;
    for (; t + 2 <= count; t += 2) {
      a0 = _mm256_fmadd_ps(_mm256_set1_ps(w[t]), _mm256_loadu_ps(src[t] + i), a0);
      b0 = _mm256_fmadd_ps(_mm256_set1_ps(w[t + 1]), _mm256_loadu_ps(src[t + 1] + i), b0);
    }
    if (t < count) a0 = _mm256_fmadd_ps(_mm256_set1_ps(w[t]), _mm256_loadu_ps(src[t] + i), a0);
    _mm256_storeu_ps(dst + i, _mm256_add_ps(a0, b0));
  }
  for (; i < n; i++) {
    float acc = dst[i];
    for (int t = 0; t < count; t++) acc = std::fma(w[t], src[t][i], acc);
    dst[i] = acc;
  }
}
#endif

template <typename T>
inline void combine(T* __restrict__ dst, const T* const* src, const T* w, int count, int n) {
#if OPS_AVX2_PATH
  if constexpr (std::is_same_v<T, float>) {
    if (cpu_has_avx2()) return combine_avx2_f32(dst, src, w, count, n);
  }
#endif
  if (OPS_AVX2_PATH && cpu_has_avx2())
    combine_avx2(dst, src, w, count, n);
  else
    combine_base(dst, src, w, count, n);
}

// filtered_lrelu's activation over a row, in place.
OPS_ROW_KERNEL(flrelu_row, (T* __restrict__ a, int n, T slope, T gain, T clamp), (a, n, slope, gain, clamp),
               if (clamp < T(0)) {
                 for (int i = 0; i < n; i++) a[i] = ops::flrelu_act_noclamp(a[i], slope, gain);
               } else {
                 for (int i = 0; i < n; i++) a[i] = ops::flrelu_act_clamped(a[i], slope, gain, clamp);
               })

// out[2 i] += a[i], out[2 i + 1] += b[i]: the two phases of a 2x upsampled row put back in place.
OPS_ROW_KERNEL(zip_add2, (T* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b, int n),
               (out, a, b, n),
               for (int i = 0; i < n; i++) {
                 out[2 * i] += a[i];
                 out[2 * i + 1] += b[i];
               })

// d0[i] = s[2 i], d1[i] = s[2 i + 1]: the two phases of a row, for a 2x downsampling pass.
OPS_ROW_KERNEL(unzip2, (T* __restrict__ d0, T* __restrict__ d1, const T* __restrict__ src, int n),
               (d0, d1, src, n),
               for (int i = 0; i < n; i++) {
                 d0[i] = src[2 * i];
                 d1[i] = src[2 * i + 1];
               })

// dst = a + b over a row.
OPS_ROW_KERNEL(add_rows, (T* __restrict__ dst, const T* __restrict__ a, const T* __restrict__ b, int n),
               (dst, a, b, n), for (int i = 0; i < n; i++) dst[i] = a[i] + b[i];)

// Collects (source row, weight) pairs and combines them into dst in batches.
template <typename T>
struct TapList {
  static constexpr int CAP = 64;
  const T* src[CAP];
  T w[CAP];
  int count = 0;
  T* dst;
  int n;
  TapList(T* dst_, int n_) : dst(dst_), n(n_) {}
  void add(const T* p, T weight) {
    src[count] = p;
    w[count] = weight;
    if (++count == CAP) flush();
  }
  void flush() {
    combine(dst, src, w, count, n);
    count = 0;
  }
};

template <typename T>
struct Scratch {
  std::vector<T> a, b;
};

// out[0 .. n_out) += horizontal pass of the row `xp` (pointer to sample 0 of a row with ax.L / ax.R
// zero margins).
template <typename T>
void hpass_acc(const Axis& ax, const T* w, const T* xp, T* __restrict__ out, Scratch<T>& s) {
  const int up = ax.up, down = ax.down, n_out = ax.n_out, taps = ax.taps;
  if (up == 1 && down == 1) {
    TapList<T> tl(out, n_out);
    for (int k = 0; k < taps; k++) tl.add(xp + k - ax.pad0, w[k]);
    tl.flush();
  } else if (down == 1) {
    // Outputs o = r + up * m share their taps; the source index advances by one per m.
    const int mmax = ops::ceil_div(n_out, up);
    s.a.resize(static_cast<size_t>(up) * mmax);
    for (int r = 0; r < up && r < n_out; r++) {
      T* tmp = s.a.data() + static_cast<size_t>(r) * mmax;
      const int m_count = ops::ceil_div(n_out - r, up);
      TapRange tr = ops::tap_range_unbounded(r, up, 1, ax.pad0, taps);
      std::fill(tmp, tmp + m_count, T(0));
      TapList<T> tl(tmp, m_count);
      for (int t = 0; t < tr.count; t++) tl.add(xp + tr.s0 + t, w[tr.k0 + up * t]);
      tl.flush();
    }
    if (up == 2 && n_out >= 2) {  // the common case, as one vectorised interleave
      const T* t0 = s.a.data();
      const T* t1 = t0 + mmax;
      const int pairs = n_out / 2;
      zip_add2(out, t0, t1, pairs);
      if (n_out % 2) out[n_out - 1] += t0[pairs];
    } else {
      for (int r = 0; r < up && r < n_out; r++) {
        const T* tmp = s.a.data() + static_cast<size_t>(r) * mmax;
        const int m_count = ops::ceil_div(n_out - r, up);
        for (int m = 0; m < m_count; m++) out[r + up * m] += tmp[m];
      }
    }
  } else if (up == 1) {
    // Split the row into `down` phases so each tap reads a contiguous run.
    const int amin = ops::floor_div(-ax.pad0, down);
    const int amax = ops::floor_div(taps - 1 - ax.pad0, down);
    const int len = n_out + amax - amin;
    s.a.resize(static_cast<size_t>(len) * down);
    if (down == 2) {
      unzip2(s.a.data(), s.a.data() + len, xp + amin * 2, len);
    } else {
      for (int q = 0; q < down; q++) {
        T* ph = s.a.data() + static_cast<size_t>(q) * len;
        for (int i = 0; i < len; i++) ph[i] = xp[(amin + i) * down + q];
      }
    }
    TapList<T> tl(out, n_out);
    for (int k = 0; k < taps; k++) {
      const int j = k - ax.pad0;
      const int q = j - ops::floor_div(j, down) * down;
      const int a = ops::floor_div(j, down);
      tl.add(s.a.data() + static_cast<size_t>(q) * len + (a - amin), w[k]);
    }
    tl.flush();
  } else {
    for (int o = 0; o < n_out; o++) {
      TapRange tr = ops::tap_range_unbounded(o, up, down, ax.pad0, taps);
      T acc = 0;
      for (int t = 0; t < tr.count; t++) acc += w[tr.k0 + up * t] * xp[tr.s0 + t];
      out[o] += acc;
    }
  }
}

// Copy a source row (+ bias) into the interior of a row buffer whose margins are zero.
template <typename T>
inline void load_row(T* interior, const T* __restrict__ src, int n, T bias) {
  for (int i = 0; i < n; i++) interior[i] = src[i] + bias;
}

// ---------------------------------------------------------------------------------------------
// bias_act

// One row of bias_act / its gradient; the clamp test is outside the loops so they vectorise.
#define OPS_BIAS_ACT_ROW_BODY                                                                     \
  if (clamp < T(0)) {                                                                             \
    for (int64_t i = 0; i < n; i++) y[i] = ops::act_fwd<A>(x[i] + bias, alpha) * gain;            \
  } else {                                                                                        \
    for (int64_t i = 0; i < n; i++) y[i] = ops::clamp_on(ops::act_fwd<A>(x[i] + bias, alpha) * gain, clamp); \
  }

#define OPS_BIAS_ACT_GRAD_ROW_BODY                                                                \
  for (int64_t i = 0; i < n; i++) {                                                               \
    const T v = x[i] + bias;                                                                      \
    const T yv = ops::act_fwd<A>(v, alpha) * gain;                                                \
    dx[i] = dy[i] * gain * ops::act_grad<A>(v, alpha) * ops::clamp_grad(yv, clamp);               \
  }

template <int A, typename T>
void bias_act_row_base(const T* __restrict__ x, T* __restrict__ y, int64_t n, T bias, T alpha, T gain, T clamp) {
  OPS_BIAS_ACT_ROW_BODY
}

template <int A, typename T>
OPS_TARGET_AVX2 void bias_act_row_avx2(const T* __restrict__ x, T* __restrict__ y, int64_t n, T bias, T alpha,
                                       T gain, T clamp) {
  OPS_BIAS_ACT_ROW_BODY
}

template <int A, typename T>
void bias_act_grad_row_base(const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx, int64_t n,
                            T bias, T alpha, T gain, T clamp) {
  OPS_BIAS_ACT_GRAD_ROW_BODY
}

template <int A, typename T>
OPS_TARGET_AVX2 void bias_act_grad_row_avx2(const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx,
                                            int64_t n, T bias, T alpha, T gain, T clamp) {
  OPS_BIAS_ACT_GRAD_ROW_BODY
}

template <int A, typename T>
void bias_act_rows(const T* x, const T* b, T* y, int64_t rows, int64_t C, int64_t inner, T alpha, T gain,
                   T clamp) {
  const bool avx2 = OPS_AVX2_PATH && cpu_has_avx2();
  at::parallel_for(0, rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(inner, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t r = begin; r < end; r++) {
                       const T bias = b ? b[r % C] : T(0);
                       if (avx2)
                         bias_act_row_avx2<A>(x + r * inner, y + r * inner, inner, bias, alpha, gain, clamp);
                       else
                         bias_act_row_base<A>(x + r * inner, y + r * inner, inner, bias, alpha, gain, clamp);
                     }
                   });
}

template <int A, typename T>
void bias_act_grad_rows(const T* dy, const T* x, const T* b, T* dx, int64_t rows, int64_t C, int64_t inner,
                        T alpha, T gain, T clamp) {
  const bool avx2 = OPS_AVX2_PATH && cpu_has_avx2();
  at::parallel_for(0, rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(inner, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t r = begin; r < end; r++) {
                       const T bias = b ? b[r % C] : T(0);
                       const int64_t o = r * inner;
                       if (avx2)
                         bias_act_grad_row_avx2<A>(dy + o, x + o, dx + o, inner, bias, alpha, gain, clamp);
                       else
                         bias_act_grad_row_base<A>(dy + o, x + o, dx + o, inner, bias, alpha, gain, clamp);
                     }
                   });
}

#define OPS_ACT_SWITCH(act, FN, ...)                            \
  switch (act) {                                                \
    case ops::ACT_LINEAR: FN<ops::ACT_LINEAR>(__VA_ARGS__); break;     \
    case ops::ACT_RELU: FN<ops::ACT_RELU>(__VA_ARGS__); break;         \
    case ops::ACT_LRELU: FN<ops::ACT_LRELU>(__VA_ARGS__); break;       \
    case ops::ACT_TANH: FN<ops::ACT_TANH>(__VA_ARGS__); break;         \
    case ops::ACT_SIGMOID: FN<ops::ACT_SIGMOID>(__VA_ARGS__); break;   \
    case ops::ACT_ELU: FN<ops::ACT_ELU>(__VA_ARGS__); break;           \
    case ops::ACT_SELU: FN<ops::ACT_SELU>(__VA_ARGS__); break;         \
    case ops::ACT_SOFTPLUS: FN<ops::ACT_SOFTPLUS>(__VA_ARGS__); break; \
    case ops::ACT_SWISH: FN<ops::ACT_SWISH>(__VA_ARGS__); break;       \
    default: TORCH_CHECK(false, "bias_act: unknown activation id ", act); \
  }

// x viewed as [rows = outer * C, inner] with the bias indexed by row % C.
void check_bias_act_args(const torch::Tensor& x, const torch::Tensor& b, int64_t dim) {
  TORCH_CHECK(x.is_contiguous(), "bias_act: x must be contiguous");
  TORCH_CHECK(dim >= 0 && dim < std::max<int64_t>(x.dim(), 1), "bias_act: bad dim ", dim);
  if (b.numel() > 0) {
    TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim) && b.dtype() == x.dtype() && b.is_contiguous(),
                "bias_act: b must be a contiguous 1-D tensor of x's dtype with x.shape[dim] entries");
  }
}

void bias_act_geometry(const torch::Tensor& x, int64_t dim, int64_t& rows, int64_t& C, int64_t& inner) {
  C = x.dim() ? x.size(dim) : 1;
  inner = 1;
  for (int64_t i = dim + 1; i < x.dim(); i++) inner *= x.size(i);
  rows = C ? x.numel() / std::max<int64_t>(inner, 1) : 0;
}

torch::Tensor bias_act_fwd(torch::Tensor x, torch::Tensor b, int64_t dim, int64_t act, double alpha,
                           double gain, double clamp) {
  check_bias_act_args(x, b, dim);
  auto y = torch::empty_like(x);
  if (x.numel() == 0) return y;
  int64_t rows, C, inner;
  bias_act_geometry(x, dim, rows, C, inner);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bias_act_fwd", [&] {
    const scalar_t* bp = b.numel() ? b.data_ptr<scalar_t>() : nullptr;
    OPS_ACT_SWITCH(act, bias_act_rows, x.data_ptr<scalar_t>(), bp, y.data_ptr<scalar_t>(), rows, C, inner,
                   scalar_t(alpha), scalar_t(gain), scalar_t(clamp));
  });
  return y;
}

torch::Tensor bias_act_grad(torch::Tensor dy, torch::Tensor x, torch::Tensor b, int64_t dim, int64_t act,
                            double alpha, double gain, double clamp) {
  check_bias_act_args(x, b, dim);
  TORCH_CHECK(dy.sizes() == x.sizes() && dy.is_contiguous() && dy.dtype() == x.dtype(),
              "bias_act_grad: dy must be contiguous and match x");
  auto dx = torch::empty_like(x);
  if (x.numel() == 0) return dx;
  int64_t rows, C, inner;
  bias_act_geometry(x, dim, rows, C, inner);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bias_act_grad", [&] {
    const scalar_t* bp = b.numel() ? b.data_ptr<scalar_t>() : nullptr;
    OPS_ACT_SWITCH(act, bias_act_grad_rows, dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), bp,
                   dx.data_ptr<scalar_t>(), rows, C, inner, scalar_t(alpha), scalar_t(gain), scalar_t(clamp));
  });
  return dx;
}

// ---------------------------------------------------------------------------------------------
// upfirdn2d

template <typename T>
void upfirdn2d_plane(const T* x, T* y, const T* w, bool separable, const Axis& ax, const Axis& ay,
                     Scratch<T>& s, std::vector<T>& row, std::vector<T>& hx) {
  const int W = ax.n_in, H = ay.n_in, Wo = ax.n_out, Ho = ay.n_out;
  T* interior = row.data() + ax.L;
  std::fill(y, y + static_cast<size_t>(Wo) * Ho, T(0));
  if (separable) {
    // Horizontal pass of every input row, then vertical polyphase combination of those rows.
    for (int sy = 0; sy < H; sy++) {
      load_row(interior, x + static_cast<size_t>(sy) * W, W, T(0));
      T* h = hx.data() + static_cast<size_t>(sy) * Wo;
      std::fill(h, h + Wo, T(0));
      hpass_acc(ax, w, interior, h, s);
    }
    for (int oy = 0; oy < Ho; oy++) {
      TapRange tr = ops::tap_range(oy, ay.up, ay.down, ay.pad0, ay.taps, H);
      T* yr = y + static_cast<size_t>(oy) * Wo;
      TapList<T> tl(yr, Wo);
      for (int t = 0; t < tr.count; t++)
        tl.add(hx.data() + static_cast<size_t>(tr.s0 + t) * Wo, w[tr.k0 + ay.up * t]);
      tl.flush();
    }
  } else {
    for (int oy = 0; oy < Ho; oy++) {
      TapRange tr = ops::tap_range(oy, ay.up, ay.down, ay.pad0, ay.taps, H);
      T* yr = y + static_cast<size_t>(oy) * Wo;
      for (int t = 0; t < tr.count; t++) {
        load_row(interior, x + static_cast<size_t>(tr.s0 + t) * W, W, T(0));
        hpass_acc(ax, w + static_cast<size_t>(tr.k0 + ay.up * t) * ax.taps, interior, yr, s);
      }
    }
  }
}

void check_filter(const torch::Tensor& w, const torch::Tensor& x, const char* name) {
  TORCH_CHECK((w.dim() == 1 || w.dim() == 2) && w.numel() > 0 && w.is_contiguous() && w.dtype() == x.dtype(),
              name, ": the filter must be a contiguous non-empty 1-D or 2-D tensor of x's dtype");
}

torch::Tensor upfirdn2d(torch::Tensor x, torch::Tensor w, int64_t upx, int64_t upy, int64_t downx,
                        int64_t downy, int64_t px0, int64_t px1, int64_t py0, int64_t py1) {
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous(), "upfirdn2d: x must be a contiguous [N, C, H, W] tensor");
  check_filter(w, x, "upfirdn2d");
  TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: up/down must be >= 1");
  const bool separable = w.dim() == 1;
  const int fw = w.size(-1), fh = w.size(0);  // a 1-D filter has the same taps on both axes
  const int N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  Axis ax = make_axis(W, upx, downx, px0, px1, fw);
  Axis ay = make_axis(H, upy, downy, py0, py1, fh);
  auto y = torch::empty({N, C, ay.n_out, ax.n_out}, x.options());
  if (y.numel() == 0 || x.numel() == 0) return y.zero_();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "upfirdn2d", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    at::parallel_for(0, static_cast<int64_t>(N) * C, 1, [&](int64_t begin, int64_t end) {
      Scratch<scalar_t> s;
      std::vector<scalar_t> row(ax.stride(), scalar_t(0));
      std::vector<scalar_t> hx(separable ? static_cast<size_t>(H) * ax.n_out : 0);
      for (int64_t p = begin; p < end; p++)
        upfirdn2d_plane(xp + p * H * W, yp + p * ay.n_out * ax.n_out, wp, separable, ax, ay, s, row, hx);
    });
  });
  return y;
}

// ---------------------------------------------------------------------------------------------
// filtered_lrelu, fused: for each output row, the rows of the upsampled+activated signal it needs
// are produced on demand into a small ring buffer (fd_rows rows), from a ring of horizontally
// upsampled input rows; the full-resolution intermediate never exists.

template <typename T>
struct FlreluPlan {
  Axis ux, dx;      // horizontal up pass (W -> Wm) and down pass (Wm -> Wo)
  int H, Hm, Ho;    // rows: input, upsampled, output
  int up, down, py0;
  int fuh, fdh;     // vertical taps
  bool fu_sep, fd_sep;
  T gain, slope, clamp;
  bool fd_vmirror;  // a 2-D fd whose rows mirror (row k == row fdh-1-k), e.g. a radial filter
};

// True when the rows of a 2-D filter mirror exactly (then mirrored input rows can be added first).
template <typename T>
bool rows_mirror(const torch::Tensor& f) {
  if (f.dim() != 2) return false;
  const int h = f.size(0), w = f.size(1);
  const T* p = f.data_ptr<T>();
  for (int k = 0; k < h / 2; k++)
    for (int j = 0; j < w; j++)
      if (p[k * w + j] != p[(h - 1 - k) * w + j]) return false;
  return true;
}

template <typename T>
FlreluPlan<T> make_flrelu_plan(const torch::Tensor& x, const torch::Tensor& fu, const torch::Tensor& fd,
                               int64_t up, int64_t down, int64_t px0, int64_t px1, int64_t py0, int64_t py1,
                               double gain, double slope, double clamp) {
  const int H = x.size(2), W = x.size(3);
  const int fuw = fu.size(-1), fuh = fu.size(0), fdw = fd.size(-1), fdh = fd.size(0);
  Axis ux = make_axis(W, up, 1, px0, px1, fuw);
  const int Hm = ops::upfirdn_out_size(H, up, 1, py0, py1, fuh);
  TORCH_CHECK(Hm > 0, "filtered_lrelu: the upsampled signal would be empty; check the padding");
  Axis dx = make_axis(ux.n_out, 1, down, 0, 0, fdw);
  const int Ho = ops::upfirdn_out_size(Hm, 1, down, 0, 0, fdh);
  TORCH_CHECK(Ho > 0, "filtered_lrelu: the output would be empty; check the padding and filter sizes");
  return FlreluPlan<T>{ux, dx, H, Hm, Ho, (int)up, (int)down, (int)py0, fuh, fdh, fu.dim() == 1, fd.dim() == 1,
                       T(gain), T(slope), T(clamp), rows_mirror<T>(fd)};
}

// Rows Y = 0, 1, ... (increasing; gaps allowed) of the upsampled signal before the activation,
// u = upfirdn(x + bias, fu, up, padding), one at a time. A separable fu keeps a ring of
// horizontally upsampled input rows so each input row is passed horizontally once.
template <typename T>
struct UpRows {
  const FlreluPlan<T>& P;
  const T* x;
  T bias;
  const T* fu;
  Scratch<T>& s;
  int RH;                    // ring of horizontally upsampled input rows
  std::vector<T> xrow, hx;   // one input row with zero margins; the ring
  int hx_next = 0;           // next input row to pass horizontally

  UpRows(const FlreluPlan<T>& P_, const T* x_, T bias_, const T* fu_, Scratch<T>& s_)
      : P(P_), x(x_), bias(bias_), fu(fu_), s(s_), RH(ops::ceil_div(P_.fuh, P_.up) + 1),
        xrow(P_.ux.stride(), T(0)), hx(P_.fu_sep ? static_cast<size_t>(RH) * P_.ux.n_out : 0) {}

  // a[0 .. Wm) = row Y of u.
  void produce(int Y, T* a) {
    const Axis& ux = P.ux;
    const int W = ux.n_in, Wm = ux.n_out;
    T* xin = xrow.data() + ux.L;
    std::fill(a, a + Wm, T(0));
    TapRange tr = ops::tap_range(Y, P.up, 1, P.py0, P.fuh, P.H);
    if (P.fu_sep) {
      if (tr.count > 0) {
        hx_next = std::max(hx_next, tr.s0);
        for (; hx_next < tr.s0 + tr.count; hx_next++) {
          T* h = hx.data() + static_cast<size_t>(hx_next % RH) * Wm;
          load_row(xin, x + static_cast<size_t>(hx_next) * W, W, bias);
          std::fill(h, h + Wm, T(0));
          hpass_acc(ux, fu, xin, h, s);
        }
      }
      TapList<T> tl(a, Wm);
      for (int t = 0; t < tr.count; t++)
        tl.add(hx.data() + static_cast<size_t>((tr.s0 + t) % RH) * Wm, fu[tr.k0 + P.up * t]);
      tl.flush();
    } else {
      for (int t = 0; t < tr.count; t++) {
        load_row(xin, x + static_cast<size_t>(tr.s0 + t) * W, W, bias);
        hpass_acc(ux, fu + static_cast<size_t>(tr.k0 + P.up * t) * ux.taps, xin, a, s);
      }
    }
  }
};

// The forward keeps each activated row "phase split" for the horizontal down pass: `down` phase
// rows of `plen` samples, phase q holding positions q, q + down, q + 2 down, ... and zeros past the
// row's end. Tap k of output o then reads phase k % down at index o + k / down, a contiguous run,
// so the down pass (separable or 2-D) is one register-blocked combine with no per-tap gather.
struct SplitRow {
  int n;     // real samples (the upsampled width Wm)
  int down;  // phases
  int plen;  // samples per phase row, including the zero tail the down taps read
  int size() const { return down * plen; }
  int count(int q) const { return ops::ceil_div(n - q, down); }  // real samples of phase q
};

SplitRow make_split_row(int n, int down, int n_out, int taps) {
  return SplitRow{n, down, n_out + ops::ceil_div(taps - 1, down)};
}

// dst (split layout) = act(u) for a contiguous row u of sr.n samples; the zero tails stay untouched.
template <typename T>
void split_act_row(const T* __restrict__ u, T* __restrict__ dst, const SplitRow& sr, T slope, T gain, T clamp) {
  for (int q = 0; q < sr.down; q++) {
    T* d = dst + static_cast<size_t>(q) * sr.plen;
    const int cnt = sr.count(q);
    for (int i = 0; i < cnt; i++) d[i] = ops::flrelu_act(u[i * sr.down + q], slope, gain, clamp);
  }
}

// dst[S * m + j] = src_j[m]: interleave the up-phases that land in one phase row (S = up / down).
template <typename T>
void interleave(T* __restrict__ dst, const T* const* src, const int* cnt, int S, int total) {
  if (S == 2) {
    const int both = std::min(cnt[0], cnt[1]);
    const T* __restrict__ a = src[0];
    const T* __restrict__ b = src[1];
    for (int m = 0; m < both; m++) {
      dst[2 * m] = a[m];
      dst[2 * m + 1] = b[m];
    }
    for (int i = 2 * both; i < total; i++) dst[i] = src[i & 1][i >> 1];
    return;
  }
  for (int i = 0; i < total; i++) dst[i] = src[i % S][i / S];
}

// The horizontal up pass of one input row xp (with zero margins) straight into the split layout,
// for up a multiple of down: output o = r + up * m (up-phase r) lands in phase r % down at index
// r / down + (up / down) * m. Only the real samples of `out` are written.
template <typename T>
void hpass_up_split(const Axis& ux, const T* w, const T* xp, T* out, const SplitRow& sr, Scratch<T>& s) {
  const int up = ux.up, S = up / sr.down, n_out = ux.n_out;
  const int mmax = ops::ceil_div(n_out, up);
  if (S > 1) s.a.resize(static_cast<size_t>(up) * mmax);
  for (int r = 0; r < up && r < n_out; r++) {
    const int m_count = ops::ceil_div(n_out - r, up);
    T* dst = S == 1 ? out + static_cast<size_t>(r) * sr.plen : s.a.data() + static_cast<size_t>(r) * mmax;
    std::fill(dst, dst + m_count, T(0));
    TapRange tr = ops::tap_range_unbounded(r, up, 1, ux.pad0, ux.taps);
    TapList<T> tl(dst, m_count);
    for (int t = 0; t < tr.count; t++) tl.add(xp + tr.s0 + t, w[tr.k0 + up * t]);
    tl.flush();
  }
  if (S == 1) return;
  const T* src[16];
  int cnt[16];
  TORCH_CHECK(S <= 16, "filtered_lrelu: up / down > 16 is not supported by the CPU kernel");
  for (int q = 0; q < sr.down; q++) {
    for (int j = 0; j < S; j++) {
      const int r = q + sr.down * j;
      src[j] = s.a.data() + static_cast<size_t>(r) * mmax;
      cnt[j] = r < n_out ? ops::ceil_div(n_out - r, up) : 0;
    }
    interleave(out + static_cast<size_t>(q) * sr.plen, src, cnt, S, sr.count(q));
  }
}

// Rows of the upsampled signal before the activation, in the split layout, for a separable fu and
// up a multiple of down (every StyleGAN3 layer). A ring of horizontally upsampled input rows (split
// too) means each input row is passed horizontally once; the vertical pass then works on split
// rows directly, since it combines whole rows.
template <typename T>
struct SplitUpRows {
  const FlreluPlan<T>& P;
  const SplitRow& sr;
  const T* x;
  T bias;
  const T* fu;
  Scratch<T>& s;
  int RH;
  std::vector<T> xrow, hx;
  int hx_next = 0;

  SplitUpRows(const FlreluPlan<T>& P_, const SplitRow& sr_, const T* x_, T bias_, const T* fu_, Scratch<T>& s_)
      : P(P_), sr(sr_), x(x_), bias(bias_), fu(fu_), s(s_), RH(ops::ceil_div(P_.fuh, P_.up) + 1),
        xrow(P_.ux.stride(), T(0)), hx(static_cast<size_t>(RH) * sr_.size(), T(0)) {}

  static bool applies(const FlreluPlan<T>& P) { return P.fu_sep && P.up % P.down == 0; }

  void produce(int Y, T* a) {
    const int W = P.ux.n_in, size = sr.size();
    std::fill(a, a + size, T(0));
    TapRange tr = ops::tap_range(Y, P.up, 1, P.py0, P.fuh, P.H);
    if (tr.count == 0) return;
    hx_next = std::max(hx_next, tr.s0);
    for (; hx_next < tr.s0 + tr.count; hx_next++) {
      load_row(xrow.data() + P.ux.L, x + static_cast<size_t>(hx_next) * W, W, bias);
      hpass_up_split(P.ux, fu, xrow.data() + P.ux.L, hx.data() + static_cast<size_t>(hx_next % RH) * size, sr, s);
    }
    TapList<T> tl(a, size);
    for (int t = 0; t < tr.count; t++)
      tl.add(hx.data() + static_cast<size_t>((tr.s0 + t) % RH) * size, fu[tr.k0 + P.up * t]);
    tl.flush();
  }
};

template <typename T>
void flrelu_plane(const T* x, T bias, T* y, const T* fu, const T* fd, const FlreluPlan<T>& P, Scratch<T>& s) {
  const Axis& dx = P.dx;
  const int Wm = P.ux.n_out, Wo = dx.n_out, down = P.down;
  const SplitRow sr = make_split_row(Wm, down, Wo, dx.taps);
  const int size = sr.size();
  const int RA = P.fdh;  // ring of activated rows (split layout)
  std::vector<T> ar(static_cast<size_t>(RA) * size, T(0));
  std::vector<T> drow(P.fd_sep ? size : 0, T(0));
  std::vector<T> folded(P.fd_vmirror ? static_cast<size_t>(P.fdh / 2) * size : 0);
  const bool split_up = SplitUpRows<T>::applies(P);
  SplitUpRows<T> srows(P, sr, x, bias, fu, s);
  UpRows<T> rows(P, x, bias, fu, s);  // the general case: contiguous rows, split afterwards
  std::vector<T> urow(split_up ? 0 : Wm);
  int a_next = 0;  // next activated row to produce

  for (int oy = 0; oy < P.Ho; oy++) {
    const int y0 = oy * down;
    for (; a_next < y0 + P.fdh; a_next++) {
      T* a = ar.data() + static_cast<size_t>(a_next % RA) * size;
      if (split_up) {
        srows.produce(a_next, a);
        flrelu_row(a, size, P.slope, P.gain, P.clamp);  // act(0) = 0: the zero tails stay zero
      } else {
        rows.produce(a_next, urow.data());
        split_act_row(urow.data(), a, sr, P.slope, P.gain, P.clamp);
      }
    }
    T* yr = y + static_cast<size_t>(oy) * Wo;
    std::fill(yr, yr + Wo, T(0));
    TapList<T> tl(yr, Wo);
    if (P.fd_sep) {
      std::fill(drow.begin(), drow.end(), T(0));
      TapList<T> vl(drow.data(), size);
      for (int k = 0; k < P.fdh; k++) vl.add(ar.data() + static_cast<size_t>((y0 + k) % RA) * size, fd[k]);
      vl.flush();
      for (int k = 0; k < dx.taps; k++)
        tl.add(drow.data() + static_cast<size_t>(k % down) * sr.plen + k / down, fd[k]);
    } else {
      // A mirrored fd (radial filters): add the mirrored rows first, which halves the taps.
      const int rows_2d = P.fd_vmirror ? ops::ceil_div(P.fdh, 2) : P.fdh;
      for (int ky = 0; ky < rows_2d; ky++) {
        const T* row = ar.data() + static_cast<size_t>((y0 + ky) % RA) * size;
        const int mirror = P.fdh - 1 - ky;
        if (P.fd_vmirror && mirror != ky) {
          T* f = folded.data() + static_cast<size_t>(ky) * size;
          add_rows(f, row, ar.data() + static_cast<size_t>((y0 + mirror) % RA) * size, size);
          row = f;
        }
        for (int kx = 0; kx < dx.taps; kx++)
          tl.add(row + static_cast<size_t>(kx % down) * sr.plen + kx / down, fd[ky * dx.taps + kx]);
      }
    }
    tl.flush();
  }
}

void check_flrelu_args(const torch::Tensor& x, const torch::Tensor& fu, const torch::Tensor& fd,
                       const torch::Tensor& b, int64_t up, int64_t down) {
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous(), "filtered_lrelu: x must be a contiguous [N, C, H, W] tensor");
  check_filter(fu, x, "filtered_lrelu (fu)");
  check_filter(fd, x, "filtered_lrelu (fd)");
  TORCH_CHECK(up >= 1 && down >= 1, "filtered_lrelu: up and down must be >= 1");
  if (b.numel() > 0)
    TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(1) && b.dtype() == x.dtype() && b.is_contiguous(),
                "filtered_lrelu: b must be a contiguous 1-D tensor of x's dtype with C entries");
}

torch::Tensor filtered_lrelu_fwd(torch::Tensor x, torch::Tensor fu, torch::Tensor fd, torch::Tensor b,
                                 int64_t up, int64_t down, int64_t px0, int64_t px1, int64_t py0, int64_t py1,
                                 double gain, double slope, double clamp) {
  check_flrelu_args(x, fu, fd, b, up, down);
  const int N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  torch::Tensor y;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "filtered_lrelu_fwd", [&] {
    const auto P = make_flrelu_plan<scalar_t>(x, fu, fd, up, down, px0, px1, py0, py1, gain, slope, clamp);
    const int Ho = P.Ho, Wo = P.dx.n_out;
    y = torch::empty({N, C, Ho, Wo}, x.options());
    if (x.numel() == 0) {
      y.zero_();
      return;
    }
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* bp = b.numel() ? b.data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.data_ptr<scalar_t>();
    const scalar_t* fup = fu.data_ptr<scalar_t>();
    const scalar_t* fdp = fd.data_ptr<scalar_t>();
    at::parallel_for(0, static_cast<int64_t>(N) * C, 1, [&](int64_t begin, int64_t end) {
      Scratch<scalar_t> s;
      for (int64_t p = begin; p < end; p++)
        flrelu_plane(xp + p * H * W, bp ? bp[p % C] : scalar_t(0), yp + p * Ho * Wo, fup, fdp, P, s);
    });
  });
  return y;
}

// ---------------------------------------------------------------------------------------------
// filtered_lrelu backward, fused the same way. With u the upsampled signal and a = act(u):
//   da = adjoint of the filter+downsample step applied to dy  (upfirdn: up = down, flipped fd),
//   du = da * act'(u)                                          (u recomputed row by row),
//   dx = adjoint of the upsample+filter step applied to du    (upfirdn: down = up, flipped fu).
// dx is produced row by row; the du rows it needs (a window of fu_taps rows, advancing by `up`)
// are made on demand into a ring, each from its recomputed u row and the dy rows under it. No
// full-size upsampled tensor (u, da or du) exists.

// d[i] *= act'(u[i]).
OPS_ROW_KERNEL(flrelu_grad_row, (T* __restrict__ d, const T* __restrict__ u, int n, T slope, T gain, T clamp),
               (d, u, n, slope, gain, clamp),
               if (clamp < T(0)) {
                 for (int i = 0; i < n; i++) d[i] *= ops::flrelu_grad_noclamp(u[i], slope, gain);
               } else {
                 for (int i = 0; i < n; i++) d[i] *= ops::flrelu_grad_clamped(u[i], slope, gain, clamp);
               })

// The adjoint resampling axes of the backward.
struct FlreluGradAxes {
  Axis dy;   // horizontal adjoint of the down pass: dy row (Wo) -> da row (Wm)
  Axis dx;   // horizontal adjoint of the up pass: du row (Wm) -> dx row (W)
  int ypad;  // vertical padding of the up pass's adjoint (pad0 of an upfirdn with down = up)
};

template <typename T>
double flrelu_grad_plane(const T* x, T bias, const T* dy, T* dxp, const T* fu, const T* fut, const T* fdt,
                         const FlreluPlan<T>& P, const FlreluGradAxes& G, Scratch<T>& s) {
  const Axis& ya = G.dy;
  const Axis& xa = G.dx;
  const int W = xa.n_out, Wm = xa.n_in, Wo = ya.n_in;
  UpRows<T> rows(P, x, bias, fu, s);
  std::vector<T> urow(Wm);
  const int RD = P.fuh;  // ring of du rows (a dx row reads at most fu_taps consecutive ones)
  const int dstride = xa.stride();
  std::vector<T> dur(static_cast<size_t>(RD) * dstride, T(0));
  std::vector<T> yrow(ya.stride(), T(0));  // a dy row, or the vertical combination of dy rows
  std::vector<T> vrow(P.fu_sep ? dstride : 0, T(0));
  int du_next = 0;
  // A mirrored 2-D fd (StyleGAN3-R): filter rows r and fdh-1-r are equal, and du rows Y and
  // Y + fdh-1-2r apply them to the same dy row, so each (dy row, distinct filter row) horizontal
  // pass is made once into a cache and added twice. The cache holds the dy rows a window of
  // du rows spans (2 * ceil(fdh / down) + 2), each with its ceil(fdh / 2) distinct passes.
  const bool share = !P.fd_sep && P.fd_vmirror;
  const int n_rows = ops::ceil_div(P.fdh, 2);
  const int RY = share ? 2 * ops::ceil_div(P.fdh, P.down) + 2 : 0;
  std::vector<T> hcache(static_cast<size_t>(RY) * n_rows * Wm);
  std::vector<int> htag(static_cast<size_t>(RY) * n_rows, -1);  // dy row held by each cache row
  auto hpass_of = [&](int i, int r) -> const T* {
    const int c = std::min(r, P.fdh - 1 - r);
    const size_t slot = static_cast<size_t>(i % RY) * n_rows + c;
    T* h = hcache.data() + slot * Wm;
    if (htag[slot] != i) {
      T* yin = yrow.data() + ya.L;
      load_row(yin, dy + static_cast<size_t>(i) * Wo, Wo, T(0));
      std::fill(h, h + Wm, T(0));
      hpass_acc(ya, fdt + static_cast<size_t>(c) * ya.taps, yin, h, s);
      htag[slot] = i;
    }
    return h;
  };

  auto produce_du = [&](int Y) {
    T* d = dur.data() + static_cast<size_t>(Y % RD) * dstride + xa.L;
    std::fill(d, d + Wm, T(0));
    TapRange tr = ops::tap_range(Y, P.down, 1, P.fdh - 1, P.fdh, P.Ho);
    T* yin = yrow.data() + ya.L;
    if (P.fd_sep) {  // vertical combination of the dy rows (narrow), then one horizontal pass
      std::fill(yin, yin + Wo, T(0));
      TapList<T> tl(yin, Wo);
      for (int t = 0; t < tr.count; t++) tl.add(dy + static_cast<size_t>(tr.s0 + t) * Wo, fdt[tr.k0 + P.down * t]);
      tl.flush();
      if (tr.count > 0) hpass_acc(ya, fdt, yin, d, s);
    } else if (share) {
      TapList<T> tl(d, Wm);
      for (int t = 0; t < tr.count; t++) tl.add(hpass_of(tr.s0 + t, tr.k0 + P.down * t), T(1));
      tl.flush();
    } else {
      for (int t = 0; t < tr.count; t++) {
        load_row(yin, dy + static_cast<size_t>(tr.s0 + t) * Wo, Wo, T(0));
        hpass_acc(ya, fdt + static_cast<size_t>(tr.k0 + P.down * t) * ya.taps, yin, d, s);
      }
    }
    rows.produce(Y, urow.data());
    flrelu_grad_row(d, urow.data(), Wm, P.slope, P.gain, P.clamp);
  };

  double sum = 0;
  for (int sy = 0; sy < P.H; sy++) {
    TapRange tr = ops::tap_range(sy, 1, P.up, G.ypad, P.fuh, P.Hm);
    for (du_next = std::max(du_next, tr.s0); du_next < tr.s0 + tr.count; du_next++) produce_du(du_next);
    T* dr = dxp + static_cast<size_t>(sy) * W;
    std::fill(dr, dr + W, T(0));
    if (P.fu_sep) {
      T* v = vrow.data() + xa.L;
      std::fill(v, v + Wm, T(0));
      TapList<T> tl(v, Wm);
      for (int t = 0; t < tr.count; t++)
        tl.add(dur.data() + static_cast<size_t>((tr.s0 + t) % RD) * dstride + xa.L, fut[tr.k0 + t]);
      tl.flush();
      if (tr.count > 0) hpass_acc(xa, fut, v, dr, s);
    } else {
      for (int t = 0; t < tr.count; t++)
        hpass_acc(xa, fut + static_cast<size_t>(tr.k0 + t) * xa.taps,
                  dur.data() + static_cast<size_t>((tr.s0 + t) % RD) * dstride + xa.L, dr, s);
    }
    for (int i = 0; i < W; i++) sum += dr[i];
  }
  return sum;
}

// Returns dx [N, C, H, W] and the per-plane sums of dx [N, C] (db = their sum over N).
std::tuple<torch::Tensor, torch::Tensor> filtered_lrelu_grad(torch::Tensor dy, torch::Tensor x, torch::Tensor fu,
                                                             torch::Tensor fd, torch::Tensor b, int64_t up,
                                                             int64_t down, int64_t px0, int64_t px1, int64_t py0,
                                                             int64_t py1, double gain, double slope,
                                                             double clamp) {
  check_flrelu_args(x, fu, fd, b, up, down);
  const int N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto dx = torch::empty_like(x);
  auto sums = torch::empty({N, C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "filtered_lrelu_grad", [&] {
    const auto P = make_flrelu_plan<scalar_t>(x, fu, fd, up, down, px0, px1, py0, py1, gain, slope, clamp);
    const int Wm = P.ux.n_out, Ho = P.Ho, Wo = P.dx.n_out;
    TORCH_CHECK(dy.dim() == 4 && dy.size(0) == N && dy.size(1) == C && dy.size(2) == Ho && dy.size(3) == Wo &&
                    dy.is_contiguous() && dy.dtype() == x.dtype(),
                "filtered_lrelu_grad: dy must be a contiguous tensor of x's dtype shaped like the output [", N,
                ", ", C, ", ", Ho, ", ", Wo, "]");
    if (x.numel() == 0) {
      dx.zero_();
      sums.zero_();
      return;
    }
    const int fuw = fu.size(-1), fdw = fd.size(-1);
    // Adjoint paddings (see _adjoint_padding in _native_ops.py).
    FlreluGradAxes G{make_axis(Wo, down, 1, fdw - 1, Wm - Wo * down, fdw),
                     make_axis(Wm, 1, up, fuw - 1 - px0, W * up - Wm + px0 + 1 - up, fuw), P.fuh - 1 - (int)py0};
    TORCH_CHECK(G.dy.n_out == Wm && G.dx.n_out == W, "filtered_lrelu_grad: inconsistent adjoint geometry");
    std::vector<int64_t> dims_u(fu.dim()), dims_d(fd.dim());
    for (int i = 0; i < fu.dim(); i++) dims_u[i] = i;
    for (int i = 0; i < fd.dim(); i++) dims_d[i] = i;
    const auto fut = fu.flip(dims_u).contiguous(), fdt = fd.flip(dims_d).contiguous();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* dyp = dy.data_ptr<scalar_t>();
    const scalar_t* bp = b.numel() ? b.data_ptr<scalar_t>() : nullptr;
    scalar_t* dxp = dx.data_ptr<scalar_t>();
    scalar_t* sp = sums.data_ptr<scalar_t>();
    const scalar_t* fup = fu.data_ptr<scalar_t>();
    const scalar_t* futp = fut.data_ptr<scalar_t>();
    const scalar_t* fdtp = fdt.data_ptr<scalar_t>();
    at::parallel_for(0, static_cast<int64_t>(N) * C, 1, [&](int64_t begin, int64_t end) {
      Scratch<scalar_t> s;
      for (int64_t p = begin; p < end; p++)
        sp[p] = static_cast<scalar_t>(flrelu_grad_plane(xp + p * H * W, bp ? bp[p % C] : scalar_t(0),
                                                        dyp + p * Ho * Wo, dxp + p * H * W, fup, futp, fdtp, P,
                                                        G, s));
    });
  });
  return {dx, sums};
}

// ---------------------------------------------------------------------------------------------
// Winograd F(m x m, 3 x 3), m = 2 or 4: the input and output transforms around the batched matmul
// of a stride-1 3x3 convolution (ops_cuda/winograd.py has the maths and the weight transform).
// Tiles of a = m + 2 input samples, m apart, cover the input placed at (pad_top, pad_left) in a
// zero canvas. The input transform writes V = B^T d B of every tile into V [a*a, C, N, T] (T tiles
// of a band of tile rows, row-major); the output transform reads M [a*a, Q, N, T] and writes
// A^T M A into y (clipped at its edges). The caller owns V, M and y. B^T and A^T are those of Lavin
// and Gray (points 0, 1, -1 and for m = 4 also 2, -2), written out with shared sub-expressions;
// each applies to columns of whole rows (contiguous, vectorised), then per tile.
// Both transforms are linear, so a modulated convolution's per-sample channel scales ride along
// for free: the input's [N, C] scales multiply the rows as they are read, the output's [N, O]
// scales the results as they are written. An upsampling convolution computed as up*up phase
// convolutions (Q = up*up*O channels, phase-major) writes each phase's pixels into their places of
// the up-times larger y [N, O, up*Ho, up*Wo].

template <int M>
struct Wino;

template <>
struct Wino<2> {
  static constexpr int A = 4;
  template <typename T>
  static inline void bt(const T* d, T* v) {  // v = B^T d
    v[0] = d[0] - d[2];
    v[1] = d[1] + d[2];
    v[2] = d[2] - d[1];
    v[3] = d[1] - d[3];
  }
  template <typename T>
  static inline void at(const T* d, T* y) {  // y = A^T d
    y[0] = d[0] + d[1] + d[2];
    y[1] = d[1] - d[2] - d[3];
  }
};

template <>
struct Wino<4> {
  static constexpr int A = 6;
  template <typename T>
  static inline void bt(const T* d, T* v) {
    const T t1 = d[4] - T(4) * d[2], t2 = d[3] - T(4) * d[1];
    const T t3 = d[4] - d[2], t4 = T(2) * (d[3] - d[1]);
    v[0] = T(4) * d[0] - T(5) * d[2] + d[4];
    v[1] = t1 + t2;
    v[2] = t1 - t2;
    v[3] = t3 + t4;
    v[4] = t3 - t4;
    v[5] = T(4) * d[1] - T(5) * d[3] + d[5];
  }
  template <typename T>
  static inline void at(const T* d, T* y) {
    const T s1 = d[1] + d[2], d1 = d[1] - d[2], s2 = d[3] + d[4], d2 = d[3] - d[4];
    y[0] = d[0] + s1 + s2;
    y[1] = d1 + T(2) * d2;
    y[2] = s1 + T(4) * s2;
    y[3] = d1 + T(8) * d2 + d[5];
  }
};

template <int M, typename T>
void winograd_input_plane(const T* x, T scale, int H, int W, T* v, int64_t pos_stride, int ty0, int th, int tw,
                          int pad_top, int pad_left) {
  constexpr int A = Wino<M>::A;
  const int wc = tw * M + A - M;  // canvas columns the tiles of a row read
  std::vector<T> rows(static_cast<size_t>(A) * wc), vt(static_cast<size_t>(A) * wc);
  const int c0 = std::max(0, pad_left), c1 = std::min(wc, pad_left + W);  // canvas columns with data
  for (int ty = 0; ty < th; ty++) {
    const int r0 = (ty0 + ty) * M - pad_top;  // input row under the tile row's first canvas row
    for (int k = 0; k < A; k++) {
      T* row = rows.data() + static_cast<size_t>(k) * wc;
      std::fill(row, row + wc, T(0));
      const int r = r0 + k;
      if (r >= 0 && r < H && c1 > c0) {
        const T* src = x + static_cast<size_t>(r) * W - pad_left;
        for (int i = c0; i < c1; i++) row[i] = src[i] * scale;
      }
    }
    for (int i = 0; i < wc; i++) {  // B^T down every column of the a canvas rows
      T d[A], o[A];
      for (int k = 0; k < A; k++) d[k] = rows[static_cast<size_t>(k) * wc + i];
      Wino<M>::bt(d, o);
      for (int k = 0; k < A; k++) vt[static_cast<size_t>(k) * wc + i] = o[k];
    }
    for (int l = 0; l < A; l++) {  // then along each row, tile by tile
      const T* row = vt.data() + static_cast<size_t>(l) * wc;
      T* out = v + static_cast<size_t>(l * A) * pos_stride + static_cast<size_t>(ty) * tw;
      for (int tx = 0; tx < tw; tx++) {
        T o[A];
        Wino<M>::bt(row + tx * M, o);
        for (int k = 0; k < A; k++) out[k * pos_stride + tx] = o[k];
      }
    }
  }
}

template <int M, typename T>
void winograd_output_plane(const T* mm, int64_t pos_stride, T scale, T* y, int Wy, int up, int Ho, int Wo, int ty0,
                           int th, int tw) {
  constexpr int A = Wino<M>::A;
  std::vector<T> z(static_cast<size_t>(M) * A * tw);  // z[i][l2] = A^T (column l2 of the tile), per tile
  for (int ty = 0; ty < th; ty++) {
    const T* band = mm + static_cast<size_t>(ty) * tw;
    for (int l2 = 0; l2 < A; l2++) {
      for (int tx = 0; tx < tw; tx++) {
        T d[A], o[M];
        for (int l = 0; l < A; l++) d[l] = band[static_cast<size_t>(l * A + l2) * pos_stride + tx];
        Wino<M>::at(d, o);
        for (int i = 0; i < M; i++) z[(static_cast<size_t>(i) * A + l2) * tw + tx] = o[i];
      }
    }
    for (int i = 0; i < M; i++) {
      const int oy = (ty0 + ty) * M + i;
      if (oy >= Ho) break;
      T* yr = y + static_cast<size_t>(oy) * up * Wy;  // y points at this phase's first pixel
      const T* zi = z.data() + static_cast<size_t>(i) * A * tw;
      for (int tx = 0; tx < tw; tx++) {
        T d[A], o[M];
        for (int l2 = 0; l2 < A; l2++) d[l2] = zi[static_cast<size_t>(l2) * tw + tx];
        Wino<M>::at(d, o);
        const int n = std::min(M, Wo - tx * M);
        for (int j = 0; j < n; j++) yr[(tx * M + j) * up] = o[j] * scale;
      }
    }
  }
}

// x [N, C, H, W] -> v [a*a, C, N, th*tw] (in place) for the tile rows ty0 .. ty0 + th of tw tiles each.
// scale: empty, or [N, C] factors of the input channels.
void winograd_input(torch::Tensor x, torch::Tensor v, int64_t m, int64_t ty0, int64_t th, int64_t tw,
                    int64_t pad_top, int64_t pad_left, torch::Tensor scale) {
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous(), "winograd_input: x must be a contiguous [N, C, H, W] tensor");
  TORCH_CHECK(m == 2 || m == 4, "winograd_input: the output tile size m must be 2 or 4");
  TORCH_CHECK(ty0 >= 0 && th >= 1 && tw >= 1 && pad_top >= 0 && pad_left >= 0, "winograd_input: bad tile geometry");
  const int64_t a = m + 2, N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), T_ = th * tw;
  TORCH_CHECK(v.dim() == 4 && v.is_contiguous() && v.size(0) == a * a && v.size(1) == C && v.size(2) == N &&
                  v.size(3) == T_ && v.dtype() == x.dtype(),
              "winograd_input: V must be a contiguous [a*a, C, N, th*tw] tensor of x's dtype");
  TORCH_CHECK(scale.numel() == 0 || (scale.dim() == 2 && scale.size(0) == N && scale.size(1) == C &&
                                     scale.is_contiguous() && scale.dtype() == x.dtype()),
              "winograd_input: scale must be empty or a contiguous [N, C] tensor of x's dtype");
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "winograd_input", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* sp = scale.numel() ? scale.data_ptr<scalar_t>() : nullptr;
    scalar_t* vp = v.data_ptr<scalar_t>();
    at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; p++) {
        const int64_t n = p / C, c = p % C;
        auto plane = m == 2 ? winograd_input_plane<2, scalar_t> : winograd_input_plane<4, scalar_t>;
        plane(xp + p * H * W, sp ? sp[p] : scalar_t(1), (int)H, (int)W, vp + (c * N + n) * T_, C * N * T_, (int)ty0,
              (int)th, (int)tw, (int)pad_top, (int)pad_left);
      }
    });
  });
}

// M [a*a, up*up*O, N, th*tw] -> the output rows of the tile rows ty0 .. ty0 + th of y [N, O, up*Ho, up*Wo],
// in place; channel ph*O + o of M is phase ph = py*up + px of output channel o, whose pixels are
// y[n, o, up*r + py, up*c + px]. scale: empty, or [N, O] factors of the output channels.
void winograd_output(torch::Tensor mm, torch::Tensor y, int64_t m, int64_t ty0, int64_t th, int64_t tw,
                     torch::Tensor scale, int64_t up) {
  TORCH_CHECK(y.dim() == 4 && y.is_contiguous(), "winograd_output: y must be a contiguous [N, O, Ho, Wo] tensor");
  TORCH_CHECK(m == 2 || m == 4, "winograd_output: the output tile size m must be 2 or 4");
  TORCH_CHECK(up >= 1 && y.size(2) % up == 0 && y.size(3) % up == 0,
              "winograd_output: up must be >= 1 and divide y's height and width");
  const int64_t a = m + 2, N = y.size(0), O = y.size(1), Hy = y.size(2), Wy = y.size(3), T_ = th * tw;
  const int64_t Q = up * up * O, Ho = Hy / up, Wo = Wy / up;
  TORCH_CHECK(ty0 >= 0 && th >= 1 && tw >= 1 && tw * m >= Wo, "winograd_output: bad tile geometry");
  TORCH_CHECK(mm.dim() == 4 && mm.is_contiguous() && mm.size(0) == a * a && mm.size(1) == Q && mm.size(2) == N &&
                  mm.size(3) == T_ && mm.dtype() == y.dtype(),
              "winograd_output: M must be a contiguous [a*a, up*up*O, N, th*tw] tensor of y's dtype");
  TORCH_CHECK(scale.numel() == 0 || (scale.dim() == 2 && scale.size(0) == N && scale.size(1) == O &&
                                     scale.is_contiguous() && scale.dtype() == y.dtype()),
              "winograd_output: scale must be empty or a contiguous [N, O] tensor of y's dtype");
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "winograd_output", [&] {
    const scalar_t* mp = mm.data_ptr<scalar_t>();
    const scalar_t* sp = scale.numel() ? scale.data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.data_ptr<scalar_t>();
    at::parallel_for(0, N * Q, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; p++) {
        const int64_t n = p / Q, q = p % Q, ph = q / O, o = q % O;
        scalar_t* yo = yp + (n * O + o) * Hy * Wy + (ph / up) * Wy + ph % up;
        auto plane = m == 2 ? winograd_output_plane<2, scalar_t> : winograd_output_plane<4, scalar_t>;
        plane(mp + (q * N + n) * T_, Q * N * T_, sp ? sp[n * O + o] : scalar_t(1), yo, (int)Wy, (int)up, (int)Ho,
              (int)Wo, (int)ty0, (int)th, (int)tw);
      }
    });
  });
}

// --- col2im of a stride-2 3x3 transposed convolution ------------------------------------------------

// One output plane: y[oy, ox] = sum of c[ky*3 + kx][sy, sx] over 2*sy + ky = oy + py, 2*sx + kx = ox + px.
// Row by row, each output row written once (in L1) from the one or two source rows that reach it.
template <typename T>
void col2im_s2_plane(const T* c, T* y, int H, int W, int py, int px, int Ho, int Wo) {
  const int64_t HW = static_cast<int64_t>(H) * W;
  for (int oy = 0; oy < Ho; oy++) {
    T* row = y + static_cast<int64_t>(oy) * Wo;
    std::fill(row, row + Wo, T(0));
    const int Y = oy + py;
    for (int ky = Y & 1; ky < 3; ky += 2) {
      const int sy = (Y - ky) / 2;
      if (sy < 0 || sy >= H) continue;
      for (int kx = 0; kx < 3; kx++) {
        const T* src = c + (ky * 3 + kx) * HW + static_cast<int64_t>(sy) * W;
        // ox = 2 * sx + kx - px must lie in [0, Wo).
        const int lo = std::max(0, (px - kx + 1) / 2);
        const int last = Wo - 1 + px - kx;  // 2 * sx may reach this
        const int hi = last < 0 ? 0 : std::min(W, last / 2 + 1);
        const int off = kx - px;
        for (int sx = lo; sx < hi; sx++) row[2 * sx + off] += src[sx];
      }
    }
  }
}

// cols [N, O*9, H*W] (row o*9 + ky*3 + kx: the contribution of tap (ky, kx) of output channel o at each input
// pixel) -> y [N, O, 2H+1-2py, 2W+1-2px]: the col2im step of conv_transpose2d(stride 2, 3x3 kernel, padding).
torch::Tensor col2im_s2k3(torch::Tensor cols, int64_t H, int64_t W, int64_t py, int64_t px) {
  TORCH_CHECK(cols.dim() == 3 && cols.is_contiguous() && cols.size(1) % 9 == 0 && cols.size(2) == H * W,
              "col2im_s2k3: cols must be a contiguous [N, O*9, H*W] tensor");
  TORCH_CHECK(H >= 1 && W >= 1 && py >= 0 && px >= 0 && 2 * py < 2 * H + 1 && 2 * px < 2 * W + 1,
              "col2im_s2k3: bad geometry");
  const int64_t N = cols.size(0), O = cols.size(1) / 9, Ho = 2 * H + 1 - 2 * py, Wo = 2 * W + 1 - 2 * px;
  auto y = torch::empty({N, O, Ho, Wo}, cols.options());
  AT_DISPATCH_FLOATING_TYPES(cols.scalar_type(), "col2im_s2k3", [&] {
    const scalar_t* cp = cols.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    at::parallel_for(0, N * O, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; p++)
        col2im_s2_plane(cp + p * 9 * H * W, yp + p * Ho * Wo, (int)H, (int)W, (int)py, (int)px, (int)Ho, (int)Wo);
    });
  });
  return y;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "ops_cuda CPU kernels (bias_act, upfirdn2d, fused filtered_lrelu)";
  m.def("bias_act_fwd", &bias_act_fwd, "bias + activation + gain + clamp");
  m.def("bias_act_grad", &bias_act_grad, "gradient of bias_act with respect to x");
  m.def("upfirdn2d", &upfirdn2d, "upsample, pad, FIR filter (pre-flipped), downsample");
  m.def("filtered_lrelu_fwd", &filtered_lrelu_fwd, "fused upsample + lrelu/clamp + downsample");
  m.def("filtered_lrelu_grad", &filtered_lrelu_grad, "fused first-order backward of filtered_lrelu: (dx, dx sums per plane)");
  m.def("winograd_input", &winograd_input, "Winograd F(m x m, 3 x 3) input transform of a band of tile rows");
  m.def("winograd_output", &winograd_output, "Winograd F(m x m, 3 x 3) output transform of a band, into y");
  m.def("col2im_s2k3", &col2im_s2k3, "col2im of a stride-2 3x3 transposed convolution: [N, O*9, H*W] -> [N, O, Ho, Wo]");
}
