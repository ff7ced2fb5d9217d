"""Weights by name (edvr_jax.zoo): catalogue, cache, download, verification, every failure.

No test touches the internet: a loopback HTTP server (``http.server`` in a thread, with
Range support and scripted faults) serves small torch-written EDVR fixtures, through a
catalogue override (``$EDVR_JAX_ZOO_CATALOG``) or the mirror variable (``$EDVR_JAX_ZOO_URL``).
The SHA-256 of the real files cannot be checked here, so verification is tested with
fixture entries whose names carry their own hashes.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import DATA, ROOT

from edvr_jax import zoo
from edvr_jax.zoo import cli as zcli

# The modules, not the functions of the same name that edvr_jax.zoo exports.
zcat = importlib.import_module("edvr_jax.zoo.catalog")
zfetch = importlib.import_module("edvr_jax.zoo.fetch")

FIXTURE = DATA / "edvr" / "sr_tsa.pth"  # a real (tiny) BasicSR EDVR checkpoint, 422 kB
BLOB = FIXTURE.read_bytes()
SHA = hashlib.sha256(BLOB).hexdigest()
FILE = f"tiny_sr_tsa-{SHA[:8]}.pth"  # named the way BasicSR and mmagic name releases


# ----------------------------------------------------------------------------- the server


class Server:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1, honouring ``Range: bytes=N-``.

    ``faults[path]`` scripts misbehaviour: a list consumed one request at a time, each item
    ``None`` (serve normally), an int N (send the headers for the whole body, then only N
    bytes and drop the connection), an HTTP status (``("status", 404)``), ``"ignore_range"``
    or ``("delay", seconds)``. ``requests`` records ``(path, Range header)`` of each request.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.always: dict[str, object] = {}  # path -> a fault applied to every request
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_CONNECT(self):  # as a proxy: refuse every tunnel
                server.requests.append(("CONNECT " + self.path, None))
                self.send_error(407)

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                queue = server.faults.get(self.path)
                fault = queue.pop(0) if queue else server.always.get(self.path)
                if isinstance(fault, tuple) and fault[0] == "delay":
                    time.sleep(fault[1])
                    fault = None
                stall = None
                if isinstance(fault, tuple) and fault[0] == "stall":  # send N bytes, then hang
                    stall, fault = fault[1:], None
                if isinstance(fault, tuple) and fault[0] == "status":
                    self.send_error(fault[1])
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if m and fault != "ignore_range":
                    start = int(m.group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                payload = body[start:]
                if stall:
                    self.wfile.write(payload[:stall[0]])
                    self.wfile.flush()
                    time.sleep(stall[1])
                    return
                if isinstance(fault, int):
                    payload = payload[:fault]
                self.wfile.write(payload)
                self.wfile.flush()
                if isinstance(fault, int):
                    self.connection.shutdown(socket.SHUT_RDWR)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def gets(self, path: str) -> list[str | None]:
        """The Range headers of the requests for ``path``, in order."""
        return [r for p, r in self.requests if p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A fresh cache and no zoo/proxy settings from the machine; retries without waiting."""
    for var in ("EDVR_JAX_ZOO_URL", "EDVR_JAX_ZOO_CATALOG", "EDVR_JAX_ZOO_VERIFY", "XDG_CACHE_HOME",
                "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDVR_JAX_CACHE", str(cache))
    monkeypatch.setattr(zfetch, "BACKOFF", 0.0)
    return cache


def use_catalog(tmp_path, monkeypatch, entries: dict) -> pathlib.Path:
    path = tmp_path / "zoo.json"
    path.write_text(json.dumps(entries))
    monkeypatch.setenv("EDVR_JAX_ZOO_CATALOG", str(path))
    return path


def tiny_entry(url: str, sha: str = SHA[:8], file: str | None = None) -> dict:
    return {"url": url, "sha256": sha, **({"file": file} if file else {})}


def one_line(e: BaseException) -> str:
    msg = str(e)
    assert "\n" not in msg, msg
    return msg


# ----------------------------------------------------------------------------- the catalogue

