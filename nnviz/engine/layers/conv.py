from __future__ import annotations

from typing import Any

from . import init as _init
from .base import Layer, pair, positive_int, unpair


class _ConvBase(Layer):
    def __init__(self, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 bias: bool = True, init: str = _init.DEFAULT) -> None:
        super().__init__()
        name = type(self).__name__
        self.out_channels = positive_int(out_channels, "out_channels", name)
        self.kernel_size = pair(kernel_size, f"{name} kernel_size")
        self.stride = pair(stride, f"{name} stride")
        self.padding = pair(padding, f"{name} padding")
        for v, what, lo in ((self.kernel_size, "kernel_size", 1), (self.stride, "stride", 1),
                            (self.padding, "padding", 0)):
            for x in v:
                positive_int(x, what, name, lo)
        self.use_bias = bool(bias)
        self.init = init

    def config(self) -> dict:
        c = {"type": self.type, "out_channels": self.out_channels,
             "kernel_size": unpair(self.kernel_size)}
        if self.stride != (1, 1):
            c["stride"] = unpair(self.stride)
        if self.padding != (0, 0):
            c["padding"] = unpair(self.padding)
        if not self.use_bias:
            c["bias"] = False
        if self.init != _init.DEFAULT:
            c["init"] = self.init
        return c

    @property
    def rf(self):
        return self.kernel_size, self.stride

    def _make_params(self, rng, hint, shape, fan_in, fan_out):
        kind = _init.choose(self.init, hint, self.label)
        wt = _init.weights(rng, shape, fan_in, fan_out, kind, self.dtype)
        self.params = {"weight": self.B.asarray(wt, self.dtype)}
        if self.use_bias:
            b = _init.bias(rng, self.out_channels, fan_in, kind, self.dtype)
            self.params["bias"] = self.B.asarray(b, self.dtype)


class Conv2D(_ConvBase):
    """Cross-correlation as in PyTorch; weight (out, in, kh, kw)."""

    def _build(self, shape, rng, hint):
        self._need(shape, 3, "an image input (channels, height, width)")
        c, h, w = shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if kh > h + 2 * ph or kw > w + 2 * pw:
            self._fail(f"kernel {kh}x{kw} is larger than the padded input "
                       f"{h + 2 * ph}x{w + 2 * pw} (input {shape}, padding {ph})")
        oh, ow = (h - kh + 2 * ph) // sh + 1, (w - kw + 2 * pw) // sw + 1
        for n, k, p, s, axis in ((h, kh, ph, sh, "rows"), (w, kw, pw, sw, "columns")):
            rest = (n - k + 2 * p) % s
            if rest:
                self.notes.append(f"stride {s} leaves {rest} {axis} unused at the border "
                                  f"(({n} - {k} + 2*{p})/{s} + 1 = {(n - k + 2 * p) / s + 1:.2f})")
        fan_in, fan_out = c * kh * kw, self.out_channels * kh * kw
        self._make_params(rng, hint, (self.out_channels, c, kh, kw), fan_in, fan_out)
        return self.out_channels, oh, ow

    def forward(self, x: Any, train: bool = False, relu: bool = False) -> Any:
        # relu=True: the following ReLU's output (Sequential fuses the two on the CPU)
        self._x = x
        if relu:
            return self.B.conv2d_forward(x, self.params["weight"], self.params.get("bias"),
                                         self.stride, self.padding, self._cache, relu=True)
        return self.B.conv2d_forward(x, self.params["weight"], self.params.get("bias"),
                                     self.stride, self.padding, self._cache)

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        gx, gw, gb = self.B.conv2d_backward(self._x, self.params["weight"], gy, self.stride,
                                            self.padding, self._cache, need_gx)
        self.grads["weight"] = gw
        if self.use_bias:
            self.grads["bias"] = gb
        return gx


class ConvTranspose2D(_ConvBase):
    """Transposed convolution (the gradient of Conv2D w.r.t. its input).

    Weight (in, out, kh, kw) as in PyTorch. Output (H-1)*S - 2P + K.
    """

    @property
    def rf(self):
        return None

    def _build(self, shape, rng, hint):
        self._need(shape, 3, "an image input (channels, height, width)")
        c, h, w = shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
        if oh <= 0 or ow <= 0:
            self._fail(f"padding {ph} removes the whole output ({oh}x{ow}) for input {shape}")
        fan_in, fan_out = self.out_channels * kh * kw, c * kh * kw
        self._make_params(rng, hint, (c, self.out_channels, kh, kw), fan_in, fan_out)
        return self.out_channels, oh, ow

    def forward(self, x: Any, train: bool = False) -> Any:
        self._x = x
        return self.B.conv_transpose2d_forward(x, self.params["weight"], self.params.get("bias"),
                                               self.stride, self.padding,
                                               self.output_shape[1:], self._cache)

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        gx, gw, gb = self.B.conv_transpose2d_backward(self._x, self.params["weight"], gy,
                                                      self.stride, self.padding, self._cache,
                                                      need_gx)
        self.grads["weight"] = gw
        if self.use_bias:
            self.grads["bias"] = gb
        return gx
