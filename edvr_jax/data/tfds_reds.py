"""REDS as a TensorFlow Datasets builder (manual download) and its reader for training.

Build (REDS must already be on disk, in either layout `read_reds` accepts):

    python -m edvr_jax.data build-tfds --root /data/REDS --task sr --data_dir /data/tfds
    # or: Reds(config='sr', data_dir=..., file_format='array_record').download_and_prepare(
    #         download_config=tfds.download.DownloadConfig(manual_dir='/data/REDS'))

What is written: splits 'train' (clips 000-239) and 'val' (240-269, i.e. the official val
clips 000-029), as ArrayRecord shards of one record per frame image: `clip` (name), `frame`
(index), `role` ('lq' or 'gt') and `png` (the original encoded PNG, not re-encoded). Order is
fixed (shuffling disabled): per clip, its LQ frames then its GT frames, clip after clip, and
the per-split clip list is stored in the dataset metadata. A record per frame (rather than a
record per whole clip) is what makes training affordable: a sample reads the T LQ and one GT
frame it needs by index, not a 100-frame 720p clip (about 200 MB).

Read: `read_tfds(data_dir, task=..., split=..., partition=...)` returns a ClipSet whose frame
references point into the ArrayRecord files, so `make_train_dataset` and `read_clip` work on
it unchanged (same stateless sampling, same partitions as `read_reds`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath

from edvr_jax.data.clips import Clip, ClipSet, DatasetError
from edvr_jax.data.reds import TASKS, canonical_partition, partition_names, read_reds

_INSTRUCTIONS = """\
Download REDS from https://seungjunnah.github.io/Datasets/reds.html (train_sharp,
train_sharp_bicubic, and for the other tasks train_blur, train_blur_comp, train_blur_bicubic,
plus the val_* archives), unpack them into one folder and pass it as manual_dir
(`--manual_dir` of `tfds build`, or `--root` of `python -m edvr_jax.data build-tfds`).
Both the official layout (train_sharp_bicubic/X4/<clip>/, val_*/) and BasicSR's regrouped
layout (val clips copied into train_* as 240-269, no X4 level) are accepted.
"""


@dataclasses.dataclass
class RedsConfig(tfds.core.BuilderConfig):
    task: str = "sr"


class Reds(tfds.core.GeneratorBasedBuilder):
    """REDS video clips, one record per encoded frame, LQ and GT, for one task per config."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "One PNG record per frame, clips in order, for edvr_jax."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    # TFDS 4.9.10 derives this through `importlib_resources`, which it does not install on
    # Python >= 3.9; giving it directly avoids that import.
    code_path = epath.Path(__file__)
    BUILDER_CONFIGS = [
        RedsConfig(name=t, task=t, description=f"LQ {TASKS[t].lq} -> GT {TASKS[t].gt}, "
                                               f"scale {TASKS[t].scale}")
        for t in TASKS
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="REDS (Nah et al., NTIRE 2019) video frames for EDVR training.",
            features=tfds.features.FeaturesDict({
                "clip": tfds.features.Text(),
                "frame": tfds.features.Scalar(dtype=np.int32),
                "role": tfds.features.Text(),
                "png": tfds.features.Tensor(shape=(), dtype=np.object_),
            }),
            disable_shuffling=True,
            homepage="https://seungjunnah.github.io/Datasets/reds.html",
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        root = str(dl_manager.manual_dir)
        clips = read_reds(root, task=self.builder_config.task, split="all")
        groups = {"train": [c for c in clips if int(c.name) < 240],
                  "val": [c for c in clips if int(c.name) >= 240]}
        groups = {k: v for k, v in groups.items() if v}
        self.info.metadata["scale"] = clips.scale
        self.info.metadata["layout"] = clips.layout
        self.info.metadata["clips"] = {k: [[c.name, c.num_frames] for c in v]
                                       for k, v in groups.items()}
        return {k: self._generate_examples(v) for k, v in groups.items()}

    def _generate_examples(self, clips):
        key = 0
        for c in clips:
            for role, paths in (("lq", c.lq_paths), ("gt", c.gt_paths)):
                for i, path in enumerate(paths):
                    with tf.io.gfile.GFile(path, "rb") as f:
                        data = f.read()
                    yield key, {"clip": c.name, "frame": i, "role": role, "png": data}
                    key += 1


def build_reds_tfds(root: str, data_dir: str, *, task: str = "sr",
                    file_format: str = "array_record") -> Reds:
    """Build the REDS TFDS dataset for one task from the REDS folder `root` into `data_dir`."""
    builder = Reds(config=task, data_dir=data_dir, file_format=file_format)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=root))
    return builder


class TfdsFrameSource:
    """Frame bytes by reference 'split:index:clip/role/frame.png' from ArrayRecord files."""

    def __init__(self, builder: Reds):
        self._builder = builder
        self._sources = {}

    def _source(self, split: str):
        if split not in self._sources:
            self._sources[split] = self._builder.as_data_source(split)
        return self._sources[split]

    def read_bytes(self, ref: str) -> bytes:
        split, index, _ = ref.split(":", 2)
        return self._source(split)[int(index)]["png"]

    def tf_read(self, refs: tf.Tensor) -> tf.Tensor:
        def fetch(r):
            return np.array([self.read_bytes(x.decode()) for x in r.numpy()], dtype=object)

        out = tf.py_function(fetch, [refs], Tout=tf.string)
        return tf.ensure_shape(out, refs.shape)


def read_tfds(data_dir: str, *, task: str = "sr", split: str = "train",
              partition: str = "REDS4", num_frame: int | None = None, **_) -> ClipSet:
    """ClipSet over a built REDS TFDS dataset (same splits/partitions as `read_reds`)."""
    if task not in TASKS:
        raise DatasetError(f"unknown REDS task {task!r}; expected one of {sorted(TASKS)}")
    partition = canonical_partition(partition)
    builder = Reds(config=task, data_dir=data_dir)
    if not builder.is_prepared():
        raise DatasetError(f"REDS TFDS dataset reds/{task} is not built under {data_dir}; build "
                           f"it with `python -m edvr_jax.data build-tfds --root REDS_DIR "
                           f"--task {task} --data_dir {data_dir}`")
    meta = builder.info.metadata
    source = TfdsFrameSource(builder)
    clips = []
    for split_name, entries in sorted(meta["clips"].items(), key=lambda kv: kv[0] != "train"):
        offset = 0
        for name, n in entries:
            def refs(role, start, name=name, n=n, split_name=split_name):
                return tuple(f"{split_name}:{start + i}:{name}/{role}/{i:08d}.png"
                             for i in range(n))
            clips.append(Clip(name, refs("lq", offset), refs("gt", offset + n), source=source))
            offset += 2 * n
    clips.sort(key=lambda c: c.name)
    wanted = partition_names([c.name for c in clips], split, partition, f"{data_dir} (tfds)")
    cs = ClipSet("tfds", int(meta["scale"]), tuple(clips), root=str(builder.data_dir),
                 task=task, partition=partition, layout=f"tfds reds/{task} from {meta['layout']}")
    cs = cs.subset(wanted, split=split)
    if num_frame is not None:
        cs.require_frames(num_frame)
    return cs
