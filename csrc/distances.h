/* L1 distance tiles for fastnn._ext._distances, with run-time instruction-set dispatch.
 *
 * Wheels must run on any x86-64 CPU, so the build cannot use -march=native.  Instead the tile
 * kernel (distances_l1_tile.h) is compiled three times on x86-64 with GCC/clang: for AVX-512,
 * for AVX2 and for the SSE2 baseline, and fastnn_l1_init() picks the best one the CPU supports.
 * Other GCC/clang targets get one generic 16-byte-vector build; other compilers a scalar loop.
 *
 * Public (called from Cython):
 *   void fastnn_l1_init(void);
 *   const char *fastnn_l1_isa(void);
 *   void fastnn_l1_tile_f32(X, ldx, m, Y, ldy, n, d, out, ldo, work);   (same for _f64)
 *       out[i*ldo + j] = sum_k |X[i*ldx + k] - Y[j*ldy + k]|,  i < m, j < n <= FASTNN_L1_NC,
 *       work: FASTNN_L1_NC * FASTNN_L1_KC elements of scratch owned by the calling thread.
 */
#ifndef FASTNN_DISTANCES_H
#define FASTNN_DISTANCES_H

#include <Python.h>
#include <string.h>

/* Y rows per tile (a multiple of every NR below) and k-block length: a packed Y block is
   NC * KC elements (256 KiB in float32), sized to stay in L2. */
#define FASTNN_L1_NC 256
#define FASTNN_L1_KC 256

#define FNN_CAT_(a, b) a##b
#define FNN_CAT(a, b) FNN_CAT_(a, b)

#if defined(__GNUC__) || defined(__clang__)

#if defined(__x86_64__)
#define FNN_HAVE_X86_DISPATCH 1

/* AVX-512: 32 vector registers, 12 accumulators of 16 floats. */
#define L1_NAME fnn_l1_f32_avx512
#define L1_REAL float
#define L1_UINT unsigned int
#define L1_VEC_BYTES 64
#define L1_MR 6
#define L1_NRV 2
#define L1_ATTR __attribute__((target("avx512f")))
#include "distances_l1_tile.h"

#define L1_NAME fnn_l1_f64_avx512
#define L1_REAL double
#define L1_UINT unsigned long long
#define L1_VEC_BYTES 64
#define L1_MR 6
#define L1_NRV 2
#define L1_ATTR __attribute__((target("avx512f")))
#include "distances_l1_tile.h"

/* AVX2: 16 vector registers, 8 accumulators + 2 loads + broadcast + temporaries. */
#define L1_NAME fnn_l1_f32_avx2
#define L1_REAL float
#define L1_UINT unsigned int
#define L1_VEC_BYTES 32
#define L1_MR 4
#define L1_NRV 2
#define L1_ATTR __attribute__((target("avx2")))
#include "distances_l1_tile.h"

#define L1_NAME fnn_l1_f64_avx2
#define L1_REAL double
#define L1_UINT unsigned long long
#define L1_VEC_BYTES 32
#define L1_MR 4
#define L1_NRV 2
#define L1_ATTR __attribute__((target("avx2")))
#include "distances_l1_tile.h"
#endif /* __x86_64__ */

/* Baseline: 16-byte vectors (SSE2 on x86-64, NEON on arm64, ...). */
#define L1_NAME fnn_l1_f32_base
#define L1_REAL float
#define L1_UINT unsigned int
#define L1_VEC_BYTES 16
#define L1_MR 4
#define L1_NRV 2
#define L1_ATTR
#include "distances_l1_tile.h"

#define L1_NAME fnn_l1_f64_base
#define L1_REAL double
#define L1_UINT unsigned long long
#define L1_VEC_BYTES 16
#define L1_MR 4
#define L1_NRV 2
#define L1_ATTR
#include "distances_l1_tile.h"

#else /* no vector extensions: plain scalar loops, same contract */

#define FNN_SCALAR_L1(NAME, REAL)                                                          \
    static void NAME(const REAL *X, Py_ssize_t ldx, Py_ssize_t m, const REAL *Y,           \
                     Py_ssize_t ldy, Py_ssize_t n, Py_ssize_t d, REAL *out, Py_ssize_t ldo,\
                     REAL *work)                                                           \
    {                                                                                      \
        (void)work;                                                                        \
        for (Py_ssize_t i = 0; i < m; i++)                                                 \
            for (Py_ssize_t j = 0; j < n; j++) {                                           \
                const REAL *x = X + i * ldx, *y = Y + j * ldy;                             \
                REAL s = 0;                                                                \
                for (Py_ssize_t k = 0; k < d; k++) s += x[k] > y[k] ? x[k] - y[k] : y[k] - x[k]; \
                out[i * ldo + j] = s;                                                      \
            }                                                                              \
    }
