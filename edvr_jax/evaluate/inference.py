"""Jitted, batched, sharded and optionally tiled EDVR inference on temporal windows.

:class:`Restorer` maps windows ``(n, T, h, w, 3)`` float32 RGB in [0, 1] to restored
centre frames ``(n, s*h, s*w, 3)`` (float32 in [0, 1], or uint8 quantised like BasicSR's
``tensor2img``). It is built for one model and used for many calls:

* one compilation per input shape: every call runs in batches of a fixed size
  (``batch_size`` rounded up to a multiple of the device count), the last batch padded
  with copies of its last window;
* frames of any size: windows are padded at the bottom/right by reflection to the
  model's ``size_multiple`` (4, or 16 for ``hr_in``) and the output is cropped back
  (BasicSR would refuse such frames);
* several devices: the batch is sharded over a 1-D ``('data',)`` mesh of the process's
  devices (``NamedSharding``), parameters replicated;
* tiling (``tile``, ``tile_overlap``): see ``edvr_jax.evaluate.tiling``;
* test-time self-ensemble (``ensemble="flip4"`` or ``"x8"``): see
  ``edvr_jax.evaluate.ensemble``; the flipped copies are more entries of the same call;
* offset diagnostics: the model's mean |offset| per deformable convolution (a mean over
  each batch, padding copies included) is kept as a running maximum in :attr:`offsets`;
* a diverged model is refused, not scored: the compiled step also returns one "all
  finite" flag per output frame (before uint8 rounding, which cannot show NaN), the host
  checks that small array and raises :class:`NonFiniteOutput` naming the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from edvr_jax.evaluate.ensemble import ENSEMBLES, ensemble_apply
from edvr_jax.evaluate.metrics import to_uint8_batch
from edvr_jax.evaluate.tiling import tile_grid
from edvr_jax.models import crop_output, offset_stats, pad_to_multiple

__all__ = ["NonFiniteOutput", "Restorer", "data_mesh", "lower_restore_batch", "nonfinite_message",
           "restore_batch_program"]


class NonFiniteOutput(ValueError):
    """The model output for window ``index`` of a call has NaN or inf pixels."""

    def __init__(self, index: int, stage: int | None = None):
        super().__init__(f"model output for window {index} is not finite (NaN/inf)")
        self.index, self.stage = index, stage


def nonfinite_message(clip: str, frame: Any) -> str:
    """The one-line refusal of a diverged model's output, naming clip and frame."""
    return (f"model output for clip {clip} frame {frame} is not finite (NaN/inf): the model has "
            f"diverged (or its checkpoint is damaged); nothing was scored or written for it")


def data_mesh(devices: Sequence[Any] | None = None) -> Mesh | None:
    """A 1-D ``('data',)`` mesh over ``devices`` (default: this process's devices), or
    ``None`` when there is only one device."""
    devices = list(jax.local_devices() if devices is None else devices)
    if len(devices) <= 1:
        return None
    return Mesh(np.array(devices), ("data",))


@partial(jax.jit, static_argnums=(0, 1), static_argnames=("ensemble",))
def _apply(model, quantize: bool, variables, x, ensemble: str = "none"):
    """The compiled step; keyed on the (hashable) model, so every Restorer of an equal
    model shares its compilations (periodic validation does not recompile). ``ensemble``
    (``edvr_jax.evaluate.ensemble``) restores the flipped copies of every window as more
    batch entries of the same program and averages them in float, before rounding."""

    def restore(batch):
        padded, size = pad_to_multiple(batch, model.size_multiple)
        out, state = model.apply(variables, padded, mutable=["diagnostics"])
        return crop_output(out, size, model.scale), offset_stats(state.get("diagnostics", {}))

    out, stats = restore(x) if ensemble == "none" else ensemble_apply(restore, x, ensemble)
    finite = jnp.all(jnp.isfinite(out).reshape(out.shape[0], -1), axis=1)  # one flag per frame
    if quantize:
        out = to_uint8_batch(out)
    return out, stats, finite


# The jitted batch program itself, ``(model, quantize, variables, x)`` with the first two
# static: for tools that lower or export it (edvr-aot, the cuda export test).
restore_batch_program = _apply


def lower_restore_batch(model, variables: Any, x: Any, *, quantize: bool = False,
                        ensemble: str = "none"):
    """The program a :class:`Restorer` runs on one batch, lowered for ``variables`` and ``x``
    (arrays or ``jax.ShapeDtypeStruct`` with shardings), e.g. for a TPU topology (edvr-aot)."""
    return restore_batch_program.trace(model, quantize, variables, x, ensemble=ensemble).lower()


