"""edvr-restore: video files and frame folders, streaming with bounded memory, clear errors."""

import os
import shutil
import subprocess
import sys

import eval_trees
import numpy as np
import pytest
from PIL import Image

from edvr_jax.evaluate import generate_frame_indices
from edvr_jax.evaluate.restore import main
from edvr_jax.evaluate.stream import StreamStats, restore_stream

av = pytest.importorskip("av")

EDVR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "edvr")
CKPT = f"{EDVR}/sr_tsa.pth"


def make_video(path, frames, rate=10, audio=True):
    """H.264 mp4 of uint8 RGB frames, with a 16 kHz AAC sine as its audio stream."""
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=rate)
    vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    vs.options = {"crf": "0"}
    if audio:
        aus = out.add_stream("aac", rate=16000)
        aus.layout = "mono"
    for i, img in enumerate(frames):
        f = av.VideoFrame.from_ndarray(img, format="rgb24")
        f.pts = i
        for p in vs.encode(f):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    if audio:
        n = 16000 * len(frames) // rate
        wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)).astype(np.float32)[None]
        for k in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, k:k + 1024]),
                                            format="fltp", layout="mono")
            af.sample_rate, af.pts = 16000, k
            for p in aus.encode(af):
                out.mux(p)
        for p in aus.encode(None):
            out.mux(p)
    out.close()
    return path


def decode(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [(f.to_ndarray(format="rgb24"), f.pts) for f in c.decode(video=0)]
        return {"frames": [f for f, _ in frames], "pts": [p for _, p in frames],
                "rate": v.average_rate, "time_base": v.time_base, "size": (v.height, v.width),
                "audio": [s.codec_context.name for s in c.streams.audio]}


@pytest.fixture(scope="module")
def stages():
    """The CLI's restorer for sr_tsa (batch 3): restores reference windows here."""
    from edvr_jax.evaluate.run_eval import load
    from edvr_jax.evaluate.stream import make_stages

    return make_stages(*load(CKPT), batch_size=3)


def reference(stages, frames, padding="reflection_circle"):
    """Window by window with generate_frame_indices: what the stream must produce."""
    x = np.stack(frames).astype(np.float32) / np.float32(255)
    n = len(frames)
    return [stages[0](x[generate_frame_indices(c, n, 5, padding)][None])[0] for c in range(n)]


@pytest.mark.slow
def test_video_to_4x_video_with_audio_and_timing(tmp_path, stages, capsys):
    gts = eval_trees.scene(7, 8, (128, 128))
    src = make_video(tmp_path / "in.mp4", [eval_trees.downsample4(g) for g in gts])
    assert main([str(src), str(tmp_path / "out.mp4"), "--checkpoint", CKPT, "--batch", "3",
                 "--crf", "0", "--no-progress"]) == 0
    assert "wrote 8 frames" in capsys.readouterr().out
    inp, out = decode(src), decode(tmp_path / "out.mp4")
    assert out["size"] == (128, 128) and len(out["frames"]) == 8
    assert out["rate"] == inp["rate"] == 10
    assert out["time_base"] == inp["time_base"] and out["pts"] == inp["pts"]
    assert out["audio"] == ["aac"]
    # Content, in order: each decoded frame is the restoration of its own window. H.264 at
    # crf 0 is lossless on luma up to the RGB <-> YUV rounding; chroma is subsampled.
    want = reference(stages, inp["frames"])

    def luma(x):
        return x.astype(np.float64) @ np.array([0.299, 0.587, 0.114])

    err = np.array([[np.abs(luma(o) - luma(w)).mean() for w in want] for o in out["frames"]])
    assert err.diagonal().max() < 1.5, err.diagonal()
    assert (err + 100 * np.eye(8)).min() > 5 * err.diagonal().max()


@pytest.mark.slow
def test_frame_folder_to_png_folder_exactly(tmp_path, stages, capsys):
    src = tmp_path / "frames"
    src.mkdir()
    frames = [eval_trees.downsample4(g) for g in eval_trees.scene(8, 6, (128, 128))]
    for i, f in enumerate(frames):
        Image.fromarray(f).save(src / f"shot_{i:03d}.png")
    # --tile with a tile window bigger than the frame: one tile per frame, same result.
    assert main([str(src), str(tmp_path / "out"), "--checkpoint", CKPT, "--batch", "3",
                 "--tile", "16", "--no-progress"]) == 0
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == [f"shot_{i:03d}.png" for i in range(6)]
    got = [np.asarray(Image.open(tmp_path / "out" / n)) for n in names]
    for g, w in zip(got, reference(stages, frames), strict=True):
        np.testing.assert_array_equal(g, w)
    # Grayscale frames are replicated to RGB, and the user is told once.
    gray = tmp_path / "gray"
    gray.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f[..., 1]).save(gray / f"{i}.png")
    capsys.readouterr()
    assert main([str(gray), str(tmp_path / "gout"), "--checkpoint", CKPT, "--batch", "3",
                 "--no-progress"]) == 0
    assert capsys.readouterr().out.count("grayscale frames are converted to RGB") == 1
    want = reference(stages, [np.repeat(f[..., 1:2], 3, -1) for f in frames])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "gout" / "0.png")), want[0])


