"""Building blocks shared by the EDVR modules, channels-last (N, H, W, C).

Everything here reproduces a PyTorch operation exactly (to float32 round-off):
Conv2d with symmetric padding and PyTorch's default initialisation, PixelShuffle's
channel order, bilinear upsampling with ``align_corners=False``, MaxPool2d and
AvgPool2d (``count_include_pad=True``) with padding, and BasicSR's
ResidualBlockNoBN with its 0.1-scaled Kaiming initialisation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Initializer = Callable[..., jax.Array]


def torch_conv_kernel_init() -> Initializer:
    """PyTorch's Conv2d default: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in))."""
    return nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_conv_bias_init(fan_in: int) -> Initializer:
    """PyTorch's Conv2d default bias: U(+-1/sqrt(fan_in))."""
    bound = 1.0 / fan_in**0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def lrelu(x: jax.Array) -> jax.Array:
    """LeakyReLU with BasicSR's negative slope 0.1."""
    return nn.leaky_relu(x, negative_slope=0.1)


class Conv2d(nn.Module):
    """A PyTorch-style Conv2d in NHWC: params ``kernel`` (kh, kw, Cin, Cout) and ``bias``.

    ``padding`` is symmetric like PyTorch's (an int), so a 3x3 stride-2 conv with
    padding 1 maps H to ceil(H/2) exactly as ``nn.Conv2d(c, c, 3, 2, 1)`` does.
    """

    features: int
    kernel_size: int = 3
    stride: int = 1
    padding: int | None = None  # None: kernel_size // 2
    use_bias: bool = True
    kernel_init: Initializer | None = None
    bias_init: Initializer | None = None
    dtype: jnp.dtype | None = None
    precision: lax.PrecisionLike = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, cin = self.kernel_size, x.shape[-1]
        pad = k // 2 if self.padding is None else self.padding
        kernel = self.param("kernel", self.kernel_init or torch_conv_kernel_init(),
                            (k, k, cin, self.features), jnp.float32)
        dtype = self.dtype or x.dtype
        y = lax.conv_general_dilated(
            x.astype(dtype), kernel.astype(dtype), (self.stride, self.stride), [(pad, pad), (pad, pad)],
            dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=self.precision)
        if self.use_bias:
            bias = self.param("bias", self.bias_init or torch_conv_bias_init(cin * k * k),
                              (self.features,), jnp.float32)
            y = y + bias.astype(dtype)
        return y


Conv3x3 = functools.partial(Conv2d, kernel_size=3)
Conv1x1 = functools.partial(Conv2d, kernel_size=1)


class ResidualBlockNoBN(nn.Module):
    """conv3x3 -> ReLU -> conv3x3, plus identity (BasicSR, ``res_scale`` 1).

    Initialised like BasicSR: Kaiming normal (fan_in, ReLU gain) scaled by 0.1, zero bias.
    """

    num_feat: int = 64
    res_scale: float = 1.0
    dtype: jnp.dtype | None = None
    precision: lax.PrecisionLike = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = nn.initializers.variance_scaling(2.0 * 0.1**2, "fan_in", "normal")
        conv = functools.partial(Conv3x3, self.num_feat, kernel_init=init,
                                 bias_init=nn.initializers.zeros, dtype=self.dtype,
                                 precision=self.precision)
        out = conv(name="conv2")(nn.relu(conv(name="conv1")(x)))
        return x + out * self.res_scale


def pixel_shuffle(x: jax.Array, r: int) -> jax.Array:
    """PyTorch's PixelShuffle in NHWC: channel c*r*r + i*r + j -> pixel (h*r+i, w*r+j), channel c.

    (TensorFlow's depth_to_space uses (i*r + j)*C + c instead; the two differ.)
    """
    n, h, w, c = x.shape
    oc = c // (r * r)
    x = x.reshape(n, h, w, oc, r, r)
    x = x.transpose(0, 1, 4, 2, 5, 3)  # (n, h, i, w, j, oc)
    return x.reshape(n, h * r, w * r, oc)


def _upsample_axis(x: jax.Array, axis: int, scale: int) -> jax.Array:
    """Linear upsampling of one axis by an integer factor, align_corners=False.

    Output index s*i + r samples source position i + (2r + 1 - s) / (2s), clamped
    to the edges exactly like PyTorch (edge samples replicate the border pixel).
    """
    n = x.shape[axis]
    first = lax.slice_in_dim(x, 0, 1, axis=axis)
    last = lax.slice_in_dim(x, n - 1, n, axis=axis)
    prev = jnp.concatenate([first, lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis=axis)
    nxt = jnp.concatenate([lax.slice_in_dim(x, 1, n, axis=axis), last], axis=axis)
    phases = []
    for r in range(scale):
        d = (2 * r + 1 - scale) / (2 * scale)
        phases.append((1 + d) * x - d * prev if d < 0 else (1 - d) * x + d * nxt)
    out = jnp.stack(phases, axis=axis + 1)
    shape = list(x.shape)
    shape[axis] = n * scale
    return out.reshape(shape)


def upsample_bilinear(x: jax.Array, scale: int) -> jax.Array:
    """``F.interpolate(x, scale_factor=scale, mode='bilinear', align_corners=False)`` in NHWC."""
    return _upsample_axis(_upsample_axis(x, 1, scale), 2, scale)


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    """``nn.MaxPool2d(3, stride=2, padding=1)`` in NHWC (padding never wins the max)."""
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                             ((0, 0), (1, 1), (1, 1), (0, 0)))


def avg_pool_3x3_s2(x: jax.Array) -> jax.Array:
    """``nn.AvgPool2d(3, stride=2, padding=1)``: zero padding counted, always divides by 9."""
    s = lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 2, 2, 1),
                          ((0, 0), (1, 1), (1, 1), (0, 0)))
    return s / 9.0
