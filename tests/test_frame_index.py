"""generate_frame_indices against BasicSR 1.4.2's (tests/data/frame_index_basicsr.npz, made by
tests/make_fixtures_metrics.py): every clip length 1..12, window 1..15, centre -1..length, mode."""

import pathlib

import numpy as np
import pytest

from edvr_jax.evaluate import PADDING_MODES, generate_frame_indices

REF = np.load(pathlib.Path(__file__).parent / "data" / "frame_index_basicsr.npz")


def test_modes_are_basicsrs():
    assert tuple(REF["modes"]) == PADDING_MODES


def test_equal_to_basicsr_or_rejected_exactly_where_basicsr_is_unusable():
    modes = list(REF["modes"])
    matched = rejected = 0
    for (center, total, num, m), row, err in zip(REF["args"], REF["out"], REF["err"], strict=True):
        center, total, num = int(center), int(total), int(num)
        ref = [int(v) for v in row[:num]]
        # BasicSR asserted (even window), or was given a centre outside the clip, or
        # returned indices outside the clip: we must refuse. Otherwise: same list.
        usable = not err and 0 <= center < total and all(0 <= v < total for v in ref)
        what = f"center={center} total={total} num_frame={num} padding={modes[m]} basicsr={ref}"
        if usable:
            assert generate_frame_indices(center, total, num, modes[m]) == ref, what
            matched += 1
        else:
            with pytest.raises(ValueError, match="generate_frame_indices"):
                generate_frame_indices(center, total, num, modes[m])
            rejected += 1
    assert matched > 1500 and rejected > 1500, (matched, rejected)


def test_windows_no_longer_than_the_clip_are_always_accepted():
    """REDS-like clips: every centre, every mode, the centre frame in the middle."""
    for total in (5, 7, 34, 100):
        for num in (1, 3, 5, 7):
            if num > total:
                continue
            for mode in PADDING_MODES:
                for center in range(total):
                    idx = generate_frame_indices(center, total, num, mode)
                    assert len(idx) == num and idx[num // 2] == center
                    assert all(0 <= i < total for i in idx)


@pytest.mark.parametrize("mode,start,end", [
    ("replicate", [0, 0, 0, 1, 2], [7, 8, 9, 9, 9]),
    ("reflection", [2, 1, 0, 1, 2], [7, 8, 9, 8, 7]),
    ("reflection_circle", [4, 3, 0, 1, 2], [7, 8, 9, 6, 5]),
    ("circle", [3, 4, 0, 1, 2], [7, 8, 9, 5, 6]),
])
def test_documented_examples(mode, start, end):
    """BasicSR's docstring examples (centre 0) and the reference formulas at the clip end."""
    assert generate_frame_indices(0, 10, 5, mode) == start
    assert generate_frame_indices(9, 10, 5, mode) == end


def test_errors():
    with pytest.raises(ValueError, match="unknown padding mode 'mirror'; valid modes are "
                                         "replicate, reflection, reflection_circle, circle"):
        generate_frame_indices(0, 10, 5, "mirror")
    with pytest.raises(ValueError, match="num_frame must be odd, got 4"):
        generate_frame_indices(2, 10, 4, "replicate")
    with pytest.raises(ValueError, match=r"center 10 is outside the clip of 10 frames \(valid 0..9\)"):
        generate_frame_indices(10, 10, 5, "replicate")
    with pytest.raises(ValueError, match="center must be an integer >= 0"):
        generate_frame_indices(-1, 10, 5, "replicate")
    with pytest.raises(ValueError, match="num_frames_total must be an integer >= 1"):
        generate_frame_indices(0, 0, 1, "replicate")
    with pytest.raises(ValueError, match="num_frame must be an integer >= 1"):
        generate_frame_indices(0, 3, 2.5, "replicate")
    with pytest.raises(ValueError, match=r"7-frame window with 'circle' padding .* 3-frame clip"):
        generate_frame_indices(1, 3, 7, "circle")