FNN_SCALAR_L1(fnn_l1_f32_base, float)
FNN_SCALAR_L1(fnn_l1_f64_base, double)
#endif

typedef void (*fnn_l1_f32_fn)(const float *, Py_ssize_t, Py_ssize_t, const float *, Py_ssize_t,
                              Py_ssize_t, Py_ssize_t, float *, Py_ssize_t, float *);
typedef void (*fnn_l1_f64_fn)(const double *, Py_ssize_t, Py_ssize_t, const double *,
                              Py_ssize_t, Py_ssize_t, Py_ssize_t, double *, Py_ssize_t,
                              double *);

static fnn_l1_f32_fn fnn_l1_f32 = fnn_l1_f32_base;
static fnn_l1_f64_fn fnn_l1_f64 = fnn_l1_f64_base;
static const char *fnn_l1_isa_name = "baseline"; /* 16-byte vectors: SSE2 on x86-64 */

static void fastnn_l1_init(void)
{
#if defined(FNN_HAVE_X86_DISPATCH)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        fnn_l1_f32 = fnn_l1_f32_avx512;
        fnn_l1_f64 = fnn_l1_f64_avx512;
        fnn_l1_isa_name = "avx512f";
        return;
    }
    if (__builtin_cpu_supports("avx2")) {
        fnn_l1_f32 = fnn_l1_f32_avx2;
        fnn_l1_f64 = fnn_l1_f64_avx2;
        fnn_l1_isa_name = "avx2";
        return;
    }
    fnn_l1_isa_name = "baseline";
#endif
}

static const char *fastnn_l1_isa(void) { return fnn_l1_isa_name; }

/* Force one kernel variant ("avx512f", "avx2", "sse2"/"baseline"), so tests can check every
   variant on one machine.  Returns 0 on success, -1 if unknown or unsupported by this CPU. */
static int fastnn_l1_force(const char *name)
{
    if (strcmp(name, "baseline") == 0 || strcmp(name, "sse2") == 0) {
        fnn_l1_f32 = fnn_l1_f32_base;
        fnn_l1_f64 = fnn_l1_f64_base;
        fnn_l1_isa_name = "baseline";
        return 0;
    }
#if defined(FNN_HAVE_X86_DISPATCH)
    __builtin_cpu_init();
    if (strcmp(name, "avx512f") == 0 && __builtin_cpu_supports("avx512f")) {
        fnn_l1_f32 = fnn_l1_f32_avx512;
        fnn_l1_f64 = fnn_l1_f64_avx512;
        fnn_l1_isa_name = "avx512f";
        return 0;
    }
    if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2")) {
        fnn_l1_f32 = fnn_l1_f32_avx2;
        fnn_l1_f64 = fnn_l1_f64_avx2;
        fnn_l1_isa_name = "avx2";
        return 0;
    }
#endif
    return -1;
}

static inline void fastnn_l1_tile_f32(const float *X, Py_ssize_t ldx, Py_ssize_t m,
                                      const float *Y, Py_ssize_t ldy, Py_ssize_t n, Py_ssize_t d,
                                      float *out, Py_ssize_t ldo, float *work)
{
    fnn_l1_f32(X, ldx, m, Y, ldy, n, d, out, ldo, work);
}

static inline void fastnn_l1_tile_f64(const double *X, Py_ssize_t ldx, Py_ssize_t m,
                                      const double *Y, Py_ssize_t ldy, Py_ssize_t n, Py_ssize_t d,
                                      double *out, Py_ssize_t ldo, double *work)
{
    fnn_l1_f64(X, ldx, m, Y, ldy, n, d, out, ldo, work);
}

/* ---------------------------------------------------------------------------------------------
 * Squared norms and squared distances accumulated in double precision, vectorised.
 * A plain "s += x[k] * x[k]" loop is one dependent chain of additions that compilers may not
 * reorder; here four independent 4-lane double accumulators (16 terms per step) break the chain.
 * On x86-64 ELF builds target_clones compiles AVX-512/AVX2/baseline copies picked at load time.
 */
#if defined(__GNUC__) || defined(__clang__)
#if defined(__x86_64__) && defined(__ELF__)
#define FNN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FNN_CLONES
#endif

