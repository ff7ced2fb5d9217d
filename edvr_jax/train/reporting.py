"""What a run reports: a progress bar with ETA, TensorBoard scalars and images, log lines,
and ``metrics.jsonl`` in the workdir (one JSON object per log step, for scripts).

Metrics stay on the device between log steps (summed there, no host sync per step);
every ``train.log_every`` steps they are fetched once, averaged and written. Only
process 0 prints and writes event files.
"""

from __future__ import annotations

import json
import logging
import pathlib
import time
from typing import Any

import jax
import numpy as np

log = logging.getLogger("edvr_jax.train")


class Reporter:
    def __init__(self, config, workdir: pathlib.Path, *, start: int, total: int):
        self.config = config
        self.main = jax.process_index() == 0
        self.sum: Any = None
        self.count = 0
        self.t_last, self.step_last = time.perf_counter(), start
        self.writer = None
        self.bar = None
        self.jsonl = workdir / "metrics.jsonl"
        if self.main:
            import tensorflow as tf

            from edvr_jax.data import hide_accelerators_from_tf

            hide_accelerators_from_tf()  # before TensorFlow's first op
            self.writer = tf.summary.create_file_writer(str(workdir / "tb"))
            if config.train.progress and start < total:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, initial=start, desc="train", unit="step",
                                dynamic_ncols=True, smoothing=0.1)

    def step(self, step: int, metrics: dict) -> None:
        # Counted, not OR-ed: summing bool arrays would give True, i.e. 1/count "finite".
        metrics = jax.tree_util.tree_map(
            lambda a: a.astype(np.int32) if str(getattr(a, "dtype", "")) == "bool" else a, metrics)
        self.sum = metrics if self.sum is None else jax.tree_util.tree_map(
            lambda a, b: a + b, self.sum, metrics)
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)

    def log(self, step: int) -> dict[str, float]:
        """Averages since the last log; writes them; returns them as floats."""
        values = {k: float(v) / self.count for k, v in jax.device_get(self.sum).items()}
        values["finite"] = float(values["finite"] == 1.0)
        now = time.perf_counter()
        steps = step - self.step_last
        values["steps_per_s"] = steps / max(now - self.t_last, 1e-9)
        values["samples_per_s"] = values["steps_per_s"] * self.config.train.batch_size
        self.sum, self.count, self.t_last, self.step_last = None, 0, now, step
        if self.main:
            self._scalars("train", step, values)
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{values['loss']:.4g}", lr=f"{values['lr']:.2e}",
                                     sps=f"{values['samples_per_s']:.1f}")
            else:
                log.info("step %d: loss %.5g lr %.3g grad_norm %.3g %.1f samples/s", step,
                         values["loss"], values["lr"], values["grad_norm"], values["samples_per_s"])
        return values

    def validation(self, step: int, result: dict, seconds: float) -> None:
        if not self.main:
            return
        mean = result["mean"]
        self._scalars("val", step, {k: v for k, v in mean.items() if isinstance(v, int | float)})
        text = ", ".join(f"{k} {v:.4f}" for k, v in mean.items() if isinstance(v, int | float))
        msg = f"step {step}: validation {text} ({seconds:.1f} s)"
        if self.bar is not None:
            self.bar.write(msg)
        else:
            log.info(msg)
        grid = result.get("preview")
        if grid is not None and self.writer is not None:
            import tensorflow as tf

            with self.writer.as_default(step=step):
                tf.summary.image("val/lq_bicubic_output_gt", np.asarray(grid)[None], max_outputs=1)
                # edvr-inspect's offset and attention pictures of the same clip
                for tag, image in result.get("inspection", {}).items():
                    tf.summary.image(f"inspect/{tag}", np.asarray(image)[None], max_outputs=1)

    def _scalars(self, prefix: str, step: int, values: dict[str, float]) -> None:
        if self.writer is None:
            return
        with open(self.jsonl, "a") as f:
            f.write(json.dumps({"step": step, "split": prefix, **values}) + "\n")
        import tensorflow as tf

        with self.writer.as_default(step=step):
            for k, v in values.items():
                tf.summary.scalar(f"{prefix}/{k}", v)
        self.writer.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.writer is not None:
            self.writer.flush()
