"""`get_clipset`: one entry point for every dataset reader, chosen by name."""

from __future__ import annotations

from edvr_jax.data.clips import ClipSet, DatasetError
from edvr_jax.tasks import TRAIN_DATASETS as DATASETS  # the readers get_clipset knows


def get_clipset(dataset: str, root: str | None = None, *, task: str = "sr",
                split: str | None = None, partition: str = "REDS4",
                num_frame: int | None = None, errors: list[str] | None = None,
                **kwargs) -> ClipSet:
    """Read a dataset into a ClipSet.

    Args:
      dataset: 'reds', 'vimeo90k', 'vid4', 'folder', 'demo' or 'tfds' (a built REDS TFDS).
      root: the dataset folder (for 'tfds' the TFDS data_dir; for 'demo' None means the cache).
      task: REDS/TFDS task 'sr', 'srblur', 'deblur' or 'deblurcomp'; the other datasets are
        x4 super-resolution ('sr'), except 'folder' whose scale is given by `scale=`.
      split: default per dataset: 'train' (reds, vimeo90k, demo, tfds), 'test' (vid4),
        'all' (folder). REDS: 'train', 'val', 'all'; Vimeo-90K: 'train', 'test'.
      partition: REDS/TFDS partition 'REDS4', 'REDSofficial' or 'REDSofficial4'.
      num_frame: if given, every clip must be long enough for this window.
      errors: a list to collect per-clip problems in instead of raising (used by `check`).
      **kwargs: 'folder': gt_root, lq_root, scale; 'demo': num_clips, num_frames, gt_size,
        seed, num_val.
    """
    dataset = dataset.lower()
    if dataset not in DATASETS:
        raise DatasetError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    if dataset in ("vimeo90k", "vid4", "demo") and task != "sr":
        raise DatasetError(f"dataset {dataset} has only the x4 'sr' task, got task={task!r}")
    if root is None and dataset not in ("demo", "folder"):
        raise DatasetError(f"dataset {dataset} needs a root folder")
    if dataset == "reds":
        from edvr_jax.data.reds import read_reds

        return read_reds(root, task=task, split=split or "train", partition=partition,
                         num_frame=num_frame, errors=errors)
    if dataset == "vimeo90k":
        from edvr_jax.data.folders import read_vimeo90k

        return read_vimeo90k(root, split=split or "train", num_frame=num_frame)
    if dataset == "vid4":
        from edvr_jax.data.folders import read_vid4

        return read_vid4(root, split=split or "test", num_frame=num_frame, errors=errors)
    if dataset == "folder":
        from edvr_jax.data.folders import read_folder

        return read_folder(root, split=split or "all", num_frame=num_frame, errors=errors,
                           **kwargs)
    if dataset == "demo":
        from edvr_jax.data.demo_clips import demo_clipset

        return demo_clipset(root, split=split or "train", num_frame=num_frame, **kwargs)
    from edvr_jax.data.tfds_reds import read_tfds

    return read_tfds(root, task=task, split=split or "train", partition=partition,
                     num_frame=num_frame)