ISSUE_BASICSR = {  # issue 13, from BasicSR's scripts/download_pretrained_models.py
    "EDVR_L_x4_SR_REDS_official-9f5f5039.pth": "127KXEjlCwfoPC1aXyDkluNwr9elwyHNb",
    "EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth": "1aVR3lkX6ItCphNLcT7F5bbbC484h4Qqy",
    "EDVR_M_woTSA_x4_SR_REDS_official-1edf645c.pth": "1C_WdN-NyNj-P7SOB5xIVuHl4EBOwd-Ny",
    "EDVR_M_x4_SR_REDS_official-32075921.pth": "1dd6aFj-5w2v08VJTq5mS9OFsD-wALYD6",
    "EDVR_L_x4_SRblur_REDS_official-983d7b8e.pth": "1GZz_87ybR8eAAY3X2HWwI3L6ny7-5Yvl",
    "EDVR_L_deblur_REDS_official-ca46bd8c.pth": "1_ma2tgHscZtkIY2tEJkVdU-UP8bnqBRE",
    "EDVR_L_deblurcomp_REDS_official-0e988e5c.pth": "1fEoSeLFnHSBbIs95Au2W197p8e4ws4DW",
}
ISSUE_MMAGIC = {  # name -> (file, REDS4 PSNR, SSIM)
    "mmagic/edvrm_wotsa_x4_8x4_600k_reds": ("edvrm_wotsa_x4_8x4_600k_reds_20200522-0570e567.pth", 30.3430, 0.8664),
    "mmagic/edvrm_x4_8x4_600k_reds": ("edvrm_x4_8x4_600k_reds_20210625-e29b71b5.pth", 30.4194, 0.8684),
    "mmagic/edvrl_wotsa_c128b40_8x8_lr2e-4_600k_reds4": ("edvrl_wotsa_c128b40_8x8_lr2e-4_600k_reds4_20211228-d895a769.pth", 31.0010, 0.8784),
    "mmagic/edvrl_c128b40_8x8_lr2e-4_600k_reds4": ("edvrl_c128b40_8x8_lr2e-4_600k_reds4_20220104-4509865f.pth", 31.0467, 0.8793),
}


def test_catalogue_is_the_published_table():
    from edvr_jax.models import PRESETS

    table = zoo.catalog("")
    assert len(table) == 11
    for e in table.values():
        assert re.fullmatch(r"[0-9a-f]{8}", e.sha256), e
        assert e.file.endswith(f"-{e.sha256}.pth"), e  # the file name carries its hash prefix
        assert e.preset in PRESETS, e
    basicsr = {e.file: e for e in table.values() if e.source == "basicsr"}
    assert {f: e.url for f, e in basicsr.items()} == {f: f"gdrive:{i}" for f, i in ISSUE_BASICSR.items()}
    for e in basicsr.values():
        assert e.name == e.preset and e.file == f"{e.name}_official-{e.sha256}.pth"
    mm = {e.name: e for e in table.values() if e.source == "mmagic"}
    assert {n: (e.file, *e.published["REDS4"]) for n, e in mm.items()} == ISSUE_MMAGIC
    for e in mm.values():
        assert e.url == "https://download.openmmlab.com/mmediting/restorers/edvr/" + e.file
    # BasicSR ModelZoo numbers (docs/ModelZoo.md)
    assert table["EDVR_M_x4_SR_REDS"].published == {"REDS4": (30.53, 0.8699)}
    assert table["EDVR_L_x4_SR_REDS"].published == {"REDS4": (31.09, 0.8800)}
    assert table["EDVR_L_x4_SR_Vimeo90K"].published["Vid4 (Y)"] == (27.35, 0.8264)
    assert table["EDVR_L_deblur_REDS"].published == {"REDS4 deblur": (34.80, 0.9487)}


def test_size_estimates_use_the_preset_parameter_counts():
    """The catalogue's counts (for `edvr-zoo list` sizes, without importing JAX) are the
    table in edvr_jax/models/presets.py."""
    from edvr_jax.models import presets

    rows = re.findall(r"^\| (EDVR_\w+) .*\| +([\d,]+) \|$", presets.__doc__, re.M)
    assert {n: int(c.replace(",", "")) for n, c in rows} == zcat.PRESET_PARAMS