class Restorer:
    """One EDVR, ready to restore windows in fixed-size batches.

    Args:
      model, variables: an ``EDVR`` (``model.apply(variables, x)``).
      batch_size: windows (or tiles) per device call; rounded up to the device count.
      mesh: ``"auto"`` (all local devices when there are several), ``None`` (no
        sharding) or a 1-D ``Mesh`` whose axis is ``'data'``.
      tile: tile side in input pixels (``None``: whole frames); ``tile_overlap``: margin.
      quantize: return uint8 (BasicSR's rounding) instead of float32.
      ensemble: ``"none"``, ``"flip4"`` or ``"x8"`` (``edvr_jax.evaluate.ensemble``): every
        window (or tile) is also restored flipped, in the same compiled call, and the
        outputs flipped back and averaged before rounding. A batch then runs
        ``batch_size`` x 4 (or 8) model entries; with tiles the ensemble is per tile (the
        same as per frame when the overlap covers the receptive field and the frame is a
        multiple of ``model.size_multiple``).
    """

    def __init__(self, model, variables, *, batch_size: int = 1, mesh: Any = "auto",
                 tile: int | None = None, tile_overlap: int = 0, quantize: bool = False,
                 ensemble: str = "none"):
        if ensemble not in ENSEMBLES:
            raise ValueError(f"unknown ensemble {ensemble!r}; choose one of {', '.join(ENSEMBLES)}")
        self.model, self.ensemble = model, ensemble
        self.mesh = data_mesh() if isinstance(mesh, str) and mesh == "auto" else mesh
        ndev = 1 if self.mesh is None else self.mesh.devices.size
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.batch_size = -(-int(batch_size) // ndev) * ndev
        self.tile, self.tile_overlap, self.quantize = tile, int(tile_overlap), quantize
        if self.mesh is None:
            self._in_sharding = None
            self.variables = jax.device_put(variables)
        else:
            self._in_sharding = NamedSharding(self.mesh, PartitionSpec("data"))
            self.variables = jax.device_put(variables, NamedSharding(self.mesh, PartitionSpec()))
        self.offsets: dict[str, float] = {}
        self.shapes: set[tuple[int, ...]] = set()  # input shapes run (one compilation each)

    # ------------------------------------------------------------------ device side
    def put(self, x: np.ndarray) -> jax.Array:
        """Places a full batch ``(batch_size, ...)`` on the devices (sharded on axis 0)."""
        if self._in_sharding is None:
            return jax.device_put(x)
        return jax.device_put(x, self._in_sharding)

    def apply_batch(self, x: np.ndarray) -> tuple[jax.Array, dict[str, jax.Array], jax.Array]:
        """Restores exactly one batch ``(batch_size, T, h, w, 3)``. Returns device arrays
        (not fetched, so calls pipeline): the outputs, the offset statistics (to be passed
        to :meth:`record` once fetched) and a ``(batch_size,)`` bool, True where the output
        frame is all finite (check it with :meth:`check_finite`)."""
        if x.shape[0] != self.batch_size:
            raise ValueError(f"apply_batch takes {self.batch_size} windows, got {x.shape[0]}")
        self.shapes.add(tuple(x.shape))
        return _apply(self.model, self.quantize, self.variables,
                      self.put(np.ascontiguousarray(x, np.float32)), ensemble=self.ensemble)

    def record(self, stats: dict[str, Any]) -> None:
        """Folds one batch's offset statistics into the running maxima :attr:`offsets`."""
        for k, v in jax.device_get(stats).items():
            v = float(v)
            old = self.offsets.get(k, v)
            self.offsets[k] = max(old, v) if np.isfinite(v) and np.isfinite(old) else np.inf

    @staticmethod
    def check_finite(finite: Any, n: int | None = None, offset: int = 0) -> None:
        """Raises :class:`NonFiniteOutput` (index ``offset + j``) for the first of the first
        ``n`` flags of :meth:`apply_batch` that is False; fetches only those flags."""
        flags = np.asarray(jax.device_get(finite))[:n]
        if not flags.all():
            raise NonFiniteOutput(offset + int(np.argmin(flags)))

    # ------------------------------------------------------------------ host side
    def pad_batch(self, items: np.ndarray) -> np.ndarray:
        """``(n <= batch_size, ...)`` -> ``(batch_size, ...)`` repeating the last item."""
        n = items.shape[0]
        if n == self.batch_size:
            return items
        reps = np.repeat(items[-1:], self.batch_size - n, axis=0)
        return np.concatenate([items, reps], axis=0)

    def _run(self, items: np.ndarray) -> np.ndarray:
        outs = []
        for i in range(0, items.shape[0], self.batch_size):
            chunk = items[i:i + self.batch_size]
            outs.append((*self.apply_batch(self.pad_batch(chunk)), chunk.shape[0]))
        # Dispatch everything first, then fetch: the device works while we wait.
        result = []
        for out, stats, finite, n in outs:
            self.check_finite(finite, n, sum(r.shape[0] for r in result))
            result.append(np.asarray(out)[:n])
            self.record(stats)
        return np.concatenate(result, axis=0)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """``(n, T, h, w, 3)`` float32 windows -> ``(n, s*h, s*w, 3)`` restored frames.

        Raises :class:`NonFiniteOutput` (the window's index) when an output has NaN/inf."""
        windows = np.asarray(windows, np.float32)
        if windows.ndim != 5 or windows.shape[-1] != 3:
            raise ValueError(f"Restorer expects windows (n, T, h, w, 3), got {windows.shape}")
        if self.tile is None:
            return self._run(windows)
        m = self.model.size_multiple
        padded, (h, w) = pad_to_multiple(windows, m)  # on the host
        grid = tile_grid(padded.shape[-3:-1], self.tile, self.tile_overlap, m)
        tiles = grid.split(padded)  # (k, n, T, th, tw, 3)
        k, n = tiles.shape[:2]
        try:
            out = self._run(tiles.reshape((k * n,) + tiles.shape[2:]))
        except NonFiniteOutput as e:  # tile j of window i is item j * n + i
            raise NonFiniteOutput(e.index % n) from None
        out = grid.stitch(out.reshape((k, n) + out.shape[1:]), self.model.scale)
        s = self.model.scale
        return out[:, :s * h, :s * w]

    def reset_offsets(self) -> dict[str, float]:
        """Returns the recorded offset maxima and starts a new record."""
        stats, self.offsets = self.offsets, {}
        return stats
