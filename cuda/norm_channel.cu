// cuda/norm_channel.cu — batch_norm and group_norm (and the conv bias helpers) over x viewed as (B, C, S).
//   Statistics: the B·S values of a channel are cut into tiles (one batch row, up to kTile consecutive spatial
//   positions); one block per (tile, channel) keeps a Welford state per thread (fp32), merges them (Chan's formula)
//   into one partial per tile, and a second kernel merges a channel's partials in double in a fixed order — one read
//   of x, deterministic, and robust to a large mean (no Σx² - (Σx)² cancellation). group_norm reuses it on the view
//   (1, B·G, (C/G)·S): a group of a batch row is a contiguous run.
//   Gradient sums (Σdy, Σdy·(x-mean)) use the same tiling with plain fp32 sums per tile and double across tiles.
//   Normalisation and dx are one pass of channel_affine: out = a[p]·u + b[p]·v + c[p] with per-row coefficients,
//   on a 2-D grid (rows × spatial) so no per-element division is needed to find the channel.
//   Formulas (ops/norm_channel.cpp header): with x̂ = (x-mean)·rstd, per channel or group of n values,
//     dx = rstd·(w·dy - mean(w·dy) - x̂·mean(w·dy·x̂)) = k1·dy + k2·x + k3.
#include "cuda/common.cuh"
#include "ops/norm.h"

