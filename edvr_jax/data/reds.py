"""REDS (NTIRE 2019) reader: both on-disk layouts, the four tasks, the three partitions.

Layouts (root is the folder that holds `train_sharp`, ...):

- official, as distributed: `train_sharp/<clip>/<8-digit>.png` (clips 000-239, 100 frames of
  720x1280), `train_blur/`, `train_blur_comp/`, `train_sharp_bicubic/X4/<clip>/`,
  `train_blur_bicubic/X4/<clip>/`, and `val_*` counterparts holding clips 000-029.
- regrouped (BasicSR's `regroup_reds_dataset.py` + its configs): the 30 val clips copied into
  the train folders as 240-269, and the bicubic folders without the `X4` level.

Each folder is resolved on its own (a bicubic folder with or without `X4/`; clip 240+k found
in `train_<kind>/240+k` or in `val_<kind>/<k>`), so half-regrouped trees also work; the
detected layout is reported in `ClipSet.layout`. Validation clips are always named 240-269,
as in BasicSR's meta-info files.

Tasks: sr (LQ sharp_bicubic -> GT sharp, scale 4), srblur (blur_bicubic -> sharp, 4),
deblur (blur -> sharp, 1), deblurcomp (blur_comp -> sharp, 1).

Partitions (`split='train'` drops the held-out clips; `split='val'` returns the val clips;
`split='all'` returns every clip found):
- REDS4: val 000, 011, 015, 020; held out of training: the same four.
- REDSofficial (BasicSR 'official'): val 240-269; held out: 240-269.
- REDSofficial4: val 240, 241, 246, 257; held out: 240-269 (the official val set).
If the val clips 240-269 are not on disk at all, `split='train'` uses the clips that are and
says so in `layout`.
"""

from __future__ import annotations

from edvr_jax.data.clips import (
    Clip,
    ClipSet,
    DatasetError,
    isdir,
    join,
    list_frames,
    list_subdirs,
    parallel_map,
    problem,
)
from edvr_jax.tasks import TASKS  # noqa: F401  (re-exported by edvr_jax.data)

OFFICIAL_VAL = tuple(f"{i:03d}" for i in range(240, 270))
# partition -> (clips held out of training, clips of split='val')
PARTITIONS = {
    "REDS4": (("000", "011", "015", "020"), ("000", "011", "015", "020")),
    "REDSofficial": (OFFICIAL_VAL, OFFICIAL_VAL),
    "REDSofficial4": (OFFICIAL_VAL, ("240", "241", "246", "257")),
}
_PARTITION_ALIASES = {"reds4": "REDS4", "redsofficial": "REDSofficial", "official": "REDSofficial",
                      "redsofficial4": "REDSofficial4"}
SPLITS = ("train", "val", "all")


def canonical_partition(partition: str) -> str:
    key = _PARTITION_ALIASES.get(str(partition).lower())
    if key is None:
        raise DatasetError(f"unknown REDS partition {partition!r}; expected one of "
                           f"{sorted(PARTITIONS)}")
    return key


def partition_names(available: list[str], split: str, partition: str, where: str
                    ) -> list[str]:
    """Clip names of `split` under `partition`, from the clip names `available` on disk."""
    if split not in SPLITS:
        raise DatasetError(f"unknown REDS split {split!r}; expected one of {SPLITS}")
    held_out, val = PARTITIONS[canonical_partition(partition)]
    if split == "train":
        wanted = [n for n in sorted(available) if n not in set(held_out)]
    elif split == "val":
        wanted = list(val)
        missing = [n for n in wanted if n not in set(available)]
        if missing:
            raise DatasetError(
                f"REDS partition {partition} needs clips {', '.join(missing[:6])}"
                f"{'...' if len(missing) > 6 else ''}, not found in {where}")
    else:
        wanted = sorted(available)
    if not wanted:
        raise DatasetError(f"REDS: no clips for split={split!r} in {where}")
    return wanted


def _folder(root: str, prefix: str, kind: str) -> tuple[str | None, bool]:
    """(clip-holding folder for `prefix_kind`, whether it has the X4 level) or (None, False)."""
    base = join(root, f"{prefix}_{kind}")
    if not isdir(base):
        return None, False
    if kind.endswith("bicubic") and isdir(join(base, "X4")):
        return join(base, "X4"), True
    return base, False


