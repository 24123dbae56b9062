// FP32 fused multiply-add peak of this CPU: many independent FMA chains on the widest
// vector registers the compiler targets (-march=native), on 1..N threads.
//
//   g++ -O3 -march=native -pthread -o fma-peak fma-peak.cpp && ./fma-peak <threads> <seconds>
//
// Prints one JSON line: GFLOP/s over all threads (an FMA counts as 2 FLOP).
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#if defined(__AVX512F__)
using vec = __m512;
static const char *kIsa = "avx512f";
static constexpr int kLanes = 16;
static inline vec vset(float x) { return _mm512_set1_ps(x); }
static inline vec vfma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
static inline float vsum(vec a) { return _mm512_reduce_add_ps(a); }
#elif defined(__FMA__)
using vec = __m256;
static const char *kIsa = "avx2+fma";
static constexpr int kLanes = 8;
static inline vec vset(float x) { return _mm256_set1_ps(x); }
static inline vec vfma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
static inline float vsum(vec a) {
  alignas(32) float t[8];
  _mm256_store_ps(t, a);
  float s = 0;
  for (float v : t) s += v;
  return s;
}
#else
#error "needs AVX2+FMA or AVX-512"
#endif

// FMA latency (4 cycles) x ports (2) = 8 chains keep the units busy; 24 leaves headroom
// and still fits in the 32 vector registers of AVX-512 (AVX2 has 16: the compiler spills
// a few, which the loop below tolerates because loads/stores use other ports).
static constexpr int kChains = 24;
static constexpr long kInner = 1 << 16;

struct Result {
  double seconds = 0;
  long iterations = 0;
  float sink = 0;
};

static void run(double seconds, Result *out) {
  vec acc[kChains];
  for (int i = 0; i < kChains; i++) acc[i] = vset(1.0f + 0.001f * i);
  const vec a = vset(0.999999f);
  const vec b = vset(1e-7f);
  const auto start = std::chrono::steady_clock::now();
  long iterations = 0;
  double elapsed = 0;
  do {
    for (long k = 0; k < kInner; k++) {
#pragma GCC unroll 24
      for (int i = 0; i < kChains; i++) acc[i] = vfma(acc[i], a, b);
    }
    iterations += kInner;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);
  float s = 0;
  for (int i = 0; i < kChains; i++) s += vsum(acc[i]);
  out->seconds = elapsed;
  out->iterations = iterations;
  out->sink = s;
}

int main(int argc, char **argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 1.0;
  // Warm up (frequency ramp, AVX-512 licence switch) before measuring.
  {
    Result warm;
    run(0.2, &warm);
  }
  std::vector<Result> results(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++) pool.emplace_back(run, seconds, &results[t]);
  for (auto &th : pool) th.join();
  double gflops = 0;
  double sink = 0;
  for (const auto &r : results) {
    gflops += static_cast<double>(r.iterations) * kChains * kLanes * 2 / r.seconds / 1e9;
    sink += r.sink;
  }
  std::printf(
      "{\"isa\":\"%s\",\"lanes\":%d,\"chains\":%d,\"threads\":%d,\"seconds\":%.3f,\"gflops\":%.2f,"
      "\"sink\":%g}\n",
      kIsa, kLanes, kChains, threads, seconds, gflops, sink);
  return 0;
}