def test_import_is_light():
    """The zoo imports the standard library only (0.05-0.07 s measured; the figure is not
    asserted: a wall-clock bound fails on a loaded machine)."""
    code = ("import sys; import edvr_jax.zoo.cli; "
            "print([m for m in ('jax', 'numpy', 'tensorflow', 'tqdm', 'gdown') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout
    assert out.strip() == "[]"


def test_cache_folder_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("EDVR_JAX_CACHE", raising=False)
    assert zoo.cache_dir() == tmp_path / "home" / ".cache" / "edvr_jax"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert zoo.cache_dir() == tmp_path / "xdg" / "edvr_jax"
    monkeypatch.setenv("EDVR_JAX_CACHE", str(tmp_path / "mine"))
    assert zoo.cache_dir() == tmp_path / "mine"


def test_custom_catalogue_adds_and_replaces_and_is_checked(env, tmp_path, monkeypatch):
    use_catalog(tmp_path, monkeypatch, {
        "lab/run7": tiny_entry("https://lab.example/w/run7-0a1b2c3d.pth?dl=1", sha="0A1B2C3D"),
        "EDVR_M_x4_SR_REDS": tiny_entry("https://lab.example/m.pth", sha=SHA, file="m.pth"),
    })
    t = zoo.catalog()
    assert t["lab/run7"].file == "run7-0a1b2c3d.pth" and t["lab/run7"].sha256 == "0a1b2c3d"
    assert t["EDVR_M_x4_SR_REDS"].url == "https://lab.example/m.pth" and t["EDVR_M_x4_SR_REDS"].sha256 == SHA
    assert "mmagic/edvrm_x4_8x4_600k_reds" in t
    for bad, match in [({"x": {"url": "u", "sha256": "abc"}}, "prefix of at least 8 hex"),
                       ({"x": {"sha256": SHA}}, '"url" string'),
                       ({"x": {"url": "u", "sha256": SHA, "file": "../evil.pth"}}, "plain file name")]:
        use_catalog(tmp_path, monkeypatch, bad)
        with pytest.raises(zoo.ZooError, match=match):
            zoo.catalog()
    (tmp_path / "zoo.json").write_text("{not json")
    with pytest.raises(zoo.ZooError, match="EDVR_JAX_ZOO_CATALOG=.*zoo.json is not a readable JSON"):
        zoo.catalog()


def test_unknown_names_get_a_close_match_and_paths_stay_paths(env):
    with pytest.raises(FileNotFoundError) as e:
        zoo.check("EDVR_M_x4_SR_RED")
    assert one_line(e.value) == ("checkpoint EDVR_M_x4_SR_RED does not exist; did you mean "
                                 "'EDVR_M_x4_SR_REDS'? (`edvr-zoo list` shows the model names)")
    with pytest.raises(zoo.ZooError, match="did you mean 'mmagic/edvrm_x4_8x4_600k_reds'"):
        zoo.check("mmagic/edvrm_x4_8x4_600k", "stage-2 checkpoint")
    with pytest.raises(FileNotFoundError, match=r"^checkpoint /no/such/file.pth does not exist$") as e:
        zoo.check("/no/such/file.pth")
    assert type(e.value) is FileNotFoundError  # as before names existed
    with pytest.raises(zoo.NotFound, match="does not exist and is not a model name"):
        zoo.check("zzzz")
    assert zoo.check(str(FIXTURE)) is None
    assert zoo.check("EDVR_L_x4_SR_REDS").file == "EDVR_L_x4_SR_REDS_official-9f5f5039.pth"
    assert not env.exists()  # looking names up touches no cache


# ----------------------------------------------------------------------------- downloads


def test_download_verify_then_cache_hit_without_a_request(env, server, tmp_path, monkeypatch, capsys):
    server.files["/w/" + FILE] = BLOB
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + "/w/" + FILE)})
    path = zoo.resolve("tiny")
    assert path == str(env / FILE) and pathlib.Path(path).read_bytes() == BLOB
    err = capsys.readouterr().err
    assert err.startswith(f"edvr_jax.zoo: fetching tiny from {server.url}/w/{FILE} into {env / FILE}\n"), err
    assert sorted(os.listdir(env)) == [FILE, FILE + ".lock"]  # no .part left
    assert zoo.resolve("tiny") == path
    assert server.gets("/w/" + FILE) == [None]  # the second call made no request


def test_resume_after_a_cut_transfer(env, server, tmp_path, monkeypatch):
    p = "/w/" + FILE
    server.files[p] = BLOB
    server.faults[p] = [100_000, 150_000]  # two connections dropped mid-file
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + p)})
    assert pathlib.Path(zoo.resolve("tiny", progress=False)).read_bytes() == BLOB
    assert server.gets(p) == [None, "bytes=100000-", "bytes=250000-"]


def test_restart_when_the_server_ignores_range(env, server, tmp_path, monkeypatch):
    p = "/w/" + FILE
    server.files[p] = BLOB
    server.faults[p] = [100_000, "ignore_range"]
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + p)})
    assert pathlib.Path(zoo.resolve("tiny", progress=False)).read_bytes() == BLOB
    assert server.gets(p) == [None, "bytes=100000-"]  # answered 200: written from the start


