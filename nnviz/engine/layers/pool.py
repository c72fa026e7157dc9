from __future__ import annotations

from typing import Any

from .base import Layer, pair, positive_int, unpair


class _Pool(Layer):
    def __init__(self, kernel_size: Any = 2, stride: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = pair(kernel_size, f"{name} kernel_size")
        self.stride = pair(stride, f"{name} stride") if stride is not None else self.kernel_size
        for v in self.kernel_size + self.stride:
            positive_int(v, "kernel_size/stride", name)

    def config(self) -> dict:
        c = {"type": self.type, "kernel_size": unpair(self.kernel_size)}
        if self.stride != self.kernel_size:
            c["stride"] = unpair(self.stride)
        return c

    @property
    def rf(self):
        return self.kernel_size, self.stride

    def _build(self, shape, rng, hint):
        self._need(shape, 3, "an image input (channels, height, width)")
        c, h, w = shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if kh > h or kw > w:
            self._fail(f"pooling window {kh}x{kw} is larger than the input {h}x{w}")
        for n, k, s, axis in ((h, kh, sh, "rows"), (w, kw, sw, "columns")):
            if (n - k) % s:
                self.notes.append(f"stride {s} leaves {(n - k) % s} {axis} unused at the border")
        return c, (h - kh) // sh + 1, (w - kw) // sw + 1


class MaxPool2D(_Pool):
    def forward(self, x: Any, train: bool = False) -> Any:
        self._xshape = x.shape
        self._y = self.B.maxpool_forward(x, self.kernel_size, self.stride, self._cache)
        return self._y

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        return self.B.maxpool_backward(gy, self._xshape, self.kernel_size, self.stride,
                                       self._cache)

    def backward_through_relu(self, gy: Any) -> Any:
        """Gradient at the input of the ReLU that feeds this pool (one pass, same numbers)."""
        return self.B.maxpool_relu_backward(gy, self._y, self._xshape, self.kernel_size,
                                            self.stride, self._cache)


class AvgPool2D(_Pool):
    def forward(self, x: Any, train: bool = False) -> Any:
        self._xshape = x.shape
        return self.B.avgpool_forward(x, self.kernel_size, self.stride, self._cache)

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        return self.B.avgpool_backward(gy, self._xshape, self.kernel_size, self.stride,
                                       self._cache)


class GlobalAvgPool2D(Layer):
    """Mean over each channel's whole map: (C, H, W) -> (C,), what small ResNets end with."""

    @property
    def rf(self):   # one window covering the whole input (summary() marks it "full")
        return None

    def _build(self, shape, rng, hint):
        self._need(shape, 3, "an image input (channels, height, width)")
        return (shape[0],)

    def forward(self, x: Any, train: bool = False) -> Any:
        self._xshape = x.shape
        return self.B.global_avgpool_forward(x, self._cache)

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        return self.B.global_avgpool_backward(gy, self._xshape, self._cache)