namespace stereort {
namespace cuda {
namespace {

constexpr int64_t kTile = 8192;  // spatial positions per tile: 32 per thread at 256 threads

struct Tiling {
  int64_t chunk, nchunks, tiles;
};
Tiling make_tiling(int64_t B, int64_t S) {
  Tiling t;
  t.chunk = std::max<int64_t>(1, std::min(S, kTile));
  t.nchunks = ceil_div(S, t.chunk);
  t.tiles = B * t.nchunks;
  return t;
}
dim3 tile_grid(const Tiling& t, int64_t C) {
  return dim3(unsigned(std::min<int64_t>(t.tiles, 1 << 30)), unsigned(std::min<int64_t>(C, 65535)));
}

__device__ __forceinline__ void welford_merge(float& n, float& m, float& m2, float nb, float mb, float m2b) {
  if (nb == 0.f) return;
  float nn = n + nb, d = mb - m, f = nb / nn;
  m += d * f;
  m2 += m2b + d * d * n * f;
  n = nn;
}

// Merge the block's per-thread states; thread 0 ends with the block's state.
__device__ __forceinline__ void block_welford(float& n, float& m, float& m2) {
  __shared__ float sn[32], sm[32], sm2[32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    welford_merge(n, m, m2, __shfl_xor_sync(0xffffffffu, n, o), __shfl_xor_sync(0xffffffffu, m, o),
                  __shfl_xor_sync(0xffffffffu, m2, o));
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) {
    sn[warp] = n;
    sm[warp] = m;
    sm2[warp] = m2;
  }
  __syncthreads();
  if (warp == 0) {
    n = lane < nwarps ? sn[lane] : 0.f;
    m = lane < nwarps ? sm[lane] : 0.f;
    m2 = lane < nwarps ? sm2[lane] : 0.f;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
      welford_merge(n, m, m2, __shfl_xor_sync(0xffffffffu, n, o), __shfl_xor_sync(0xffffffffu, m, o),
                    __shfl_xor_sync(0xffffffffu, m2, o));
  }
}

// Partial (count, mean, M2) of tile t of channel c into part[(c·tiles + t)·3 + {0,1,2}].
template <typename T>
__global__ void channel_welford_kernel(float* __restrict__ part, const T* __restrict__ x, int64_t C, int64_t S,
                                       Tiling tl) {
  for (int64_t c = blockIdx.y; c < C; c += gridDim.y)
    for (int64_t t = blockIdx.x; t < tl.tiles; t += gridDim.x) {
      int64_t b = t / tl.nchunks, s0 = (t % tl.nchunks) * tl.chunk, s1 = min(S, s0 + tl.chunk);
      const T* row = x + (b * C + c) * S;
      float n = 0.f, m = 0.f, m2 = 0.f;
      for (int64_t s = s0 + threadIdx.x; s < s1; s += blockDim.x) {
        float v = to_op(row[s]);
        n += 1.f;
        float d = v - m;
        m += d / n;
        m2 += d * (v - m);
      }
      block_welford(n, m, m2);
      if (threadIdx.x == 0) {
        float* p = part + (c * tl.tiles + t) * 3;
        p[0] = n;
        p[1] = m;
        p[2] = m2;
      }
    }
}

__global__ void welford_finalize_kernel(float* __restrict__ mean, float* __restrict__ var,
                                        const float* __restrict__ part, int64_t C, int64_t tiles) {
  int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  double n = 0, m = 0, m2 = 0;
  for (int64_t t = 0; t < tiles; ++t) {
    const float* p = part + (c * tiles + t) * 3;
    double nb = p[0];
    if (nb == 0) continue;
    double nn = n + nb, d = double(p[1]) - m;
    m += d * nb / nn;
    m2 += double(p[2]) + d * d * n * nb / nn;
    n = nn;
  }
  mean[c] = float(m);
  var[c] = n > 0 ? float(m2 / n) : 0.f;
}

// Partial Σdy and Σdy·(x - mean[c]) of one tile into part[(c·tiles + t)·2 + {0,1}].
template <typename T>
__global__ void channel_sums_kernel(float* __restrict__ part, const T* __restrict__ dy, const T* __restrict__ x,
                                    const float* __restrict__ mean, bool with_x, int64_t C, int64_t S, Tiling tl) {
  __shared__ float smem[32];
  for (int64_t c = blockIdx.y; c < C; c += gridDim.y) {
    float mu = (with_x && mean) ? mean[c] : 0.f;
    for (int64_t t = blockIdx.x; t < tl.tiles; t += gridDim.x) {
      int64_t b = t / tl.nchunks, s0 = (t % tl.nchunks) * tl.chunk, s1 = min(S, s0 + tl.chunk);
      int64_t base = (b * C + c) * S;
      float sdy = 0.f, sdyx = 0.f;
      for (int64_t s = s0 + threadIdx.x; s < s1; s += blockDim.x) {
        float g = to_op(dy[base + s]);
        sdy += g;
        if (with_x) sdyx += g * (to_op(x[base + s]) - mu);
      }
      sdy = block_sum(sdy, smem);
      if (with_x) sdyx = block_sum(sdyx, smem);
      if (threadIdx.x == 0) {
        part[(c * tl.tiles + t) * 2] = sdy;
        part[(c * tl.tiles + t) * 2 + 1] = sdyx;
      }
    }
  }
}

__global__ void sums_finalize_kernel(float* __restrict__ sum_dy, float* __restrict__ sum_dyx,
                                     const float* __restrict__ part, int64_t C, int64_t tiles) {
  int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  double a = 0, b = 0;
  for (int64_t t = 0; t < tiles; ++t) {
    a += part[(c * tiles + t) * 2];
    b += part[(c * tiles + t) * 2 + 1];
  }
  if (sum_dy) sum_dy[c] = float(a);
  if (sum_dyx) sum_dyx[c] = float(b);
}

// out[r,s] = a[p]·u + b[p]·v + c[p], p = r mod P. out may alias u (no __restrict__ on them).
template <typename T>
__global__ void channel_affine_kernel(T* out, const T* u, const float* __restrict__ a, const T* v,
                                      const float* __restrict__ b, const float* __restrict__ c, int64_t R, int64_t S,
                                      int64_t P) {
  for (int64_t r = blockIdx.y; r < R; r += gridDim.y) {
    int64_t p = r % P;
    float av = a ? a[p] : 1.f, bv = (v && b) ? b[p] : 0.f, cv = c ? c[p] : 0.f;
    int64_t base = r * S;
    for (int64_t s = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; s < S; s += int64_t(gridDim.x) * blockDim.x) {
      float o = av * to_op(u[base + s]) + cv;
      if (v && b) o += bv * to_op(v[base + s]);
      out[base + s] = from_op<T>(o);
    }
  }
}

__global__ void bn_coeffs_kernel(float* __restrict__ rstd, float* __restrict__ scale, float* __restrict__ shift,
                                 const float* __restrict__ mean, const float* __restrict__ var,
                                 const float* __restrict__ w, const float* __restrict__ b, int64_t C, float eps) {
  int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  float rs = rsqrtf(var[c] + eps), sc = w ? w[c] * rs : rs;
  if (rstd) rstd[c] = rs;
  scale[c] = sc;
  shift[c] = (b ? b[c] : 0.f) - mean[c] * sc;
}

// k2/k3 null: eval (statistics are constants). n = values per channel.
__global__ void bn_backward_coeffs_kernel(float* __restrict__ k1, float* __restrict__ k2, float* __restrict__ k3,
                                          float* __restrict__ dw, float* __restrict__ db,
                                          const float* __restrict__ sdy, const float* __restrict__ sdyx,
                                          const float* __restrict__ mean, const float* __restrict__ rstd,
                                          const float* __restrict__ w, int64_t C, float n) {
  int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  float rs = rstd[c], wc = w ? w[c] : 1.f;
  if (k1) k1[c] = rs * wc;
  if (k2) {
    float m1 = wc * sdy[c] / n, m2 = wc * rs * sdyx[c] / n;
    k2[c] = -rs * rs * m2;
    k3[c] = -rs * m1 + rs * rs * m2 * mean[c];
  }
  if (dw) dw[c] = rs * sdyx[c];
  if (db) db[c] = sdy[c];
}

// Per (b,c): group statistics -> rstd (B·G, written once per group), scale/shift and mean_bc (B·C); var may be null
// when only mean_bc is wanted.
__global__ void gn_coeffs_kernel(float* __restrict__ rstd, float* __restrict__ scale, float* __restrict__ shift,
                                 float* __restrict__ mean_bc, const float* __restrict__ mean,
                                 const float* __restrict__ var, const float* __restrict__ w,
                                 const float* __restrict__ b, int64_t B, int64_t C, int64_t G, float eps) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= B * C) return;
  int64_t c = i % C, cg = C / G, grp = (i / C) * G + c / cg;
  float mu = mean[grp], rs = var ? rsqrtf(var[grp] + eps) : 0.f;
  if (rstd && c % cg == 0) rstd[grp] = rs;
  if (scale) {
    float sc = w ? w[c] * rs : rs;
    scale[i] = sc;
    shift[i] = (b ? b[c] : 0.f) - mu * sc;
  }
  if (mean_bc) mean_bc[i] = mu;
}

// Per (b,g): dx = k1·dy + k2·x + k3 coefficients for every channel of the group. ds = Σ_s dy·(x-mean), dbs = Σ_s dy.
__global__ void gn_backward_coeffs_kernel(float* __restrict__ k1, float* __restrict__ k2, float* __restrict__ k3,
                                          const float* __restrict__ ds, const float* __restrict__ dbs,
                                          const float* __restrict__ mean, const float* __restrict__ rstd,
                                          const float* __restrict__ w, int64_t B, int64_t C, int64_t G, float L) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= B * G) return;
  int64_t b = i / G, g = i % G, cg = C / G;
  float rs = rstd[i], mu = mean[i], m1 = 0.f, m2 = 0.f;
  for (int64_t j = 0; j < cg; ++j) {
    int64_t c = g * cg + j;
    float wc = w ? w[c] : 1.f;
    m1 += wc * dbs[b * C + c];
    m2 += wc * ds[b * C + c];
  }
  m1 /= L;
  m2 = m2 * rs / L;
  for (int64_t j = 0; j < cg; ++j) {
    int64_t c = g * cg + j;
    k1[b * C + c] = rs * (w ? w[c] : 1.f);
    k2[b * C + c] = -rs * rs * m2;
    k3[b * C + c] = -rs * m1 + rs * rs * m2 * mu;
  }
}

