"""Hostile checkpoints through every tool: refused before anything in them runs.

Each hostile ``.pth`` (zip and legacy containers) would, if unpickled by ``torch.load`` or
``pickle``, run ``os.system``, ``builtins.eval``, ``subprocess.*``, import an arbitrary module or
play a ``__reduce__`` trick that touches a marker file or deletes a victim folder
(``test_pth.py`` checks that each payload is live under plain pickle). Here each file goes
through ``edvr-convert``, ``eval.py``, ``edvr-restore``, ``load_model`` and
``train.py --config.train.init_from=...``: the refusal message reaches the user as one line,
the exit code is non-zero, and the marker never appears. Zip bombs, huge declared storage
sizes and ``../`` member names are bounded / never written, through the tools too.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import zipfile

import eval_trees
import numpy as np
import pytest
from conftest import CACHE, DATA, ROOT
from entry_points import load_eval_py, tiny_config
from PIL import Image
from test_pth import D, G, Reduce, S, in_state_dict, pkl, tensor, write_legacy, write_zip

from edvr_jax.convert.pth import CheckpointError

GOOD = DATA / "edvr" / "sr_tsa.pth"
TOOLS = ("edvr-convert", "eval.py", "edvr-restore", "load_model", "train.py")


def evil_module(tmp) -> str:
    return f"evil_mod_{abs(hash(str(tmp))) % 10**8}"


def payloads(tmp: pathlib.Path) -> dict[str, tuple[bytes, str]]:
    """name -> (pickle, global named in the refusal); each, if run, touches tmp/marker or
    deletes tmp/victim."""
    marker = str(tmp / "marker")
    touch = f"touch {marker}"
    system = f"{os.system.__module__}.system"  # posix.system on Linux
    return {
        "os.system": (in_state_dict(Reduce(os.system, touch)), system),
        "builtins.eval": (in_state_dict(Reduce(eval, f"open({marker!r}, 'w').close()")),
                          "builtins.eval"),
        "subprocess.Popen": (in_state_dict(Reduce(subprocess.Popen, ["touch", marker])),
                             "subprocess.Popen"),
        "subprocess.run": (in_state_dict(Reduce(subprocess.run, ["touch", marker])),
                           "subprocess.run"),
        "import_module": (in_state_dict(Reduce(importlib.import_module, evil_module(tmp))),
                          "importlib.import_module"),
        "global_of_any_module": (pkl(G(evil_module(tmp), "anything") + S("x") + b"\x85R"),
                                 f"{evil_module(tmp)}.anything"),
        "reduce_partial": (in_state_dict(Reduce(functools.partial(os.system, touch))),
                           "functools.partial"),
        "reduce_nested_pickle": (in_state_dict(Reduce(pickle.loads, pickle.dumps(
            Reduce(os.system, touch)))), "pickle.loads"),
        "reduce_rmtree": (in_state_dict(Reduce(shutil.rmtree, str(tmp / "victim"))),
                          "shutil.rmtree"),
        "stack_global_protocol4": (in_state_dict(Reduce(os.system, touch), protocol=4), system),
    }


NAMES = list(payloads(pathlib.Path("/x")))


def happened(tmp) -> bool:
    return (tmp / "marker").exists() or not (tmp / "victim" / "keep.txt").exists()


@pytest.fixture(scope="module")
def armed(tmp_path_factory):
    """A folder with a victim, an importable module that would touch the marker when
    imported, every hostile file in both containers, and small inputs for each tool."""
    t = tmp_path_factory.mktemp("hostile")
    (t / "victim").mkdir()
    (t / "victim" / "keep.txt").write_text("x")
    (t / f"{evil_module(t)}.py").write_text(f"open({str(t / 'marker')!r}, 'w').close()\n")
    sys.path.insert(0, str(t))
    files = {}
    for name, (data, needle) in payloads(t).items():
        for container in ("zip", "legacy"):
            path = t / "pth" / f"{name}.{container}.pth"
            path.parent.mkdir(exist_ok=True)
            (write_zip if container == "zip" else write_legacy)(path, data)
            files[(name, container)] = (path, needle)
    # inputs the tools need besides the checkpoint
    for k, gt in enumerate(eval_trees.scene(3, 6, (64, 64))):
        for kind, arr in (("GT", gt), ("LQ", eval_trees.downsample4(gt))):
            (t / "tree" / kind / "a").mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(t / "tree" / kind / "a" / f"{k:04d}.png")
    (t / "frames").mkdir()
    for k, img in enumerate(eval_trees.scene(4, 6, (16, 16))):
        Image.fromarray(img).save(t / "frames" / f"{k:04d}.png")
    yield t, files
    sys.path.remove(str(t))
    assert not happened(t)


def run_tool(tool, ckpt, t, out):
    """(exit code or exception type, message) of ``tool`` reading checkpoint ``ckpt``."""
    tree = t / "tree"
    if tool == "load_model":
        from edvr_jax import load_model

        try:
            load_model(ckpt)
        except Exception as e:  # noqa: BLE001 - the test asserts the type
            return type(e), str(e)
        return 0, ""
    if tool == "train.py":
        from edvr_jax.train.cli import run

        config = tiny_config(**{"data.dataset": "folder", "data.root": str(tree / "GT"),
                                "data.lq_root": str(tree / "LQ"), "train.num_steps": 2,
                                "train.init_from": str(ckpt)})
        return run(config, str(out / "workdir")), None
    if tool == "edvr-convert":
        from edvr_jax.convert.cli import main

        argv = [ckpt, out / "converted"]
    elif tool == "edvr-restore":
        from edvr_jax.evaluate.restore import main

        argv = [t / "frames", out / "restored", "--checkpoint", ckpt, "--no-progress"]
    else:
        main = load_eval_py().main
        argv = ["--checkpoint", ckpt, "--dataset", "folder", "--data_root", tree, "--out",
                out / "r.json", "--no_progress"]
    return main([str(a) for a in argv]), None


def check_refused(tool, got, text, capsys, path, needles):
    captured = capsys.readouterr()
    if text is None:
        err = captured.err.strip()
        assert err, captured.out
        text = err.splitlines()[-1]
        prefix = {"train.py": "train.py: error: train.init_from: "}.get(tool, f"{tool}: error: ")
        assert text.startswith(prefix), text
        assert got == (1 if tool == "train.py" else 2), (got, captured.err)
    else:
        assert got is CheckpointError and "\n" not in text, (got, text)
    assert "Traceback" not in captured.err + captured.out
    assert str(path) in text, text
    for needle in needles:
        assert needle in text, (needle, text)


@pytest.mark.parametrize("container", ["zip", "legacy"])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("tool", TOOLS)
def test_hostile_file_refused_by_every_tool(armed, tmp_path, capsys, tool, name, container):
    t, files = armed
    path, needle = files[(name, container)]
    got, text = run_tool(tool, path, t, tmp_path)
    check_refused(tool, got, text, capsys, path,
                  [f"refused global '{needle}'", "nothing from the file was executed"])
    assert not happened(t), "the payload ran"
    assert evil_module(t) not in sys.modules
    assert not (tmp_path / "converted").exists() and not (tmp_path / "restored").exists()
    assert not (tmp_path / "r.json").exists()


# -------------------------------------------------------------------- sizes and paths
def bounded_files(d: pathlib.Path) -> dict[str, tuple[pathlib.Path, str]]:
    """Zip bomb, a storage declared at 4 TB, a central directory lying about a size."""
    d.mkdir()
    bomb = d / "bomb.pth"
    with zipfile.ZipFile(bomb, "w") as zf:
        zf.writestr("archive/data.pkl", pkl(D(w=tensor("0", 2**21, (2**21,), (1,)))))
        zf.writestr("archive/data/0", b"\0" * 2**23, compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 2**15
    huge = write_zip(d / "huge.pth", pkl(D(params=D(w=tensor("0", 10**12, (4,), (1,))))),
                     {"0": b"\0" * 16})
    huge_legacy = write_legacy(d / "huge_legacy.pth", pkl(D(params=D(w=tensor(
        "0", 10**12, (4,), (1,), legacy=True)))), {"0": b"\0" * 16})
    lying = write_zip(d / "lying.pth", pkl(D(w=tensor("0", 1, (1,), (1,)))), {"0": b"\0" * 4})
    raw = bytearray(lying.read_bytes())
    entry = raw.rfind(b"archive/data/0") - 46  # its central directory record
    assert raw[entry:entry + 4] == b"PK\x01\x02"
    raw[entry + 24:entry + 28] = (0xF0000000).to_bytes(4, "little")  # uncompressed size
    lying.write_bytes(bytes(raw))
    return {"zip_bomb": (bomb, "zip bomb"),
            "huge_storage_zip": (huge, "declared storages need 4000000000000 bytes"),
            "huge_storage_legacy": (huge_legacy, "declared storages need 4000000000000 bytes"),
            "lying_zip_size": (lying, "declares 4026531840 bytes")}


BOUNDED = ["zip_bomb", "huge_storage_zip", "huge_storage_legacy", "lying_zip_size"]


@pytest.fixture(scope="module")
def bounded(armed):
    return bounded_files(armed[0] / "bounded")


@pytest.mark.parametrize("case", BOUNDED)
@pytest.mark.parametrize("tool", TOOLS)
def test_sizes_are_bounded_through_every_tool(armed, bounded, tmp_path, capsys, tool, case):
    import resource

    path, needle = bounded[case]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    got, text = run_tool(tool, path, armed[0], tmp_path)
    check_refused(tool, got, text, capsys, path, [needle])
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"peak memory grew by {grown_mb:.0f} MB reading {path.name}"


def test_dotdot_member_names_are_never_written(tmp_path, monkeypatch, capsys):
    """A real EDVR checkpoint whose archive folder is ``../`` and which carries ``../../``
    and absolute member names converts fine, and nothing lands outside the output."""
    from edvr_jax import load_model
    from edvr_jax.convert.cli import main
    from edvr_jax.convert.keymap import params_to_state_dict
    from edvr_jax.convert.pth import load_pth

    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    src = work / "dots.pth"
    with zipfile.ZipFile(GOOD) as zin, zipfile.ZipFile(src, "w") as zout:
        for info in zin.infolist():
            zout.writestr("../" + info.filename.split("/", 1)[1], zin.read(info))
        for name in ("../../escape.txt", "/abs_escape.txt", "../data/../../escape2.txt"):
            zout.writestr(name, b"x")
    before = sorted(tmp_path.rglob("*"))
    assert main([str(src), str(work / "out")]) == 0
    capsys.readouterr()
    after = sorted(p for p in tmp_path.rglob("*") if work / "out" not in p.parents
                   and p != work / "out")
    assert after == before
    assert not pathlib.Path("/abs_escape.txt").exists()
    want = load_pth(GOOD)["params"]
    got = params_to_state_dict(load_model(work / "out")[1]["params"])
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)


# ---------------------------------------------------------------- real entry points
def env():
    return dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="1", JAX_COMPILATION_CACHE_DIR=str(CACHE),
                TF_CPP_MIN_LOG_LEVEL="2")


@pytest.mark.slow
def test_train_py_and_edvr_convert_entry_points_refuse(armed, tmp_path):
    t, files = armed
    legacy, needle = files[("os.system", "legacy")]
    tree = t / "tree"
    r = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "tiny.py"),
         "--workdir", str(tmp_path / "w"), "--config.data.dataset=folder",
         f"--config.data.root={tree}/GT", f"--config.data.lq_root={tree}/LQ",
         f"--config.train.init_from={legacy}"], capture_output=True, text=True, env=env(),
        timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"train.py: error: train.init_from: {legacy}: refused global "
                           f"'{needle}'"), last
    zipped, needle = files[("import_module", "zip")]
    r = subprocess.run([str(pathlib.Path(sys.executable).parent / "edvr-convert"), str(zipped),
                        str(tmp_path / "out")], capture_output=True, text=True, env=env(),
                       timeout=300, cwd=t)  # cwd: the evil module is importable from here
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"refused global '{needle}'" in r.stderr.strip().splitlines()[-1]
    assert not happened(t) and not (tmp_path / "out").exists()
