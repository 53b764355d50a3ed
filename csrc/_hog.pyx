# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled HOG over a batch of images (CS231n's ``hog_feature`` semantics).

The Python wrapper ``fastnn.kernels.hog`` has validated shapes, dtypes, contiguity and value
range and computed the cell geometry (which cell each row/column belongs to, with its
multiplicity) and the bin edges; this module only does the per-pixel arithmetic. The definition
it implements is in ``fastnn/kernels/hog.py``.

Parallelism: ``prange`` over chunks of images inside ``with nogil, parallel()``; each thread
allocates its float64 scratch (gray image and histogram) once per parallel block.
"""

import numpy as np

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport atan2, fabs, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

# Same constants as the Python implementations (fastnn/kernels/hog.py).
cdef double RAD2DEG = 180.0 / 3.141592653589793  # == Python's 180 / np.pi
cdef double PIO2_HI = 1.5707963267948966
cdef double PIO2_LO = 6.123233995736766e-17
cdef double VERTICAL = 1e-12
# A pixel whose slope gy / (gx + 1e-15) lies this close (relative) to a bin edge's slope is
# binned with atan2 itself, like the naive reference; elsewhere the slope test is exact.
cdef double EDGE_MARGIN = 1e-9
cdef double W_RED = 0.299
cdef double W_GREEN = 0.587
cdef double W_BLUE = 0.144
cdef Py_ssize_t IMAGES_PER_CHUNK = 8


cdef inline int literal_bin(double theta, const double* edges, int n_orient) noexcept nogil:
    """CS231n's test: bin i when edges[i] <= theta < edges[i + 1] and theta > 0; else -1."""
    cdef int i
    if not theta > 0.0:
        return -1
    for i in range(n_orient):
        if theta >= edges[i] and theta < edges[i + 1]:
            return i
    return -1


cdef inline int pixel_bin(double gx, double gy, const double* edges, const double* slopes,
                          int n_orient) noexcept nogil:
    """Orientation bin of one gradient (-1: not counted), without atan2 in the common case."""
    cdef double gxp = gx + 1e-15
    cdef double angle, u
    cdef int b, k
    if gy != 0.0 and fabs(gxp) <= VERTICAL * fabs(gy):
        # Vertical gradient: theta is within 1e-10 degrees of 0 or 180 and its last bit decides
        # whether it is counted; evaluate atan2 exactly as the Python implementations do.
        angle = PIO2_HI - (gxp / fabs(gy) - PIO2_LO)
        if gy < 0.0:
            angle = -angle
        return literal_bin(angle * RAD2DEG + 90.0, edges, n_orient)
    if gxp > 0.0:
        # theta = atan(u) + 90 deg is in (0, 180); theta >= edges[k + 1] iff u >= slopes[k].
        u = gy / gxp
        b = 0
        for k in range(n_orient - 1):
            b += u >= slopes[k]
        if (b > 0 and u - slopes[b - 1] <= EDGE_MARGIN * (1.0 + fabs(slopes[b - 1]))) or (
            b < n_orient - 1 and slopes[b] - u <= EDGE_MARGIN * (1.0 + fabs(slopes[b]))
        ):
            return literal_bin(atan2(gy, gxp) * RAD2DEG + 90.0, edges, n_orient)
        return b
    if gxp < 0.0:
        return -1  # theta in [-90, 0) or (180, 270]: never binned
    return literal_bin(90.0, edges, n_orient)  # gxp == 0 and gy == 0: atan2(0, 0) = 0