__global__ void gn_dweight_kernel(float* __restrict__ dw, float* __restrict__ db, const float* __restrict__ ds,
                                  const float* __restrict__ dbs, const float* __restrict__ rstd, int64_t B, int64_t C,
                                  int64_t G) {
  int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  int64_t g = c / (C / G);
  float a = 0.f, s = 0.f;
  for (int64_t b = 0; b < B; ++b) {
    a += ds[b * C + c] * rstd[b * G + g];
    s += dbs[b * C + c];
  }
  if (dw) dw[c] = a;
  if (db) db[c] = s;
}

const float* fp(const Tensor& t) { return t.defined() ? static_cast<const float*>(t.data_ptr()) : nullptr; }
float* fpm(const Tensor& t) { return t.defined() ? static_cast<float*>(t.data_ptr()) : nullptr; }
Tensor f32(int64_t n, const Tensor& like) { return Tensor::empty({n}, DType::F32, like.device()); }
unsigned blocks_for(int64_t n) { return unsigned(std::max<int64_t>(1, ceil_div(n, kThreads))); }

// mean/var (C) of x (B, C, S).
void channel_stats(const Tensor& mean, const Tensor& var, const Tensor& x, int64_t B, int64_t C, int64_t S,
                   const Context& ctx) {
  Tiling tl = make_tiling(B, S);
  Tensor part = f32(C * tl.tiles * 3, x);
  cudaStream_t st = stream_of(ctx);
  dispatch_cuda_float(x.dtype(), "batch/group norm statistics", [&](auto tag) {
    using T = typename decltype(tag)::type;
    channel_welford_kernel<T><<<tile_grid(tl, C), kThreads, 0, st>>>(fpm(part), static_cast<const T*>(x.data_ptr()),
                                                                      C, S, tl);
    STEREORT_LAUNCH_CHECK("channel_welford_kernel");
  });
  welford_finalize_kernel<<<blocks_for(C), kThreads, 0, st>>>(fpm(mean), fpm(var), fp(part), C, tl.tiles);
  STEREORT_LAUNCH_CHECK("welford_finalize_kernel");
}

}  // namespace

