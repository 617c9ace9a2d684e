"""Face regions as XMP: what digiKam, Lightroom, darktable, ExifTool, Immich and PhotoPrism read and write.

faceprint's named faces become XMP face regions other programs show, and regions people
already tagged in those programs can be imported.  Two region schemas are read and written:

* **MWG regions** (Metadata Working Group, "Guidelines for Handling Image Metadata" 2.0):
  ``mwg-rs:Regions`` holds ``mwg-rs:AppliedToDimensions`` (``stDim:w``/``stDim:h``/``stDim:unit``)
  and a ``mwg-rs:RegionList`` bag of regions, each with ``mwg-rs:Name``, ``mwg-rs:Type``
  (``Face``, ``Pet``, ``Focus``, ``BarCode``) and ``mwg-rs:Area``: ``stArea:x``/``stArea:y`` the
  normalised *centre* of the region, ``stArea:w``/``stArea:h`` its normalised size.
* **Microsoft Photo regions** (Windows Photo Gallery, Picasa's second copy):
  ``MP:RegionInfo`` / ``MPRI:Regions`` bag of ``MPReg:Rectangle`` = ``"left, top, width, height"``
  normalised (top-left corner) and ``MPReg:PersonDisplayName``.

The coordinate frame
--------------------
faceprint's face boxes are ``(x, y, w, h)`` pixels of the image *as displayed*, i.e. after the
EXIF orientation is applied (what ``PIL.ImageOps.exif_transpose`` gives).  The MWG guidelines
put regions in that same frame: ``AppliedToDimensions`` is the displayed size (for EXIF
orientations 5-8 the stored width and height swapped; Picasa writes W 3456 H 5184 for a portrait
Canon photo stored 5184 x 3456 with orientation 6) and the normalised coordinates are relative to
the displayed picture.  The Microsoft schema uses the displayed frame too.  So nothing here ever
rotates a box: the caller passes the displayed width and height it measured, and normalised
values are scaled by them.  When ``AppliedToDimensions`` is absent, equal, swapped (a writer that
put the stored size there) or scaled (regions written against a RAW file's full size, read on
its smaller JPEG), the normalised values still hold against the displayed size; only a region in
pixel units (not in the MWG guidelines, but seen in the wild) needs ``AppliedToDimensions``.

Reading
-------
:func:`read_regions` reads the photo's sidecars (``photo.jpg.xmp``, the darktable / digiKam
style, and ``photo.xmp``, the Lightroom / Adobe style) and the XMP embedded in the image (for
JPEG the ``APP1`` segment headed ``http://ns.adobe.com/xap/1.0/\\0``, read here without decoding
the image; for other formats what Pillow reports as ``info["xmp"]``).  Writers differ in the RDF
forms they use (ExifTool writes element form with ``rdf:parseType="Resource"``; Exiv2, behind
digiKam and darktable, writes attribute form with nested ``rdf:Description`` and property
attributes on ``rdf:li``), so the reader accepts every RDF/XML form of a struct: element form,
attribute form, ``rdf:parseType="Resource"`` and any number of top-level ``rdf:Description``
blocks.  Only ``Type=Face`` regions are returned (a region without a type counts as a face); a
face written in both schemas, or in a sidecar and in the image, comes back once.  JPEG "extended
XMP" (``APP1`` segments headed ``http://ns.adobe.com/xmp/extension/``, for packets over 64 KB) is
neither read nor written; such segments are copied as they are.

Writing
-------
:func:`build_sidecar` merges faceprint's named regions into an existing XMP document: every other
property and namespace is kept as it was, the face regions of both schemas are replaced by ours
(non-face MWG regions stay), ``digiKam:TagsList`` and ``lr:hierarchicalSubject`` (ExifTool's ``HierarchicalSubject``) get
``People/<name>`` / ``People|<name>`` (their other entries stay, earlier ``People`` entries are
replaced) and ``dc:subject`` gains the names.  :func:`write_sidecar` writes it next to the photo,
:func:`embed_in_jpeg` into the JPEG itself.  Both write atomically (a temporary file in the same
folder, then ``os.replace``) and keep the file's permission bits.

The JPEG writer is our own, on purpose: it copies every byte of the file but the one XMP segment
(the Exif, ICC profile, quantisation tables and entropy-coded data are never re-encoded or
re-ordered), which no image library's save offers; and the one library that edits XMP in place,
Exiv2, is GPL, which this Apache-2.0 project cannot ship.  The XML is parsed with
:mod:`xml.etree.ElementTree` after refusing any DOCTYPE / ENTITY declaration (which removes
entity-expansion attacks such as "billion laughs") and anything over 16 MiB; a file that is not
well-formed XMP is an :class:`~faceprint.errors.InputError` naming it, and is never overwritten.
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
import os
import re
import stat
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image

from faceprint.errors import InputError
from faceprint.settings import CHOICES

__all__ = [
    "MAX_JPEG_PACKET",
    "MAX_XMP_BYTES",
    "NS",
    "SIDECAR_STYLES",
    "Region",
    "XmpChange",
    "build_sidecar",
    "embed_in_jpeg",
    "read_regions",
    "read_xmp_packet",
    "sidecar_path",
    "write_sidecar",
]

#: ``append``: ``photo.jpg.xmp`` (darktable, digiKam); ``replace``: ``photo.xmp`` (Lightroom, Bridge).
SIDECAR_STYLES = CHOICES["xmp_sidecar"]  # the xmp_sidecar setting and --sidecar

#: the largest XMP document read or merged: a sidecar, an embedded packet (16 MiB).
MAX_XMP_BYTES = 16 * 1024 * 1024

#: the largest packet one JPEG APP1 segment holds (the XMP specification's limit; larger needs
#: "extended XMP" split over several segments, which faceprint does not write: use sidecars).
MAX_JPEG_PACKET = 65502

#: the prefixes faceprint writes, and the namespaces they stand for.
NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "MP": "http://ns.microsoft.com/photo/1.2/",
    "MPRI": "http://ns.microsoft.com/photo/1.2/t/RegionInfo#",
    "MPReg": "http://ns.microsoft.com/photo/1.2/t/Region#",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_XML_NS = "http://www.w3.org/XML/1998/namespace"


def _q(prefix: str, local: str) -> str:
    """The ElementTree (Clark) name of ``prefix:local``."""
    return f"{{{NS[prefix]}}}{local}"


_RDF = NS["rdf"]
RDF_RDF, RDF_DESCRIPTION, RDF_LI, RDF_VALUE = _q("rdf", "RDF"), _q("rdf", "Description"), _q("rdf", "li"), _q("rdf", "value")
RDF_ABOUT, RDF_PARSETYPE, RDF_RESOURCE = _q("rdf", "about"), _q("rdf", "parseType"), _q("rdf", "resource")
RDF_BAG, RDF_SEQ, RDF_ALT = _q("rdf", "Bag"), _q("rdf", "Seq"), _q("rdf", "Alt")
_CONTAINERS = (RDF_BAG, RDF_SEQ, RDF_ALT)
_XMPMETA = (_q("x", "xmpmeta"), _q("x", "xapmeta"))

MWG_REGIONS, MWG_DIMS, MWG_LIST = _q("mwg-rs", "Regions"), _q("mwg-rs", "AppliedToDimensions"), _q("mwg-rs", "RegionList")
MWG_AREA, MWG_NAME, MWG_TYPE = _q("mwg-rs", "Area"), _q("mwg-rs", "Name"), _q("mwg-rs", "Type")
MP_INFO, MP_REGIONS = _q("MP", "RegionInfo"), _q("MPRI", "Regions")
MP_RECT, MP_NAME = _q("MPReg", "Rectangle"), _q("MPReg", "PersonDisplayName")
# Lightroom's property is lr:hierarchicalSubject, lower-case h (ExifTool calls the tag HierarchicalSubject);
# the upper-case spelling some tools wrote is read and replaced, never written.
DK_TAGS, LR_HIER, DC_SUBJECT = _q("digiKam", "TagsList"), _q("lr", "hierarchicalSubject"), _q("dc", "subject")
_LR_HIER_MISSPELT = _q("lr", "HierarchicalSubject")
#: the top-level properties a merge rewrites; everything else in a document is kept.
_OURS = (MWG_REGIONS, MP_INFO, DK_TAGS, LR_HIER, _LR_HIER_MISSPELT, DC_SUBJECT)

_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_MP_IGNORED = "ffffffffffffffff"  # Windows Photo Gallery's display name of a face the user chose to ignore
_MAX_DEPTH = 100  # XMP regions nest about ten deep; a deeper document is refused, not recursed into
_PACKET_ID = "W5M0MpCehiHzreSzNTczkc9d"
_JPEG_PADDING = 2048  # whitespace in an embedded packet, so other writers can grow it in place


@dataclass(frozen=True)
class Region:
    """One face region: a person's name (``None``: an unnamed face) and a box in displayed-image pixels."""

    name: str | None
    box: tuple[float, float, float, float]  # x, y, w, h in pixels of the image as displayed (EXIF orientation applied)
    source: str = "faceprint"  # "mwg" | "mp" when read; "faceprint" when we write


