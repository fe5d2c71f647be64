// assay's own CUDA kernels, compiled to PTX by build.rs when the `cuda` feature is on and loaded
// through candle's custom-op interface (crates/engine/src/ops.rs). Each kernel works on rows: one
// thread block per row, the row's reduction done in f32 whatever the storage dtype.
//
// Every kernel has a CPU twin in ops.rs with the same arithmetic, so the CPU tests pin down the
// semantics that the GPU numerics check then compares against transformers.

#include <cuda_bf16.h>
#include <stdint.h>

#define BLOCK 256

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}

// Block-wide reductions over BLOCK threads; every thread gets the result.
__device__ float block_max(float v, float *shared) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < (BLOCK / 32) ? shared[lane] : -INFINITY;
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
  __syncthreads();
  return v;
}

__device__ float block_sum(float v, float *shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < (BLOCK / 32) ? shared[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  __syncthreads();
  return v;
}

// The same in f64, for sums whose small terms must survive beside a large one.
__device__ double block_sum_f64(double v, double *shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < (BLOCK / 32) ? shared[lane] : 0.0;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  __syncthreads();
  return v;
}

// Arg-max of (value, index) pairs: the larger value wins, the lower index on ties.
__device__ __forceinline__ void better(float &v, uint32_t &i, float ov, uint32_t oi) {
  if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
}

__device__ uint32_t block_argmax(float v, uint32_t i, float *sv, uint32_t *si) {
  for (int o = 16; o > 0; o >>= 1) {
    float ov = __shfl_xor_sync(0xffffffff, v, o);
    uint32_t oi = __shfl_xor_sync(0xffffffff, i, o);
    better(v, i, ov, oi);
  }
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) { sv[warp] = v; si[warp] = i; }
  __syncthreads();
  if (lane < (BLOCK / 32)) { v = sv[lane]; i = si[lane]; } else { v = -INFINITY; i = 0xffffffffu; }
  for (int o = 16; o > 0; o >>= 1) {
    float ov = __shfl_xor_sync(0xffffffff, v, o);
    uint32_t oi = __shfl_xor_sync(0xffffffff, i, o);
    better(v, i, ov, oi);
  }
  __syncthreads();
  return i;
}

// ---------------------------------------------------------------------------------------------
// Masked softmax of attention scores. Row r of [rows, S] holds query q = r % T of batch entry
// b = r / rows_per_batch; key j is visible when pad[b] <= j <= past + q. Output: softmax(scale * x)
// over the visible keys, exact zeros elsewhere.
template <typename T>
__device__ void masked_softmax(const T *x, T *y, uint32_t S, uint32_t T_, uint32_t past,
                               uint32_t rows_per_batch, const uint32_t *pad, float scale,
                               uint32_t rows_per_query) {
  // Rows of up to 16 * BLOCK keys are read once into registers; longer rows are re-read.
  constexpr int PER = 16;
  __shared__ float shared[BLOCK / 32];
  uint32_t r = blockIdx.x;
  uint32_t lo = pad ? pad[r / rows_per_batch] : 0;
  uint32_t hi = past + ((r / rows_per_query) % T_);  // inclusive
  const T *xr = x + (size_t)r * S;
  T *yr = y + (size_t)r * S;
  if (S <= PER * BLOCK) {
    float v[PER];
    float m = -INFINITY;
#pragma unroll
    for (int i = 0; i < PER; i++) {
      uint32_t j = threadIdx.x + i * BLOCK;
      v[i] = (j < S && j >= lo && j <= hi) ? to_f32(xr[j]) * scale : -INFINITY;
      m = fmaxf(m, v[i]);
    }
    m = block_max(m, shared);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < PER; i++) {
      v[i] = v[i] == -INFINITY ? 0.0f : __expf(v[i] - m);
      s += v[i];
    }
    s = block_sum(s, shared);
    float inv = s > 0.0f ? 1.0f / s : 0.0f;
#pragma unroll
    for (int i = 0; i < PER; i++) {
      uint32_t j = threadIdx.x + i * BLOCK;
      if (j < S) yr[j] = from_f32<T>(v[i] * inv);
    }
    return;
  }
  float m = -INFINITY;
  for (uint32_t j = threadIdx.x; j < S; j += BLOCK)
    if (j >= lo && j <= hi) m = fmaxf(m, to_f32(xr[j]) * scale);
  m = block_max(m, shared);
  float s = 0.0f;
  for (uint32_t j = threadIdx.x; j < S; j += BLOCK)
    if (j >= lo && j <= hi) s += __expf(to_f32(xr[j]) * scale - m);
  s = block_sum(s, shared);
  float inv = s > 0.0f ? 1.0f / s : 0.0f;
  for (uint32_t j = threadIdx.x; j < S; j += BLOCK) {
    float p = (j >= lo && j <= hi) ? __expf(to_f32(xr[j]) * scale - m) * inv : 0.0f;
    yr[j] = from_f32<T>(p);
  }
}

// dx = scale * y * (g - sum(g * y)) for y = masked_softmax(x).
template <typename T>
__device__ void softmax_backward(const T *y, const T *g, T *dx, uint32_t S, float scale) {
  __shared__ float shared[BLOCK / 32];
  size_t off = (size_t)blockIdx.x * S;
  float dot = 0.0f;
  for (uint32_t j = threadIdx.x; j < S; j += BLOCK) dot += to_f32(y[off + j]) * to_f32(g[off + j]);
  dot = block_sum(dot, shared);
  for (uint32_t j = threadIdx.x; j < S; j += BLOCK) {
    float yy = to_f32(y[off + j]);
    dx[off + j] = from_f32<T>(scale * yy * (to_f32(g[off + j]) - dot));
  }
}

