# cython: language_level=3
"""Facts fixed when the extension was compiled: OpenMP on/off and the compiler."""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fastnn_openmp_enabled(void) { return 1; }
    static int fastnn_openmp_version(void) { return _OPENMP; }
    static int fastnn_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int fastnn_openmp_enabled(void) { return 0; }
    static int fastnn_openmp_version(void) { return 0; }
    static int fastnn_omp_max_threads(void) { return 1; }
    #endif
    #if defined(__clang__)
    #define FASTNN_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define FASTNN_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_VER)
    #define FASTNN_COMPILER "msvc"
    #else
    #define FASTNN_COMPILER "unknown"
    #endif
    static const char *fastnn_compiler(void) { return FASTNN_COMPILER; }
    """
    int fastnn_openmp_enabled()
    int fastnn_openmp_version()
    int fastnn_omp_max_threads()
    const char *fastnn_compiler()


def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP."""
    return bool(fastnn_openmp_enabled())


def openmp_version() -> int:
    """The ``_OPENMP`` date macro (e.g. 201511), 0 without OpenMP."""
    return fastnn_openmp_version()


def omp_max_threads() -> int:
    """What the OpenMP runtime would use by default (1 without OpenMP)."""
    return fastnn_omp_max_threads()


def compiler() -> str:
    """Compiler name and version that built the extension."""
    return fastnn_compiler().decode("utf-8", "replace")
