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
  float s = 0.0f;
  for (uint32_t j = threadIdx.x; j < V; j += BLOCK) s += __expf(to_f32(xr[j]) - mx);
  s = block_sum(s, shared);
  if (threadIdx.x == 0) {
    uint32_t t = target[blockIdx.x];
    float xt = t < V ? to_f32(xr[t]) : NAN;
    out[2 * blockIdx.x] = mx + logf(s) - xt;
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