def test_transfer_cut_every_time_keeps_the_part_for_the_next_run(env, server, tmp_path, monkeypatch):
    p = "/w/" + FILE
    server.files[p] = BLOB
    server.always[p] = 50_000
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + p)})
    with pytest.raises(zoo.ZooError) as e:
        zoo.resolve("tiny", progress=False)
    msg = one_line(e.value)
    assert f"cannot download tiny from {server.url}{p}: transfer cut at 200000 of {len(BLOB)} bytes after 4 attempts" in msg
    assert f"the partial file {env / FILE}.part is kept" in msg and "EDVR_JAX_ZOO_URL" in msg
    assert f"by hand to {env / FILE}" in msg
    assert not (env / FILE).exists() and (env / (FILE + ".part")).stat().st_size == 200_000
    del server.always[p]
    assert pathlib.Path(zoo.resolve("tiny", progress=False)).read_bytes() == BLOB
    assert server.gets(p)[4:] == ["bytes=200000-"]


def test_a_part_that_is_already_whole_is_verified(env, server, tmp_path, monkeypatch):
    p = "/w/" + FILE
    server.files[p] = BLOB
    env.mkdir()
    (env / (FILE + ".part")).write_bytes(BLOB)  # e.g. killed between the last byte and the rename
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + p)})
    assert pathlib.Path(zoo.resolve("tiny", progress=False)).read_bytes() == BLOB
    assert server.gets(p) == [f"bytes={len(BLOB)}-"]  # 416: nothing more to fetch


def test_wrong_hash_is_refused_and_deleted_unless_overridden(env, server, tmp_path, monkeypatch):
    p = "/w/" + FILE
    server.files[p] = BLOB
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + p, sha="deadbeef")})
    with pytest.raises(zoo.ZooError) as e:
        zoo.resolve("tiny", progress=False)
    assert one_line(e.value) == (f"tiny: the file from {server.url}{p} has SHA-256 {SHA[:16]}..., expected "
                                 f"deadbeef...; it was deleted. If you trust this source, pass --no-verify "
                                 f"or set EDVR_JAX_ZOO_VERIFY=0")
    assert sorted(os.listdir(env)) == [FILE + ".lock"]
    monkeypatch.setenv("EDVR_JAX_ZOO_VERIFY", "0")
    assert pathlib.Path(zoo.resolve("tiny", progress=False)).read_bytes() == BLOB
    # The kept file is hashed again on each verified use, and never deleted.
    monkeypatch.delenv("EDVR_JAX_ZOO_VERIFY")
    with pytest.raises(zoo.ZooError, match=f"the cached file {re.escape(str(env / FILE))} has SHA-256 "
                                           f"{SHA[:16]}.*delete it to download again.*--no-verify"):
        zoo.resolve("tiny")
    assert (env / FILE).read_bytes() == BLOB
    assert len(server.gets(p)) == 2


def test_a_file_put_in_the_cache_by_hand_is_used_and_checked(env, tmp_path, monkeypatch):
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry("http://127.0.0.1:9/nowhere/" + FILE)})
    env.mkdir()
    (env / FILE).write_bytes(BLOB)
    assert zoo.resolve("tiny") == str(env / FILE)  # no server at all: a cache hit
    (env / FILE).write_bytes(BLOB[:-10])
    with pytest.raises(zoo.ZooError, match="the cached file .* has SHA-256"):
        zoo.resolve("tiny")


@pytest.mark.parametrize("status,text", [(404, "HTTP 404 Not Found"), (403, "HTTP 403 Forbidden")])
def test_http_errors_are_one_line_without_retries(env, server, tmp_path, monkeypatch, status, text):
    p = "/w/" + FILE
    server.files[p] = BLOB
    server.always[p] = ("status", status)
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + p)})
    with pytest.raises(zoo.ZooError) as e:
        zoo.resolve("tiny", progress=False)
    assert one_line(e.value) == (f"cannot download tiny from {server.url}{p}: {text}; set $EDVR_JAX_ZOO_URL to "
                                 f"a mirror holding {FILE}, or download {server.url}{p} by hand to {env / FILE}")
    assert len(server.gets(p)) == 1 and not (env / FILE).exists()


def test_server_errors_are_retried(env, server, tmp_path, monkeypatch):
    p = "/w/" + FILE
    server.files[p] = BLOB
    server.faults[p] = [("status", 503), ("status", 500)]
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + p)})
    assert pathlib.Path(zoo.resolve("tiny", progress=False)).read_bytes() == BLOB
    assert len(server.gets(p)) == 3