void channel_grad_sums(const Tensor& sum_dy, const Tensor& sum_dyx, const Tensor& dy, const Tensor& x,
                       const Tensor& mean, int64_t B, int64_t C, int64_t S, const Context& ctx) {
  Tiling tl = make_tiling(B, S);
  Tensor part = f32(C * tl.tiles * 2, dy);
  bool with_x = sum_dyx.defined();
  cudaStream_t st = stream_of(ctx);
  dispatch_cuda_float(dy.dtype(), "channel gradient sums", [&](auto tag) {
    using T = typename decltype(tag)::type;
    channel_sums_kernel<T><<<tile_grid(tl, C), kThreads, 0, st>>>(
        fpm(part), static_cast<const T*>(dy.data_ptr()), with_x ? static_cast<const T*>(x.data_ptr()) : nullptr,
        fp(mean), with_x, C, S, tl);
    STEREORT_LAUNCH_CHECK("channel_sums_kernel");
  });
  sums_finalize_kernel<<<blocks_for(C), kThreads, 0, st>>>(fpm(sum_dy), fpm(sum_dyx), fp(part), C, tl.tiles);
  STEREORT_LAUNCH_CHECK("sums_finalize_kernel");
}

void channel_affine(const Tensor& out, const Tensor& u, const Tensor& a, const Tensor& v, const Tensor& b,
                    const Tensor& c, int64_t P, int64_t S, const Context& ctx) {
  if (out.numel() == 0) return;
  int64_t R = out.numel() / S;
  dim3 grid(unsigned(std::min<int64_t>(std::max<int64_t>(1, ceil_div(S, kThreads * 4)), 1 << 16)),
            unsigned(std::min<int64_t>(R, 65535)));
  dispatch_cuda_float(out.dtype(), "channel_affine", [&](auto tag) {
    using T = typename decltype(tag)::type;
    channel_affine_kernel<T><<<grid, kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(out.data_ptr()), static_cast<const T*>(u.data_ptr()), fp(a),
        v.defined() ? static_cast<const T*>(v.data_ptr()) : nullptr, fp(b), fp(c), R, S, P);
    STEREORT_LAUNCH_CHECK("channel_affine_kernel");
  });
}

