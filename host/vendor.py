"""Third-party browser assets for the big screen and the OGC API's pages, kept under ``.var/vendor/`` and served at ``/vendor/``.

``onemap vendor`` fetches pinned npm tarballs (Leaflet, Leaflet.VectorGrid, Bootstrap's CSS, Swagger UI), checks each
against a sha512 written here, and keeps only the files the page loads plus each
package's licence. It also subsets Noto Sans CJK SC (Debian's ``fonts-noto-cjk``) to the
characters the project shows, as ``fonts/onemap-sans.woff2``. Command centres run on
isolated networks, so the page must never load any of this from the internet; a
``manifest.json`` with the hashes makes a second run a quick check that fetches nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from core.settings import PROJECT_ROOT, OnemapSettings

DEFAULT_REGISTRY = "https://registry.npmjs.org"
MANIFEST_NAME = "manifest.json"
FETCH_TIMEOUT_S = 60


class VendorError(RuntimeError):
    """The vendored assets cannot be put in place; the message says what to do."""


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package and the files of its tarball that we serve."""

    name: str
    version: str
    integrity: str  # Subresource-Integrity string from the registry's metadata: "sha512-<base64>"
    directory: str  # its folder under the vendor directory (and under /vendor/)
    files: tuple[tuple[str, str], ...]  # (path inside the tarball, path under `directory`); a trailing "/" copies a folder
    license_file: str  # path inside the tarball of the licence text, written as `directory`/LICENSE
    license_marker: str | None = None  # when the licence is a section of that file: keep it from this line on

    def tarball_url(self, registry: str = DEFAULT_REGISTRY) -> str:
        return f"{registry.rstrip('/')}/{self.name}/-/{self.name}-{self.version}.tgz"


PACKAGES: tuple[NpmPackage, ...] = (
    NpmPackage(
        name="leaflet",
        version="1.9.4",
        integrity="sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==",
        directory="leaflet",
        files=(
            ("package/dist/leaflet.js", "leaflet.js"),
            ("package/dist/leaflet.js.map", "leaflet.js.map"),  # leaflet.js names it; developer tools ask for it
            ("package/dist/leaflet.css", "leaflet.css"),
            ("package/dist/images/", "images/"),
        ),
        license_file="package/LICENSE",
    ),
    NpmPackage(
        name="leaflet.vectorgrid",
        version="1.3.0",
        integrity="sha512-kWmj1pKM+MVdo/7Mg5zsB3YrGZvo/uIuiANV9MvWUFOG+Y2xAJzrteDhoIcCgTjHSSRJ36xdeGdIQVhuWjnCZw==",
        directory="leaflet.vectorgrid",
        # the bundled build carries pbf and vector-tile, which decode our MVT tiles
        files=(("package/dist/Leaflet.VectorGrid.bundled.min.js", "Leaflet.VectorGrid.bundled.min.js"),),
        license_file="package/README.md",  # the package ships no LICENSE file; its README ends with the licence
        license_marker="## Legalese",
    ),
    # the OGC API's HTML pages (pygeoapi's pages in our own templates, api/templates/ogc/)
    NpmPackage(
        name="bootstrap",
        version="5.3.3",
        integrity="sha512-8HLCdWgyoMguSO9o+aH+iuZ+aht+mzW0u3HIMzVu7Srrpv7EBBxTnrFlSCskwdY1+EOFQSm7uMJhNQHkdPcmjg==",
        directory="bootstrap",
        files=(("package/dist/css/bootstrap.min.css", "bootstrap.min.css"),),  # the pages use its CSS only
        license_file="package/LICENSE",
    ),
    NpmPackage(
        name="swagger-ui-dist",
        version="5.36.0",
        integrity="sha512-Lt6/Kb0gXmLdiabLhvso4VdJP9V7qJWB0zh0gzeXUV3+CMOTzMmvpJRSXN7EAjfwixwmoi9ezDbLHiexC7lA9A==",
        directory="swagger-ui",
        files=(
            ("package/swagger-ui-bundle.js", "swagger-ui-bundle.js"),
            ("package/swagger-ui.css", "swagger-ui.css"),
            ("package/swagger-ui-bundle.js.LICENSE.txt", "swagger-ui-bundle.js.LICENSE.txt"),  # its bundled parts
            ("package/NOTICE", "NOTICE"),
        ),
        license_file="package/LICENSE",
    ),
)