def test_no_network_is_one_line(env, tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/w/{FILE}"
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(url)})
    with pytest.raises(zoo.ZooError) as e:
        zoo.resolve("tiny", progress=False)
    msg = one_line(e.value)
    assert msg.startswith(f"cannot download tiny from {url}: [Errno 111] Connection refused (no network?); "
                          f"set $EDVR_JAX_ZOO_URL"), msg
    assert f"by hand to {env / FILE}" in msg


def test_a_proxy_refusal_is_one_line_naming_the_proxy(env, server, tmp_path, monkeypatch):
    server.always["http://models.example/w/" + FILE] = ("status", 407)  # the proxy sees absolute URLs
    monkeypatch.setenv("http_proxy", server.url)
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry("http://models.example/w/" + FILE)})
    with pytest.raises(zoo.ZooError) as e:
        zoo.resolve("tiny", progress=False)
    assert one_line(e.value).startswith(f"cannot download tiny from http://models.example/w/{FILE} (through the "
                                        f"proxy {server.url}): HTTP 407 Proxy Authentication Required; ")
    # https through a proxy that refuses the tunnel
    monkeypatch.setenv("https_proxy", server.url)
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry("https://models.example/w/" + FILE)})
    with pytest.raises(zoo.ZooError) as e:
        zoo.resolve("tiny", progress=False)
    assert one_line(e.value).startswith(f"cannot download tiny from https://models.example/w/{FILE} (through the "
                                        f"proxy {server.url}): Tunnel connection failed: 407 Proxy Authentication "
                                        f"Required (proxy refused?); set $EDVR_JAX_ZOO_URL")
    assert server.requests[-1] == ("CONNECT models.example:443", None)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_loses_nothing(env, server, tmp_path, monkeypatch):
    p = "/w/" + FILE
    server.files[p] = BLOB
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + p),
                                        "other": tiny_entry(server.url + p, file="other.pth")})
    other = zoo.resolve("other", progress=False)
    (env / (FILE + ".part")).symlink_to("/dev/full")  # every write to the part fails: ENOSPC
    with pytest.raises(zoo.ZooError) as e:
        zoo.resolve("tiny", progress=False)
    assert one_line(e.value) == (f"cannot write {env / FILE}.part: No space left on device (disk full or "
                                 f"read-only?); the cached files are untouched; free space or set "
                                 f"$EDVR_JAX_CACHE to another folder")
    assert not (env / FILE).exists() and pathlib.Path(other).read_bytes() == BLOB
    # The same through a local mirror folder.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / FILE).write_bytes(BLOB)
    monkeypatch.setenv("EDVR_JAX_ZOO_URL", str(mirror))
    with pytest.raises(zoo.ZooError, match="cannot write .*No space left on device"):
        zoo.resolve("tiny", progress=False)
    assert not (env / FILE).exists()


def test_an_unwritable_cache_folder_is_one_line(env, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("EDVR_JAX_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(zoo.ZooError, match="cannot create the cache folder .*file/cache: Not a directory; "
                                           "set \\$EDVR_JAX_CACHE to a writable folder"):
        zoo.resolve("mmagic/edvrm_x4_8x4_600k_reds", progress=False)


def test_two_processes_fetching_at_once_download_once(env, server, tmp_path, monkeypatch):
    p = "/w/" + FILE
    server.files[p] = BLOB
    server.always[p] = ("delay", 1.0)  # both start while the first transfer is under way
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + p)})
    code = "import edvr_jax.zoo as z; print(z.resolve('tiny', progress=False))"
    envs = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=envs, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [pr.communicate(timeout=60) for pr in procs]
    assert [pr.returncode for pr in procs] == [0, 0], outs
    assert [o[0].strip() for o in outs] == [str(env / FILE)] * 2
    assert (env / FILE).read_bytes() == BLOB
    assert server.gets(p) == [None]  # the second waited on the lock and found the file


def test_a_killed_download_is_resumed_by_the_next_process(env, server, tmp_path, monkeypatch):
    """SIGKILL mid-transfer: the lock dies with the process, the .part stays, nothing
    complete-looking is left, and the next fetch asks only for the rest."""
    import signal

    p = "/w/" + FILE
    server.files[p] = BLOB
    server.faults[p] = [("stall", 120_000, 10.0)]
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + p)})
    code = "import edvr_jax.zoo as z; z.resolve('tiny', progress=False)"
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)})
    part = env / (FILE + ".part")
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size == 120_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert part.stat().st_size == 120_000 and not (env / FILE).exists()
    assert pathlib.Path(zoo.resolve("tiny", progress=False)).read_bytes() == BLOB
    assert server.gets(p) == [None, "bytes=120000-"]


# ----------------------------------------------------------------------------- mirrors, Google Drive