cdef extern from "hog_row.h" nogil:
    Py_ssize_t fastnn_hog_gray_plain_f32(const float* x, Py_ssize_t n, Py_ssize_t C, double* gray)
    Py_ssize_t fastnn_hog_gray_plain_f64(const double* x, Py_ssize_t n, Py_ssize_t C, double* gray)
    Py_ssize_t fastnn_hog_gray_fused_f32(const float* x, Py_ssize_t n, Py_ssize_t C, double* gray)
    Py_ssize_t fastnn_hog_gray_fused_f64(const double* x, Py_ssize_t n, Py_ssize_t C, double* gray)

    int HOG_BLOCK "FASTNN_HOG_BLOCK"
    Py_ssize_t fastnn_hog_image(const double* gray, Py_ssize_t H, Py_ssize_t W,
                          const double* slopes, int n_slopes, const int* pixel_base,
                          const double* pixel_mult, int dump, double* gx, double* gy,
                          double* count, double* near, int* slot, double* weight,
                          unsigned char* special)


cdef inline Py_ssize_t gray_levels_of(const floating* image, Py_ssize_t n, Py_ssize_t C,
                                      bint fused, double* gray) noexcept nogil:
    """Gray level of n pixels (see hog_row.h for the plain and fused evaluation orders);
    returns how many are NaN, infinite or beyond MAX_ABS_PIXEL."""
    if floating is float:
        if fused:
            return fastnn_hog_gray_fused_f32(image, n, C, gray)
        return fastnn_hog_gray_plain_f32(image, n, C, gray)
    else:
        if fused:
            return fastnn_hog_gray_fused_f64(image, n, C, gray)
        return fastnn_hog_gray_plain_f64(image, n, C, gray)


cdef bint hog_one_image(
    const floating* image,      # IN  (H, W, C) pixels
    floating* features,         # OUT (n_features,) = (n_cols * n_rows * n_orient,)
    double* scratch,            # scratch, 3 * H * W + n_features + 10 + 4 * HOG_BLOCK doubles
    Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, bint fused_gray,
    const int* pixel_base, const double* pixel_mult,
    Py_ssize_t n_features,
    const double* edges, const double* slopes, int n_orient, double cell_area,
) noexcept nogil:
    """HOG of one image into ``features``; returns True (leaving ``features`` unwritten) when a
    gray level is NaN, infinite or beyond MAX_ABS_PIXEL."""
    cdef Py_ssize_t n = H * W
    cdef double* gray = scratch
    cdef double* weight = gray + n
    cdef int* slot = <int*>(weight + n)
    # n flags plus 8 zero bytes, so the scan below can read whole 8-byte words
    cdef unsigned char* special = <unsigned char*>(slot + n)
    # hist[n_features:n_features + 8] are dump slots for pixels that are not counted, so the
    # accumulation below needs no unpredictable branch.
    cdef double* hist = weight + 2 * n + 2
    cdef double* block = hist + n_features + 8  # 4 * FASTNN_HOG_BLOCK doubles
    cdef Py_ssize_t i, c, w, n_special
    cdef unsigned long long word
    cdef double gx, gy
    cdef int b

    if gray_levels_of(image, n, C, fused_gray, gray) != 0:
        return True
    n_special = fastnn_hog_image(gray, H, W, slopes, n_orient - 1, pixel_base, pixel_mult,
                     <int>n_features, block, block + HOG_BLOCK, block + 2 * HOG_BLOCK,
                     block + 3 * HOG_BLOCK, slot, weight, special)
    memset(hist, 0, (n_features + 8) * sizeof(double))
    if n_special > 0:
        memset(special + n, 0, 8)
        for w in range(0, n, 8):  # eight flags per test: special pixels are rare
            memcpy(&word, special + w, 8)
            if word == 0:
                continue
            for i in range(w, min(w + 8, n)):
                if special[i]:
                    c = i % W
                    gx = gray[i + 1] - gray[i] if c + 1 < W else 0.0
                    gy = gray[i + W] - gray[i] if i + W < n else 0.0
                    b = pixel_bin(gx, gy, edges, slopes, n_orient)
                    slot[i] = pixel_base[i] + b if b >= 0 else <int>n_features
    # Pixels are added in row-major order, as the twin's bincount does.
    for i in range(n):
        hist[slot[i]] += weight[i]
    for i in range(n_features):
        features[i] = <floating>(hist[i] / cell_area)
    return False