// ---------------------------------------------------------------------------------------------
// Token negative log-likelihood of row r's target, and the row's arg-max, from logits [N, V]
// without materialising the log-softmax: out[r] = [logsumexp(x) - x[target], argmax] in f32.
template <typename T>
__device__ void token_nll(const T *x, const uint32_t *target, float *out, uint32_t V) {
  __shared__ float shared[BLOCK / 32];
  __shared__ uint32_t shared_i[BLOCK / 32];
  const T *xr = x + (size_t)blockIdx.x * V;
  float m = -INFINITY;
  uint32_t mi = 0xffffffffu;
  for (uint32_t j = threadIdx.x; j < V; j += BLOCK) better(m, mi, to_f32(xr[j]), j);
  uint32_t arg = block_argmax(m, mi, shared, shared_i);
  float mx = to_f32(xr[arg]);
  // Summed in f64 (as on the CPU): in f32 the thread holding the max (term 1) would drop every
  // tail term below half an ulp of 1, biasing the loss low by that share of the tail's mass.
  __shared__ double shared_d[BLOCK / 32];
  double s = 0.0;
  for (uint32_t j = threadIdx.x; j < V; j += BLOCK) s += (double)__expf(to_f32(xr[j]) - mx);
  s = block_sum_f64(s, shared_d);
  if (threadIdx.x == 0) {
    uint32_t t = target[blockIdx.x];
    float xt = t < V ? to_f32(xr[t]) : NAN;
    out[2 * blockIdx.x] = (float)((double)mx - (double)xt + log(s));
    out[2 * blockIdx.x + 1] = (float)arg;
  }
}

// d nll / d x = g * (softmax(x) - onehot(target)), with logsumexp = nll + x[target];
// ng[r] = [nll, g] of row r.
template <typename T>
__device__ void token_nll_backward(const T *x, const uint32_t *target, const float *ng, T *dx,
                                   uint32_t V) {
  size_t off = (size_t)blockIdx.x * V;
  uint32_t t = target[blockIdx.x];
  float lse = ng[2 * blockIdx.x] + to_f32(x[off + t]);
  float gr = ng[2 * blockIdx.x + 1];
  for (uint32_t j = threadIdx.x; j < V; j += BLOCK) {
    float p = __expf(to_f32(x[off + j]) - lse);
    dx[off + j] = from_f32<T>(gr * (p - (j == t ? 1.0f : 0.0f)));
  }
}