void batch_norm_forward(const Tensor& out, const Tensor& mean, const Tensor& var, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, bool training, double eps, int64_t B, int64_t C,
                        int64_t S, const Context& ctx) {
  if (training) channel_stats(mean, var, x, B, C, S, ctx);
  Tensor scale = f32(C, x), shift = f32(C, x);
  bn_coeffs_kernel<<<blocks_for(C), kThreads, 0, stream_of(ctx)>>>(fpm(rstd), fpm(scale), fpm(shift), fp(mean),
                                                                   fp(var), fp(weight), fp(bias), C, float(eps));
  STEREORT_LAUNCH_CHECK("bn_coeffs_kernel");
  channel_affine(out, x, scale, Tensor(), Tensor(), shift, C, S, ctx);
}

void batch_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                         const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight, bool training,
                         int64_t B, int64_t C, int64_t S, const Context& ctx) {
  bool need_dyx = dweight.defined() || (dx.defined() && training);
  Tensor sdy = f32(C, x), sdyx = need_dyx ? f32(C, x) : Tensor();
  channel_grad_sums(sdy, sdyx, dout, x, mean, B, C, S, ctx);
  Tensor k1 = f32(C, x), k2 = training ? f32(C, x) : Tensor(), k3 = training ? f32(C, x) : Tensor();
  bn_backward_coeffs_kernel<<<blocks_for(C), kThreads, 0, stream_of(ctx)>>>(
      fpm(k1), fpm(k2), fpm(k3), fpm(dweight), fpm(dbias), fp(sdy), fp(sdyx), fp(mean), fp(rstd), fp(weight), C,
      float(double(B) * double(S)));
  STEREORT_LAUNCH_CHECK("bn_backward_coeffs_kernel");
  if (dx.defined()) channel_affine(dx, dout, k1, training ? x : Tensor(), k2, k3, C, S, ctx);
}

void group_norm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, int64_t B, int64_t C, int64_t G, int64_t S,
                        double eps, const Context& ctx) {
  Tensor var = f32(B * G, x);
  channel_stats(mean, var, x, 1, B * G, (C / G) * S, ctx);
  Tensor scale = f32(B * C, x), shift = f32(B * C, x);
  gn_coeffs_kernel<<<blocks_for(B * C), kThreads, 0, stream_of(ctx)>>>(
      fpm(rstd), fpm(scale), fpm(shift), nullptr, fp(mean), fp(var), fp(weight), fp(bias), B, C, G, float(eps));
  STEREORT_LAUNCH_CHECK("gn_coeffs_kernel");
  channel_affine(out, x, scale, Tensor(), Tensor(), shift, B * C, S, ctx);
}

void group_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                         const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight, int64_t B,
                         int64_t C, int64_t G, int64_t S, const Context& ctx) {
  cudaStream_t st = stream_of(ctx);
  Tensor mean_bc = f32(B * C, x);
  gn_coeffs_kernel<<<blocks_for(B * C), kThreads, 0, st>>>(nullptr, nullptr, nullptr, fpm(mean_bc), fp(mean),
                                                           nullptr, nullptr, nullptr, B, C, G, 0.f);
  STEREORT_LAUNCH_CHECK("gn_coeffs_kernel");
  Tensor dbs = f32(B * C, x), ds = f32(B * C, x);
  channel_grad_sums(dbs, ds, dout, x, mean_bc, 1, B * C, S, ctx);
  if (dx.defined()) {
    Tensor k1 = f32(B * C, x), k2 = f32(B * C, x), k3 = f32(B * C, x);
    gn_backward_coeffs_kernel<<<blocks_for(B * G), kThreads, 0, st>>>(fpm(k1), fpm(k2), fpm(k3), fp(ds), fp(dbs),
                                                                      fp(mean), fp(rstd), fp(weight), B, C, G,
                                                                      float(double(C / G) * double(S)));
    STEREORT_LAUNCH_CHECK("gn_backward_coeffs_kernel");
    channel_affine(dx, dout, k1, x, k2, k3, B * C, S, ctx);
  }
  if (dweight.defined() || dbias.defined()) {
    gn_dweight_kernel<<<blocks_for(C), kThreads, 0, st>>>(fpm(dweight), fpm(dbias), fp(ds), fp(dbs), fp(rstd), B, C,
                                                          G);
    STEREORT_LAUNCH_CHECK("gn_dweight_kernel");
  }
}

}  // namespace cuda
}  // namespace stereort