def test_http_mirror_replaces_every_base_url(env, server, monkeypatch):
    name, (file, _, _) = next(iter(ISSUE_MMAGIC.items()))
    server.files["/mirror/" + file] = BLOB
    server.files["/mirror/EDVR_M_x4_SR_REDS_official-32075921.pth"] = BLOB
    monkeypatch.setenv("EDVR_JAX_ZOO_URL", server.url + "/mirror/")
    for n, f in [(name, file), ("EDVR_M_x4_SR_REDS", "EDVR_M_x4_SR_REDS_official-32075921.pth")]:
        entry = zoo.lookup(n)
        assert zoo.source_url(entry) == f"{server.url}/mirror/{f}"
        # Fixture bytes under the official name: verification catches it, --no-verify keeps it.
        with pytest.raises(zoo.ZooError, match=f"{re.escape(n)}: the file from .*/mirror/{f} has SHA-256"):
            zoo.resolve(n, progress=False)
        assert zoo.resolve(n, progress=False, verify=False) == str(env / f)
    assert [p for p, _ in server.requests] == ["/mirror/" + file] * 2 + ["/mirror/EDVR_M_x4_SR_REDS_official-32075921.pth"] * 2


def folder_mirror(tmp_path, monkeypatch, name: str, folder: str):
    """A catalogue entry ``name`` whose URL cannot be reached, served from a local mirror folder."""
    mirror = tmp_path / folder
    mirror.mkdir()
    (mirror / FILE).write_bytes(BLOB)
    use_catalog(tmp_path, monkeypatch, {name: tiny_entry("https://unreachable.example/" + FILE)})
    monkeypatch.setenv("EDVR_JAX_ZOO_URL", str(mirror))
    return mirror


def test_local_folder_and_file_url_mirrors(env, tmp_path, monkeypatch):
    mirror = folder_mirror(tmp_path, monkeypatch, "tiny", "shared models")
    assert pathlib.Path(zoo.resolve("tiny")).read_bytes() == BLOB
    (env / FILE).unlink()
    monkeypatch.setenv("EDVR_JAX_ZOO_URL", mirror.as_uri())
    assert pathlib.Path(zoo.resolve("tiny")).read_bytes() == BLOB
    with pytest.raises(zoo.ZooError) as e:
        zoo.resolve("EDVR_L_x4_SR_REDS")
    assert one_line(e.value) == (f"cannot fetch EDVR_L_x4_SR_REDS: the mirror folder has no "
                                 f"{mirror / 'EDVR_L_x4_SR_REDS_official-9f5f5039.pth'}; copy "
                                 f"EDVR_L_x4_SR_REDS_official-9f5f5039.pth there (from "
                                 f"https://drive.google.com/uc?id=127KXEjlCwfoPC1aXyDkluNwr9elwyHNb)")


FAKE_GDOWN = '''
import json, os, shutil
CALLS = []
def download(url=None, output=None, quiet=False, id=None, resume=False, **kw):
    CALLS.append({"id": id, "output": output, "quiet": quiet, "resume": resume})
    mode = os.environ.get("FAKE_GDOWN", "ok")
    if mode == "raise":
        raise RuntimeError("Failed to retrieve file url:\\n\\n\\tToo many users have viewed or downloaded this file recently.")
    if mode == "none":
        return None
    shutil.copyfile(os.environ["FAKE_GDOWN_SOURCE"], output)
    return output
'''


@pytest.fixture
def fake_gdown(tmp_path, monkeypatch):
    d = tmp_path / "site"
    d.mkdir()
    (d / "gdown.py").write_text(FAKE_GDOWN)
    monkeypatch.syspath_prepend(str(d))
    monkeypatch.delitem(sys.modules, "gdown", raising=False)
    monkeypatch.setenv("FAKE_GDOWN_SOURCE", str(FIXTURE))
    yield
    sys.modules.pop("gdown", None)