@dataclass(frozen=True)
class FontSpec:
    """Where the CJK font comes from and what it is called on the page."""

    source: Path = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    family_in_source: str = "Noto Sans CJK SC"
    family: str = "OneMap Sans"
    woff2_name: str = "onemap-sans.woff2"
    css_name: str = "onemap-sans.css"
    apt_package: str = "fonts-noto-cjk"
    license_source: Path = Path("/usr/share/doc/fonts-noto-cjk/copyright")
    scan_dirs: tuple[str, ...] = ("api", "gis", "layers", "data")


@dataclass(frozen=True)
class VendorReport:
    """What a run of ``vendor_install`` did."""

    vendor_dir: Path
    fetched: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    font_characters: int = 0
    font_bytes: int = 0
    font_rebuilt: bool = False

    def describe(self) -> str:
        lines = [f"vendored assets in {self.vendor_dir}"]
        lines += [f"  fetched {name}" for name in self.fetched]
        lines += [f"  up to date {name}" for name in self.kept]
        if self.font_characters:
            state = "built" if self.font_rebuilt else "up to date"
            lines.append(
                f"  font {state}: fonts/onemap-sans.woff2, {self.font_characters:,} characters, "
                f"{self.font_bytes / 1024:,.0f} KiB"
            )
        return "\n".join(lines)


def vendor_dir(env: dict | os._Environ | None = None) -> Path:
    """The vendor directory: ``ONEMAP_VENDOR_DIR`` if set, else ``<ONEMAP_VAR_DIR>/vendor``."""
    env = os.environ if env is None else env
    explicit = env.get("ONEMAP_VENDOR_DIR")
    if explicit:
        return Path(explicit).resolve()
    return OnemapSettings.from_env(env).var_dir / "vendor"


def vendor_install(
    *,
    target: Path | None = None,
    force: bool = False,
    registry: str | None = None,
    packages: Iterable[NpmPackage] = PACKAGES,
    font: FontSpec | None = FontSpec(),
    log: Callable[[str], None] = lambda message: None,
) -> VendorReport:
    """Put every pinned package (and the CJK font subset) into ``target``; fetch only what is missing or changed."""
    target = vendor_dir() if target is None else Path(target)
    registry = registry or os.environ.get("ONEMAP_NPM_REGISTRY") or DEFAULT_REGISTRY
    target.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(target)
    fetched, kept = [], []
    for package in packages:
        label = f"{package.name} {package.version}"
        if not force and _package_is_current(target, manifest, package):
            kept.append(label)
            continue
        log(f"fetching {package.tarball_url(registry)}")
        tarball = _fetch(package.tarball_url(registry))
        _check_integrity(package, tarball, package.tarball_url(registry))
        manifest.setdefault("packages", {})[package.name] = _install_package(target, package, tarball)
        _write_manifest(target, manifest)
        fetched.append(label)
    font_report = {}
    if font is not None:
        font_report = _install_font(target, manifest, font, force=force, log=log)
        _write_manifest(target, manifest)
    return VendorReport(
        vendor_dir=target,
        fetched=tuple(fetched),
        kept=tuple(kept),
        font_characters=font_report.get("characters", 0),
        font_bytes=font_report.get("bytes", 0),
        font_rebuilt=font_report.get("rebuilt", False),
    )


# -- npm packages --------------------------------------------------------------


def _package_is_current(target: Path, manifest: dict, package: NpmPackage) -> bool:
    entry = manifest.get("packages", {}).get(package.name)
    if not entry or entry.get("version") != package.version or entry.get("integrity") != package.integrity:
        return False
    return _files_match(target, entry.get("files", {}))


def _files_match(target: Path, hashes: dict[str, str]) -> bool:
    if not hashes:
        return False
    for relpath, digest in hashes.items():
        path = target / relpath
        if not path.is_file() or _sha256(path.read_bytes()) != digest:
            return False
    return True


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise VendorError(
            f"cannot fetch {url} ({reason}). On a machine without internet access, copy a .var/vendor "
            "folder from a machine that has it (or point ONEMAP_VENDOR_DIR at one), or set "
            "ONEMAP_NPM_REGISTRY to an npm registry mirror on your network"
        ) from None