@pytest.mark.slow
def test_two_stages_streamed_with_their_own_border_padding(tmp_path):
    """--stage2: stage-1 outputs (uint8) through stage 2's 3-frame windows; replicate padding
    for both (forced here; by default they take the x4 model's reflection_circle)."""
    from edvr_jax.evaluate.run_eval import load
    from edvr_jax.evaluate.stream import default_padding, make_stages

    src = tmp_path / "frames"
    src.mkdir()
    frames = [eval_trees.downsample4(g) for g in eval_trees.scene(9, 6, (128, 128))]
    for i, f in enumerate(frames):
        Image.fromarray(f).save(src / f"{i:02d}.png")
    assert main([str(src), str(tmp_path / "out"), "--checkpoint", CKPT, "--stage2",
                 f"{EDVR}/stage2.pth", "--padding", "replicate", "--batch", "3",
                 "--no-progress"]) == 0
    model, variables = load(CKPT, f"{EDVR}/stage2.pth")
    assert default_padding(model) == "reflection_circle"
    assert default_padding(load(f"{EDVR}/deblur.pth")[0]) == "replicate"
    r1, r2 = make_stages(model, variables, batch_size=3)
    x = np.stack(frames).astype(np.float32) / np.float32(255)
    s1 = np.concatenate([r1(x[generate_frame_indices(c, 6, 5, "replicate")][None])
                         for c in range(6)]).astype(np.float32) / np.float32(255)
    for c in range(6):
        want = r2(s1[generate_frame_indices(c, 6, 3, "replicate")][None])[0]
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / f"{c:02d}.png")),
                                      want)


class FakeModel:
    def __init__(self, num_frame):
        self.num_frame, self.scale = num_frame, 1


class FakeRestorer:
    """Returns each window's centre frame and logs the frame ids (pixel values) it saw."""

    def __init__(self, num_frame, batch_size):
        self.model, self.batch_size, self.seen = FakeModel(num_frame), batch_size, []

    def __call__(self, windows):
        assert 1 <= len(windows) <= self.batch_size
        ids = np.rint(windows[:, :, 0, 0, 0] * 255).astype(int)
        self.seen += [list(w) for w in ids]
        return np.rint(windows[:, self.model.num_frame // 2] * 255).astype(np.uint8)


@pytest.mark.parametrize("known", [True, False])
def test_streaming_is_exact_and_memory_is_bounded(known):
    n, t1, t2, batch = 60, 5, 3, 4
    s1, s2 = FakeRestorer(t1, batch), FakeRestorer(t2, batch)
    pulled, in_flight = [0], []

    def frames():
        for i in range(n):
            pulled[0] += 1
            yield np.full((2, 2, 3), i, np.uint8)

    stats = StreamStats()
    out = []
    for f in restore_stream(frames(), [s1, s2], ["reflection_circle", "replicate"],
                            total=n if known else None, stats=stats):
        out.append(int(f[0, 0, 0]))
        in_flight.append(pulled[0] - len(out))
    assert out == list(range(n))
    assert s1.seen == [generate_frame_indices(c, n, t1, "reflection_circle") for c in range(n)]
    assert s2.seen == [generate_frame_indices(c, n, t2, "replicate") for c in range(n)]
    # Frames between decoder and encoder: each stage's window and one batch, whatever n is.
    assert max(in_flight) <= (t1 + 1) + (t2 + 1) + 2 * batch
    assert all(b <= t + (0 if known else 1) for b, t in zip(stats.window_buffer, (t1, t2), strict=True))
    assert stats.pending_windows == [batch, batch]


# ----------------------------------------------------------------------------- errors


def test_clear_errors(tmp_path, capsys, monkeypatch):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(frames / f"{i}.png")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x01 this is not a video" * 50)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    cases = [
        ([str(bad), str(tmp_path / "o.mp4"), "--checkpoint", CKPT], "cannot read video .*bad.mp4"),
        ([str(frames), str(existing), "--checkpoint", CKPT], "exists.mp4 exists; pass --overwrite"),
        ([str(frames), str(tmp_path / "o"), "--checkpoint", str(tmp_path / "no.pth")],
         "checkpoint .*no.pth does not exist"),
        ([str(tmp_path / "missing.mp4"), str(tmp_path / "o"), "--checkpoint", CKPT],
         "input .*missing.mp4 does not exist"),
        ([str(frames), str(tmp_path / "o.xyz"), "--checkpoint", CKPT], "unknown video extension"),
        ([str(frames), str(tmp_path / "o"), "--checkpoint", CKPT],  # 3 frames, 5-frame windows
         "3 frames is too short for 5-frame windows with 'reflection_circle'"),
    ]
    import re

    for argv, pattern in cases:
        assert main(argv + ["--no-progress"]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err and err[-1].startswith("edvr-restore: error: ") and "Traceback" not in err
        assert re.search(pattern, err[-1]), (pattern, err[-1])
    assert existing.read_bytes() == b"keep me"
    # Without PyAV: one line saying how to get it.
    monkeypatch.setitem(sys.modules, "av", None)
    assert main([str(bad), str(tmp_path / "o.mp4"), "--checkpoint", CKPT, "--no-progress"]) == 2
    assert "pip install 'edvr_jax[video]'" in capsys.readouterr().err


def test_console_script(tmp_path):
    exe = shutil.which("edvr-restore") or os.path.join(os.path.dirname(sys.executable),
                                                       "edvr-restore")
    proc = subprocess.run([exe, str(tmp_path / "in.mp4"), str(tmp_path / "out.mp4"),
                           "--checkpoint", CKPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"edvr-restore: error: input {tmp_path / 'in.mp4'} does not exist")
