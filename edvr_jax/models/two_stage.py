"""The paper's two-stage restoration: a second, shallower EDVR refines stage-1 frames.

Stage 1 restores every frame of a window (each from its own ``T1``-frame LQ
window); stage 2, an ``hr_in`` EDVR, takes ``T2`` consecutive stage-1 outputs at
output resolution and restores their centre frame again. As one model the input
is a clip of ``T1 + T2 - 1`` LQ frames ``(B, T1+T2-1, H, W, 3)`` and the output
the refined centre frame ``(B, s*H, s*W, 3)`` (s = stage-1 scale). For whole
videos, ``stage1`` and ``stage2`` can also be run one after the other over all
frames (each with its own temporal border padding), which avoids recomputing
stage-1 frames shared by neighbouring windows.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from edvr_jax.models.edvr import EDVR


class TwoStageEDVR(nn.Module):
    """Stage-1 EDVR followed by a stage-2 ``hr_in`` EDVR; params under ``stage1`` / ``stage2``."""

    stage1: EDVR
    stage2: EDVR

    @property
    def num_frame(self) -> int:
        return self.stage1.num_frame + self.stage2.num_frame - 1

    @property
    def center(self) -> int:
        return self.stage1.center + self.stage2.center

    @property
    def scale(self) -> int:
        return self.stage1.scale

    @property
    def size_multiple(self) -> int:
        return self.stage1.size_multiple

    def check_input(self, x) -> None:
        if not self.stage2.hr_in:
            raise ValueError("TwoStageEDVR: stage2 must be an hr_in EDVR (it works at output resolution)")
        if getattr(x, "ndim", None) != 5 or x.shape[1] != self.num_frame:
            raise ValueError(
                f"TwoStageEDVR takes (B, {self.num_frame}, H, W, 3) clips "
                f"(stage-1 {self.stage1.num_frame} + stage-2 {self.stage2.num_frame} - 1 frames), "
                f"got {tuple(getattr(x, 'shape', ()))}")

    def __call__(self, x: jax.Array) -> jax.Array:
        self.check_input(x)
        b, _, h, w, c = x.shape
        t1, t2 = self.stage1.num_frame, self.stage2.num_frame
        # All T2 stage-1 windows in one batch: (B*T2, T1, H, W, 3).
        idx = jnp.arange(t2)[:, None] + jnp.arange(t1)[None, :]
        windows = x[:, idx].reshape(b * t2, t1, h, w, c)
        frames = self.stage1(windows)
        frames = frames.reshape((b, t2) + frames.shape[1:])
        return self.stage2(frames)

    def refine(self, frames: jax.Array) -> jax.Array:
        """Stage 2 alone on ``(B, T2, sH, sW, 3)`` stage-1 frames."""
        return self.stage2(frames)