typedef float fnn_v4f __attribute__((vector_size(16)));
typedef double fnn_v4d __attribute__((vector_size(32)));

#define FNN_LOAD4(T, p) ({ T v_; memcpy(&v_, (p), sizeof(T)); v_; })
#define FNN_TO_DOUBLE_f32(v) __builtin_convertvector((v), fnn_v4d)
#define FNN_TO_DOUBLE_f64(v) (v)

#define FNN_DEFINE_SQ(SUFFIX, REAL, VEC4)                                                    \
    FNN_CLONES static double fastnn_sq_norm_##SUFFIX(const REAL *x, Py_ssize_t d)            \
    {                                                                                        \
        fnn_v4d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                      \
        Py_ssize_t k = 0;                                                                    \
        for (; k + 16 <= d; k += 16) {                                                       \
            fnn_v4d v0 = FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, x + k));                     \
            fnn_v4d v1 = FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, x + k + 4));                 \
            fnn_v4d v2 = FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, x + k + 8));                 \
            fnn_v4d v3 = FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, x + k + 12));                \
            a0 += v0 * v0;                                                                   \
            a1 += v1 * v1;                                                                   \
            a2 += v2 * v2;                                                                   \
            a3 += v3 * v3;                                                                   \
        }                                                                                    \
        fnn_v4d a = (a0 + a1) + (a2 + a3);                                                   \
        double s = (a[0] + a[1]) + (a[2] + a[3]);                                            \
        for (; k < d; k++) s += (double)x[k] * (double)x[k];                                 \
        return s;                                                                            \
    }                                                                                        \
    FNN_CLONES static double fastnn_sq_dist_##SUFFIX(const REAL *x, const REAL *y,           \
                                                     Py_ssize_t d)                           \
    {                                                                                        \
        fnn_v4d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                      \
        Py_ssize_t k = 0;                                                                    \
        for (; k + 16 <= d; k += 16) {                                                       \
            fnn_v4d v0 = FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, x + k)) -                    \
                         FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, y + k));                     \
            fnn_v4d v1 = FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, x + k + 4)) -                \
                         FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, y + k + 4));                 \
            fnn_v4d v2 = FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, x + k + 8)) -                \
                         FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, y + k + 8));                 \
            fnn_v4d v3 = FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, x + k + 12)) -               \
                         FNN_TO_DOUBLE_##SUFFIX(FNN_LOAD4(VEC4, y + k + 12));                \
            a0 += v0 * v0;                                                                   \
            a1 += v1 * v1;                                                                   \
            a2 += v2 * v2;                                                                   \
            a3 += v3 * v3;                                                                   \
        }                                                                                    \
        fnn_v4d a = (a0 + a1) + (a2 + a3);                                                   \
        double s = (a[0] + a[1]) + (a[2] + a[3]);                                            \
        for (; k < d; k++) {                                                                 \
            const double t = (double)x[k] - (double)y[k];                                    \
            s += t * t;                                                                      \
        }                                                                                    \
        return s;                                                                            \
    }

FNN_DEFINE_SQ(f32, float, fnn_v4f)
FNN_DEFINE_SQ(f64, double, fnn_v4d)

#else /* scalar fallback */

#define FNN_DEFINE_SQ(SUFFIX, REAL)                                                          \
    static double fastnn_sq_norm_##SUFFIX(const REAL *x, Py_ssize_t d)                       \
    {                                                                                        \
        double s0 = 0, s1 = 0;                                                               \
        Py_ssize_t k = 0;                                                                    \
        for (; k + 2 <= d; k += 2) {                                                         \
            s0 += (double)x[k] * x[k];                                                       \
            s1 += (double)x[k + 1] * x[k + 1];                                               \
        }                                                                                    \
        if (k < d) s0 += (double)x[k] * x[k];                                                \
        return s0 + s1;                                                                      \
    }                                                                                        \
    static double fastnn_sq_dist_##SUFFIX(const REAL *x, const REAL *y, Py_ssize_t d)        \
    {                                                                                        \
        double s = 0;                                                                        \
        for (Py_ssize_t k = 0; k < d; k++) {                                                 \
            const double t = (double)x[k] - (double)y[k];                                    \
            s += t * t;                                                                      \
        }                                                                                    \
        return s;                                                                            \
    }
FNN_DEFINE_SQ(f32, float)
FNN_DEFINE_SQ(f64, double)
#endif

#endif /* FASTNN_DISTANCES_H */
