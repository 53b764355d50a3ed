"""Argument checks and output geometry of the convolution operations (:mod:`fastnn.kernels.conv`).

Every check validates the caller's arguments (errors name the argument, what was expected and
what was received), brings the arrays to one float dtype in C order, and computes the
:class:`Geometry` every implementation uses, so none of them recomputes or trusts sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fastnn._validation import check_array, check_fits_in_memory, check_int

__all__ = [
    "Geometry",
    "check_col2im",
    "check_conv_backward",
    "check_conv_forward",
    "check_im2col",
    "output_size",
]


@dataclass(frozen=True)
class Geometry:
    """Kernel size, padding, stride, dilation and output size of one convolution."""

    channels: int
    fh: int
    fw: int
    pad: int
    stride: int
    dilation: int
    out_h: int
    out_w: int

    @property
    def rows(self) -> int:
        """Rows of the column matrix: C * fh * fw."""
        return self.channels * self.fh * self.fw

    @property
    def positions(self) -> int:
        """Output positions per image: H' * W'."""
        return self.out_h * self.out_w


def output_size(size: int, field: int, pad: int, stride: int, dilation: int, *,
                symbols: tuple[str, str, str, str, str], prefix: str = "") -> int:
    """``(size + 2*pad - dilation*(field - 1) - 1) / stride + 1``, which must be a whole number
    >= 1; the error spells the formula with the caller's ``symbols`` (size, field, pad, stride,
    dilation names) and the numbers, prefixed by ``prefix`` (e.g. ``"conv_param: "``)."""
    s_size, s_field, s_pad, s_stride, s_dil = symbols
    span = dilation * (field - 1) + 1
    if span > size + 2 * pad:
        what = f"{s_field}={field}" + (f" with {s_dil}={dilation} (span {span})"
                                        if dilation != 1 else "")
        raise ValueError(f"{prefix}kernel larger than the padded input: {what} exceeds "
                         f"{s_size} + 2*{s_pad} = {size} + 2*{pad} = {size + 2 * pad}")
    if dilation == 1:
        formula = f"({s_size} + 2*{s_pad} - {s_field}) / {s_stride} + 1"
        numbers = f"({size} + 2*{pad} - {field}) / {stride} + 1"
    else:
        formula = f"({s_size} + 2*{s_pad} - {s_dil}*({s_field} - 1) - 1) / {s_stride} + 1"
        numbers = f"({size} + 2*{pad} - {dilation}*({field} - 1) - 1) / {stride} + 1"
    free = size + 2 * pad - span
    if free % stride:
        raise ValueError(f"{prefix}{formula} = {numbers} = {free / stride + 1:g} is not a whole "
                         f"number: {s_stride}, {s_pad} and {s_field} do not tile the input")
    return free // stride + 1


def _floats(arrays: dict[str, Any], ndims: dict[str, int]) -> list[np.ndarray]:
    """Check every array (ndim, numeric, non-empty) and bring them to one float dtype (NumPy's
    promotion of the inputs) in C order, so compiled code can index them blindly."""
    checked = [check_array(a, name, ndim=ndims[name], finite=False) for name, a in arrays.items()]
    dtype = np.result_type(*checked)
    return [np.ascontiguousarray(a, dtype=dtype) for a in checked]


def _hyper(stride: Any, pad: Any, dilation: Any, names: tuple[str, str, str]) -> tuple[int, ...]:
    s_stride, s_pad, s_dil = names
    return (check_int(stride, s_stride, minimum=1), check_int(pad, s_pad, minimum=0),
            check_int(dilation, s_dil, minimum=1))


def _geometry(shape: tuple[int, ...], fh: int, fw: int, pad: int, stride: int, dilation: int,
              symbols: tuple[str, str, str, str], pad_name: str, prefix: str = "") -> Geometry:
    n, c, h, w = shape
    # a huge pad would allocate a huge padded input or output: an error, not a MemoryError
    check_fits_in_memory(8.0 * n * c * (h + 2 * pad) * (w + 2 * pad), pad_name,
                         f"the padded input of shape {shape} with {pad_name}={pad}")
    s_field_h, s_field_w, s_stride, s_dil = symbols
    out_h = output_size(h, fh, pad, stride, dilation, prefix=prefix,
                        symbols=("H", s_field_h, pad_name, s_stride, s_dil))
    out_w = output_size(w, fw, pad, stride, dilation, prefix=prefix,
                        symbols=("W", s_field_w, pad_name, s_stride, s_dil))
    # values that cannot change the result are normalised so they fit the kernels' C ints:
    # the stride of a single output position and the dilation of a 1x1 kernel
    if out_h == 1 and out_w == 1:
        stride = 1
    if fh == 1 and fw == 1:
        dilation = 1
    return Geometry(c, fh, fw, pad, stride, dilation, out_h, out_w)


_IM2COL_SYMBOLS = ("field_height", "field_width", "stride", "dilation")
_CONV_SYMBOLS = ("HH", "WW", "stride", "dilation")


def check_im2col(impl: str, x: Any, field_height: Any, field_width: Any, padding: Any,
                 stride: Any, dilation: Any = 1) -> tuple[np.ndarray, Geometry]:
    """x (N, C, H, W); field sizes, stride, dilation >= 1; padding >= 0."""
    (x,) = _floats({"x": x}, {"x": 4})
    fh = check_int(field_height, "field_height", minimum=1)
    fw = check_int(field_width, "field_width", minimum=1)
    stride, padding, dilation = _hyper(stride, padding, dilation, ("stride", "padding",
                                                                    "dilation"))
    g = _geometry(x.shape, fh, fw, padding, stride, dilation, _IM2COL_SYMBOLS, "padding")
    check_fits_in_memory(float(g.rows) * g.positions * x.shape[0] * x.itemsize, "x",
                         "the column matrix")
    return x, g


def check_col2im(impl: str, cols: Any, x_shape: Any, field_height: Any, field_width: Any,
                 padding: Any, stride: Any, dilation: Any = 1,
                 ) -> tuple[np.ndarray, tuple[int, int, int, int], Geometry]:
    """cols (C*fh*fw, H'*W'*N) for the images of shape x_shape (N, C, H, W)."""
    (cols,) = _floats({"cols": cols}, {"cols": 2})
    if isinstance(x_shape, (str, bytes)) or not hasattr(x_shape, "__len__") or len(x_shape) != 4:
        raise ValueError(f"x_shape must be a tuple of 4 ints (N, C, H, W); got {x_shape!r}")
    shape = tuple(check_int(v, f"x_shape[{i}]", minimum=1) for i, v in enumerate(x_shape))
    fh = check_int(field_height, "field_height", minimum=1)
    fw = check_int(field_width, "field_width", minimum=1)
    stride, padding, dilation = _hyper(stride, padding, dilation, ("stride", "padding",
                                                                    "dilation"))
    g = _geometry(shape, fh, fw, padding, stride, dilation, _IM2COL_SYMBOLS, "padding")
    want = (shape[1] * fh * fw, g.positions * shape[0])
    if cols.shape != want:
        raise ValueError(f"cols must have shape {want} (C*field_height*field_width, "
                         f"H'*W'*N) for x_shape {shape}, field_height={fh}, field_width={fw}, "
                         f"padding={padding}, stride={stride}, dilation={dilation}; got "
                         f"{cols.shape}")
    return cols, shape, g


def _check_filters(x: np.ndarray, w: np.ndarray) -> None:
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w must have the {x.shape[1]} input channels of x {x.shape} on its "
                         f"axis 1 (F, C, HH, WW); got w of shape {w.shape}")


def check_conv_forward(impl: str, x: Any, w: Any, b: Any, stride: Any = 1, pad: Any = 0,
                       dilation: Any = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, Geometry]:
    """x (N, C, H, W), w (F, C, HH, WW), b (F,); stride, dilation >= 1, pad >= 0."""
    x, w, b = _floats({"x": x, "w": w, "b": b}, {"x": 4, "w": 4, "b": 1})
    _check_filters(x, w)
    if b.shape != (w.shape[0],):
        raise ValueError(f"b must have shape ({w.shape[0]},), one bias per filter of w "
                         f"{w.shape}; got {b.shape}")
    stride, pad, dilation = _hyper(stride, pad, dilation, ("stride", "pad", "dilation"))
    g = _geometry(x.shape, w.shape[2], w.shape[3], pad, stride, dilation, _CONV_SYMBOLS, "pad")
    check_fits_in_memory(float(x.shape[0]) * w.shape[0] * g.positions * x.itemsize, "x",
                         "the output")
    return x, w, b, g


def check_conv_backward(impl: str, dout: Any, x: Any, w: Any, stride: Any = 1, pad: Any = 0,
                        dilation: Any = 1, need_dx: Any = True,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Geometry, bool]:
    """dout (N, F, H', W') for the forward call's x, w, stride, pad, dilation; need_dx a bool."""
    dout, x, w = _floats({"dout": dout, "x": x, "w": w}, {"dout": 4, "x": 4, "w": 4})
    _check_filters(x, w)
    stride, pad, dilation = _hyper(stride, pad, dilation, ("stride", "pad", "dilation"))
    g = _geometry(x.shape, w.shape[2], w.shape[3], pad, stride, dilation, _CONV_SYMBOLS, "pad")
    want = (x.shape[0], w.shape[0], g.out_h, g.out_w)
    if dout.shape != want:
        raise ValueError(f"dout must have the shape {want} (N, F, H', W') of the forward "
                         f"output for x {x.shape}, w {w.shape}, stride={stride}, pad={pad}, "
                         f"dilation={dilation}; got {dout.shape}")
    if not (isinstance(need_dx, (bool, np.bool_))
            or (isinstance(need_dx, (int, np.integer)) and need_dx in (0, 1))):
        raise TypeError(f"need_dx must be a bool; got {type(need_dx).__name__} {need_dx!r}")
    return dout, x, w, g, bool(need_dx)