// ---------------------------------------------------------------------------------------------
// Sampling by the Gumbel-max trick: token = argmax(x / temperature + G), G = -log(-log(u)),
// u drawn from a counter-based hash of (row key, step, token id). A row's draw depends only on its
// own key and step, never on the batch around it. inv_temp == 0 means greedy.
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__device__ __forceinline__ float uniform01(uint64_t key, uint32_t step, uint32_t token) {
  uint64_t h = mix64(key ^ mix64(((uint64_t)step << 32) | token));
  return ((float)(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
}

template <typename T>
__device__ void gumbel_argmax(const T *x, const uint64_t *keys, uint32_t step, float inv_temp,
                              uint32_t *out, uint32_t V) {
  __shared__ float shared[BLOCK / 32];
  __shared__ uint32_t shared_i[BLOCK / 32];
  const T *xr = x + (size_t)blockIdx.x * V;
  uint64_t key = keys[blockIdx.x];
  float m = -INFINITY;
  uint32_t mi = 0xffffffffu;
  for (uint32_t j = threadIdx.x; j < V; j += BLOCK) {
    float v = to_f32(xr[j]);
    if (inv_temp > 0.0f) v = v * inv_temp - logf(-logf(uniform01(key, step, j)));
    better(m, mi, v, j);
  }
  uint32_t arg = block_argmax(m, mi, shared, shared_i);
  if (threadIdx.x == 0) out[blockIdx.x] = arg;
}

// ---------------------------------------------------------------------------------------------
// Elementwise kernels over contiguous tensors, 8 values a thread (16-byte loads for bf16).
__device__ __forceinline__ float silu(float g) { return g / (1.0f + __expf(-g)); }

template <typename T>
struct __align__(16) Vec8 {
  T v[8];
};

__device__ __forceinline__ bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

// Loads 8 values with 16-byte loads when `p` is aligned, else one by one.
template <typename T>
__device__ __forceinline__ Vec8<T> load8(const T *p, bool vec) {
  Vec8<T> r;
  if (vec) {
#pragma unroll
    for (int k = 0; k < (int)(sizeof(Vec8<T>) / 16); k++)
      reinterpret_cast<uint4 *>(&r)[k] = reinterpret_cast<const uint4 *>(p)[k];
  } else {
#pragma unroll
    for (int i = 0; i < 8; i++) r.v[i] = p[i];
  }
  return r;
}

template <typename T>
__device__ __forceinline__ void store8(T *p, const Vec8<T> &r, bool vec) {
  if (vec) {
#pragma unroll
    for (int k = 0; k < (int)(sizeof(Vec8<T>) / 16); k++)
      reinterpret_cast<uint4 *>(p)[k] = reinterpret_cast<const uint4 *>(&r)[k];
  } else {
#pragma unroll
    for (int i = 0; i < 8; i++) p[i] = r.v[i];
  }
}

// Thread t handles values [8t, 8t + 8): full groups through `full(base, vec)` (16-byte loads and
// stores when every pointer is aligned), the tail through `one(i)`.
template <typename Full, typename One>
__device__ __forceinline__ void elementwise8(size_t n, bool aligned, Full full, One one) {
  size_t base = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 8;
  if (base + 8 <= n) {
    full(base, aligned);
  } else {
    for (size_t i = base; i < n; i++) one(i);
  }
}

// out = silu(g) * u, the SwiGLU gate.
template <typename T>
__device__ void silu_mul(const T *g, const T *u, T *out, size_t n) {
  elementwise8(
      n, aligned16(g) && aligned16(u) && aligned16(out),
      [&](size_t base, bool vec) {
        Vec8<T> a = load8(g + base, vec), b = load8(u + base, vec), o;
#pragma unroll
        for (int i = 0; i < 8; i++) o.v[i] = from_f32<T>(silu(to_f32(a.v[i])) * to_f32(b.v[i]));
        store8(out + base, o, vec);
      },
      [&](size_t i) { out[i] = from_f32<T>(silu(to_f32(g[i])) * to_f32(u[i])); });
}

__device__ __forceinline__ void silu_mul_grad(float g, float u, float d, float &dg, float &du) {
  float sg = 1.0f / (1.0f + __expf(-g));
  dg = d * u * sg * (1.0f + g * (1.0f - sg));
  du = d * g * sg;
}

// Gradients of silu(g) * u: dg = d * u * silu'(g), du = d * silu(g), written as [dg; du].
template <typename T>
__device__ void silu_mul_backward(const T *g, const T *u, const T *d, T *dg, size_t n) {
  T *du = dg + n;  // one buffer [2, n]: dg then du
  bool aligned = aligned16(g) && aligned16(u) && aligned16(d) && aligned16(dg) && aligned16(du);
  elementwise8(
      n, aligned,
      [&](size_t base, bool vec) {
        Vec8<T> a = load8(g + base, vec), b = load8(u + base, vec), c = load8(d + base, vec), x, y;
#pragma unroll
        for (int i = 0; i < 8; i++) {
          float fx, fy;
          silu_mul_grad(to_f32(a.v[i]), to_f32(b.v[i]), to_f32(c.v[i]), fx, fy);
          x.v[i] = from_f32<T>(fx);
          y.v[i] = from_f32<T>(fy);
        }
        store8(dg + base, x, vec);
        store8(du + base, y, vec);
      },
      [&](size_t i) {
        float fx, fy;
        silu_mul_grad(to_f32(g[i]), to_f32(u[i]), to_f32(d[i]), fx, fy);
        dg[i] = from_f32<T>(fx);
        du[i] = from_f32<T>(fy);
      });
}

template <typename T>
__device__ void add(const T *a, const T *b, T *out, size_t n) {
  elementwise8(
      n, aligned16(a) && aligned16(b) && aligned16(out),
      [&](size_t base, bool vec) {
        Vec8<T> x = load8(a + base, vec), y = load8(b + base, vec), o;
#pragma unroll
        for (int i = 0; i < 8; i++) o.v[i] = from_f32<T>(to_f32(x.v[i]) + to_f32(y.v[i]));
        store8(out + base, o, vec);
      },
      [&](size_t i) { out[i] = from_f32<T>(to_f32(a[i]) + to_f32(b[i])); });
}

// ---------------------------------------------------------------------------------------------
// Fused ops of the hand-written training pass (crates/engine/src/fused.rs). Their CPU twins live
// there; where the twin does plain f32 arithmetic value by value (rotary, AdamW) the kernels use
// the _rn intrinsics, which nvcc never contracts into an FMA, so GPU and CPU agree bit for bit.

// Rounds to the storage dtype and back, as the CPU twin's `round_to`.
template <typename T> __device__ __forceinline__ float round_as(float v) {
  return to_f32(from_f32<T>(v));
}

// N values in registers, aligned for one wide load or store.
template <typename T, int N> struct alignas(16) VecN {
  T v[N];
};

// Copies N values with the widest loads their byte size allows (8, 16 or 32 bytes, which the
// caller has checked the pointers are aligned to).
template <typename T, int N> __device__ __forceinline__ void copy_wide(void *dst, const void *src) {
  constexpr int bytes = N * (int)sizeof(T);
  if constexpr (bytes % 16 == 0) {
#pragma unroll
    for (int k = 0; k < bytes / 16; k++)
      reinterpret_cast<uint4 *>(dst)[k] = reinterpret_cast<const uint4 *>(src)[k];
  } else if constexpr (bytes == 8) {
    *reinterpret_cast<uint2 *>(dst) = *reinterpret_cast<const uint2 *>(src);
  } else {
#pragma unroll
    for (int i = 0; i < N; i++) reinterpret_cast<T *>(dst)[i] = reinterpret_cast<const T *>(src)[i];
  }
}

// Loads the N values at p as f32: one wide load when `vec`, else the first `valid` one by one
// (the rest read as 0), for row tails and unaligned tensors.
template <int N, typename T>
__device__ __forceinline__ void load_n(const T *p, uint32_t valid, bool vec, float out[N]) {
  if (vec) {
    VecN<T, N> r;
    copy_wide<T, N>(&r, p);
#pragma unroll
    for (int i = 0; i < N; i++) out[i] = to_f32(r.v[i]);
  } else {
#pragma unroll
    for (int i = 0; i < N; i++) out[i] = (uint32_t)i < valid ? to_f32(p[i]) : 0.0f;
  }
}

template <int N, typename T>
__device__ __forceinline__ void store_n(T *p, uint32_t valid, bool vec, const float v[N]) {
  if (vec) {
    VecN<T, N> r;
#pragma unroll
    for (int i = 0; i < N; i++) r.v[i] = from_f32<T>(v[i]);
    copy_wide<T, N>(p, &r);
  } else {
#pragma unroll
    for (int i = 0; i < N; i++)
      if ((uint32_t)i < valid) p[i] = from_f32<T>(v[i]);
  }
}

// Group g of a row of H values: columns [8g, 8g + 8), of which `left` exist.
__device__ __forceinline__ uint32_t left8(uint32_t g, uint32_t H) {
  uint32_t c = g * 8;
  return H - c < 8 ? H - c : 8;
}

// Rows stay 16-byte aligned for 8-value loads when the base is and H is a multiple of 8.
__device__ __forceinline__ bool rows_vec(uint32_t H, const void *p) {
  return H % 8 == 0 && aligned16(p);
}

__device__ __forceinline__ float rstd_of(float sum_sq, uint32_t H, float eps) {
  return 1.0f / sqrtf(sum_sq / (float)H + eps);
}

// RMSNorm forward, one block per row: y = w * round(x * rstd). The row is read twice (sum of
// squares, then output); the second read of a few KB row hits L1, so DRAM sees it once.
template <typename T>
__device__ void rms_norm(const T *x, const T *w, T *y, uint32_t H, float eps) {
  __shared__ float shared[BLOCK / 32];
  const T *xr = x + (size_t)blockIdx.x * H;
  T *yr = y + (size_t)blockIdx.x * H;
  bool vec = rows_vec(H, x) && rows_vec(H, w) && rows_vec(H, y);
  uint32_t G = (H + 7) / 8;
  float ss = 0.0f;
  for (uint32_t g = threadIdx.x; g < G; g += BLOCK) {
    float v[8];
    load_n<8>(xr + 8 * g, left8(g, H), vec, v);
#pragma unroll
    for (int i = 0; i < 8; i++) ss += v[i] * v[i];
  }
  float r = rstd_of(block_sum(ss, shared), H, eps);
  for (uint32_t g = threadIdx.x; g < G; g += BLOCK) {
    float v[8], wv[8], o[8];
    load_n<8>(xr + 8 * g, left8(g, H), vec, v);
    load_n<8>(w + 8 * g, left8(g, H), vec, wv);
#pragma unroll
    for (int i = 0; i < 8; i++) o[i] = wv[i] * round_as<T>(v[i] * r);
    store_n<8>(yr + 8 * g, left8(g, H), vec, o);
  }
}

// RMSNorm input gradient, one block per row: dx = rstd * (dy*w - x*rstd * dot/H) with
// dot = sum(dy*w*x) * rstd; both sums come from one pass over the row.
template <typename T>
__device__ void rms_norm_backward(const T *x, const T *w, const T *dy, T *dx, uint32_t H,
                                  float eps) {
  __shared__ float shared[BLOCK / 32];
  size_t off = (size_t)blockIdx.x * H;
  bool vec = rows_vec(H, x) && rows_vec(H, w) && rows_vec(H, dy) && rows_vec(H, dx);
  uint32_t G = (H + 7) / 8;
  float ss = 0.0f, sd = 0.0f;
  for (uint32_t g = threadIdx.x; g < G; g += BLOCK) {
    float v[8], wv[8], d[8];
    uint32_t n = left8(g, H);
    load_n<8>(x + off + 8 * g, n, vec, v);
    load_n<8>(w + 8 * g, n, vec, wv);
    load_n<8>(dy + off + 8 * g, n, vec, d);
#pragma unroll
    for (int i = 0; i < 8; i++) {
      ss += v[i] * v[i];
      sd += d[i] * wv[i] * v[i];
    }
  }
  ss = block_sum(ss, shared);
  sd = block_sum(sd, shared);
  float r = rstd_of(ss, H, eps);
  float mean = sd * r / (float)H;
  for (uint32_t g = threadIdx.x; g < G; g += BLOCK) {
    float v[8], wv[8], d[8], o[8];
    uint32_t n = left8(g, H);
    load_n<8>(x + off + 8 * g, n, vec, v);
    load_n<8>(w + 8 * g, n, vec, wv);
    load_n<8>(dy + off + 8 * g, n, vec, d);
#pragma unroll
    for (int i = 0; i < 8; i++) o[i] = r * (d[i] * wv[i] - v[i] * r * mean);
    store_n<8>(dx + off + 8 * g, n, vec, o);
  }
}

// Block-wide sums of R values at once (one pair of barriers for all of them); every thread
// gets the results.
template <int R> __device__ void block_sum_n(float v[R], float (*shared)[BLOCK / 32]) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int r = 0; r < R; r++) {
    for (int o = 16; o > 0; o >>= 1) v[r] += __shfl_xor_sync(0xffffffff, v[r], o);
    if (lane == 0) shared[r][warp] = v[r];
  }
  __syncthreads();
#pragma unroll
  for (int r = 0; r < R; r++) {
    v[r] = lane < (BLOCK / 32) ? shared[r][lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v[r] += __shfl_xor_sync(0xffffffff, v[r], o);
  }
  __syncthreads();
}

// RMSNorm weight gradient, first stage: block (s, c) sums dy * round(x * rstd) over the rows of
// strip s for the columns of chunk c (8 * PER * BLOCK columns, held in registers) and writes them
// to partial[s]. R rows go at once, their x and dy loaded before the one reduction of their
// sums of squares: a row's rstd is a block-wide dependency, and without several rows' loads in
// flight the kernel waits on memory latency instead of streaming. Each row's rstd needs the
// whole row: a row wider than one chunk is read in full by every chunk's block (only rows over
// 8 * PER * BLOCK values pay that).
template <typename T, int PER, int R>
__device__ void rms_norm_wgrad_partial(const T *x, const T *dy, float *partial, uint32_t N,
                                       uint32_t H, uint32_t rows_per_strip, float eps) {
  __shared__ float shared[R][BLOCK / 32];
  bool vec = rows_vec(H, x) && rows_vec(H, dy);
  uint32_t G = (H + 7) / 8;
  uint32_t chunk = BLOCK * PER, g0 = blockIdx.y * chunk;
  float acc[PER][8];
#pragma unroll
  for (int k = 0; k < PER; k++)
#pragma unroll
    for (int i = 0; i < 8; i++) acc[k][i] = 0.0f;
  uint32_t r0 = blockIdx.x * rows_per_strip;
  uint32_t r1 = min(N, r0 + rows_per_strip);
  for (uint32_t r = r0; r < r1; r += R) {
    float xv[R][PER][8], dv[R][PER][8], ss[R];
#pragma unroll
    for (int j = 0; j < R; j++) {
      ss[j] = 0.0f;
      // Rows past the strip's end read as zeros and add nothing.
      bool live = r + j < r1;
      const T *xr = x + (size_t)(r + j) * H, *dr = dy + (size_t)(r + j) * H;
#pragma unroll
      for (int k = 0; k < PER; k++) {
        uint32_t g = g0 + threadIdx.x + k * BLOCK;
        uint32_t n = live && g < G ? left8(g, H) : 0;
        load_n<8>(xr + 8 * g, n, vec && n == 8, xv[j][k]);
        load_n<8>(dr + 8 * g, n, vec && n == 8, dv[j][k]);
#pragma unroll
        for (int i = 0; i < 8; i++) ss[j] += xv[j][k][i] * xv[j][k][i];
      }
      if (gridDim.y > 1 && live) {
        // This thread's groups outside its own chunk are exactly those of its residue class
        // below g0 or from g0 + chunk on.
        for (uint32_t g = threadIdx.x; g < G; g += BLOCK) {
          if (g >= g0 && g < g0 + chunk) continue;
          float v[8];
          load_n<8>(xr + 8 * g, left8(g, H), vec, v);
#pragma unroll
          for (int i = 0; i < 8; i++) ss[j] += v[i] * v[i];
        }
      }
    }
    block_sum_n<R>(ss, shared);
#pragma unroll
    for (int j = 0; j < R; j++) {
      float rs = rstd_of(ss[j], H, eps);
#pragma unroll
      for (int k = 0; k < PER; k++)
#pragma unroll
        for (int i = 0; i < 8; i++) acc[k][i] += dv[j][k][i] * round_as<T>(xv[j][k][i] * rs);
    }
  }
  float *out = partial + (size_t)blockIdx.x * H;
  bool vec_out = rows_vec(H, partial);
#pragma unroll
  for (int k = 0; k < PER; k++) {
    uint32_t g = g0 + threadIdx.x + k * BLOCK;
    if (g < G) store_n<8>(out + 8 * g, left8(g, H), vec_out, acc[k]);
  }
}

// Second stage: dw[c] = sum over strips of partial[s, c], always in the same order (no atomics,
// so the result is reproducible). A block covers 8 columns (one 32-byte sector of each strip's
// row) with 32 lanes of strips each; 8 loads a thread stay in flight.
__device__ void rms_norm_wgrad_reduce(const float *partial, float *dw, uint32_t strips,
                                      uint32_t H) {
  __shared__ float lanes[32][9];
  uint32_t col = threadIdx.x & 7, lane = threadIdx.x >> 3;
  uint32_t c = blockIdx.x * 8 + col;
  float acc = 0.0f;
  if (c < H) {
#pragma unroll 8
    for (uint32_t s = lane; s < strips; s += 32) acc += partial[(size_t)s * H + c];
  }
  lanes[lane][col] = acc;
  __syncthreads();
  if (lane == 0 && c < H) {
    float t = 0.0f;
#pragma unroll
    for (int l = 0; l < 32; l++) t += lanes[l][col];
    dw[c] = t;
  }
}

// Heads layout change. Block (tile, h, b) with threads (unit, row) covers tokens
// t = tile * blockDim.y + threadIdx.y of head h in sequence b: the D values of one (b, t, h)
// are contiguous in both layouts, rows [B, T, heads, D] and heads [B, heads, T, D], so reads and
// writes are both contiguous runs of D values, and no thread divides an index.
__device__ __forceinline__ bool heads_at(uint32_t T_, uint32_t heads, uint32_t D,
                                         uint32_t to_heads, uint32_t groups, size_t &src,
                                         size_t &dst, size_t &token) {
  uint32_t t = blockIdx.x * blockDim.y + threadIdx.y;
  if (t >= T_) return false;
  uint32_t h = blockIdx.y, b = blockIdx.z;
  token = (size_t)b * T_ + t;
  size_t rows = (token * heads + h) * D;
  // Heads side: [B, kv, T, groups, D] (groups = 1: [B, heads, T, D]).
  uint32_t kv = heads / groups;
  size_t hd = ((((size_t)b * kv + h / groups) * T_ + t) * groups + h % groups) * D;
  src = to_heads ? rows : hd;
  dst = to_heads ? hd : rows;
  return true;
}

// Without rotation: out = round(x + bias), 8 values a thread.
template <typename T>
__device__ void heads_plain(const T *x, const T *bias, T *out, uint32_t T_, uint32_t heads,
                            uint32_t D, uint32_t to_heads, uint32_t groups) {
  size_t src, dst, token;
  if (!heads_at(T_, heads, D, to_heads, groups, src, dst, token)) return;
  const T *bh = bias + (size_t)blockIdx.y * D;
  bool vec = rows_vec(D, x) && rows_vec(D, bias) && rows_vec(D, out);
  for (uint32_t g = threadIdx.x; g < (D + 7) / 8; g += blockDim.x) {
    float v[8], bv[8];
    uint32_t n = left8(g, D);
    load_n<8>(x + src + 8 * g, n, vec, v);
    load_n<8>(bh + 8 * g, n, vec, bv);
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = v[i] + bv[i];
    store_n<8>(out + dst + 8 * g, n, vec, v);
  }
}

// With rotation by +theta (rows to heads) or -theta (heads to rows): pairs (i, i + D/2) of
// round(x + bias), 8 pairs a thread; `table` [B, T, D] holds cos then sin halves.
template <typename T>
__device__ void heads_rope(const T *x, const T *bias, const T *table, T *out, uint32_t T_,
                           uint32_t heads, uint32_t D, uint32_t to_heads, uint32_t groups) {
  constexpr int P = 8;
  size_t src, dst, token;
  if (!heads_at(T_, heads, D, to_heads, groups, src, dst, token)) return;
  uint32_t half = D / 2;
  const T *bh = bias + (size_t)blockIdx.y * D;
  const T *cs = table + token * D;
  // Runs of 8 values start every 8 values from a multiple of D/2: 16-byte aligned when D is a
  // multiple of 16 and every base is.
  bool vec = D % 16 == 0 && aligned16(x) && aligned16(bias) && aligned16(table) && aligned16(out);
  float sign = to_heads ? 1.0f : -1.0f;
  for (uint32_t i = threadIdx.x * P; i < half; i += blockDim.x * P) {
    uint32_t n = half - i < P ? half - i : P;
    float lo[P], hi[P], blo[P], bhi[P], c[P], s[P], olo[P], ohi[P];
    load_n<P>(x + src + i, n, vec, lo);
    load_n<P>(x + src + half + i, n, vec, hi);
    load_n<P>(bh + i, n, vec, blo);
    load_n<P>(bh + half + i, n, vec, bhi);
    load_n<P>(cs + i, n, vec, c);
    load_n<P>(cs + half + i, n, vec, s);
#pragma unroll
    for (int k = 0; k < P; k++) {
      float a = round_as<T>(lo[k] + blo[k]), b = round_as<T>(hi[k] + bhi[k]);
      float sk = sign * s[k];
      olo[k] = __fsub_rn(__fmul_rn(a, c[k]), __fmul_rn(b, sk));
      ohi[k] = __fadd_rn(__fmul_rn(b, c[k]), __fmul_rn(a, sk));
    }
    store_n<P>(out + dst + i, n, vec, olo);
    store_n<P>(out + dst + half + i, n, vec, ohi);
  }
}

// out[index[r]] += src[r] in f32, one block per source row; `out` starts zeroed. Indices of
// `rows` or more are skipped (the CPU twin reports them as an error; a kernel cannot).
template <typename T>
__device__ void scatter_add_rows(const T *src, const uint32_t *index, float *out, uint32_t H,
                                 uint32_t rows) {
  uint32_t to = index[blockIdx.x];
  if (to >= rows) return;
  const T *sr = src + (size_t)blockIdx.x * H;
  float *orow = out + (size_t)to * H;
  bool vec = rows_vec(H, src) && rows_vec(H, out);
  for (uint32_t g = threadIdx.x; g < (H + 7) / 8; g += BLOCK) {
    float v[8];
    uint32_t n = left8(g, H);
    load_n<8>(sr + 8 * g, n, vec, v);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (vec) {
      // Compute capability 9 adds 16-byte float atomics: a quarter of the atomic operations.
      float4 *o4 = reinterpret_cast<float4 *>(orow + 8 * g);
      atomicAdd(o4, make_float4(v[0], v[1], v[2], v[3]));
      atomicAdd(o4 + 1, make_float4(v[4], v[5], v[6], v[7]));
      continue;
    }
#endif
    for (uint32_t i = 0; i < n; i++) atomicAdd(orow + 8 * g + i, v[i]);
  }
}

// AdamW, in place, 8 values a thread. mv is [m; v] f32 of n values each.
__device__ __forceinline__ void moments1(float g, float &m, float &v, float b1, float b2,
                                         float omb2) {
  m = __fadd_rn(m, __fmul_rn(__fsub_rn(g, m), b1));
  v = __fadd_rn(__fmul_rn(v, b2), __fmul_rn(__fmul_rn(g, g), omb2));
}

template <typename T>
__device__ void adamw_moments(float *mv, const T *grad, size_t n, float b1, float b2, float omb2) {
  float *m = mv, *v = mv + n;
  elementwise8(
      n, aligned16(m) && aligned16(v) && aligned16(grad),
      [&](size_t base, bool vec) {
        float g[8], mm[8], vv[8];
        load_n<8>(grad + base, 8, vec, g);
        load_n<8>(m + base, 8, vec, mm);
        load_n<8>(v + base, 8, vec, vv);
#pragma unroll
        for (int i = 0; i < 8; i++) moments1(g[i], mm[i], vv[i], b1, b2, omb2);
        store_n<8>(m + base, 8, vec, mm);
        store_n<8>(v + base, 8, vec, vv);
      },
      [&](size_t i) { moments1(to_f32(grad[i]), m[i], v[i], b1, b2, omb2); });
}

// theta * decay - m / (sqrt(v) * inv_bias2_sqrt + eps) * step_size, in the CPU twin's order.
__device__ __forceinline__ float apply1(float theta, float m, float v, float decay,
                                        float inv_bias2_sqrt, float eps, float step_size) {
  float denom = __fadd_rn(__fmul_rn(__fsqrt_rn(v), inv_bias2_sqrt), eps);
  return __fsub_rn(__fmul_rn(theta, decay), __fmul_rn(__fdiv_rn(m, denom), step_size));
}

template <typename T>
__device__ void adamw_apply(T *param, const float *mv, size_t n, float decay, float inv_bias2_sqrt,
                            float eps, float step_size) {
  const float *m = mv, *v = mv + n;
  elementwise8(
      n, aligned16(param) && aligned16(m) && aligned16(v),
      [&](size_t base, bool vec) {
        float p[8], mm[8], vv[8];
        load_n<8>(param + base, 8, vec, p);
        load_n<8>(m + base, 8, vec, mm);
        load_n<8>(v + base, 8, vec, vv);
#pragma unroll
        for (int i = 0; i < 8; i++)
          p[i] = apply1(p[i], mm[i], vv[i], decay, inv_bias2_sqrt, eps, step_size);
        store_n<8>(param + base, 8, vec, p);
      },
      [&](size_t i) {
        param[i] = from_f32<T>(
            apply1(to_f32(param[i]), m[i], v[i], decay, inv_bias2_sqrt, eps, step_size));
      });
}

template <typename T>
__device__ void adamw_decay(T *param, size_t n, float decay) {
  elementwise8(
      n, aligned16(param),
      [&](size_t base, bool vec) {
        float p[8];
        load_n<8>(param + base, 8, vec, p);
#pragma unroll
        for (int i = 0; i < 8; i++) p[i] = __fmul_rn(p[i], decay);
        store_n<8>(param + base, 8, vec, p);
      },
      [&](size_t i) { param[i] = from_f32<T>(__fmul_rn(to_f32(param[i]), decay)); });
}

// ---------------------------------------------------------------------------------------------
#define FOR_TYPES(NAME, BODY) \
  BODY(NAME##_f32, float)      \
  BODY(NAME##_bf16, __nv_bfloat16)

#define MASKED_SOFTMAX(NAME, T)                                                                 \
  extern "C" __global__ void NAME(const T *x, T *y, uint32_t S, uint32_t T_, uint32_t past,   \
                                  uint32_t rows_per_batch, const uint32_t *pad, float scale,   \
                                  uint32_t rows_per_query) {                                   \
    masked_softmax<T>(x, y, S, T_, past, rows_per_batch, pad, scale, rows_per_query);        \
  }
FOR_TYPES(masked_softmax, MASKED_SOFTMAX)

#define SOFTMAX_BACKWARD(NAME, T)                                                            \
  extern "C" __global__ void NAME(const T *y, const T *g, T *dx, uint32_t S, float scale) { \
    softmax_backward<T>(y, g, dx, S, scale);                                                \
  }
FOR_TYPES(softmax_backward, SOFTMAX_BACKWARD)

#define TOKEN_NLL(NAME, T)                                                                  \
  extern "C" __global__ void NAME(const T *x, const uint32_t *target, float *out,          \
                                  uint32_t V) {                                            \
    token_nll<T>(x, target, out, V);                                                        \
  }
FOR_TYPES(token_nll, TOKEN_NLL)

#define TOKEN_NLL_BACKWARD(NAME, T)                                                         \
  extern "C" __global__ void NAME(const T *x, const uint32_t *target, const float *ng,     \
                                  T *dx, uint32_t V) {                                     \
    token_nll_backward<T>(x, target, ng, dx, V);                                            \
  }
FOR_TYPES(token_nll_backward, TOKEN_NLL_BACKWARD)

#define GUMBEL_ARGMAX(NAME, T)                                                                \
  extern "C" __global__ void NAME(const T *x, const uint64_t *keys, uint32_t step,           \
                                  float inv_temp, uint32_t *out, uint32_t V) {               \
    gumbel_argmax<T>(x, keys, step, inv_temp, out, V);                                        \
  }
FOR_TYPES(gumbel_argmax, GUMBEL_ARGMAX)

#define SILU_MUL(NAME, T)                                                                     \
  extern "C" __global__ void NAME(const T *g, const T *u, T *out, size_t n) {                \
    silu_mul<T>(g, u, out, n);                                                                \
  }
FOR_TYPES(silu_mul, SILU_MUL)

#define SILU_MUL_BACKWARD(NAME, T)                                                            \
  extern "C" __global__ void NAME(const T *g, const T *u, const T *d, T *dgu, size_t n) {    \
    silu_mul_backward<T>(g, u, d, dgu, n);                                                    \
  }
FOR_TYPES(silu_mul_backward, SILU_MUL_BACKWARD)

#define ADD(NAME, T)                                                                          \
  extern "C" __global__ void NAME(const T *a, const T *b, T *out, size_t n) {                \
    add<T>(a, b, out, n);                                                                     \
  }
FOR_TYPES(add, ADD)

#define RMS_NORM(NAME, T)                                                                     \
  extern "C" __global__ void NAME(const T *x, const T *w, T *y, uint32_t H, float eps) {     \
    rms_norm<T>(x, w, y, H, eps);                                                             \
  }
FOR_TYPES(rms_norm, RMS_NORM)

#define RMS_NORM_BACKWARD(NAME, T)                                                            \
  extern "C" __global__ void NAME(const T *x, const T *w, const T *dy, T *dx, uint32_t H,    \
                                  float eps) {                                                \
    rms_norm_backward<T>(x, w, dy, dx, H, eps);                                               \
  }
FOR_TYPES(rms_norm_backward, RMS_NORM_BACKWARD)

// Narrow rows (up to 8 * BLOCK = 2048 values, one group a thread) take 2 rows at once, in few
// enough registers for 4 blocks an SM, so that one block's loads overlap another's reduction;
// wider rows 4 groups a thread (8192 values a chunk) and 1 row at once.
#define RMS_NORM_WGRAD_PARTIAL(NAME, T)                                                       \
  extern "C" __global__ void __launch_bounds__(BLOCK, 4)                                      \
      NAME(const T *x, const T *dy, float *partial, uint32_t N, uint32_t H,                   \
           uint32_t rows_per_strip, float eps) {                                              \
    rms_norm_wgrad_partial<T, 1, 2>(x, dy, partial, N, H, rows_per_strip, eps);               \
  }
FOR_TYPES(rms_norm_wgrad_partial_narrow, RMS_NORM_WGRAD_PARTIAL)
#define RMS_NORM_WGRAD_PARTIAL_WIDE(NAME, T)                                                  \
  extern "C" __global__ void NAME(const T *x, const T *dy, float *partial, uint32_t N,       \
                                  uint32_t H, uint32_t rows_per_strip, float eps) {           \
    rms_norm_wgrad_partial<T, 4, 1>(x, dy, partial, N, H, rows_per_strip, eps);               \
  }
FOR_TYPES(rms_norm_wgrad_partial_wide, RMS_NORM_WGRAD_PARTIAL_WIDE)

extern "C" __global__ void rms_norm_wgrad_reduce_f32(const float *partial, float *dw,
                                                     uint32_t strips, uint32_t H) {
  rms_norm_wgrad_reduce(partial, dw, strips, H);
}

#define HEADS_PLAIN(NAME, T)                                                                  \
  extern "C" __global__ void NAME(const T *x, const T *bias, T *out, uint32_t T_,            \
                                  uint32_t heads, uint32_t D, uint32_t to_heads,              \
                                  uint32_t groups) {                                          \
    heads_plain<T>(x, bias, out, T_, heads, D, to_heads, groups);                             \
  }
FOR_TYPES(heads_plain, HEADS_PLAIN)

#define HEADS_ROPE(NAME, T)                                                                   \
  extern "C" __global__ void NAME(const T *x, const T *bias, const T *table, T *out,         \
                                  uint32_t T_, uint32_t heads, uint32_t D, uint32_t to_heads, \
                                  uint32_t groups) {                                          \
    heads_rope<T>(x, bias, table, out, T_, heads, D, to_heads, groups);                       \
  }
FOR_TYPES(heads_rope, HEADS_ROPE)

#define SCATTER_ADD_ROWS(NAME, T)                                                             \
  extern "C" __global__ void NAME(const T *src, const uint32_t *index, float *out, uint32_t H, \
                                  uint32_t rows) {                                            \
    scatter_add_rows<T>(src, index, out, H, rows);                                            \
  }
FOR_TYPES(scatter_add_rows, SCATTER_ADD_ROWS)

#define ADAMW_MOMENTS(NAME, T)                                                                \
  extern "C" __global__ void NAME(float *mv, const T *grad, size_t n, float b1, float b2,    \
                                  float omb2) {                                               \
    adamw_moments<T>(mv, grad, n, b1, b2, omb2);                                              \
  }
FOR_TYPES(adamw_moments, ADAMW_MOMENTS)

#define ADAMW_APPLY(NAME, T)                                                                  \
  extern "C" __global__ void NAME(T *param, const float *mv, size_t n, float decay,          \
                                  float inv_bias2_sqrt, float eps, float step_size) {         \
    adamw_apply<T>(param, mv, n, decay, inv_bias2_sqrt, eps, step_size);                      \
  }
FOR_TYPES(adamw_apply, ADAMW_APPLY)

#define ADAMW_DECAY(NAME, T)                                                                  \
  extern "C" __global__ void NAME(T *param, size_t n, float decay) {                          \
    adamw_decay<T>(param, n, decay);                                                          \
  }
FOR_TYPES(adamw_decay, ADAMW_DECAY)

// acc[a, r] += part[a, r] for r < L, with acc rows of M >= L values (f32) and part rows of L:
// a prefix of every row accumulated in place. Blocks (column tile, row) so that neighbouring
// threads touch neighbouring values and no thread divides.
template <typename T>
__device__ void add_prefix(float *acc, const T *part, size_t A, uint32_t L, uint32_t M) {
  uint32_t r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= L) return;
  for (size_t a = blockIdx.y; a < A; a += gridDim.y) acc[a * M + r] += to_f32(part[a * L + r]);
}

#define ADD_PREFIX(NAME, T)                                                                   \
  extern "C" __global__ void NAME(float *acc, const T *part, size_t A, uint32_t L, uint32_t M) { \
    add_prefix<T>(acc, part, A, L, M);                                                        \
  }
FOR_TYPES(add_prefix, ADD_PREFIX)

// Warp-per-row twins of masked_softmax and softmax_backward for rows of at most 1024 values
// (attention over up to 1024 keys): eight rows a block, shuffles only, no block barriers. The
// block-per-row kernels leave most threads idle on such short rows. Lane l holds values
// (c * 32 + l) * 8 + e, eight contiguous values per chunk c.
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  return v;
}

template <typename T>
__device__ void masked_softmax_warp(const T *x, T *y, uint32_t rows, uint32_t S, uint32_t T_,
                                    uint32_t past, uint32_t rows_per_batch, const uint32_t *pad,
                                    float scale, uint32_t rows_per_query) {
  uint32_t lane = threadIdx.x & 31;
  uint32_t r = blockIdx.x * (BLOCK / 32) + (threadIdx.x >> 5);
  if (r >= rows) return;
  uint32_t lo = pad ? pad[r / rows_per_batch] : 0;
  uint32_t hi = past + ((r / rows_per_query) % T_);  // inclusive
  const T *xr = x + (size_t)r * S;
  T *yr = y + (size_t)r * S;
  bool vec = rows_vec(S, x) && rows_vec(S, y);
  float v[32];
  float m = -INFINITY;
#pragma unroll
  for (int c = 0; c < 4; c++) {
    uint32_t base = (c * 32 + lane) * 8;
    uint32_t valid = base < S ? (S - base < 8 ? S - base : 8) : 0;
    if (valid > 0) load_n<8>(xr + base, valid, vec, v + c * 8);
#pragma unroll
    for (int e = 0; e < 8; e++) {
      uint32_t j = base + e;
      float val = (j < S && j >= lo && j <= hi) ? v[c * 8 + e] * scale : -INFINITY;
      v[c * 8 + e] = val;
      m = fmaxf(m, val);
    }
  }
  m = warp_max(m);
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < 32; i++) {
    v[i] = v[i] == -INFINITY ? 0.0f : __expf(v[i] - m);
    sum += v[i];
  }
  sum = warp_sum(sum);
  float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
#pragma unroll
  for (int i = 0; i < 32; i++) v[i] *= inv;
#pragma unroll
  for (int c = 0; c < 4; c++) {
    uint32_t base = (c * 32 + lane) * 8;
    uint32_t valid = base < S ? (S - base < 8 ? S - base : 8) : 0;
    if (valid > 0) store_n<8>(yr + base, valid, vec, v + c * 8);
  }
}

