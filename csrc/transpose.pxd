# The float32 transpose of csrc/transpose.h, declared once for every module that calls it from C
# (_gemm, _recurrent): `from transpose cimport fnn_transpose`.

cdef extern from "transpose.h" nogil:
    void fnn_transpose(const float* src, Py_ssize_t src_rs, Py_ssize_t src_cs, float* dst,
                       Py_ssize_t dst_ld, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0,
                       Py_ssize_t c1)