def _check_integrity(package: NpmPackage, tarball: bytes, url: str) -> None:
    algorithm, _, expected = package.integrity.partition("-")
    if algorithm != "sha512":
        raise VendorError(f"{package.name}: integrity must be a sha512-… string, got {package.integrity!r}")
    actual = base64.b64encode(hashlib.sha512(tarball).digest()).decode("ascii")
    if actual != expected:
        raise VendorError(
            f"{url} does not match its pinned integrity (expected sha512-{expected}, got sha512-{actual}); "
            "nothing was written. The download was altered or the registry mirror serves another file: "
            "fetch it from the official registry, or copy a .var/vendor folder from a trusted machine"
        )


def _install_package(target: Path, package: NpmPackage, tarball: bytes) -> dict:
    """Extract the served files into a staging folder, then swap it in whole; returns the manifest entry."""
    final = target / package.directory
    with _swapped_in(final) as staging:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            members = {m.name: m for m in archive.getmembers() if m.isfile()}
            for source, dest in package.files:
                chosen = _members_for(members, source, dest, package)
                for member_name, relpath in chosen:
                    _write(staging / relpath, archive.extractfile(members[member_name]).read())
            _write(staging / "LICENSE", _license_text(archive, members, package))
    return {"version": package.version, "integrity": package.integrity, "files": _file_hashes(target, final)}


@contextlib.contextmanager
def _swapped_in(final: Path):
    """A staging folder beside ``final`` that replaces it whole when the block ends, and vanishes if it raises."""
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{final.name}-", dir=final.parent))
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _file_hashes(target: Path, folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, keyed by its path relative to ``target``."""
    return {str(p.relative_to(target)): _sha256(p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


def _members_for(members: dict, source: str, dest: str, package: NpmPackage) -> list[tuple[str, str]]:
    if source.endswith("/"):
        chosen = [(name, dest + name[len(source):]) for name in sorted(members) if name.startswith(source)]
    else:
        chosen = [(source, dest)] if source in members else []
    if not chosen:
        raise VendorError(f"{package.name} {package.version}: the tarball has no {source}; check the pinned files")
    for _, relpath in chosen:
        if relpath.startswith("/") or ".." in Path(relpath).parts:
            raise VendorError(f"{package.name}: refusing to write outside the vendor folder: {relpath}")
    return chosen


def _license_text(archive: tarfile.TarFile, members: dict, package: NpmPackage) -> bytes:
    if package.license_file not in members:
        raise VendorError(f"{package.name} {package.version}: the tarball has no {package.license_file}")
    text = archive.extractfile(members[package.license_file]).read().decode("utf-8")
    if package.license_marker:
        start = text.find(package.license_marker)
        if start < 0:
            raise VendorError(f"{package.name}: no {package.license_marker!r} section in {package.license_file}")
        text = f"{package.name} {package.version}, licence as stated in its README:\n\n{text[start:]}"
    return text.encode("utf-8")


# -- the CJK font --------------------------------------------------------------

# Characters outside the repository's own text that the screen may show: ASCII,
# Latin-1 signs (°, ×, ·), general punctuation (“ ” … —), CJK symbols and punctuation, full-width forms.
_FIXED_RANGES = ((0x20, 0x7E), (0xA0, 0xFF), (0x2010, 0x2027), (0x2030, 0x203B), (0x3000, 0x303F), (0xFF01, 0xFF5E))
_CJK_PATTERN = re.compile("[\u2e80-\u2fdf\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_TEXT_SUFFIXES = {".py", ".html", ".js", ".css", ".svg", ".json", ".yaml", ".yml", ".md", ".txt", ".csv", ".sql"}


def font_characters(*, root: Path = PROJECT_ROOT, spec: FontSpec = FontSpec()) -> set[str]:
    """Every character the font subset must hold: the repository's CJK text, GB2312 level 1, ASCII, punctuation."""
    chars = repository_cjk_characters(root=root, dirs=spec.scan_dirs)
    chars |= gb2312_level1()
    for low, high in _FIXED_RANGES:
        chars.update(chr(code) for code in range(low, high + 1))
    return chars


def repository_cjk_characters(*, root: Path, dirs: Iterable[str]) -> set[str]:
    """CJK ideographs, punctuation and full-width forms in the text files under ``dirs``."""
    found: set[str] = set()
    for directory in dirs:
        for path in sorted((root / directory).rglob("*")):
            if path.suffix.lower() not in _TEXT_SUFFIXES or not path.is_file():
                continue
            if any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(root).parts):
                continue
            found.update(_CJK_PATTERN.findall(path.read_text(encoding="utf-8", errors="ignore")))
    return found


