"""The catalogue of published EDVR weights: name -> where to get the file and what it is.

Two sources. BasicSR's ModelZoo (Google Drive file ids, from BasicSR's
``scripts/download_pretrained_models.py``), named after our presets
(``edvr_jax.models.PRESETS``); mmagic's download server, named ``mmagic/<config name>``.
Both projects name a published file ``<stem>-<first 8 hex of its SHA-256>.pth``; that
prefix is what a download is verified against. Published numbers are PSNR/SSIM in RGB
unless the key says ``_y`` (BasicSR's ModelZoo; mmagic's ``configs/edvr/README.md``).

``$EDVR_JAX_ZOO_CATALOG`` names a JSON file of further entries (or replacements),
``{"NAME": {"url": "...", "sha256": "<full hex or a prefix of >= 8>", "file": "optional"}}``,
optionally with ``"preset"`` and ``"published"``.

Standard library only: this module is imported by every tool before JAX.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import urllib.parse

from edvr_jax.errors import UserError

__all__ = ["Entry", "ZooError", "catalog", "lookup", "BUILTIN", "CATALOG_ENV"]

CATALOG_ENV = "EDVR_JAX_ZOO_CATALOG"
MMAGIC_BASE = "https://download.openmmlab.com/mmediting/restorers/edvr/"
_HEX = re.compile(r"^[0-9a-f]{8,64}$")


class ZooError(UserError):
    """A model name that is not known, or weights that cannot be fetched; one line."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One downloadable checkpoint.

    ``url`` is ``gdrive:<file id>`` for Google Drive or an http(s)/file URL; ``sha256`` is a
    lower-case hex prefix (>= 8 digits) of the file's SHA-256; ``preset`` names the
    architecture in ``edvr_jax.models.PRESETS`` (None for a team's own entries);
    ``published`` maps ``"<test set>"`` to ``(PSNR, SSIM)``.
    """

    name: str
    url: str
    file: str
    sha256: str
    preset: str | None = None
    published: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    source: str = "custom"

    @property
    def is_gdrive(self) -> bool:
        return self.url.startswith("gdrive:")

    @property
    def display_url(self) -> str:
        """The URL a person can open in a browser."""
        if self.is_gdrive:
            return f"https://drive.google.com/uc?id={self.url[len('gdrive:'):]}"
        return self.url


# Parameter counts of the presets (the table in edvr_jax/models/presets.py, checked by the
# tests): an official file is about 4 bytes per parameter, which `edvr-zoo list` shows
# before the file is downloaded.
PRESET_PARAMS = {
    "EDVR_M_woTSA_x4_SR_REDS": 2_996_259, "EDVR_M_x4_SR_REDS": 3_300_131,
    "EDVR_L_woTSA_x4_SR_REDS": 19_419_875, "EDVR_L_x4_SR_REDS": 20_633_827,
    "EDVR_L_x4_SR_Vimeo90K": 20_699_363, "EDVR_L_x4_SRblur_REDS": 23_306_851,
    "EDVR_L_deblur_REDS": 23_602_019, "EDVR_L_deblurcomp_REDS": 23_602_019,
}


def _basicsr(preset: str, sha: str, drive_id: str, published=None) -> Entry:
    return Entry(preset, f"gdrive:{drive_id}", f"{preset}_official-{sha}.pth", sha, preset,
                 published or {}, "basicsr")


def _mmagic(config: str, date_sha: str, preset: str, reds4: tuple[float, float]) -> Entry:
    file = f"{config}_{date_sha}.pth"
    return Entry(f"mmagic/{config}", MMAGIC_BASE + file, file, date_sha.split("-")[1], preset,
                 {"REDS4": reds4}, "mmagic")


BUILTIN: tuple[Entry, ...] = (
    _basicsr("EDVR_M_x4_SR_REDS", "32075921",
             "1dd6aFj-5w2v08VJTq5mS9OFsD-wALYD6", {"REDS4": (30.53, 0.8699)}),
    _basicsr("EDVR_M_woTSA_x4_SR_REDS", "1edf645c",
             "1C_WdN-NyNj-P7SOB5xIVuHl4EBOwd-Ny"),
    _basicsr("EDVR_L_x4_SR_REDS", "9f5f5039",
             "127KXEjlCwfoPC1aXyDkluNwr9elwyHNb", {"REDS4": (31.09, 0.8800)}),
    _basicsr("EDVR_L_x4_SR_Vimeo90K", "162b54e4",
             "1aVR3lkX6ItCphNLcT7F5bbbC484h4Qqy", {"Vid4 (Y)": (27.35, 0.8264), "Vid4": (25.83, 0.8077)}),
    _basicsr("EDVR_L_x4_SRblur_REDS", "983d7b8e",
             "1GZz_87ybR8eAAY3X2HWwI3L6ny7-5Yvl", {"REDS4 srblur": (28.88, 0.8361)}),
    _basicsr("EDVR_L_deblur_REDS", "ca46bd8c",
             "1_ma2tgHscZtkIY2tEJkVdU-UP8bnqBRE", {"REDS4 deblur": (34.80, 0.9487)}),
    _basicsr("EDVR_L_deblurcomp_REDS", "0e988e5c",
             "1fEoSeLFnHSBbIs95Au2W197p8e4ws4DW", {"REDS4 deblurcomp": (30.24, 0.8567)}),
    _mmagic("edvrm_wotsa_x4_8x4_600k_reds", "20200522-0570e567", "EDVR_M_woTSA_x4_SR_REDS",
            (30.3430, 0.8664)),
    _mmagic("edvrm_x4_8x4_600k_reds", "20210625-e29b71b5", "EDVR_M_x4_SR_REDS", (30.4194, 0.8684)),
    _mmagic("edvrl_wotsa_c128b40_8x8_lr2e-4_600k_reds4", "20211228-d895a769",
            "EDVR_L_woTSA_x4_SR_REDS", (31.0010, 0.8784)),
    _mmagic("edvrl_c128b40_8x8_lr2e-4_600k_reds4", "20220104-4509865f", "EDVR_L_x4_SR_REDS",
            (31.0467, 0.8793)),
)


def _custom_entry(name: str, spec, source: str) -> Entry:
    where = f"{source}: entry {name!r}"
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
        raise ZooError(f"{where} must be an object with a \"url\" string")
    sha = spec.get("sha256")
    if not isinstance(sha, str) or not _HEX.match(sha.lower()):
        raise ZooError(f"{where}: \"sha256\" must be the file's SHA-256 in hex, or a prefix of at "
                       f"least 8 hex digits, got {sha!r}")
    url = spec["url"]
    file = spec.get("file") or os.path.basename(urllib.parse.urlparse(url).path) or name
    if os.path.basename(file) != file or file in (".", ".."):
        raise ZooError(f"{where}: \"file\" must be a plain file name, got {file!r}")
    published = {k: tuple(v) for k, v in (spec.get("published") or {}).items()}
    return Entry(name, url, file, sha.lower(), spec.get("preset"), published, "custom")


def _load_custom(path: str) -> dict[str, Entry]:
    try:
        with open(path) as f:
            table = json.load(f)
    except FileNotFoundError:
        raise ZooError(f"${CATALOG_ENV}={path} does not exist") from None
    except (OSError, ValueError) as e:
        raise ZooError(f"${CATALOG_ENV}={path} is not a readable JSON file: {e}") from None
    if not isinstance(table, dict):
        raise ZooError(f"${CATALOG_ENV}={path} must hold a JSON object NAME -> entry")
    return {name: _custom_entry(name, spec, path) for name, spec in table.items()}


def catalog(custom: str | None = None) -> dict[str, Entry]:
    """Every known name -> Entry: the built-in table, then ``custom`` (default:
    ``$EDVR_JAX_ZOO_CATALOG``), whose entries replace built-in ones of the same name."""
    table = {e.name: e for e in BUILTIN}
    custom = os.environ.get(CATALOG_ENV) if custom is None else custom
    if custom:
        table.update(_load_custom(custom))
    return table


def suggest(name: str, names) -> str:
    """' (did you mean X?)' for a near miss, case-insensitively, else ''."""
    lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.6)
    return f"; did you mean {lower[close[0]]!r}?" if close else ""


def lookup(name: str, table: dict[str, Entry] | None = None) -> Entry:
    """The Entry for ``name``; a ZooError with a close-match hint if there is none."""
    table = catalog() if table is None else table
    if name in table:
        return table[name]
    raise ZooError(f"{name!r} is not a model name in the catalogue{suggest(name, table)} "
                   f"(`edvr-zoo list` shows them all)")