def test_google_drive_goes_through_gdown(env, fake_gdown, monkeypatch):
    path = zoo.resolve("EDVR_M_x4_SR_REDS", progress=False, verify=False)
    assert path == str(env / "EDVR_M_x4_SR_REDS_official-32075921.pth")
    assert pathlib.Path(path).read_bytes() == BLOB
    import gdown

    assert gdown.CALLS == [{"id": "1dd6aFj-5w2v08VJTq5mS9OFsD-wALYD6", "output": path + ".part",
                            "quiet": True, "resume": True}]
    with pytest.raises(zoo.ZooError, match="EDVR_L_x4_SR_REDS: the file from https://drive.google.com/uc"
                                           "\\?id=127KXEjlCwfoPC1aXyDkluNwr9elwyHNb has SHA-256"):
        zoo.resolve("EDVR_L_x4_SR_REDS", progress=False)
    assert not list(env.glob("EDVR_L*.pth*[!k]"))  # only the lock file is left
    monkeypatch.setenv("FAKE_GDOWN", "raise")
    with pytest.raises(zoo.ZooError) as e:
        zoo.resolve("EDVR_L_deblur_REDS", progress=False)
    assert one_line(e.value).startswith("cannot download EDVR_L_deblur_REDS from https://drive.google.com/uc?id="
                                        "1_ma2tgHscZtkIY2tEJkVdU-UP8bnqBRE (gdown): Failed to retrieve file url:; "
                                        "set $EDVR_JAX_ZOO_URL")
    monkeypatch.setenv("FAKE_GDOWN", "none")
    with pytest.raises(zoo.ZooError, match="gdown got no file .*quota"):
        zoo.resolve("EDVR_L_deblur_REDS", progress=False)


def test_google_drive_without_gdown_says_how_to_get_it(env, monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)  # import gdown -> ImportError
    with pytest.raises(zoo.ZooError) as e:
        zoo.resolve("EDVR_M_x4_SR_REDS")
    assert one_line(e.value) == (
        "EDVR_M_x4_SR_REDS is on Google Drive, which needs gdown: pip install 'edvr_jax[zoo]'; or set "
        "$EDVR_JAX_ZOO_URL to a mirror holding EDVR_M_x4_SR_REDS_official-32075921.pth, or download "
        "https://drive.google.com/uc?id=1dd6aFj-5w2v08VJTq5mS9OFsD-wALYD6 by hand to "
        f"{env / 'EDVR_M_x4_SR_REDS_official-32075921.pth'}")


# ----------------------------------------------------------------------------- edvr-zoo


def test_edvr_zoo_list_download_path(env, server, tmp_path, monkeypatch, capsys):
    p = "/w/" + FILE
    server.files[p] = BLOB
    use_catalog(tmp_path, monkeypatch, {"tiny": tiny_entry(server.url + p)})
    assert zcli.main(["path", "tiny"]) == 1
    out, err = capsys.readouterr()
    assert out == f"{env / FILE}\n" and "tiny is not downloaded yet" in err
    assert zcli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 12 + 1 and lines[-1] == f"cache: {env}"
    row = {ln.split()[0]: ln for ln in lines[2:-1]}
    assert row["EDVR_L_x4_SR_REDS"].split()[1:] == ["~83", "MB", "BasicSR", "(Google", "Drive)", "REDS4",
                                                    "31.09/0.8800", "no"]
    assert row["tiny"].split()[-1] == "no" and server.url in row["tiny"]
    assert zcli.main(["download", "tiny", "--no-progress"]) == 0
    assert capsys.readouterr().out == f"tiny: {env / FILE}\n"
    assert zcli.main(["list"]) == 0
    row = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()[2:-1]}
    assert row["tiny"].split()[1:3] == ["0.4", "MB"] and row["tiny"].endswith("yes")
    assert zcli.main(["path", "tiny"]) == 0
    # A typo is refused before anything is fetched; "all" reports each failure in one line.
    assert zcli.main(["download", "tiny", "EDVR_M_x4_SR_RED"]) == 2
    assert "did you mean 'EDVR_M_x4_SR_REDS'?" in capsys.readouterr().err
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "edvrm_x4_8x4_600k_reds_20210625-e29b71b5.pth").write_bytes(BLOB)
    assert zcli.main(["download", "all", "--zoo-url", str(mirror), "--no-verify", "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"mmagic/edvrm_x4_8x4_600k_reds: {env / 'edvrm_x4_8x4_600k_reds_20210625-e29b71b5.pth'}",
                                f"tiny: {env / FILE}"]
    assert err.count("\n") == 11 and err.splitlines()[-1] == "edvr-zoo: 10 of 12 downloads failed"


def test_edvr_zoo_console_script_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'edvr-zoo = "edvr_jax.zoo.cli:main"' in text and 'zoo = ["gdown>=5"]' in text


# ----------------------------------------------------------------------------- names in the tools


@pytest.fixture
def named(env, tmp_path, monkeypatch):
    """'lab/tiny' in a team catalogue, served from a local mirror folder."""
    folder_mirror(tmp_path, monkeypatch, "lab/tiny", "mirror")
    return "lab/tiny"


def test_load_model_by_name_equals_loading_the_file(named, tmp_path, capsys):
    import jax
    import numpy as np

    from edvr_jax import load_model
    from edvr_jax.convert.cli import main as convert

    ref_model, ref = load_model(FIXTURE)
    model, got = load_model(named)
    assert model == ref_model
    jax.tree_util.tree_map(np.testing.assert_array_equal, got, ref)
    assert convert([named, str(tmp_path / "converted")]) == 0
    assert capsys.readouterr().out.startswith(f"lab/tiny: {zoo.cache_dir() / FILE}\n")
    model2, conv = load_model(tmp_path / "converted")
    jax.tree_util.tree_map(np.testing.assert_array_equal, conv, ref)
    with pytest.raises(FileNotFoundError, match="did you mean 'lab/tiny'"):
        load_model("lab/tiyn")


def test_a_hostile_file_fetched_by_name_is_still_refused(env, tmp_path, monkeypatch):
    from test_pth import Reduce, in_state_dict, write_zip

    from edvr_jax import load_model
    from edvr_jax.convert.pth import CheckpointError

    evil = tmp_path / "evil.pth"
    write_zip(evil, in_state_dict(Reduce(os.system, f"touch {tmp_path / 'marker'}")))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "evil.pth").write_bytes(evil.read_bytes())
    use_catalog(tmp_path, monkeypatch, {"evil": {"url": "https://x.example/evil.pth",
                                                 "sha256": hashlib.sha256(evil.read_bytes()).hexdigest()}})
    monkeypatch.setenv("EDVR_JAX_ZOO_URL", str(mirror))
    with pytest.raises(CheckpointError, match="system"):
        load_model("evil")
    assert not (tmp_path / "marker").exists()


