"""Catalogue names -> files in the local cache: download once, verify, rename atomically.

The cache folder is ``$EDVR_JAX_CACHE``, else ``$XDG_CACHE_HOME/edvr_jax``, else
``~/.cache/edvr_jax``; a model lives there under its catalogue file name. A download goes
to ``<file>.part`` while holding ``<file>.lock`` (so the hosts of a pod sharing the cache
fetch once and the others wait), resumes a cut transfer with an HTTP Range request, checks
the SHA-256 prefix and only then renames the file into place: a complete-looking file in
the cache is always a whole, verified one (and it is hashed again on each use, so a file
put there by hand is checked too). ``$EDVR_JAX_ZOO_URL`` (an http(s) base URL or a
local folder) replaces every source by ``<mirror>/<file>``; ``EDVR_JAX_ZOO_VERIFY=0``
skips the hash check. Every failure is one ``ZooError`` line naming the model, the URL and
what to do.

Standard library only at import; tqdm (progress) and gdown (Google Drive) are imported
when a download starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import pathlib
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from edvr_jax.zoo.catalog import Entry, ZooError, catalog, suggest

try:
    import fcntl
except ImportError:  # not POSIX: no lock, the rename still keeps the cache whole
    fcntl = None

__all__ = ["CACHE_ENV", "MIRROR_ENV", "VERIFY_ENV", "NotFound", "cache_dir", "cached_path",
           "check", "fetch", "resolve", "source_url", "verify_enabled"]

CACHE_ENV = "EDVR_JAX_CACHE"
MIRROR_ENV = "EDVR_JAX_ZOO_URL"
VERIFY_ENV = "EDVR_JAX_ZOO_VERIFY"
RETRIES = 3  # further attempts after a cut transfer, a timeout or an HTTP 5xx
BACKOFF = 1.0  # seconds before the first retry, doubled each time
TIMEOUT = 60.0  # seconds without a byte before an attempt counts as cut
CHUNK = 1 << 20


class NotFound(ZooError, FileNotFoundError):
    """Neither an existing path nor a catalogue name."""


def cache_dir() -> pathlib.Path:
    """``$EDVR_JAX_CACHE``, else ``$XDG_CACHE_HOME/edvr_jax``, else ``~/.cache/edvr_jax``."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "edvr_jax"


def cached_path(entry: Entry) -> pathlib.Path:
    return cache_dir() / entry.file