@dataclass
class XmpChange:
    """What a write did (or, with ``dry_run``, would do)."""

    path: str  # the file written: a sidecar or the image
    action: str  # "create" | "update" | "unchanged"
    regions: int  # face regions written
    names: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading XML safely


@dataclass
class _Doc:
    """A parsed XMP document: the root element and the namespace prefixes its text declared."""

    root: ET.Element
    prefixes: list[tuple[str, str]]  # (prefix, uri), in the order declared


_ENCODING_DECL = re.compile(rb"""\A\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_XML_DECL = re.compile(r"\A\s*<\?xml\s[^>]*\?>")
_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _decode(data: bytes, source: str) -> str:
    """The document's text: by its byte-order mark, its UTF-16 shape, its declared encoding, else UTF-8."""
    boms = [
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ]
    encoding = "utf-8"
    for bom, name in boms:
        if data.startswith(bom):
            data, encoding = data[len(bom) :], name
            break
    else:
        if data[:2] == b"<\x00":
            encoding = "utf-16-le"
        elif data[:2] == b"\x00<":
            encoding = "utf-16-be"
        elif m := _ENCODING_DECL.match(data):
            declared = m.group(1).decode("ascii").lower()
            if not declared.startswith(("utf-16", "utf-32", "ucs")):  # a wide encoding without its shape: the declaration is wrong
                encoding = declared
    try:
        return data.decode(encoding)
    except (LookupError, UnicodeDecodeError) as exc:
        raise InputError(f"XMP is not valid {encoding} text ({exc})", source=source) from None


def _parse(data: bytes, source: str) -> _Doc:
    """Parse an XMP document; :class:`InputError` naming ``source`` for anything unsafe or malformed."""
    if len(data) > MAX_XMP_BYTES:
        raise InputError(f"XMP is {len(data):,} bytes, over the {MAX_XMP_BYTES // (1024 * 1024)} MiB limit", source=source)
    text = _decode(data, source).strip("\ufeff\x00 \t\r\n")
    if _DTD.search(text):
        raise InputError("XMP contains a DOCTYPE/ENTITY declaration; refused (XMP never needs one, and entities can expand without bound)", source=source)
    text = _XML_DECL.sub("", text, count=1)  # it may name an encoding the text no longer has
    parser = ET.XMLPullParser(events=("start-ns", "start"))
    prefixes: list[tuple[str, str]] = []
    root: ET.Element | None = None
    try:
        parser.feed(text.encode("utf-8"))
        parser.close()
        for event, item in parser.read_events():
            if event == "start-ns":
                prefixes.append(item)
            elif root is None:
                root = item
    except ET.ParseError as exc:
        raise InputError(f"XMP is not well-formed XML ({exc})", source=source) from None
    if root is None:
        raise InputError("XMP is empty", source=source)
    if root.tag != RDF_RDF and root.tag not in _XMPMETA:
        raise InputError(f"not an XMP document (its root element is {root.tag!r}, not x:xmpmeta or rdf:RDF)", source=source)
    todo = [(root, 1)]
    while todo:
        node, depth = todo.pop()
        if depth > _MAX_DEPTH:
            raise InputError(f"XMP is nested more than {_MAX_DEPTH} elements deep", source=source)
        todo.extend((child, depth + 1) for child in node)
    return _Doc(root, prefixes)


# --------------------------------------------------------------------------- RDF values


def _attr_fields(el: ET.Element) -> dict[str, Any]:
    """Property attributes (attribute form of a struct's fields); rdf: and xml: attributes are syntax, not fields."""
    return {k: v for k, v in el.attrib.items() if k == RDF_VALUE or not k.startswith((f"{{{_RDF}}}", f"{{{_XML_NS}}}"))}


def _fields(node: ET.Element) -> dict[str, Any]:
    """A struct's fields: ``node``'s property attributes and property elements (the first of a repeated name wins)."""
    out = _attr_fields(node)
    for child in node:
        out.setdefault(child.tag, _value(child))
    return out


def _value(el: ET.Element) -> Any:
    """The value of a property element or ``rdf:li``, in any RDF/XML form: ``str``, ``list`` (Bag / Seq / Alt) or ``dict`` (struct)."""
    parse_type = el.get(RDF_PARSETYPE)
    if parse_type == "Resource":
        return _fields(el)
    if parse_type == "Literal":
        return "".join(el.itertext())
    children = list(el)
    if children:
        first = children[0]
        if first.tag in _CONTAINERS:
            return [_value(li) for li in first if li.tag == RDF_LI]
        if first.tag == RDF_DESCRIPTION:
            return {**_fields(first), **_attr_fields(el)}
        return _fields(el)  # fields directly inside the property element: not RDF, but unambiguous
    attrs = _attr_fields(el)
    if attrs:
        return attrs
    if (resource := el.get(RDF_RESOURCE)) is not None:
        return resource
    return el.text or ""


def _text(value: Any) -> str | None:
    """A simple value as text: a struct's ``rdf:value``, an array's first item, else ``None``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return _text(value.get(RDF_VALUE))
    if isinstance(value, list) and value:
        return _text(value[0])
    return None


def _items(value: Any) -> list[Any]:
    """An array's items (a single value where an array belongs counts as a one-item array)."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _number(value: Any) -> float | None:
    text = _text(value)
    if text is None:
        return None
    text = text.strip()
    for candidate in (text, text.replace(",", ".")):  # some writers used the locale's decimal comma
        with contextlib.suppress(ValueError):
            number = float(candidate)
            return number if math.isfinite(number) else None
    return None


def _top_properties(root: ET.Element) -> list[tuple[str, Any]]:
    """``(name, value)`` of every top-level property, over all ``rdf:RDF`` and ``rdf:Description`` blocks."""
    rdfs = [root] if root.tag == RDF_RDF else [el for el in root.iter(RDF_RDF)]
    out: list[tuple[str, Any]] = []
    for rdf in rdfs:
        for description in rdf:
            out.extend(_attr_fields(description).items())
            out.extend((child.tag, child) for child in description)
    return out


def _clean_name(name: Any) -> str | None:
    text = _text(name)
    text = text.strip() if text else ""
    return text or None


def _box(left: float, top: float, w: float, h: float, width: int, height: int) -> tuple[float, float, float, float] | None:
    """Pixels from a normalised top-left box, clamped to the picture; ``None`` for a box with no area."""
    if min(w, h) <= 0:
        return None
    x0, y0 = min(max(left, 0.0), 1.0), min(max(top, 0.0), 1.0)
    x1, y1 = min(max(left + w, 0.0), 1.0), min(max(top + h, 0.0), 1.0)
    if x1 <= x0 or y1 <= y0:
        return None
    return (float(x0 * width), float(y0 * height), float((x1 - x0) * width), float((y1 - y0) * height))  # plain floats, whatever the size's type


def _mwg_regions(value: Any, width: int, height: int) -> list[Region]:
    if not isinstance(value, dict):
        return []
    dims = value.get(MWG_DIMS) if isinstance(value.get(MWG_DIMS), dict) else {}
    dim_w, dim_h = _number(dims.get(_q("stDim", "w"))), _number(dims.get(_q("stDim", "h")))
    out = []
    for item in _items(value.get(MWG_LIST)):
        if not isinstance(item, dict):
            continue
        kind = (_text(item.get(MWG_TYPE)) or "Face").strip()
        if kind.lower() != "face":
            continue
        area = item.get(MWG_AREA)
        if not isinstance(area, dict):
            continue
        cx, cy, w, h = (_number(area.get(_q("stArea", k))) for k in "xywh")
        if cx is None or cy is None or w is None or h is None:
            continue
        if (_text(area.get(_q("stArea", "unit"))) or "normalized").strip().lower() == "pixel":
            if not dim_w or not dim_h or dim_w <= 0 or dim_h <= 0:
                continue
            cx, w, cy, h = cx / dim_w, w / dim_w, cy / dim_h, h / dim_h
        cx, cy, w, h = (min(max(v, 0.0), 1.0) for v in (cx, cy, w, h))
        if (box := _box(cx - w / 2, cy - h / 2, w, h, width, height)) is not None:
            out.append(Region(_clean_name(item.get(MWG_NAME)), box, "mwg"))
    return out


def _mp_regions(value: Any, width: int, height: int) -> list[Region]:
    if not isinstance(value, dict):
        return []
    out = []
    for item in _items(value.get(MP_REGIONS)):
        if not isinstance(item, dict):
            continue
        name = _clean_name(item.get(MP_NAME))
        if name is not None and name.lower() == _MP_IGNORED:
            continue
        parts = [_number(p) for p in (_text(item.get(MP_RECT)) or "").split(",")]
        if len(parts) != 4 or any(p is None for p in parts):
            continue
        left, top, w, h = (min(max(p, 0.0), 1.0) for p in parts)  # type: ignore[type-var]
        if (box := _box(left, top, w, h, width, height)) is not None:
            out.append(Region(name, box, "mp"))
    return out


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _dedupe(regions: list[Region]) -> list[Region]:
    """One region per face: the same box (IoU >= 0.5) with the same name, or a name on one side only, is one face.

    MWG regions come first, so they win; an unnamed one takes the name of the duplicate it absorbs."""
    kept: list[Region] = []
    for region in sorted(regions, key=lambda r: r.source != "mwg"):  # stable: MWG first, each in reading order
        for i, other in enumerate(kept):
            if (region.name == other.name or region.name is None or other.name is None) and _iou(region.box, other.box) >= 0.5:
                if other.name is None and region.name is not None:
                    kept[i] = Region(region.name, other.box, other.source)
                break
        else:
            kept.append(region)
    return kept


def _check_size(width: int, height: int) -> None:
    if not (isinstance(width, numbers.Real) and isinstance(height, numbers.Real) and width > 0 and height > 0):  # NumPy's too
        raise InputError(f"the displayed image size must be positive, not {width} x {height}")


def _regions_of(doc: _Doc, width: int, height: int) -> list[Region]:
    out: list[Region] = []
    for name, value in _top_properties(doc.root):
        if name == MWG_REGIONS and isinstance(value, ET.Element):
            out.extend(_mwg_regions(_value(value), width, height))
        elif name == MP_INFO and isinstance(value, ET.Element):
            out.extend(_mp_regions(_value(value), width, height))
    return out


def read_xmp_packet(data: bytes, width: int, height: int, *, source: str = "XMP packet") -> list[Region]:
    """The face regions of one XMP document (a sidecar's bytes, an embedded packet), in pixels of a
    ``width`` x ``height`` displayed image; duplicates removed.  :class:`InputError` naming ``source``
    when the document is malformed, oversized or declares a DOCTYPE."""
    _check_size(width, height)
    return _dedupe(_regions_of(_parse(data, source), width, height))


def _read_limited(path: Path) -> bytes:
    """A sidecar's bytes; :class:`InputError` when it is over :data:`MAX_XMP_BYTES` or unreadable."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_XMP_BYTES:
                raise InputError(f"XMP is {size:,} bytes, over the {MAX_XMP_BYTES // (1024 * 1024)} MiB limit", source=str(path))
            data = f.read(MAX_XMP_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the XMP ({exc.strerror or exc})", source=str(path)) from None
    if len(data) > MAX_XMP_BYTES:
        raise InputError(f"XMP is over the {MAX_XMP_BYTES // (1024 * 1024)} MiB limit", source=str(path))
    return data


# --------------------------------------------------------------------------- JPEG segments


@dataclass
class _Segment:
    marker: int  # the byte after 0xFF
    start: int  # offset of its first byte (fill bytes included)
    end: int  # offset just past it
    payload: bytes | None  # the data after the length, for APP1 segments only


def _scan_jpeg(f: BinaryIO) -> tuple[list[_Segment], bool]:
    """The marker segments of a JPEG before its image data, and whether the scan reached SOS.

    Reads only the header: payloads of segments other than APP1 are skipped, not read."""
    if f.read(2) != b"\xff\xd8":
        return [], False
    segments: list[_Segment] = []
    pos = 2
    while True:
        start = pos
        byte = f.read(1)
        if byte != b"\xff":
            return segments, False
        marker = 0xFF
        while marker == 0xFF:  # fill bytes
            nxt = f.read(1)
            if not nxt:
                return segments, False
            marker, pos = nxt[0], pos + 1
        pos += 1
        if marker == 0xDA:  # start of scan: the image data follows
            return segments, True
        if marker in (0xD9, 0x01) or 0xD0 <= marker <= 0xD7:
            return segments, False
        raw = f.read(2)
        if len(raw) < 2 or (length := int.from_bytes(raw, "big")) < 2:
            return segments, False
        payload = None
        if marker == 0xE1:
            payload = f.read(length - 2)
            if len(payload) < length - 2:
                return segments, False
        else:
            f.seek(length - 2, os.SEEK_CUR)
        pos += length
        segments.append(_Segment(marker, start, pos, payload))


def _is_jpeg(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(3) == b"\xff\xd8\xff"


def _embedded_packets(photo: Path) -> list[bytes]:
    """The XMP packets embedded in the image: JPEG APP1 segments, else what Pillow reads (PNG, TIFF, WebP, ...)."""
    try:
        if _is_jpeg(photo):
            with photo.open("rb") as f:
                segments, _ = _scan_jpeg(f)
            return [s.payload[len(_JPEG_XMP_HEADER) :] for s in segments if s.payload is not None and s.payload.startswith(_JPEG_XMP_HEADER)]
        with Image.open(photo) as im:
            data = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
            if data is None and hasattr(im, "tag_v2"):
                data = im.tag_v2.get(700)  # TIFF's XMP tag
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return []  # not an image Pillow opens (a video, a RAW it does not know): sidecars only
    if isinstance(data, str):
        data = data.encode("utf-8")
    return [bytes(data)] if isinstance(data, bytes | bytearray) and data else []


def sidecar_path(photo: Path, style: str = "append") -> Path:
    """The sidecar of ``photo``: ``photo.jpg.xmp`` (``append``: darktable, digiKam) or ``photo.xmp`` (``replace``: Lightroom)."""
    photo = Path(photo)
    if style == "append":
        return photo.with_name(photo.name + ".xmp")
    if style == "replace":
        return photo.with_suffix(".xmp")
    raise InputError(f"unknown sidecar style {style!r}; use one of {', '.join(SIDECAR_STYLES)}")


def read_regions(photo: Path, width: int, height: int) -> list[Region]:
    """Every face region other programs recorded for ``photo``: in its sidecars (``photo.jpg.xmp`` and
    ``photo.xmp``) and in the XMP embedded in the image, as boxes in pixels of the ``width`` x ``height``
    displayed image (EXIF orientation applied).  Non-face regions are left out, a face recorded twice
    (both schemas, or sidecar and image) comes back once, MWG's copy preferred.  A malformed,
    oversized or DOCTYPE-declaring sidecar or packet is an :class:`InputError` naming it."""
    photo = Path(photo)
    _check_size(width, height)
    found: list[Region] = []
    seen: set[Path] = set()
    for style in SIDECAR_STYLES:
        path = sidecar_path(photo, style)
        if path in seen or path == photo or not path.is_file():
            continue
        seen.add(path)
        found.extend(_regions_of(_parse(_read_limited(path), str(path)), width, height))
    if photo.is_file():
        for packet in _embedded_packets(photo):
            found.extend(_regions_of(_parse(packet, str(photo)), width, height))
    return _dedupe(found)


# --------------------------------------------------------------------------- writing


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _fmt(value: float) -> str:
    """A normalised coordinate: six decimals (a hundredth of a pixel at 10,000 pixels), no trailing zeros."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _named(regions: list[Region], width: int, height: int) -> list[tuple[str, float, float, float, float]]:
    """``(name, left, top, w, h)`` normalised and clamped, for the regions that have a name and an area."""
    out = []
    for region in regions:
        name = _XML_INVALID.sub("", region.name or "").strip()
        if not name:
            continue
        x, y, w, h = (float(v) for v in region.box)
        x0, y0 = min(max(x / width, 0.0), 1.0), min(max(y / height, 0.0), 1.0)
        x1, y1 = min(max((x + w) / width, 0.0), 1.0), min(max((y + h) / height, 0.0), 1.0)
        if x1 > x0 and y1 > y0 and all(map(math.isfinite, (x0, y0, x1, y1))):
            out.append((name, x0, y0, x1 - x0, y1 - y0))
    return out


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    el.text = text
    return el


def _resource(parent: ET.Element, tag: str) -> ET.Element:
    return _sub(parent, tag, **{RDF_PARSETYPE: "Resource"})


def _array(parent: ET.Element, tag: str, kind: str, items: list[str]) -> None:
    container = _sub(_sub(parent, tag), kind)
    for item in items:
        _sub(container, RDF_LI, item)


def _mwg_li_kept(li: ET.Element) -> bool:
    """Whether an existing MWG region stays: any region that is not a face (Pet, Focus, BarCode)."""
    value = _value(li)
    kind = _text(value.get(MWG_TYPE)) if isinstance(value, dict) else None
    return kind is not None and kind.strip().lower() not in ("", "face")


def _existing_mwg_kept(el: ET.Element) -> list[ET.Element]:
    """The ``rdf:li`` elements of an existing ``mwg-rs:Regions`` that are kept (non-face regions)."""
    struct = el
    if el.get(RDF_PARSETYPE) != "Resource":
        struct = next((c for c in el if c.tag == RDF_DESCRIPTION), el)
    kept = []
    for region_list in struct.iter(MWG_LIST):
        for container in region_list:
            if container.tag in _CONTAINERS:
                kept.extend(li for li in container if li.tag == RDF_LI and _mwg_li_kept(li))
        break
    return kept


def _merge(doc: _Doc | None, regions: list[Region], width: int, height: int) -> tuple[ET.Element, list[tuple[str, str]], int, list[str]]:
    """The merged document's root (an ``x:xmpmeta``), prefixes, regions written and names written."""
    named = _named(regions, width, height)
    names = list(dict.fromkeys(n for n, *_ in named))
    if doc is None:
        root = ET.Element(_q("x", "xmpmeta"), {_q("x", "xmptk"): "faceprint"})
        prefixes: list[tuple[str, str]] = []
    elif doc.root.tag == RDF_RDF:
        root = ET.Element(_q("x", "xmpmeta"), {_q("x", "xmptk"): "faceprint"})
        root.append(doc.root)
        prefixes = doc.prefixes
    else:
        root, prefixes = doc.root, doc.prefixes
    rdfs = list(root.iter(RDF_RDF))
    if not rdfs:
        rdfs = [ET.SubElement(root, RDF_RDF)]

    # What the document had: non-face MWG regions, the tag lists; then remove our properties everywhere.
    kept_regions: list[ET.Element] = []
    old: dict[str, list[str]] = {DK_TAGS: [], LR_HIER: [], DC_SUBJECT: []}
    about = next((d.get(RDF_ABOUT, "") for rdf in rdfs for d in rdf if d.get(RDF_ABOUT) is not None), "")
    for rdf in rdfs:
        for description in list(rdf):
            touched = False
            for key in _OURS:
                if key in description.attrib:
                    if (list_key := LR_HIER if key == _LR_HIER_MISSPELT else key) in old:
                        old[list_key].append(description.attrib[key])
                    del description.attrib[key]
                    touched = True
            for child in list(description):
                if child.tag not in _OURS:
                    continue
                if child.tag == MWG_REGIONS:
                    kept_regions.extend(_existing_mwg_kept(child))
                elif (list_key := LR_HIER if child.tag == _LR_HIER_MISSPELT else child.tag) in old:
                    old[list_key].extend(t for t in (_text(v) for v in _items(_value(child))) if t)
                description.remove(child)
                touched = True
            if touched and len(description) == 0 and not _attr_fields(description):
                rdf.remove(description)

    ours = ET.Element(RDF_DESCRIPTION, {RDF_ABOUT: about})
    if named or kept_regions:
        info = _resource(ours, MWG_REGIONS)
        dims = _resource(info, MWG_DIMS)
        _sub(dims, _q("stDim", "w"), str(int(round(width))))
        _sub(dims, _q("stDim", "h"), str(int(round(height))))
        _sub(dims, _q("stDim", "unit"), "pixel")
        bag = _sub(_sub(info, MWG_LIST), RDF_BAG)
        for name, left, top, w, h in named:
            li = _resource(bag, RDF_LI)
            area = _resource(li, MWG_AREA)
            for key, val in (("x", left + w / 2), ("y", top + h / 2), ("w", w), ("h", h)):
                _sub(area, _q("stArea", key), _fmt(val))
            _sub(area, _q("stArea", "unit"), "normalized")
            _sub(li, MWG_NAME, name)
            _sub(li, MWG_TYPE, "Face")
        bag.extend(kept_regions)
    if named:
        mp_bag = _sub(_sub(_resource(ours, MP_INFO), MP_REGIONS), RDF_BAG)
        for name, left, top, w, h in named:
            li = _resource(mp_bag, RDF_LI)
            _sub(li, MP_NAME, name)
            _sub(li, MP_RECT, ", ".join(_fmt(v) for v in (left, top, w, h)))
    tags = [t for t in dict.fromkeys(old[DK_TAGS]) if not t.startswith("People/")] + [f"People/{n}" for n in names]
    hier = [t for t in dict.fromkeys(old[LR_HIER]) if not t.startswith("People|")] + [f"People|{n}" for n in names]
    subject = list(dict.fromkeys([*old[DC_SUBJECT], *names]))
    for tag, kind, items in ((DK_TAGS, RDF_SEQ, tags), (LR_HIER, RDF_BAG, hier), (DC_SUBJECT, RDF_BAG, subject)):
        if items:
            _array(ours, tag, kind, items)
    if len(ours):
        rdfs[0].append(ours)
    return root, prefixes, len(named), names


# --------------------------------------------------------------------------- serialising


def _escape(text: str, attribute: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if attribute:
        text = text.replace('"', "&quot;").replace("\n", "&#xA;").replace("\r", "&#xD;").replace("\t", "&#x9;")
    else:
        text = text.replace("\r", "&#xD;")
    return text


class _Writer:
    """XML text with the document's own prefixes kept (ElementTree's writer renames them ns0, ns1, ...).

    Elements are indented one space a level and whitespace between elements is not kept, except
    inside an XML literal (``rdf:parseType="Literal"``), whose content is copied as it is."""

    def __init__(self, prefixes: list[tuple[str, str]]) -> None:
        self.prefix: dict[str, str] = {_XML_NS: "xml"}
        self.used = {"xml", "xmlns"}
        for prefix, uri in [*((p, u) for p, u in NS.items()), *prefixes]:
            self._ensure(uri, prefix)

    def _ensure(self, uri: str, wanted: str = "ns") -> str:
        if uri not in self.prefix:
            base = wanted if re.fullmatch(r"[A-Za-z_][\w.-]*", wanted or "") and not wanted.lower().startswith("xml") else "ns"
            candidate, n = base, 1
            while candidate in self.used:
                candidate, n = f"{base}{n}", n + 1
            self.prefix[uri] = candidate
            self.used.add(candidate)
        return self.prefix[uri]

    @staticmethod
    def _uri(name: str) -> str | None:
        return name[1:].split("}", 1)[0] if name.startswith("{") else None

    def name(self, name: str) -> str:
        uri = self._uri(name)
        return name if uri is None else f"{self._ensure(uri)}:{name.split('}', 1)[1]}"

    def _namespaces(self, el: ET.Element, deep: bool) -> list[str]:
        uris: dict[str, None] = {}
        for node in el.iter() if deep else [el]:
            for name in (node.tag, *node.attrib):
                if isinstance(name, str) and (uri := self._uri(name)) and uri != _XML_NS:
                    uris[uri] = None
        return list(uris)

    def element(self, el: ET.Element, indent: int, declared: frozenset[str], out: list[str], *, top: bool = False, raw: bool = False) -> None:
        """Append ``el`` to ``out``; ``top``: a child of ``rdf:RDF``, which declares every namespace its subtree uses, as XMP writers do."""
        new = [u for u in self._namespaces(el, top) if u not in declared]
        declared = declared | set(new)
        attrs = [f'xmlns:{self._ensure(u)}="{_escape(u, True)}"' for u in new]
        attrs += [f'{self.name(k)}="{_escape(v, True)}"' for k, v in el.attrib.items()]
        head = self.name(el.tag)
        pad = "" if raw else " " * indent
        if len(attrs) > 2 and not raw:
            open_tag = f"{pad}<{head}" + "".join(f"\n{pad}    {a}" for a in attrs)
        else:
            open_tag = f"{pad}<{head}" + "".join(f" {a}" for a in attrs)
        children = list(el)
        raw_inside = raw or el.get(RDF_PARSETYPE) == "Literal" or any((t or "").strip() for t in (el.text, *(c.tail for c in children)))
        end = "" if raw else "\n"
        if not children:
            out.append(f"{open_tag}>{_escape(el.text)}</{head}>{end}" if el.text else f"{open_tag}/>{end}")
        elif raw_inside:  # an XML literal (or mixed content): its whitespace is data
            out.append(f"{open_tag}>{_escape(el.text or '')}")
            for child in children:
                self.element(child, 0, declared, out, raw=True)
                out.append(_escape(child.tail or ""))
            out.append(f"</{head}>{end}")
        else:
            out.append(f"{open_tag}>\n")
            for child in children:
                self.element(child, indent + 1, declared, out, top=el.tag == RDF_RDF)
            out.append(f"{pad}</{head}>\n")


def _serialize(root: ET.Element, prefixes: list[tuple[str, str]], padding: int = 0) -> bytes:
    """The XMP packet: ``<?xpacket begin ...?>``, the document, ``padding`` bytes of whitespace, ``<?xpacket end="w"?>``."""
    parts: list[str] = [f'<?xpacket begin="\ufeff" id="{_PACKET_ID}"?>\n']
    _Writer(prefixes).element(root, 0, frozenset(), parts)
    if padding > 0:
        lines, rest = divmod(padding, 101)
        parts.append((" " * 100 + "\n") * lines + " " * rest)
    parts.append('<?xpacket end="w"?>')
    return "".join(parts).encode("utf-8")


def _merged(existing: bytes | None, regions: list[Region], width: int, height: int, source: str) -> tuple[ET.Element, list[tuple[str, str]], int, list[str]]:
    _check_size(width, height)
    doc = _parse(existing, source) if existing is not None and existing.strip(b"\x00 \t\r\n") else None
    return _merge(doc, regions, width, height)


def build_sidecar(existing: bytes | None, regions: list[Region], width: int, height: int) -> bytes:
    """A complete XMP document with ``regions`` (those with a name) as MWG and Microsoft face regions
    plus ``People/<name>`` tags, merged into ``existing`` (an XMP document's bytes, or ``None``) with
    everything else in it kept.  ``width`` x ``height``: the displayed size the boxes are in."""
    root, prefixes, _, _ = _merged(existing, regions, width, height, "existing XMP")
    return _serialize(root, prefixes)


def _mode_of(path: Path) -> int:
    """The permission bits a rewritten file keeps; a new sidecar is private (0600): it names
    people and says where their faces are."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    return 0o600


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``:
    readers see the old file or the new one, never half of one (a symlink's target is written)."""
    target = path.resolve() if path.is_symlink() else path
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise InputError(f"cannot write next to the file ({exc.strerror or exc})", source=str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write ({exc.strerror or exc})", source=str(path)) from None
        raise


def write_sidecar(photo: Path, regions: list[Region], width: int, height: int, *, style: str = "append", dry_run: bool = False) -> XmpChange:
    """Write ``regions`` into ``photo``'s sidecar (created, or merged into the one there); see :func:`build_sidecar`.

    An existing sidecar that cannot be read as XMP raises :class:`InputError` and is left as it is."""
    photo = Path(photo)
    path = sidecar_path(photo, style)
    existing = None
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise InputError("the sidecar path exists and is not a file", source=str(path))
        existing = _read_limited(path)
    root, prefixes, count, names = _merged(existing, regions, width, height, str(path))
    data = _serialize(root, prefixes)
    action = "create" if existing is None else ("unchanged" if data == existing else "update")
    if not dry_run and action != "unchanged":
        _atomic_write(path, data, _mode_of(path))
    return XmpChange(str(path), action, count, names)


def embed_in_jpeg(photo: Path, regions: list[Region], width: int, height: int, *, dry_run: bool = False) -> XmpChange:
    """Write ``regions`` into the JPEG's own XMP (the ``APP1`` segment headed ``http://ns.adobe.com/xap/1.0/``),
    merged into the packet there as :func:`build_sidecar` does, or in a new segment after the JFIF / Exif ones.

    Every other byte of the file is copied as it is: nothing is decoded or re-encoded.  A packet over
    :data:`MAX_JPEG_PACKET` bytes (extended XMP is not written) or a file that is not a JPEG raises
    :class:`InputError`, leaving the file untouched."""
    photo = Path(photo)
    source = str(photo)
    try:
        data = photo.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the photo ({exc.strerror or exc})", source=source) from None
    if not data.startswith(b"\xff\xd8\xff"):
        raise InputError("embedding is only supported for JPEG; use sidecars", source=source)
    segments, complete = _scan_jpeg(io.BytesIO(data))
    if not complete:
        raise InputError("the JPEG's marker segments are damaged or truncated before the image data; not written", source=source)
    xmp = [s for s in segments if s.payload is not None and s.payload.startswith(_JPEG_XMP_HEADER)]
    if len(xmp) > 1:
        raise InputError(f"the JPEG holds {len(xmp)} XMP segments, where one belongs; not written (repair it, e.g. with exiftool)", source=source)
    existing = xmp[0].payload[len(_JPEG_XMP_HEADER) :] if xmp else None  # type: ignore[index]
    root, prefixes, count, names = _merged(existing, regions, width, height, source)
    packet = _serialize(root, prefixes)
    if len(packet) > MAX_JPEG_PACKET:
        raise InputError(
            f"the XMP packet would be {len(packet):,} bytes, over the {MAX_JPEG_PACKET:,} one JPEG segment holds; write sidecars instead",
            source=source,
        )
    packet = _serialize(root, prefixes, padding=min(_JPEG_PADDING, MAX_JPEG_PACKET - len(packet)))
    body = _JPEG_XMP_HEADER + packet
    segment = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    if xmp:
        new = data[: xmp[0].start] + segment + data[xmp[0].end :]
    else:
        at = 2  # after SOI, the JFIF APP0 and the Exif APP1 that lead the file
        for s in segments:
            if s.marker == 0xE0 or (s.marker == 0xE1 and s.payload is not None and s.payload.startswith(b"Exif\x00")):
                at = s.end
            else:
                break
        new = data[:at] + segment + data[at:]
    action = "unchanged" if new == data else "update"
    if not dry_run and action == "update":
        _atomic_write(photo, new, _mode_of(photo))
    return XmpChange(source, action, count, names)