def test_tools_check_names_with_their_arguments_before_fetching(named, tmp_path, capsys):
    from entry_points import load_eval_py

    from edvr_jax.evaluate.restore import main as restore

    ev = load_eval_py()
    assert ev.main(["--checkpoint", "lab/tiyn", "--dataset", "reds4", "--data_root", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == ("eval.py: error: checkpoint lab/tiyn does not exist; did you mean "
                                               "'lab/tiny'? (`edvr-zoo list` shows the model names)")
    # A known name with a bad data root: refused before anything is downloaded.
    assert ev.main(["--checkpoint", named, "--dataset", "reds4", "--data_root", str(tmp_path / "nope")]) == 2
    assert "data root" in capsys.readouterr().err and not (zoo.cache_dir() / FILE).exists()
    assert restore([str(tmp_path), str(tmp_path / "o"), "--checkpoint", "lab/tin", "--stage2", named]) == 2
    assert "checkpoint lab/tin does not exist; did you mean 'lab/tiny'?" in capsys.readouterr().err
    assert restore([str(tmp_path / "nope"), str(tmp_path / "o"), "--checkpoint", named]) == 2
    assert "input" in capsys.readouterr().err and not (zoo.cache_dir() / FILE).exists()


def test_edvr_restore_by_name_equals_by_path(named, tmp_path):
    import numpy as np
    from PIL import Image

    from edvr_jax.evaluate.restore import main as restore

    src = tmp_path / "frames"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(src / f"{i}.png")
    assert restore([str(src), str(tmp_path / "by_path"), "--checkpoint", str(FIXTURE), "--no-progress"]) == 0
    assert restore([str(src), str(tmp_path / "by_name"), "--checkpoint", named, "--no-progress"]) == 0
    for i in range(5):
        a = np.asarray(Image.open(tmp_path / "by_path" / f"{i}.png"))
        assert a.shape == (64, 64, 3)
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "by_name" / f"{i}.png")), a)


def test_eval_py_by_name_equals_by_path(named, tmp_path, capsys):
    import eval_trees
    from entry_points import load_eval_py

    root = eval_trees.make_reds(str(tmp_path / "REDS"), num_frames=5, lq_hw=(16, 16))
    ev = load_eval_py()
    results = {}
    for label, ckpt in [("path", str(FIXTURE)), ("name", named)]:
        out = tmp_path / f"{label}.json"
        assert ev.main(["--checkpoint", ckpt, "--dataset", "reds4", "--data_root", root, "--out", str(out),
                        "--no_progress"]) == 0
        results[label] = json.loads(out.read_text())
    capsys.readouterr()
    by_path, by_name = results["path"], results["name"]
    assert by_name["mean"] == by_path["mean"] and by_name["clips"] == by_path["clips"]
    assert by_name["settings"]["checkpoint"] == str(zoo.cache_dir() / FILE)
    assert by_name["settings"]["checkpoint_name"] == "lab/tiny" and by_path["settings"]["checkpoint_name"] is None