def verify_enabled() -> bool:
    return os.environ.get(VERIFY_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _local_folder(mirror: str) -> str | None:
    """The folder of a mirror given as a path or file:// URL, else None."""
    parsed = urllib.parse.urlparse(mirror)
    if parsed.scheme == "file":
        return urllib.request.url2pathname(parsed.path)
    if not parsed.scheme or len(parsed.scheme) == 1:  # a path (or a Windows drive letter)
        return mirror
    return None


def _source(entry: Entry, mirror: str | None) -> tuple[str, str]:
    """``(kind, where)``: ``("local", path)``, ``("gdrive", id)`` or ``("http", url)``."""
    mirror = os.environ.get(MIRROR_ENV) if mirror is None else mirror
    if not mirror:
        return ("gdrive", entry.url[len("gdrive:"):]) if entry.is_gdrive else ("http", entry.url)
    folder = _local_folder(mirror)
    if folder is not None:
        return "local", os.path.join(os.path.expanduser(folder), entry.file)
    return "http", mirror.rstrip("/") + "/" + urllib.parse.quote(entry.file)


def source_url(entry: Entry, mirror: str | None = None) -> str:
    """Where ``entry`` is fetched from: ``<mirror>/<file>`` with a mirror (argument, else
    ``$EDVR_JAX_ZOO_URL``; an http(s) URL, a file:// URL or a folder), else the catalogue's
    URL (Google Drive's download page for Drive ids)."""
    kind, where = _source(entry, mirror)
    return entry.display_url if kind == "gdrive" else where


def check(checkpoint, what: str = "checkpoint") -> Entry | None:
    """None when ``checkpoint`` is an existing path, its Entry when it is a catalogue name;
    otherwise NotFound (``<what> X does not exist``, with a close-match hint), or a plain
    FileNotFoundError for a missing path that resembles no name. Cheap: tools
    call it before importing JAX and download later with :func:`resolve`."""
    s = os.fspath(checkpoint)
    if os.path.exists(s):
        return None
    table = catalog()
    if s in table:
        return table[s]
    hint = suggest(s, table)
    path_like = s.endswith((".pth", ".pt")) or (os.sep in s and not s.startswith("mmagic/"))
    tail = hint + " (`edvr-zoo list` shows the model names)" if hint else (
        "" if path_like else " and is not a model name (`edvr-zoo list` shows them)")
    msg = f"{what + ' ' if what else ''}{s} does not exist{tail}"
    raise FileNotFoundError(msg) if path_like and not hint else NotFound(msg)


def resolve(checkpoint, what: str = "checkpoint", *, progress: bool = True,
            mirror: str | None = None, verify: bool | None = None) -> str:
    """An existing path unchanged, or a catalogue name's cached file (downloaded first if
    needed); see :func:`check` for unknown names."""
    entry = check(checkpoint, what)
    if entry is None:
        return os.fspath(checkpoint)
    return str(fetch(entry, progress=progress, mirror=mirror, verify=verify))


def _proxy_note(url: str) -> str:
    proxy = urllib.request.getproxies().get(urllib.parse.urlparse(url).scheme)
    if proxy and not urllib.request.proxy_bypass(urllib.parse.urlparse(url).hostname or ""):
        return f" (through the proxy {proxy})"
    return ""


class _Failure(Exception):
    """Why an attempt failed (one phrase) and whether another attempt may succeed."""

    def __init__(self, why: str, retry: bool):
        super().__init__(why)
        self.retry = retry


def _advice(entry: Entry, final: pathlib.Path) -> str:
    return (f"set ${MIRROR_ENV} to a mirror holding {entry.file}, or download "
            f"{entry.display_url} by hand to {final}")


@contextlib.contextmanager
def _locked(path: pathlib.Path):
    with open(path, "a") as f:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _write_error(part: pathlib.Path, e: OSError) -> ZooError:
    return ZooError(f"cannot write {part}: {e.strerror or e} (disk full or read-only?); the "
                    f"cached files are untouched; free space or set ${CACHE_ENV} to another "
                    f"folder")


def _total_size(resp, have: int) -> int | None:
    """The whole file's size from Content-Range (206) or Content-Length (200)."""
    crange = resp.headers.get("Content-Range", "")
    if "/" in crange and crange.rsplit("/", 1)[1].strip().isdigit():
        return int(crange.rsplit("/", 1)[1])
    length = resp.headers.get("Content-Length")
    return int(length) + have if length and length.isdigit() else None


def _http_attempt(entry: Entry, url: str, part: pathlib.Path, progress: bool) -> None:
    """One request: appends to ``part`` from where it ends (Range) or starts over."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "edvr_jax-zoo"}
    if have:
        headers["Range"] = f"bytes={have}-"
    opener = urllib.request.build_opener()  # reads the proxy variables now, not at import
    try:
        resp = opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            return  # the partial file is already whole: verify it
        raise _Failure(f"HTTP {e.code} {e.reason}", retry=e.code >= 500 or e.code == 429) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise _Failure("timed out", retry=True) from None
        raise _Failure(f"{e.reason} ({'proxy refused?' if _proxy_note(url) else 'no network?'})",
                       retry=False) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
        raise _Failure(f"{type(e).__name__}: {e}", retry=True) from None
    from tqdm.auto import tqdm

    with resp:
        if have and resp.status != 206:
            have = 0  # the server ignored the Range header: start over
        total = _total_size(resp, have)
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=entry.name, disable=not progress, leave=False, dynamic_ncols=True)
        try:
            f = open(part, "ab" if have else "wb")
        except OSError as e:
            raise _write_error(part, e) from None
        try:
            with bar:
                while True:
                    try:
                        chunk = resp.read1(CHUNK)  # what has arrived: a kill loses nothing on disk
                    except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
                        raise _Failure(f"transfer cut ({type(e).__name__})", retry=True) from None
                    if not chunk:
                        break
                    f.write(chunk)
                    f.flush()
                    bar.update(len(chunk))
            f.close()
        except OSError as e:
            with contextlib.suppress(OSError):
                f.close()
            raise _write_error(part, e) from None
        finally:
            if not f.closed:
                with contextlib.suppress(OSError):
                    f.close()
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Failure(f"transfer cut at {size} of {total} bytes", retry=True)


def _download_http(entry: Entry, url: str, part: pathlib.Path, final: pathlib.Path,
                   progress: bool) -> None:
    for attempt in range(RETRIES + 1):
        try:
            return _http_attempt(entry, url, part, progress)
        except _Failure as e:
            if not e.retry or attempt == RETRIES:
                kept = (f"; the partial file {part} is kept and the next try resumes it"
                        if part.exists() and part.stat().st_size else "")
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise ZooError(f"cannot download {entry.name} from {url}{_proxy_note(url)}: "
                               f"{e}{tries}{kept}; {_advice(entry, final)}") from None
            time.sleep(BACKOFF * 2 ** attempt)


def _download_gdrive(entry: Entry, drive_id: str, part: pathlib.Path, final: pathlib.Path,
                     progress: bool) -> None:
    try:
        import gdown
    except ImportError:
        raise ZooError(f"{entry.name} is on Google Drive, which needs gdown: pip install "
                       f"'edvr_jax[zoo]'; or {_advice(entry, final)}") from None
    try:
        out = gdown.download(id=drive_id, output=str(part), quiet=not progress, resume=True)
    except Exception as e:  # gdown raises its own types, requests' and OSError
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if "ConnectionError" in type(e).__name__ or "NameResolution" in why:
            why += " (no network?)"
        raise ZooError(f"cannot download {entry.name} from {entry.display_url} (gdown): "
                       f"{why}; {_advice(entry, final)}") from None
    if out is None or not part.exists():
        raise ZooError(f"cannot download {entry.name} from {entry.display_url}: gdown got no "
                       f"file (Google Drive refused it or its quota is exceeded); "
                       f"{_advice(entry, final)}")


def _copy_local(entry: Entry, src: str, part: pathlib.Path) -> None:
    if not os.path.isfile(src):
        raise ZooError(f"cannot fetch {entry.name}: the mirror folder has no {src}; copy "
                       f"{entry.file} there (from {entry.display_url})")
    try:
        shutil.copyfile(src, part)
    except OSError as e:
        raise _write_error(part, e) from None


def sha256_of(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _verified_cached(entry: Entry, final: pathlib.Path, verify: bool) -> pathlib.Path:
    """A cached file, hashed again (about 0.2 s for EDVR-L's 90 MB): a file put there by
    hand, or kept with --no-verify, is checked like a download, but never deleted."""
    if verify:
        digest = sha256_of(final)
        if not digest.startswith(entry.sha256):
            raise ZooError(f"{entry.name}: the cached file {final} has SHA-256 {digest[:16]}..., "
                           f"expected {entry.sha256}...; delete it to download again, or if you "
                           f"trust it, pass --no-verify or set {VERIFY_ENV}=0")
    return final


def fetch(entry: Entry, *, progress: bool = True, mirror: str | None = None,
          verify: bool | None = None) -> pathlib.Path:
    """The cached file of ``entry``, downloaded (and verified unless ``verify`` is False,
    default ``$EDVR_JAX_ZOO_VERIFY``) when it is not there yet."""
    folder = cache_dir()
    final = folder / entry.file
    verify = verify_enabled() if verify is None else verify
    if final.is_file():
        return _verified_cached(entry, final, verify)
    kind, where = _source(entry, mirror)
    url = source_url(entry, mirror)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ZooError(f"cannot create the cache folder {folder}: {e.strerror or e}; set "
                       f"${CACHE_ENV} to a writable folder") from None
    part = folder / (entry.file + ".part")
    with _locked(folder / (entry.file + ".lock")):
        if final.is_file():  # another process fetched it while we waited
            return _verified_cached(entry, final, verify)
        if progress:
            print(f"edvr_jax.zoo: fetching {entry.name} from {url} into {final}", file=sys.stderr)
        if kind == "local":
            _copy_local(entry, where, part)
        elif kind == "gdrive":
            _download_gdrive(entry, where, part, final, progress)
        else:
            _download_http(entry, where, part, final, progress)
        if verify:
            digest = sha256_of(part)
            if not digest.startswith(entry.sha256):
                part.unlink()
                raise ZooError(f"{entry.name}: the file from {url} has SHA-256 {digest[:16]}..., "
                               f"expected {entry.sha256}...; it was deleted. If you trust this "
                               f"source, pass --no-verify or set {VERIFY_ENV}=0")
        os.replace(part, final)
    return final
