// The CUDA kernels of ops_cuda (included by ops_cuda.cu). Kept in a header so the tests can also
// compile them as plain C++ and run them block by block on the CPU (tests/ops/cuda_emulation.cpp):
// every kernel loops `for (i = threadIdx.x; i < n; i += blockDim.x)` between __syncthreads(), so
// running one "thread" per block gives the same result, which checks the tile and index maths
// without a GPU.
#pragma once

#include <ATen/OpMathType.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "ops_common.h"

#ifdef __CUDACC__
#define OPS_GLOBAL __global__
#define OPS_DEVICE __device__
#define OPS_DECLARE_SMEM(name) extern __shared__ unsigned char name[]
#else
// Host emulation: the includer defines blockIdx, threadIdx, blockDim, gridDim, __syncthreads()
// and ops_emu_smem() (the block's shared memory).
#define OPS_GLOBAL
#define OPS_DEVICE
#define OPS_DECLARE_SMEM(name) unsigned char* name = ops_emu_smem()
#endif

namespace ops_cuda_kernels {

using ops::TapRange;
#ifndef __CUDACC__
using std::min;
#endif

// ---------------------------------------------------------------------------------------------
// bias_act: x viewed as [rows, inner], bias index = row % C.

template <int A, typename scalar_t>
OPS_GLOBAL void bias_act_fwd_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ b,
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
OPS_GLOBAL void bias_act_grad_kernel(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
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


// ---------------------------------------------------------------------------------------------
// upfirdn2d: one thread per output sample; separable filters are the outer product w[ky] * w[kx].

template <typename scalar_t, typename w_t>
OPS_GLOBAL void upfirdn2d_kernel(const scalar_t* __restrict__ x, const w_t* __restrict__ w,
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

// dst[r * cols + c] = src[(y0 + r) * W + x0 + c] + add inside the H x W plane, 0 outside.
template <typename scalar_t, typename acc_t>
OPS_DEVICE inline void load_tile(const scalar_t* src, int H, int W, int y0, int x0, int rows, int cols, acc_t add,
                                 acc_t* dst) {
  for (int i = threadIdx.x; i < rows * cols; i += blockDim.x) {
    const int r = i / cols, c = i % cols;
    const int sy = y0 + r, sx = x0 + c;
    const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
    dst[r * cols + c] = inside ? static_cast<acc_t>(src[int64_t(sy) * W + sx]) + add : acc_t(0);
  }
}

// Horizontal polyphase up pass of a loaded tile: dst[r * stride + c] (r < rows, c < cols) is
// upsampled column X0 + c of row r of src (src_w wide, its column 0 being input column sx0).
template <typename acc_t, typename w_t>
OPS_DEVICE inline void up_columns_tile(const acc_t* src, int src_w, int sx0, int rows, int cols, int X0, const w_t* f,
                                       int up, int pad0, int taps, acc_t* dst, int stride) {
  for (int i = threadIdx.x; i < rows * cols; i += blockDim.x) {
    const int r = i / cols, c = i % cols;
    const TapRange t = ops::tap_range_unbounded(X0 + c, up, 1, pad0, taps);
    acc_t acc = 0;
    for (int k = 0; k < t.count; k++) acc += acc_t(f[t.k0 + up * k]) * src[r * src_w + (t.s0 + k - sx0)];
    dst[r * stride + c] = acc;
  }
}

// out[r * out_stride + c] (r < R, c < Cw) = sum over the taps of f times
// src[(r * step + ky) * stride + c * step + kx]: the filter-and-decimate step that ends both the
// forward (fd, step = down) and the backward (flipped fu, step = up). src is srcW columns wide;
// a separable f goes through tmp (R rows of the same stride), vertical pass first.
template <typename acc_t, typename w_t, typename scalar_t>
OPS_DEVICE inline void filter_down_tile(const acc_t* src, acc_t* tmp, int stride, int srcW, const w_t* f, int fw,
                                        int fh, bool separable, int step, int R, int Cw, scalar_t* out,
                                        int64_t out_stride) {
  if (separable) {
    for (int i = threadIdx.x; i < R * srcW; i += blockDim.x) {
      const int r = i / srcW, c = i % srcW;
      acc_t acc = 0;
      for (int k = 0; k < fh; k++) acc += acc_t(f[k]) * src[(r * step + k) * stride + c];
      tmp[r * stride + c] = acc;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < R * Cw; i += blockDim.x) {
      const int r = i / Cw, c = i % Cw;
      acc_t acc = 0;
      for (int k = 0; k < fw; k++) acc += acc_t(f[k]) * tmp[r * stride + c * step + k];
      out[r * out_stride + c] = static_cast<scalar_t>(acc);
    }
  } else {
    for (int i = threadIdx.x; i < R * Cw; i += blockDim.x) {
      const int r = i / Cw, c = i % Cw;
      acc_t acc = 0;
      for (int ky = 0; ky < fh; ky++) {
        const acc_t* row = src + (r * step + ky) * stride + c * step;
        for (int kx = 0; kx < fw; kx++) acc += acc_t(f[ky * fw + kx]) * row[kx];
      }
      out[r * out_stride + c] = static_cast<scalar_t>(acc);
    }
  }
}

template <typename scalar_t, typename w_t>
OPS_GLOBAL void filtered_lrelu_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ b,
                                      const w_t* __restrict__ fu, const w_t* __restrict__ fd,
                                      scalar_t* __restrict__ y, FlreluGeom g, int C, float gain, float slope,
                                      float clamp) {
  using acc_t = at::opmath_type<scalar_t>;
  OPS_DECLARE_SMEM(smem_raw);
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

  const acc_t bias = b ? static_cast<acc_t>(b[p % C]) : acc_t(0);
  load_tile(x + p * g.H * g.W, g.H, g.W, sy0, sx0, IH, IW, bias, X);
  __syncthreads();

  const acc_t ag = gain, as = slope, ac = clamp;
  if (g.fu_sep) {
    up_columns_tile(X, IW, sx0, IH, AW, Ax0, fu, g.up, g.px0, g.fuw, HX, AWs);
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

  filter_down_tile(A, D, AWs, AW, fd, g.fdw, g.fdh, g.fd_sep, g.down, TH, TW,
                   y + p * g.Ho * g.Wo + int64_t(oy0) * g.Wo + ox0, g.Wo);
}

// ---------------------------------------------------------------------------------------------
// filtered_lrelu backward, fused per tile of dx (input resolution, TH x TW) in shared memory:
//   du region = the upsampled positions that tile reads through the (flipped) up filter;
//   u there is recomputed from the input tile (+bias), da there from the dy tile (adjoint of the
//   down step), du = da * act'(u) (zero outside the upsampled signal), then dx = adjoint of the
//   up step. No full-size upsampled tensor exists; neighbouring tiles recompute their overlap.

struct GradTileSizes {
  int DH, DW;  // du region
  int IH, IW;  // input region
  int OH, OW;  // dy region
  size_t floats;
};

OPS_HD inline GradTileSizes grad_tile_sizes(const FlreluGeom& g, int TH, int TW) {
  GradTileSizes t;
  t.DH = (TH - 1) * g.up + g.fuh;
  t.DW = (TW - 1) * g.up + g.fuw;
  t.IH = input_span(t.DH, g.up, g.fuh);
  t.IW = input_span(t.DW, g.up, g.fuw);
  t.OH = input_span(t.DH, g.down, g.fdh);
  t.OW = input_span(t.DW, g.down, g.fdw);
  size_t f = size_t(t.IH) * t.IW + size_t(t.DH) * t.DW + size_t(t.OH) * t.OW;
  if (g.fu_sep) f += size_t(t.IH) * t.DW + size_t(TH) * t.DW;  // HX, V
  if (g.fd_sep) f += size_t(t.OH) * t.DW;                      // HDY
  t.floats = f;
  return t;
}

// fu: the up filter in correlation order (to recompute u); fut / fdt: both filters flipped (the
// adjoints). sums: nothing here (db is reduced on the host from dx).
template <typename scalar_t, typename w_t>
OPS_GLOBAL void filtered_lrelu_grad_kernel(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
                                           const scalar_t* __restrict__ b, const w_t* __restrict__ fu,
                                           const w_t* __restrict__ fut, const w_t* __restrict__ fdt,
                                           scalar_t* __restrict__ dx, FlreluGeom g, int C, float gain, float slope,
                                           float clamp) {
  using acc_t = at::opmath_type<scalar_t>;
  OPS_DECLARE_SMEM(smem_raw);
  acc_t* smem = reinterpret_cast<acc_t*>(smem_raw);

  const int64_t p = blockIdx.z;
  const int sy0 = blockIdx.y * g.TH, sx0 = blockIdx.x * g.TW;  // first dx row / column of the tile
  const int TH = min(g.TH, g.H - sy0), TW = min(g.TW, g.W - sx0);
  const int DH = (TH - 1) * g.up + g.fuh, DW = (TW - 1) * g.up + g.fuw;
  const int Dy0 = sy0 * g.up - (g.fuh - 1 - g.py0), Dx0 = sx0 * g.up - (g.fuw - 1 - g.px0);
  // Input rows/cols under the du region (through fu), dy rows/cols over it (through fd).
  const int iy0 = ops::ceil_div(Dy0 - g.py0, g.up), ix0 = ops::ceil_div(Dx0 - g.px0, g.up);
  const int IH = ops::floor_div(Dy0 + DH - 1 - g.py0 + g.fuh - 1, g.up) - iy0 + 1;
  const int IW = ops::floor_div(Dx0 + DW - 1 - g.px0 + g.fuw - 1, g.up) - ix0 + 1;
  const int oy0 = ops::ceil_div(Dy0 - (g.fdh - 1), g.down), ox0 = ops::ceil_div(Dx0 - (g.fdw - 1), g.down);
  const int OH = ops::floor_div(Dy0 + DH - 1, g.down) - oy0 + 1;
  const int OW = ops::floor_div(Dx0 + DW - 1, g.down) - ox0 + 1;
  const GradTileSizes full = grad_tile_sizes(g, g.TH, g.TW);
  const int DWs = full.DW;  // row stride of the buffers DW wide

  acc_t* X = smem;                                             // [IH][IW]
  acc_t* DU = X + size_t(full.IH) * full.IW;                   // [DH][DWs]: u, then du
  acc_t* DY = DU + size_t(full.DH) * DWs;                      // [OH][OW]
  acc_t* HX = DY + size_t(full.OH) * full.OW;                  // [IH][DWs] (separable fu)
  acc_t* V = HX + (g.fu_sep ? size_t(full.IH) * DWs : 0);      // [TH][DWs] (separable fu)
  acc_t* HDY = V + (g.fu_sep ? size_t(g.TH) * DWs : 0);        // [OH][DWs] (separable fd)

  const acc_t bias = b ? static_cast<acc_t>(b[p % C]) : acc_t(0);
  load_tile(x + p * g.H * g.W, g.H, g.W, iy0, ix0, IH, IW, bias, X);
  load_tile(dy + p * g.Ho * g.Wo, g.Ho, g.Wo, oy0, ox0, OH, OW, acc_t(0), DY);
  __syncthreads();

  // Horizontal passes: of u over the du region (as the forward computes it, before the
  // activation) and of the adjoint of the down step.
  if (g.fu_sep) up_columns_tile(X, IW, ix0, IH, DW, Dx0, fu, g.up, g.px0, g.fuw, HX, DWs);
  if (g.fd_sep) up_columns_tile(DY, OW, ox0, OH, DW, Dx0, fdt, g.down, g.fdw - 1, g.fdw, HDY, DWs);
  __syncthreads();

  const acc_t ag = gain, as = slope, ac = clamp;
  for (int i = threadIdx.x; i < DH * DW; i += blockDim.x) {
    const int r = i / DW, c = i % DW;
    const int Y = Dy0 + r, Xc = Dx0 + c;
    const TapRange ty = ops::tap_range_unbounded(Y, g.up, 1, g.py0, g.fuh);
    acc_t u = 0;
    if (g.fu_sep) {
      for (int k = 0; k < ty.count; k++) u += acc_t(fu[ty.k0 + g.up * k]) * HX[(ty.s0 + k - iy0) * DWs + c];
    } else {
      const TapRange tx = ops::tap_range_unbounded(Xc, g.up, 1, g.px0, g.fuw);
      for (int a = 0; a < ty.count; a++) {
        const int ky = ty.k0 + g.up * a;
        const acc_t* row = X + (ty.s0 + a - iy0) * IW;
        for (int k = 0; k < tx.count; k++) u += acc_t(fu[ky * g.fuw + tx.k0 + g.up * k]) * row[tx.s0 + k - ix0];
      }
    }
    const TapRange dyr = ops::tap_range_unbounded(Y, g.down, 1, g.fdh - 1, g.fdh);
    acc_t da = 0;
    if (g.fd_sep) {
      for (int k = 0; k < dyr.count; k++) da += acc_t(fdt[dyr.k0 + g.down * k]) * HDY[(dyr.s0 + k - oy0) * DWs + c];
    } else {
      const TapRange dxr = ops::tap_range_unbounded(Xc, g.down, 1, g.fdw - 1, g.fdw);
      for (int a = 0; a < dyr.count; a++) {
        const int ky = dyr.k0 + g.down * a;
        const acc_t* row = DY + (dyr.s0 + a - oy0) * OW;
        for (int k = 0; k < dxr.count; k++)
          da += acc_t(fdt[ky * g.fdw + dxr.k0 + g.down * k]) * row[dxr.s0 + k - ox0];
      }
    }
    const bool inside = Y >= 0 && Y < g.Hm && Xc >= 0 && Xc < g.Wm;
    DU[r * DWs + c] = inside ? da * ops::flrelu_grad(u, as, ag, ac) : acc_t(0);
  }
  __syncthreads();

  // dx = adjoint of the up step: tile position (r, c) reads DU[r * up + ky][c * up + kx].
  filter_down_tile(DU, V, DWs, DW, fut, g.fuw, g.fuh, g.fu_sep, g.up, TH, TW,
                   dx + p * g.H * g.W + int64_t(sy0) * g.W + sx0, g.W);
}

// The backward's dx tile (g.TH, g.TW over the input) that fits in `smem_limit` bytes (smem = 0
// if none does); g comes from flrelu_geometry.
inline void flrelu_grad_tiles(FlreluGeom& g, size_t acc_size, size_t smem_limit, size_t& smem) {
  const int tiles[][2] = {{16, 16}, {8, 16}, {8, 8}, {4, 8}, {4, 4}, {2, 2}, {1, 1}};
  smem = 0;
  for (const auto& t : tiles) {
    g.TH = t[0];
    g.TW = t[1];
    const size_t bytes = grad_tile_sizes(g, g.TH, g.TW).floats * acc_size;
    if (bytes <= smem_limit) {
      smem = bytes;
      break;
    }
  }
}

// Geometry of a filtered_lrelu call and the largest output tile whose buffers fit in `smem_limit`
// bytes of shared memory (smem = 0 if none does).
inline FlreluGeom flrelu_geometry(int H, int W, int up, int down, int px0, int px1, int py0, int py1, int fuw,
                                  int fuh, bool fu_sep, int fdw, int fdh, bool fd_sep, size_t acc_size,
                                  size_t smem_limit, size_t& smem) {
  FlreluGeom g{};
  g.H = H;
  g.W = W;
  g.up = up;
  g.down = down;
  g.px0 = px0;
  g.py0 = py0;
  g.fuw = fuw;
  g.fuh = fuh;
  g.fdw = fdw;
  g.fdh = fdh;
  g.fu_sep = fu_sep;
  g.fd_sep = fd_sep;
  g.Wm = ops::upfirdn_out_size(W, up, 1, px0, px1, fuw);
  g.Hm = ops::upfirdn_out_size(H, up, 1, py0, py1, fuh);
  g.Wo = ops::upfirdn_out_size(g.Wm, 1, down, 0, 0, fdw);
  g.Ho = ops::upfirdn_out_size(g.Hm, 1, down, 0, 0, fdh);
  const int tiles[][2] = {{16, 32}, {16, 16}, {8, 16}, {8, 8}, {4, 8}, {4, 4}, {2, 2}, {1, 1}};
  smem = 0;
  for (const auto& t : tiles) {
    g.TH = t[0];
    g.TW = t[1];
    const size_t bytes = tile_sizes(g, g.TH, g.TW).floats * acc_size;
    if (bytes <= smem_limit) {
      smem = bytes;
      break;
    }
  }
  return g;
}

}  // namespace ops_cuda_kernels
