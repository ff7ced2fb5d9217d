"""Training and evaluation input for EDVR: dataset readers, tf.data pipeline, TFDS, demo clips.

Every reader returns a `ClipSet` (clips of paired LQ/GT frame paths plus the scale):

    from edvr_jax import data
    clips = data.get_clipset('reds', '/data/REDS', task='sr', split='train', partition='REDS4')
    ds = data.make_train_dataset(clips, num_frame=5, gt_size=256, seed=0,
                                 global_batch_size=32, start_step=step)
    for batch in ds.as_numpy_iterator():  # per-process batch, b = 32 // process_count
        batch['lq']    # float32 (b, 5, 64, 64, 3), RGB in [0, 1]
        batch['gt']    # float32 (b, 256, 256, 3)
        batch['step']  # int64 (b,), the global step of this batch

    val = data.get_clipset('reds', '/data/REDS', split='val')  # REDS4: 000, 011, 015, 020
    lq, gt = data.read_clip(val.clip('000'), lq_indices=[2, 1, 0, 1, 2], gt_indices=[0])

Datasets (`get_clipset(dataset, root, ...)`): 'reds' (official or BasicSR-regrouped layout;
tasks sr/srblur/deblur/deblurcomp; partitions REDS4/REDSofficial/REDSofficial4), 'vimeo90k'
(septuplets, target im4), 'vid4', 'folder' (your own GT/LQ clip folders), 'demo' (clips
generated from scikit-image photographs, see `demo_clips`) and 'tfds' (a built REDS TFDS
dataset, see `tfds_reds`). All file access goes through `tf.io.gfile`, so `gs://` roots work.

Training samples follow BasicSR's REDSDataset/Vimeo90KDataset (window, interval, reverse,
aligned crop, hflip/vflip/transpose) but are a pure function of (seed, step, slot): resuming
at any step reproduces the batches exactly, and each process builds only its own slots.
Errors about the data raise `DatasetError` (a ValueError) with a one-line message naming the
folder, clip or frame. `python -m edvr_jax.data check ...` scans a dataset up front;
`python -m edvr_jax.data preview ...` shows what the model will see and the throughput.
`edvr_jax.data.testing` writes tiny trees in the real layouts (with frames that encode their
clip, index and pixel position) for tests anywhere in the project.
"""

# Imported on first use (PEP 562), so that ``edvr-data --help`` and the other tools' argument
# checks do not pay for TensorFlow.
_WHERE = {
    "iterate_batches": "batches",
    "CheckReport": "check", "check_clipset": "check",
    "Clip": "clips", "ClipSet": "clips", "DatasetError": "clips",
    "hide_accelerators_from_tf": "clips", "read_clip": "clips", "read_frames": "clips",
    "read_window": "clips",
    "DATASETS": "datasets", "get_clipset": "datasets",
    "demo_clipset": "demo_clips", "imresize_bicubic": "demo_clips",
    "make_demo_clips": "demo_clips",
    "read_folder": "folders", "read_vid4": "folders", "read_vimeo90k": "folders",
    "apply_choice": "pipeline", "crop_origin": "pipeline", "make_train_dataset": "pipeline",
    "sample_choice": "pipeline",
    "PARTITIONS": "reds", "TASKS": "reds", "read_reds": "reds",
}

__all__ = [
    "DATASETS", "PARTITIONS", "TASKS", "CheckReport", "Clip", "ClipSet", "DatasetError",
    "apply_choice", "check_clipset", "crop_origin", "demo_clipset", "get_clipset",
    "hide_accelerators_from_tf", "imresize_bicubic", "iterate_batches", "make_demo_clips",
    "make_train_dataset",
    "read_clip", "read_folder", "read_frames", "read_reds", "read_vid4", "read_vimeo90k",
    "read_window", "sample_choice",
]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
