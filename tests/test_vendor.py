"""``onemap vendor``: pinned npm tarballs checked by integrity, a manifest that spares refetching, the CJK font."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from host.vendor import (
    PACKAGES,
    FontSpec,
    NpmPackage,
    VendorError,
    gb2312_level1,
    repository_cjk_characters,
    vendor_dir,
    vendor_install,
)
from core.settings import PROJECT_ROOT

CJK_IDEOGRAPH = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


@pytest.fixture
def registry(tmp_path):
    """A registry laid out like npm's (``name/-/name-version.tgz``) in a folder, reached by file:// URL."""
    tarball = _tarball({
        "package/dist/widget.js": b"window.widget = 1;\n",
        "package/dist/img/a.png": b"\x89PNG a",
        "package/dist/img/b.png": b"\x89PNG b",
        "package/LICENSE": b"Widget licence\n",
        "package/README.md": b"# widget\n",
    })
    folder = tmp_path / "registry" / "widget" / "-"
    folder.mkdir(parents=True)
    (folder / "widget-1.0.0.tgz").write_bytes(tarball)
    package = NpmPackage(
        name="widget", version="1.0.0", integrity=_integrity(tarball), directory="widget",
        files=(("package/dist/widget.js", "widget.js"), ("package/dist/img/", "images/")),
        license_file="package/LICENSE",
    )
    return {"url": (tmp_path / "registry").as_uri(), "package": package, "tarball_path": folder / "widget-1.0.0.tgz"}


def _leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.iterdir() if p.name.startswith(".") and p.name != ".")


def test_installs_the_chosen_files_with_licence_and_manifest(tmp_path, registry):
    target = tmp_path / "vendor"
    report = vendor_install(target=target, registry=registry["url"], packages=[registry["package"]], font=None)
    assert report.fetched == ("widget 1.0.0",)
    assert (target / "widget/widget.js").read_bytes() == b"window.widget = 1;\n"
    assert sorted(p.name for p in (target / "widget/images").iterdir()) == ["a.png", "b.png"]
    assert (target / "widget/LICENSE").read_text() == "Widget licence\n"
    assert not (target / "widget/README.md").exists()
    manifest = json.loads((target / "manifest.json").read_text())
    files = manifest["packages"]["widget"]["files"]
    assert set(files) == {"widget/widget.js", "widget/images/a.png", "widget/images/b.png", "widget/LICENSE"}
    assert files["widget/widget.js"] == hashlib.sha256(b"window.widget = 1;\n").hexdigest()
    assert _leftovers(target) == []


def test_integrity_mismatch_is_refused_and_writes_nothing(tmp_path, registry):
    target = tmp_path / "vendor"
    good = registry["package"]
    tampered = NpmPackage(**{**good.__dict__, "integrity": _integrity(b"another tarball")})
    with pytest.raises(VendorError) as caught:
        vendor_install(target=target, registry=registry["url"], packages=[tampered], font=None)
    message = str(caught.value)
    assert "widget-1.0.0.tgz" in message and "integrity" in message and "nothing was written" in message
    assert not (target / "widget").exists()
    assert not (target / "manifest.json").exists()
    assert list(target.iterdir()) == []


def test_a_tampered_refetch_keeps_the_good_copy(tmp_path, registry):
    target = tmp_path / "vendor"
    vendor_install(target=target, registry=registry["url"], packages=[registry["package"]], font=None)
    registry["tarball_path"].write_bytes(_tarball({"package/dist/widget.js": b"evil()", "package/LICENSE": b"x"}))
    with pytest.raises(VendorError, match="does not match its pinned integrity"):
        vendor_install(target=target, registry=registry["url"], packages=[registry["package"]], font=None, force=True)
    assert (target / "widget/widget.js").read_bytes() == b"window.widget = 1;\n"
    assert _leftovers(target) == []


def test_a_second_run_checks_the_manifest_and_fetches_nothing(tmp_path, registry):
    target = tmp_path / "vendor"
    vendor_install(target=target, registry=registry["url"], packages=[registry["package"]], font=None)
    registry["tarball_path"].unlink()  # a fetch now would fail
    again = vendor_install(target=target, registry=registry["url"], packages=[registry["package"]], font=None)
    assert again.fetched == () and again.kept == ("widget 1.0.0",)