def _clip_dirs(root: str, kind: str) -> tuple[dict[str, str], dict]:
    """Map clip name ('000'..'269') -> folder for one kind, plus facts about the layout."""
    train, train_x4 = _folder(root, "train", kind)
    val, val_x4 = _folder(root, "val", kind)
    if train is None and val is None:
        x4 = "/X4" if kind.endswith("bicubic") else ""
        raise DatasetError(
            f"REDS folder {join(root, 'train_' + kind)} not found (official layout: "
            f"train_{kind}{x4}/<clip>/<8-digit>.png with val_{kind}{x4}/; regrouped: "
            f"train_{kind}/<clip>/ with clips 000-269)")
    dirs: dict[str, str] = {}
    regrouped = False
    if val is not None:
        for name in list_subdirs(val):
            if name.isdigit() and int(name) < 30:
                dirs[f"{240 + int(name):03d}"] = join(val, name)
    if train is not None:
        for name in list_subdirs(train):
            if name.isdigit():
                dirs[f"{int(name):03d}"] = join(train, name)
                regrouped |= int(name) >= 240
    facts = {"x4": train_x4 or val_x4, "regrouped": regrouped, "val_folder": val is not None,
             "folder": train or val}
    return dirs, facts


def _layout(lq_facts: dict, gt_facts: dict, task: str, have_val: bool) -> str:
    """'official', 'regrouped' or 'mixed', with the folders used.

    Regrouped = val clips 240-269 inside train_* (BasicSR's regroup script), or a bicubic
    folder without the X4 level (BasicSR's configs); official = neither. Mixed = the LQ and
    GT folders disagree about where the val clips are.
    """
    bicubic = TASKS[task].lq.endswith("bicubic")
    split_val = {f["regrouped"] for f in (lq_facts, gt_facts) if f["regrouped"] or f["val_folder"]}
    if len(split_val) > 1:
        name = "mixed"
    elif lq_facts["regrouped"] or gt_facts["regrouped"] or (bicubic and not lq_facts["x4"]):
        name = "regrouped"
    else:
        name = "official"
    details = [f"LQ {lq_facts['folder']}", f"GT {gt_facts['folder']}"]
    if not have_val:
        details.append("val clips 240-269 not found")
    return f"{name} ({'; '.join(details)})"


def read_reds(root: str, *, task: str = "sr", split: str = "train", partition: str = "REDS4",
              num_frame: int | None = None, errors: list[str] | None = None) -> ClipSet:
    """REDS clips for one task/split/partition as a ClipSet.

    Args:
      root: the REDS folder (local or gs://).
      task: 'sr', 'srblur', 'deblur' or 'deblurcomp'.
      split: 'train' (all clips minus the partition's held-out clips), 'val' or 'all'.
      partition: 'REDS4', 'REDSofficial' (alias 'official') or 'REDSofficial4'.
      num_frame: if given, every clip must have at least this many frames.
      errors: if a list, per-clip problems (LQ/GT frame lists that differ, a clip missing in
        one folder) are appended there and the clip is skipped instead of raising.
    """
    if task not in TASKS:
        raise DatasetError(f"unknown REDS task {task!r}; expected one of {sorted(TASKS)}")
    if split not in SPLITS:
        raise DatasetError(f"unknown REDS split {split!r}; expected one of {SPLITS}")
    partition = canonical_partition(partition)
    lq_kind, gt_kind, scale = TASKS[task]
    gt_dirs, gt_facts = _clip_dirs(root, gt_kind)
    lq_dirs, lq_facts = _clip_dirs(root, lq_kind)
    have_val = any(n in gt_dirs for n in OFFICIAL_VAL)
    wanted = partition_names(sorted(gt_dirs), split, partition,
                             f"{gt_facts['folder']} (regrouped: clips 240-269 inside "
                             f"train_{gt_kind}/; official: val_{gt_kind}/000-029)")

    def frames(name):
        if name not in lq_dirs:
            return f"REDS clip {name}: no LQ folder for it next to {gt_dirs[name]} " \
                   f"(looked in {lq_facts['folder']})"
        return list_frames(lq_dirs[name]), list_frames(gt_dirs[name])

    clips = []
    for name, got in zip(wanted, parallel_map(frames, wanted), strict=True):
        if isinstance(got, str):
            problem(errors, got)
            continue
        lq_names, gt_names = got
        if lq_names != gt_names:
            diff = sorted(set(lq_names) ^ set(gt_names))
            problem(errors, f"REDS clip {name}: LQ folder {lq_dirs[name]} has {len(lq_names)} "
                            f"frames, GT folder {gt_dirs[name]} has {len(gt_names)}; first "
                            f"differing frame: {diff[0] if diff else '(order)'}")
            continue
        if not gt_names:
            problem(errors, f"REDS clip {name}: no frames in {gt_dirs[name]}")
            continue
        clips.append(Clip(name, tuple(join(lq_dirs[name], f) for f in lq_names),
                          tuple(join(gt_dirs[name], f) for f in gt_names)))
    cs = ClipSet("reds", scale, tuple(clips), root=root, task=task, split=split,
                 partition=partition, layout=_layout(lq_facts, gt_facts, task, have_val))
    if num_frame is not None:
        cs.require_frames(num_frame)
    return cs