template <typename T>
__device__ void softmax_backward_warp(const T *y, const T *g, T *dx, uint32_t rows, uint32_t S,
                                      float scale) {
  uint32_t lane = threadIdx.x & 31;
  uint32_t r = blockIdx.x * (BLOCK / 32) + (threadIdx.x >> 5);
  if (r >= rows) return;
  size_t off = (size_t)r * S;
  bool vec = rows_vec(S, y) && rows_vec(S, g) && rows_vec(S, dx);
  float yy[32], gg[32];
  float dot = 0.0f;
#pragma unroll
  for (int c = 0; c < 4; c++) {
    uint32_t base = (c * 32 + lane) * 8;
    uint32_t valid = base < S ? (S - base < 8 ? S - base : 8) : 0;
#pragma unroll
    for (int e = 0; e < 8; e++) yy[c * 8 + e] = gg[c * 8 + e] = 0.0f;
    if (valid > 0) {
      load_n<8>(y + off + base, valid, vec, yy + c * 8);
      load_n<8>(g + off + base, valid, vec, gg + c * 8);
    }
#pragma unroll
    for (int e = 0; e < 8; e++) dot += yy[c * 8 + e] * gg[c * 8 + e];
  }
  dot = warp_sum(dot);
#pragma unroll
  for (int i = 0; i < 32; i++) yy[i] = scale * yy[i] * (gg[i] - dot);
#pragma unroll
  for (int c = 0; c < 4; c++) {
    uint32_t base = (c * 32 + lane) * 8;
    uint32_t valid = base < S ? (S - base < 8 ? S - base : 8) : 0;
    if (valid > 0) store_n<8>(dx + off + base, valid, vec, yy + c * 8);
  }
}

#define MASKED_SOFTMAX_WARP(NAME, T)                                                          \
  extern "C" __global__ void NAME(const T *x, T *y, uint32_t rows, uint32_t S, uint32_t T_,  \
                                  uint32_t past, uint32_t rows_per_batch, const uint32_t *pad, \
                                  float scale, uint32_t rows_per_query) {                     \
    masked_softmax_warp<T>(x, y, rows, S, T_, past, rows_per_batch, pad, scale,               \
                           rows_per_query);                                                   \
  }
FOR_TYPES(masked_softmax_warp, MASKED_SOFTMAX_WARP)

#define SOFTMAX_BACKWARD_WARP(NAME, T)                                                        \
  extern "C" __global__ void NAME(const T *y, const T *g, T *dx, uint32_t rows, uint32_t S,  \
                                  float scale) {                                              \
    softmax_backward_warp<T>(y, g, dx, rows, S, scale);                                       \
  }
FOR_TYPES(softmax_backward_warp, SOFTMAX_BACKWARD_WARP)