def gb2312_level1() -> set[str]:
    """The 3,755 level-1 hanzi of GB 2312 (rows 16–55, in pinyin order)."""
    chars = set()
    for row in range(0xB0, 0xD8):
        for cell in range(0xA1, 0xFF):
            try:
                chars.add(bytes((row, cell)).decode("gb2312"))
            except UnicodeDecodeError:  # row 55 ends at cell 89
                continue
    return chars


def _install_font(target: Path, manifest: dict, spec: FontSpec, *, force: bool, log) -> dict:
    chars = font_characters(spec=spec)
    charset_digest = _sha256("".join(sorted(chars)).encode("utf-8"))
    fonts_dir = target / "fonts"
    entry = manifest.get("font", {})
    if (
        not force
        and entry.get("charset") == charset_digest
        and entry.get("source") == str(spec.source)
        and _files_match(target, entry.get("files", {}))
    ):
        return {"characters": entry.get("characters", 0), "bytes": entry.get("bytes", 0), "rebuilt": False}
    if not spec.source.is_file():
        raise VendorError(
            f"the font {spec.source} is missing: install Debian's {spec.apt_package} package "
            f"(apt-get install {spec.apt_package}), then run `onemap vendor` again"
        )
    log(f"subsetting {spec.family_in_source} from {spec.source} to {len(chars):,} characters")
    woff2, covered = _subset_font(spec, chars)
    with _swapped_in(fonts_dir) as staging:
        _write(staging / spec.woff2_name, woff2)
        _write(staging / spec.css_name, _font_css(spec, covered).encode("utf-8"))
        if spec.license_source.is_file():
            _write(staging / "LICENSE", spec.license_source.read_bytes())
    files = _file_hashes(target, fonts_dir)
    manifest["font"] = {
        "source": str(spec.source),
        "charset": charset_digest,
        "characters": covered,
        "bytes": len(woff2),
        "files": files,
    }
    return {"characters": covered, "bytes": len(woff2), "rebuilt": True}


def _subset_font(spec: FontSpec, chars: set[str]) -> tuple[bytes, int]:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    try:
        import brotli  # noqa: F401  (fontTools writes WOFF2 with it)
    except ImportError:
        raise VendorError("writing WOFF2 needs the brotli package: pip install brotli") from None
    font = TTFont(spec.source, fontNumber=_font_number(spec), lazy=False)
    cmap = font.getBestCmap()
    wanted = sorted(ord(c) for c in chars if ord(c) in cmap)
    options = subset.Options()
    options.flavor = "woff2"
    options.hinting = False  # big-screen pixels need no hints, and they cost a fifth of the size
    options.name_IDs = ["*"]  # keep the copyright and licence names with the font
    options.notdef_outline = True
    subsetter = subset.Subsetter(options=options)
    subsetter.populate(unicodes=wanted)
    subsetter.subset(font)
    buffer = io.BytesIO()
    font.flavor = "woff2"
    font.save(buffer)
    return buffer.getvalue(), len(wanted)


def _font_number(spec: FontSpec) -> int:
    """The index of ``spec.family_in_source`` inside a font collection (0 for a single font)."""
    from fontTools.ttLib import TTCollection

    if spec.source.suffix.lower() not in {".ttc", ".otc"}:
        return 0
    collection = TTCollection(spec.source, lazy=True)
    families = [f["name"].getDebugName(1) for f in collection.fonts]
    if spec.family_in_source not in families:
        raise VendorError(f"{spec.source} holds {', '.join(families)} but not {spec.family_in_source}")
    return families.index(spec.family_in_source)


def _font_css(spec: FontSpec, covered: int) -> str:
    return (
        f"/* {spec.family}: {covered:,} characters of {spec.family_in_source} (SIL Open Font License 1.1,\n"
        f"   see LICENSE), made by `onemap vendor` from Debian's {spec.apt_package}. */\n"
        "@font-face {\n"
        f'  font-family: "{spec.family}";\n'
        f'  src: url({spec.woff2_name}) format("woff2");\n'
        "  font-weight: 400;\n"
        "  font-style: normal;\n"
        "  font-display: block;\n"
        "}\n"
    )


# -- files -----------------------------------------------------------------------


def _read_manifest(target: Path) -> dict:
    path = target / MANIFEST_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_manifest(target: Path, manifest: dict) -> None:
    _write(target / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
