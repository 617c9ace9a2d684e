"""Face regions as XMP (faceprint.library.xmp), checked against ExifTool as the independent party.

Real JPEGs are made with Pillow; ExifTool reads what faceprint writes (sidecars and embedded
packets) and writes what faceprint must import.  Coordinates are in the displayed frame (EXIF
orientation applied) on both sides, which the orientation test checks for all eight
orientations by looking at the pixel colour under each region ExifTool reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps, PngImagePlugin
from support import EXIF_TO_STORED

from faceprint.errors import InputError
from faceprint.library.xmp import (
    MAX_JPEG_PACKET,
    SIDECAR_STYLES,
    Region,
    XmpChange,
    build_sidecar,
    embed_in_jpeg,
    read_regions,
    read_xmp_packet,
    sidecar_path,
    write_sidecar,
)

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None,
    reason="ExifTool not installed (Debian: apt install libimage-exiftool-perl); it is the independent XMP reader/writer these tests check against",
)

W, H = 400, 300  # the displayed (upright) size
FACES = {"Alice": (40.0, 50.0, 80.0, 100.0), "Bob": (250.0, 120.0, 90.0, 110.0)}
COLOURS = {"Alice": (230, 20, 20), "Bob": (20, 20, 230)}
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


# --------------------------------------------------------------------------- helpers


def _upright() -> Image.Image:
    im = Image.new("RGB", (W, H), (128, 128, 128))
    draw = ImageDraw.Draw(im)
    for name, (x, y, w, h) in FACES.items():
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=COLOURS[name])
    return im


def _jpeg(path: Path, orientation: int = 1, *, exif: bool = True) -> Path:
    """A JPEG whose stored pixels are the upright picture under the inverse of ``orientation``."""
    im = _upright()
    if EXIF_TO_STORED[orientation] is not None:
        im = im.transpose(EXIF_TO_STORED[orientation])
    if exif:
        tags = Image.Exif()
        tags[0x0112] = orientation
        tags.get_ifd(0x8769)[0x9003] = "2021:07:14 10:00:00"  # DateTimeOriginal
        im.save(path, quality=95, exif=tags.tobytes())
    else:
        im.save(path, quality=95)
    return path


def _regions(*names: str) -> list[Region]:
    return [Region(n, FACES[n]) for n in names]


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"ExifTool reports a tag twice (a property spelt two ways?): {sorted(k for k in keys if keys.count(k) > 1)}"
    return dict(pairs)


def _exiftool(*args: object) -> list[dict]:
    """ExifTool's reading, every tag (-a: duplicates too, which fail the test: ExifTool names an unknown property
    after its XML name, so a misspelt one would pass for the real tag otherwise)."""
    out = subprocess.run([EXIFTOOL, "-j", "-a", "-struct", "-G1", "-n", *map(str, args)], capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout, out.stderr
    return json.loads(out.stdout, object_pairs_hook=_unique_keys)


def _exiftool_write(*args: object) -> None:
    subprocess.run([EXIFTOOL, "-q", "-q", "-overwrite_original", *map(str, args)], capture_output=True, text=True, timeout=60, check=True)


def _tag(info: dict, name: str):
    """A tag from ExifTool's -G1 JSON, whatever its group (``XMP-mwg-rs:RegionInfo`` for ``RegionInfo``)."""
    found = [v for k, v in info.items() if k.split(":")[-1] == name]
    assert len(found) <= 1, f"{name} found {len(found)} times in {sorted(info)}"
    return found[0] if found else None


def _as_list(value) -> list:
    return [] if value is None else value if isinstance(value, list) else [value]