def test_a_changed_or_missing_file_is_fetched_again(tmp_path, registry):
    target = tmp_path / "vendor"
    vendor_install(target=target, registry=registry["url"], packages=[registry["package"]], font=None)
    (target / "widget/widget.js").write_text("edited by hand")
    report = vendor_install(target=target, registry=registry["url"], packages=[registry["package"]], font=None)
    assert report.fetched == ("widget 1.0.0",)
    assert (target / "widget/widget.js").read_bytes() == b"window.widget = 1;\n"
    (target / "widget/images/a.png").unlink()
    assert vendor_install(target=target, registry=registry["url"], packages=[registry["package"]], font=None).fetched


def test_offline_error_names_the_url_and_what_to_do(tmp_path, registry):
    missing = (tmp_path / "no-registry-here").as_uri()
    with pytest.raises(VendorError) as caught:
        vendor_install(target=tmp_path / "vendor", registry=missing, packages=[registry["package"]], font=None)
    message = str(caught.value)
    assert f"{missing}/widget/-/widget-1.0.0.tgz" in message
    assert "ONEMAP_VENDOR_DIR" in message and "copy a .var/vendor" in message


def test_vendor_dir_honours_the_environment(tmp_path):
    assert vendor_dir({"ONEMAP_VENDOR_DIR": str(tmp_path / "v")}) == (tmp_path / "v").resolve()
    assert vendor_dir({"ONEMAP_VAR_DIR": str(tmp_path / "var")}) == (tmp_path / "var").resolve() / "vendor"


def test_pinned_packages_serve_the_contract_paths():
    served = {f"{p.directory}/{dest}" for p in PACKAGES for _, dest in p.files}
    assert {"leaflet/leaflet.js", "leaflet/leaflet.css", "leaflet/images/",
            "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js", "bootstrap/bootstrap.min.css",
            "swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css"} <= served
    versions = {p.name: p.version for p in PACKAGES}
    assert versions == {"leaflet": "1.9.4", "leaflet.vectorgrid": "1.3.0", "bootstrap": "5.3.3", "swagger-ui-dist": "5.36.0"}
    assert all(p.integrity.startswith("sha512-") and len(base64.b64decode(p.integrity[7:])) == 64 for p in PACKAGES)


def test_gb2312_level_one_has_its_3755_hanzi():
    chars = gb2312_level1()
    assert len(chars) == 3755
    assert all(CJK_IDEOGRAPH.fullmatch(c) for c in chars)
    assert {"啊", "座", "平", "等", "街"} <= chars  # first and last of level 1, and the demo street


def test_missing_system_font_names_the_debian_package(tmp_path):
    spec = FontSpec(source=tmp_path / "NotoSansCJK-Regular.ttc")
    with pytest.raises(VendorError, match=r"apt-get install fonts-noto-cjk"):
        vendor_install(target=tmp_path / "vendor", packages=(), font=spec)


@pytest.fixture(scope="module")
def built_font():
    """The project's real font subset (built by `onemap vendor`; quick when it is up to date)."""
    spec = FontSpec()
    if not spec.source.is_file():
        pytest.skip(f"{spec.source} is missing: apt-get install {spec.apt_package} (make test installs it)")
    report = vendor_install(packages=(), font=spec)
    return report.vendor_dir / "fonts" / spec.woff2_name


def test_font_covers_every_cjk_character_of_the_screen(built_font):
    from fontTools.ttLib import TTFont

    cmap = TTFont(built_font).getBestCmap()
    used = repository_cjk_characters(root=PROJECT_ROOT, dirs=("api/templates", "api/static"))
    used |= repository_cjk_characters(root=PROJECT_ROOT, dirs=("layers", "gis"))  # category labels the page shows
    ideographs = {c for c in used if CJK_IDEOGRAPH.fullmatch(c)}
    assert ideographs, "the templates hold no CJK text at all; the scan is broken"
    missing = sorted(c for c in ideographs if ord(c) not in cmap)
    assert not missing, f"the font lacks {''.join(missing)}; run `onemap vendor`"
    assert all(ord(c) in cmap for c in gb2312_level1())
    assert built_font.stat().st_size < 2_200_000
    css = (built_font.parent / "onemap-sans.css").read_text()
    assert 'font-family: "OneMap Sans"' in css and "url(onemap-sans.woff2)" in css