def hog_batch(
    const floating[:, :, :, ::1] images,  # IN  (N, H, W, C), C in {1, 3, 4}
    const int[:, ::1] pixel_base,         # IN  (H, W) first feature of the pixel's cell, or -1
    const double[:, ::1] pixel_mult,      # IN  (H, W) multiplicity in its cell window
    const double[::1] edges,              # IN  (n_orient + 1,) bin edges in degrees
    const double[::1] slopes,             # IN  (n_orient - 1,) tan(edge - 90 deg), inner edges
    double cell_area,                     # IN  pixels_per_cell ** 2
    bint fused_gray,                      # IN  gray levels with the FMA chain (see hog_row.h)
    floating[:, ::1] out,                 # OUT (N, n_cols * n_rows * n_orient)
    unsigned char[::1] bad,               # OUT (N,) 1 where an image has a NaN/inf/huge gray level
    int num_threads,
):
    """HOG of every image into ``out``; see ``fastnn.kernels.hog`` for the definition."""
    cdef Py_ssize_t N = images.shape[0]
    cdef Py_ssize_t H = images.shape[1]
    cdef Py_ssize_t W = images.shape[2]
    cdef Py_ssize_t C = images.shape[3]
    cdef Py_ssize_t n_features = out.shape[1]
    cdef int n_orient = <int>(edges.shape[0] - 1)
    cdef Py_ssize_t n_chunks = (N + IMAGES_PER_CHUNK - 1) // IMAGES_PER_CHUNK
    cdef Py_ssize_t chunk, n, n_end
    cdef double* scratch
    cdef int failed = 0
    cdef int* failed_ptr = &failed
    cdef const double* slopes_ptr = &slopes[0] if slopes.shape[0] > 0 else NULL

    if (out.shape[0] != N or bad.shape[0] != N or pixel_base.shape[0] != H or pixel_base.shape[1] != W
            or pixel_mult.shape[0] != H or pixel_mult.shape[1] != W):
        raise ValueError("hog_batch: out, pixel_base or pixel_mult does not match images")
    if n_features >= 2**31 - 1:
        raise ValueError(f"hog_batch: {n_features} features per image do not fit a C int")
    if N == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        # gray, weight (H * W doubles each), slot (H * W ints) and special (H * W + 8 bytes):
        # together at most H * W + 2 doubles, hist (n_features + 8), four HOG_BLOCK blocks.
        scratch = <double*> malloc((3 * H * W + n_features + 10 + 4 * HOG_BLOCK) * sizeof(double))
        for chunk in prange(n_chunks, schedule="dynamic"):
            if scratch == NULL:
                failed_ptr[0] = 1
                continue
            n_end = min((chunk + 1) * IMAGES_PER_CHUNK, N)
            for n in range(chunk * IMAGES_PER_CHUNK, n_end):
                bad[n] = hog_one_image(
                    &images[n, 0, 0, 0], &out[n, 0], scratch, H, W, C, fused_gray,
                    &pixel_base[0, 0], &pixel_mult[0, 0], n_features, &edges[0], slopes_ptr, n_orient, cell_area,
                )
        free(scratch)
    if failed:
        raise MemoryError("hog_batch: could not allocate per-thread scratch")


def gray_levels(const floating[:, :, :, ::1] images, bint fused_gray):
    """Gray levels (N, H, W) float64 of (N, H, W, C) images, exactly as ``hog_batch`` computes
    them; used to probe which evaluation order matches NumPy's ``np.dot`` and by tests."""
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2]
    cdef Py_ssize_t C = images.shape[3]
    cdef Py_ssize_t n
    out_array = np.empty((N, H, W), dtype=np.float64)
    cdef double[:, :, ::1] out = out_array
    if N == 0 or H == 0 or W == 0:
        return out_array
    with nogil:
        for n in range(N):
            gray_levels_of(&images[n, 0, 0, 0], H * W, C, fused_gray, &out[n, 0, 0])
    return out_array