def _xmp_warnings(path: Path) -> list[str]:
    """ExifTool's validation warnings about the XMP (Pillow's minimal Exif draws warnings of its own)."""
    out = subprocess.run([EXIFTOOL, "-validate", "-warning", "-a", "-s3", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return [line for line in (out.stdout + out.stderr).splitlines() if "xmp" in line.lower() or "region" in line.lower()]


def _inside(cx: float, cy: float, box: tuple[float, float, float, float]) -> bool:
    x, y, w, h = box
    return x <= cx <= x + w and y <= cy <= y + h


def _iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def _mwg_faces(info: dict) -> dict[str, tuple[float, float, float, float]]:
    """ExifTool's MWG face regions as name -> (centre x, centre y, w, h) in pixels of AppliedToDimensions."""
    region_info = _tag(info, "RegionInfo")
    dims = region_info["AppliedToDimensions"]
    out = {}
    for r in region_info["RegionList"]:
        if r.get("Type") == "Face":
            a = r["Area"]
            assert a["Unit"] == "normalized"
            out[r["Name"]] = (a["X"] * dims["W"], a["Y"] * dims["H"], a["W"] * dims["W"], a["H"] * dims["H"])
    return out


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """(marker, start, end) of the marker segments before the first non-APPn marker, and that marker's offset.

    Written here again, independently of the module, so the byte-preservation checks do not trust its parser."""
    assert data[:2] == b"\xff\xd8"
    pos, out = 2, []
    while True:
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        if not 0xE0 <= marker <= 0xEF:
            return out, pos
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        out.append((marker, pos, pos + 2 + length))
        pos += 2 + length


def _xmp_segments(data: bytes) -> list[bytes]:
    segments, _ = _jpeg_segments(data)
    return [data[s + 4 : e] for m, s, e in segments if m == 0xE1 and data[s + 4 : e].startswith(XMP_HEADER)]


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _no_temp_files(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- writing, read back by ExifTool


def test_sidecar_path_styles(tmp_path: Path) -> None:
    photo = tmp_path / "IMG_1.JPG"
    assert SIDECAR_STYLES == ("append", "replace")
    assert sidecar_path(photo) == tmp_path / "IMG_1.JPG.xmp"
    assert sidecar_path(photo, "replace") == tmp_path / "IMG_1.xmp"
    with pytest.raises(InputError, match="sidecar style"):
        sidecar_path(photo, "beside")
    # a bad setting fails when the settings load, named, not at the first export
    from faceprint.settings import Settings

    with pytest.raises(InputError, match=r"xmp_sidecar='beside' must be one of append, replace"):
        Settings.load(xmp_sidecar="beside")
    from support import run_cli

    Image.new("RGB", (64, 64)).save(photo, "JPEG")
    r = run_cli("detect", str(photo), env={"FACEPRINT_XMP_SIDECAR": "beside"})  # any command that loads the settings
    assert r.returncode == 2 and "xmp_sidecar='beside' must be one of append, replace" in r.stderr and "Traceback" not in r.stderr


@needs_exiftool
@pytest.mark.parametrize("style", SIDECAR_STYLES)
def test_sidecar_is_read_by_exiftool(tmp_path: Path, style: str) -> None:
    photo = _jpeg(tmp_path / "photo.jpg")
    regions = [*_regions("Alice", "Bob"), Region(None, (10.0, 10.0, 20.0, 20.0)), Region("  ", (300.0, 10.0, 20.0, 20.0))]
    change = write_sidecar(photo, regions, W, H, style=style)
    assert change == XmpChange(str(sidecar_path(photo, style)), "create", 2, ["Alice", "Bob"])
    sidecar = Path(change.path)
    text = sidecar.read_bytes()
    assert text.startswith('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'.encode())
    assert b"<lr:hierarchicalSubject>" in text  # Lightroom's spelling; ExifTool's tag name is HierarchicalSubject

    (info,) = _exiftool(sidecar)
    assert _tag(info, "Warning") is None
    assert not _xmp_warnings(sidecar)
    region_info = _tag(info, "RegionInfo")
    assert region_info["AppliedToDimensions"] == {"W": W, "H": H, "Unit": "pixel"}
    faces = _mwg_faces(info)
    assert sorted(faces) == ["Alice", "Bob"]  # the unnamed and the blank-named regions are not written
    for name, (cx, cy, w, h) in faces.items():
        assert _inside(cx, cy, FACES[name])
        assert (w, h) == pytest.approx(FACES[name][2:], abs=0.01)
    mp = {r["PersonDisplayName"]: [float(v) for v in r["Rectangle"].split(",")] for r in _tag(info, "RegionInfoMP")["Regions"]}
    assert sorted(mp) == ["Alice", "Bob"]
    for name, (left, top, w, h) in mp.items():
        assert (left * W, top * H, w * W, h * H) == pytest.approx(FACES[name], abs=0.01)
    assert _as_list(_tag(info, "TagsList")) == ["People/Alice", "People/Bob"]
    assert _as_list(_tag(info, "HierarchicalSubject")) == ["People|Alice", "People|Bob"]
    assert _as_list(_tag(info, "Subject")) == ["Alice", "Bob"]


@needs_exiftool
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_uses_the_displayed_frame(tmp_path: Path, orientation: int) -> None:
    photo = _jpeg(tmp_path / f"o{orientation}.jpg", orientation)
    with Image.open(photo) as im:
        stored = im.size
        upright = ImageOps.exif_transpose(im).convert("RGB")
    assert upright.size == (W, H)
    assert stored == ((H, W) if orientation >= 5 else (W, H))
    for name, (x, y, w, h) in FACES.items():  # the fixture itself: the upright picture has the faces where FACES says
        assert np.abs(np.subtract(upright.getpixel((x + w / 2, y + h / 2)), COLOURS[name])).max() < 40

    write_sidecar(photo, _regions("Alice", "Bob"), *upright.size)
    embed_in_jpeg(photo, _regions("Alice", "Bob"), *upright.size)
    sidecar_info, jpeg_info = _exiftool(sidecar_path(photo), photo)
    assert _tag(jpeg_info, "Orientation") == orientation
    for info in (sidecar_info, jpeg_info):
        assert _tag(info, "RegionInfo")["AppliedToDimensions"] == {"W": W, "H": H, "Unit": "pixel"}  # displayed, not stored
        faces = _mwg_faces(info)
        assert sorted(faces) == ["Alice", "Bob"]
        for name, (cx, cy, _, _) in faces.items():
            assert _inside(cx, cy, FACES[name])
            assert np.abs(np.subtract(upright.getpixel((cx, cy)), COLOURS[name])).max() < 40  # the face's own colour is under it

    back = read_regions(photo, W, H)
    assert sorted(r.name for r in back) == ["Alice", "Bob"]  # the sidecar's and the image's copies are one face each
    for region in back:
        assert region.source == "mwg"
        assert _iou(region.box, FACES[region.name]) > 0.95


# --------------------------------------------------------------------------- importing what others wrote


@needs_exiftool
def test_imports_regions_exiftool_wrote(tmp_path: Path) -> None:
    photo = _jpeg(tmp_path / "photo.jpg")
    sidecar = tmp_path / "photo.jpg.xmp"  # ExifTool creates an .xmp file from scratch when it does not exist
    _exiftool_write(
        "-RegionInfo={AppliedToDimensions={W=400,H=300,Unit=pixel},RegionList=["
        "{Area={X=0.25,Y=0.3,W=0.1,H=0.2,Unit=normalized},Name= Alice ,Type=Face},"
        "{Area={X=0.7,Y=0.7,W=0.2,H=0.2,Unit=normalized},Name=Rex,Type=Pet},"
        "{Area={X=0.5,Y=0.5,W=0.05,H=0.05,Unit=normalized},Name=AF point,Type=Focus}]}",
        "-RegionInfoMP={Regions=[{Rectangle=0.1|, 0.2|, 0.1|, 0.2,PersonDisplayName=Bob},"
        "{Rectangle=0.8|, 0.1|, 0.1|, 0.1,PersonDisplayName=ffffffffffffffff}]}",
        "-XMP-digiKam:TagsList=People/Dora",  # a name without a box: not a region
        sidecar,
    )
    # the same face in both schemas, embedded in the JPEG; the swapped AppliedToDimensions is a writer's slip
    _exiftool_write(
        "-RegionInfo={AppliedToDimensions={W=300,H=400,Unit=pixel},RegionList=[{Area={X=0.6,Y=0.5,W=0.2,H=0.3,Unit=normalized},Name=Carol,Type=Face}]}",
        "-RegionInfoMP={Regions=[{Rectangle=0.5|, 0.35|, 0.2|, 0.3,PersonDisplayName=Carol}]}",
        photo,
    )
    # an unnamed face in the Lightroom-style sidecar
    _exiftool_write(
        "-RegionInfo={AppliedToDimensions={W=400,H=300,Unit=pixel},RegionList=[{Area={X=0.1,Y=0.9,W=0.1,H=0.1,Unit=normalized},Type=Face}]}",
        tmp_path / "photo.xmp",
    )

    got = {r.name: r for r in read_regions(photo, W, H)}
    assert sorted(got, key=str) == ["Alice", "Bob", "Carol", None]
    assert got["Alice"].box == pytest.approx((80.0, 60.0, 40.0, 60.0))
    assert got["Alice"].source == "mwg"
    assert got["Bob"].box == pytest.approx((40.0, 60.0, 40.0, 60.0))
    assert got["Bob"].source == "mp"
    assert got["Carol"].box == pytest.approx((200.0, 105.0, 80.0, 90.0))
    assert got["Carol"].source == "mwg"  # written twice, returned once, the MWG copy
    assert got[None].box == pytest.approx((20.0, 255.0, 40.0, 30.0))


DIGIKAM_STYLE = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmp:Rating="2">
   <digiKam:TagsList>
    <rdf:Seq>
     <rdf:li>People/Alice</rdf:li>
    </rdf:Seq>
   </digiKam:TagsList>
  </rdf:Description>
  <rdf:Description rdf:about=""
    xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
    xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#"
    xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#">
   <mwg-rs:Regions rdf:parseType="Resource">
    <mwg-rs:AppliedToDimensions stDim:w="400" stDim:h="300" stDim:unit="pixel"/>
    <mwg-rs:RegionList>
     <rdf:Bag>
      <rdf:li>
       <rdf:Description mwg-rs:Name="Alice" mwg-rs:Type="Face">
        <mwg-rs:Area stArea:x="0.2" stArea:y="0.3" stArea:w="0.2" stArea:h="0.2" stArea:unit="normalized"/>
       </rdf:Description>
      </rdf:li>
      <rdf:li>
       <rdf:Description mwg-rs:Type="Face">
        <mwg-rs:Name>Edge</mwg-rs:Name>
        <mwg-rs:Area>
         <rdf:Description>
          <stArea:x>0.95</stArea:x>
          <stArea:y>0.5</stArea:y>
          <stArea:w>0.2</stArea:w>
          <stArea:h>0.2</stArea:h>
          <stArea:unit>normalized</stArea:unit>
         </rdf:Description>
        </mwg-rs:Area>
       </rdf:Description>
      </rdf:li>
      <rdf:li>
       <rdf:Description mwg-rs:Name="Flat" mwg-rs:Type="Face">
        <mwg-rs:Area stArea:x="0.5" stArea:y="0.5" stArea:w="0" stArea:h="0.2" stArea:unit="normalized"/>
       </rdf:Description>
      </rdf:li>
     </rdf:Bag>
    </mwg-rs:RegionList>
   </mwg-rs:Regions>
  </rdf:Description>
  <rdf:Description rdf:about=""
    xmlns:MP="http://ns.microsoft.com/photo/1.2/"
    xmlns:MPRI="http://ns.microsoft.com/photo/1.2/t/RegionInfo#"
    xmlns:MPReg="http://ns.microsoft.com/photo/1.2/t/Region#">
   <MP:RegionInfo rdf:parseType="Resource">
    <MPRI:Regions>
     <rdf:Bag>
      <rdf:li MPReg:Rectangle="0.1, 0.2, 0.2, 0.2" MPReg:PersonDisplayName="Alice"/>
      <rdf:li MPReg:Rectangle="0.6, 0.6, 0.1, 0.1"/>
     </rdf:Bag>
    </MPRI:Regions>
   </MP:RegionInfo>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


@needs_exiftool
def test_reads_attribute_form_as_exiv2_writes_it(tmp_path: Path) -> None:
    """Exiv2 (digiKam, darktable) writes structs as attributes, nested rdf:Description and rdf:li with property attributes."""
    sidecar = tmp_path / "photo.jpg.xmp"
    sidecar.write_text(DIGIKAM_STYLE)
    (info,) = _exiftool(sidecar)  # the fixture is valid RDF: ExifTool reads the same regions
    assert [r["Name"] for r in _tag(info, "RegionInfo")["RegionList"]] == ["Alice", "Edge", "Flat"]
    assert len(_tag(info, "RegionInfoMP")["Regions"]) == 2

    got = read_regions(tmp_path / "photo.jpg", W, H)  # the photo itself need not exist
    by_name = {r.name: r for r in got}
    assert sorted(by_name, key=str) == ["Alice", "Edge", None]  # Flat has no width; MP's Alice is MWG's Alice
    assert by_name["Alice"].box == pytest.approx((40.0, 60.0, 80.0, 60.0))
    assert by_name["Edge"].box == pytest.approx((340.0, 120.0, 60.0, 60.0))  # clamped to the picture
    assert by_name[None].box == pytest.approx((240.0, 180.0, 40.0, 30.0))
    assert by_name[None].source == "mp"
    assert read_xmp_packet(DIGIKAM_STYLE.encode(), W, H) == got


def test_reads_xmp_pillow_finds_in_other_formats(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", build_sidecar(None, _regions("Bob"), W, H).decode())
    _upright().save(photo, pnginfo=info)
    (region,) = read_regions(photo, W, H)
    assert region.name == "Bob" and _iou(region.box, FACES["Bob"]) > 0.99


# --------------------------------------------------------------------------- merging


@needs_exiftool
def test_merge_keeps_everything_else(tmp_path: Path) -> None:
    photo = _jpeg(tmp_path / "photo.jpg")
    sidecar = sidecar_path(photo)
    _exiftool_write(
        "-XMP:Rating=4",
        "-XMP-dc:Title=Holiday",
        "-XMP-digiKam:TagsList=Places/Beach",
        "-XMP-digiKam:TagsList=People/Zed",
        "-XMP-lr:HierarchicalSubject=Places|Beach",
        "-Subject=beach",
        "-XMP-tiff:Orientation#=6",
        "-RegionInfo={AppliedToDimensions={W=400,H=300,Unit=pixel},RegionList=["
        "{Area={X=0.9,Y=0.9,W=0.1,H=0.1,Unit=normalized},Name=Zed,Type=Face},"
        "{Area={X=0.5,Y=0.8,W=0.2,H=0.2,Unit=normalized},Name=Rex,Type=Pet}]}",
        sidecar,
    )
    os.chmod(sidecar, 0o640)

    change = write_sidecar(photo, _regions("Alice", "Bob"), W, H)
    assert (change.action, change.regions, change.names) == ("update", 2, ["Alice", "Bob"])
    assert oct(sidecar.stat().st_mode & 0o777) == oct(0o640)
    (info,) = _exiftool(sidecar)
    assert not _xmp_warnings(sidecar)
    assert _tag(info, "Rating") == 4
    assert _tag(info, "Title") == "Holiday"
    assert _tag(info, "Orientation") == 6
    assert _tag(info, "XMPToolkit").startswith("Image::ExifTool")
    assert _as_list(_tag(info, "TagsList")) == ["Places/Beach", "People/Alice", "People/Bob"]  # People/Zed was a person tag: ours now
    assert _as_list(_tag(info, "HierarchicalSubject")) == ["Places|Beach", "People|Alice", "People|Bob"]
    assert _as_list(_tag(info, "Subject")) == ["beach", "Alice", "Bob"]
    listed = [(r["Name"], r["Type"]) for r in _tag(info, "RegionInfo")["RegionList"]]
    assert listed == [("Alice", "Face"), ("Bob", "Face"), ("Rex", "Pet")]  # Zed's face replaced, the pet kept

    before = sidecar.read_bytes()
    again = write_sidecar(photo, _regions("Alice", "Bob"), W, H)
    assert again.action == "unchanged"
    assert sidecar.read_bytes() == before
    assert before.count(b"<rdf:li>Alice</rdf:li>") == 1

    write_sidecar(photo, _regions("Alice"), W, H)  # Bob untagged in faceprint
    (info,) = _exiftool(sidecar)
    assert _as_list(_tag(info, "TagsList")) == ["Places/Beach", "People/Alice"]
    assert _as_list(_tag(info, "Subject")) == ["beach", "Alice", "Bob"]  # dc:subject only ever gains: it may be the user's keyword
    assert [r["Name"] for r in _tag(info, "RegionInfo")["RegionList"]] == ["Alice", "Rex"]
    assert [r["PersonDisplayName"] for r in _tag(info, "RegionInfoMP")["Regions"]] == ["Alice"]


def test_build_sidecar_merges_attribute_form_and_keeps_unknown_namespaces() -> None:
    existing = DIGIKAM_STYLE.replace('xmp:Rating="2"', 'xmp:Rating="2" xmlns:acme="http://acme.example/ns/1.0/" acme:Mood="sunny"').encode()
    merged = build_sidecar(existing, _regions("Bob"), W, H)
    assert b'acme:Mood="sunny"' in merged and b'xmlns:acme="http://acme.example/ns/1.0/"' in merged
    assert b'xmp:Rating="2"' in merged
    assert [r.name for r in read_xmp_packet(merged, W, H)] == ["Bob"]  # Alice, Edge and the unnamed MP face replaced
    assert b"People/Alice" not in merged and b"People/Bob" in merged
    assert build_sidecar(merged, _regions("Bob"), W, H) == merged  # a fixed point
    misspelt = existing.replace(
        b"<digiKam:TagsList>", b"<lr:HierarchicalSubject><rdf:Bag><rdf:li>Places|Sea</rdf:li></rdf:Bag></lr:HierarchicalSubject><digiKam:TagsList>"
    )
    misspelt = misspelt.replace(b'xmlns:xmp="', b'xmlns:lr="http://ns.adobe.com/lightroom/1.0/" xmlns:xmp="')
    fixed = build_sidecar(misspelt, _regions("Bob"), W, H)
    assert b"HierarchicalSubject" not in fixed and b"<rdf:li>Places|Sea</rdf:li>" in fixed and b"<rdf:li>People|Bob</rdf:li>" in fixed
    empty = build_sidecar(None, [Region(None, FACES["Alice"])], W, H)  # nothing named: a valid, empty document
    assert read_xmp_packet(empty, W, H) == [] and b"mwg-rs" not in empty


# --------------------------------------------------------------------------- embedding in the JPEG


@needs_exiftool
def test_embed_merges_the_existing_packet_and_copies_every_other_byte(tmp_path: Path) -> None:
    photo = _jpeg(tmp_path / "photo.jpg", 6)
    _exiftool_write("-XMP:Rating=3", "-XMP-dc:Title=Portrait", photo)
    os.chmod(photo, 0o600)
    data = photo.read_bytes()
    assert len(_xmp_segments(data)) == 1
    segments, image_start = _jpeg_segments(data)
    assert data[image_start + 1] in (0xDB, 0xC0, 0xC4)  # DQT / SOF / DHT: where the image proper starts
    pixels = _pixels(photo)

    change = embed_in_jpeg(photo, _regions("Alice", "Bob"), W, H)
    assert change == XmpChange(str(photo), "update", 2, ["Alice", "Bob"])
    new = photo.read_bytes()
    _, new_image_start = _jpeg_segments(new)
    assert new[new_image_start:] == data[image_start:]  # DQT, SOF, DHT, SOS, entropy-coded data, EOI: byte for byte
    (packet,) = _xmp_segments(new)  # merged, not a second segment
    assert len(packet) - len(XMP_HEADER) <= MAX_JPEG_PACKET
    assert packet.rstrip().endswith(b'<?xpacket end="w"?>') and b" " * 100 in packet  # padded as XMP writers do
    assert oct(photo.stat().st_mode & 0o777) == oct(0o600)
    assert np.array_equal(_pixels(photo), pixels)

    (info,) = _exiftool(photo)
    assert not _xmp_warnings(photo)
    assert _tag(info, "Orientation") == 6
    assert _tag(info, "DateTimeOriginal") == "2021:07:14 10:00:00"
    assert _tag(info, "Rating") == 3 and _tag(info, "Title") == "Portrait"
    assert sorted(_mwg_faces(info)) == ["Alice", "Bob"]
    assert _as_list(_tag(info, "TagsList")) == ["People/Alice", "People/Bob"]

    assert embed_in_jpeg(photo, _regions("Alice", "Bob"), W, H).action == "unchanged"
    assert photo.read_bytes() == new
    _no_temp_files(tmp_path)


@needs_exiftool
def test_embed_inserts_a_new_segment_after_jfif_and_exif(tmp_path: Path) -> None:
    for photo in (_jpeg(tmp_path / "exif.jpg"), _jpeg(tmp_path / "plain.jpg", exif=False)):
        data = photo.read_bytes()
        segments, image_start = _jpeg_segments(data)
        assert not _xmp_segments(data)
        pixels = _pixels(photo)
        embed_in_jpeg(photo, _regions("Bob"), W, H)
        new = photo.read_bytes()
        new_segments, new_image_start = _jpeg_segments(new)
        assert new[new_image_start:] == data[image_start:]
        lead = [(m, data[s + 4 : s + 10]) for m, s, _ in segments]
        new_lead = [(m, new[s + 4 : s + 10]) for m, s, _ in new_segments]
        assert new_lead == [*lead, (0xE1, b"http:/")]  # Pillow writes APP0 JFIF (+ APP1 Exif): ours follows them
        assert new[: segments[-1][2]] == data[: segments[-1][2]]
        (info,) = _exiftool(photo)
        assert not _xmp_warnings(photo)
        assert sorted(_mwg_faces(info)) == ["Bob"]
        assert np.array_equal(_pixels(photo), pixels)


def test_embed_refuses_what_it_cannot_do_and_leaves_the_file(tmp_path: Path) -> None:
    photo = _jpeg(tmp_path / "photo.jpg")
    data = photo.read_bytes()
    many = [Region(f"Person number {i} " + "x" * 200, (i % 20 * 20.0, i // 20 * 15.0, 10.0, 10.0)) for i in range(300)]
    with pytest.raises(InputError, match="sidecars") as err:
        embed_in_jpeg(photo, many, W, H)
    assert err.value.source == str(photo)
    assert photo.read_bytes() == data
    assert write_sidecar(photo, many, W, H).regions == 300  # what a sidecar holds fine

    png = tmp_path / "photo.png"
    _upright().save(png)
    with pytest.raises(InputError, match="only supported for JPEG; use sidecars") as err:
        embed_in_jpeg(png, _regions("Alice"), W, H)
    assert err.value.source == str(png)
    _no_temp_files(tmp_path)


# --------------------------------------------------------------------------- hostile input

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:format>&lol9;</dc:format></rdf:Description>
</rdf:RDF></x:xmpmeta>"""

HOSTILE = {
    "billion laughs": (BILLION_LAUGHS, "DOCTYPE"),
    "doctype in UTF-16": (BILLION_LAUGHS.decode().encode("utf-16"), "DOCTYPE"),
    "garbage": (b"\x89PNG\r\n\x1a\n\x00\x00garbage\xff\xfe", "not valid utf-8 text"),
    "binary after a good start": (b'<x:xmpmeta xmlns:x="adobe:ns:meta/">\x00\x01\x02', "not well-formed"),
    "truncated": (DIGIKAM_STYLE.encode()[:700], "not well-formed"),
    "not XMP": (b"<html><body>hello</body></html>", "not an XMP document"),
    "nested too deep": (b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b"<a>" * 5000 + b"</a>" * 5000 + b"</x:xmpmeta>", "nested"),
}


@pytest.mark.parametrize("kind", [*HOSTILE, "17 MiB"])
def test_hostile_sidecars_are_refused_by_name_and_never_overwritten(tmp_path: Path, kind: str) -> None:
    photo = _jpeg(tmp_path / "photo.jpg")
    sidecar = sidecar_path(photo)
    if kind == "17 MiB":
        content, match = DIGIKAM_STYLE.encode().replace(b"</x:xmpmeta>", b" " * (17 * 1024 * 1024) + b"</x:xmpmeta>"), "16 MiB"
    else:
        content, match = HOSTILE[kind]
    sidecar.write_bytes(content)
    stamp = sidecar.stat().st_mtime_ns

    with pytest.raises(InputError, match=match) as err:
        read_regions(photo, W, H)
    assert err.value.source == str(sidecar) and str(sidecar) in str(err.value)
    for dry_run in (True, False):
        with pytest.raises(InputError, match=match) as err:
            write_sidecar(photo, _regions("Alice"), W, H, dry_run=dry_run)
        assert err.value.source == str(sidecar)
    assert sidecar.read_bytes() == content and sidecar.stat().st_mtime_ns == stamp
    _no_temp_files(tmp_path)
    if kind != "17 MiB":
        with pytest.raises(InputError, match=match):
            read_xmp_packet(content, W, H, source="upload")


def test_a_hostile_embedded_packet_is_refused_too(tmp_path: Path) -> None:
    photo = _jpeg(tmp_path / "photo.jpg", exif=False)
    data = photo.read_bytes()
    body = XMP_HEADER + BILLION_LAUGHS
    photo.write_bytes(data[:2] + b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body + data[2:])
    hostile = photo.read_bytes()
    with pytest.raises(InputError, match="DOCTYPE") as err:
        read_regions(photo, W, H)
    assert err.value.source == str(photo)
    with pytest.raises(InputError, match="DOCTYPE"):
        embed_in_jpeg(photo, _regions("Alice"), W, H)
    assert photo.read_bytes() == hostile


# --------------------------------------------------------------------------- dry runs


def test_dry_run_reports_and_writes_nothing(tmp_path: Path) -> None:
    photo = _jpeg(tmp_path / "photo.jpg")
    sidecar = sidecar_path(photo)
    assert write_sidecar(photo, _regions("Alice"), W, H, dry_run=True) == XmpChange(str(sidecar), "create", 1, ["Alice"])
    assert not sidecar.exists()
    assert write_sidecar(photo, _regions("Alice"), W, H).action == "create"
    written = sidecar.read_bytes()
    assert write_sidecar(photo, _regions("Alice", "Bob"), W, H, dry_run=True).action == "update"
    assert write_sidecar(photo, _regions("Alice"), W, H, dry_run=True).action == "unchanged"
    assert sidecar.read_bytes() == written

    data = photo.read_bytes()
    assert embed_in_jpeg(photo, _regions("Alice"), W, H, dry_run=True) == XmpChange(str(photo), "update", 1, ["Alice"])
    assert photo.read_bytes() == data
    _no_temp_files(tmp_path)
