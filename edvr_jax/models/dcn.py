"""DCNv2Pack: a modulated deformable conv whose offsets and mask come from a separate feature."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from edvr_jax.models.layers import Conv3x3
from edvr_jax.ops import deform_conv2d

# BasicSR logs a warning when the mean |offset| of a DCNv2Pack exceeds this.
OFFSET_WARNING_THRESHOLD = 50.0
# The collection the modules sow their inner maps into, for edvr-inspect.
INSPECT = "inspect"


class DCNv2Pack(nn.Module):
    """BasicSR's DCNv2Pack (3x3, stride 1, padding 1), NHWC.

    ``conv_offset(feat)`` predicts ``3*G*9`` channels, chunked in three as in
    BasicSR: ``o1, o2, mask``. ``cat(o1, o2)`` is the offset in torchvision's
    layout (group-major, tap, dy then dx) and ``sigmoid(mask)`` the modulation,
    so the first ``2*G*9`` channels go straight into ``deform_conv2d``.

    Parameters: ``kernel`` (3, 3, C, C) with U(+-1/sqrt(9C)) init, ``bias`` zeros,
    and ``conv_offset`` zero-initialised (offsets 0 and mask 0.5 at start).
    The mean |offset| is sown into the ``diagnostics`` collection as
    ``offset_absmean`` (BasicSR warns above 50; see ``OFFSET_WARNING_THRESHOLD``), and
    the offset and the sigmoid mask themselves into ``inspect`` (``offset``, ``mask``;
    only kept when that collection is mutable, as ``edvr_jax.evaluate.inspect`` makes it).
    """

    num_feat: int = 64
    deformable_groups: int = 8
    max_columns_bytes: int | None = None
    dtype: jnp.dtype | None = None
    precision: lax.PrecisionLike = None

    @nn.compact
    def __call__(self, x: jax.Array, feat: jax.Array) -> jax.Array:
        g, taps, cin = self.deformable_groups, 9, x.shape[-1]
        out = Conv3x3(3 * g * taps, kernel_init=nn.initializers.zeros,
                      bias_init=nn.initializers.zeros, dtype=self.dtype,
                      precision=self.precision, name="conv_offset")(feat)
        # Offsets and mask stay in at least float32 whatever the compute dtype.
        pos_dtype = jnp.promote_types(out.dtype, jnp.float32)
        offset = out[..., : 2 * g * taps].astype(pos_dtype)
        mask = jax.nn.sigmoid(out[..., 2 * g * taps:].astype(pos_dtype))
        self.sow("diagnostics", "offset_absmean", jnp.mean(jnp.abs(offset)))
        self.sow(INSPECT, "offset", offset)
        self.sow(INSPECT, "mask", mask)
        bound = 1.0 / (cin * taps) ** 0.5
        kernel = self.param(
            "kernel", lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound, bound),
            (3, 3, cin, self.num_feat), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.num_feat,), jnp.float32)
        dtype = self.dtype or x.dtype
        return deform_conv2d(x.astype(dtype), offset, mask,
                             kernel.astype(dtype), bias.astype(dtype),
                             max_columns_bytes=self.max_columns_bytes, precision=self.precision)
