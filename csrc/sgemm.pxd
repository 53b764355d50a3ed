# The float32 AVX-512 product of csrc/sgemm.h, declared once for every module that calls it
# from C (_gemm, _conv, _winograd, _recurrent): `from sgemm cimport fnn_sgemm, ...`.

cdef extern from "sgemm.h" nogil:
    int fnn_sgemm_available()
    int fnn_sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* a, Py_ssize_t a_rs,
                  Py_ssize_t a_cs, const float* b, Py_ssize_t ldb, float* c, Py_ssize_t ldc,
                  int accumulate)
    void fnn_sgemm_pack_row(Py_ssize_t p, const float* a0, Py_ssize_t n0, const float* a1,
                            Py_ssize_t n1, float* pack, Py_ssize_t pack_ts)
    void fnn_sgemm_long(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* pack,
                        Py_ssize_t pack_ts, const float* b, Py_ssize_t ldb, float* c,
                        Py_ssize_t ldc)
    void fnn_sgemm_pack_b(Py_ssize_t k, const float* b, Py_ssize_t ldb, float* out,
                          Py_ssize_t q0, Py_ssize_t q1)
    int fnn_sgemm_bpanels(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* a,
                          Py_ssize_t a_rs, Py_ssize_t a_cs, const float* bpanels, float* c,
                          Py_ssize_t ldc, int accumulate)
    int fnn_sgemm_pair(Py_ssize_t m, Py_ssize_t k, const float* a, Py_ssize_t a_rs,
                       Py_ssize_t a_cs, Py_ssize_t n, const float* b, Py_ssize_t ldb, float* c,
                       Py_ssize_t ldc, Py_ssize_t n2, const float* b2, Py_ssize_t ldb2,
                       float* c2, Py_ssize_t ldc2)
