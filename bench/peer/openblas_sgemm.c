/* OpenBLAS peer for bench/cpu.ts (benchmark only; seqtune never links OpenBLAS): times row-major
 * cblas_sgemm on one shape with the same method as the seqtune side (warm-up, then the median of
 * timed runs) and prints {"gflops": ..., "config": ...} as one JSON line.
 * Usage: openblas_sgemm M N K transA transB threads */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int compare(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static float* filled(size_t n, unsigned* state) {
  float* p = malloc(n * sizeof(float));
  for (size_t i = 0; i < n && p; ++i) {
    *state = *state * 1664525u + 1013904223u;
    p[i] = (float)(*state >> 8) / (float)(1u << 24) - 0.5f;
  }
  return p;
}

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s M N K transA transB threads\n", argv[0]);
    return 2;
  }
  int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]);
  int transA = atoi(argv[4]), transB = atoi(argv[5]);
  openblas_set_num_threads(atoi(argv[6]));
  unsigned state = 12345;
  float* A = filled((size_t)M * K, &state);
  float* B = filled((size_t)K * N, &state);
  float* C = filled((size_t)M * N, &state);
  if (!A || !B || !C) return 1;
  double flops = 2.0 * M * N * K, times[64];
  int reps = -2; /* two warm-up runs, not timed */
  for (double start = now(); reps < 64 && (reps < 5 || now() - start < 0.5); ++reps) {
    double t = now();
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
                A, transA ? M : K, B, transB ? K : N, 0.0f, C, N);
    if (reps >= 0) times[reps] = now() - t;
  }
  qsort(times, reps, sizeof(double), compare);
  printf("{\"gflops\": %.3f, \"config\": \"%s\"}\n", flops / times[reps / 2] / 1e9, openblas_get_config());
  free(A);
  free(B);
  free(C);
  return 0;
}
