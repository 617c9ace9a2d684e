"""Quality gating: which faces may be enrolled, and why not, in words a person understands.

Enrolment refuses a face that fails any check below; identification and photo
indexing keep every face but mark those under ``quality_mark_below`` as low
quality.  Every bar is a setting (:class:`faceprint.settings.Settings`):

==========================  =======  ===================================================
setting                     default  refuses
==========================  =======  ===================================================
quality_min_interocular     24       eyes closer than this many pixels (a small, far face)
quality_max_yaw             45       a head turned further to the side (degrees)
quality_max_pitch           30       a head tilted further up or down (degrees)
quality_enrol_min           30       a unified score below this (0-100); the message
                                     names the weakest components
==========================  =======  ===================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faceprint.errors import QualityRejected

if TYPE_CHECKING:
    from faceprint.quality.model import Quality
    from faceprint.settings import Settings

__all__ = ["enforce", "is_low", "problems"]

# what a weak component means, for the person at the camera
_PLAIN = {
    "interocular": "face too small",
    "face_size": "face too small",
    "yaw": "head turned to the side",
    "pitch": "head tilted up or down",
    "roll": "head tilted sideways",
    "sharpness": "image blurred",
    "exposure": "face too dark or too bright",
    "clipping": "parts of the face washed out or black",
    "contrast": "flat, low-contrast image",
    "detector": "face hard to make out",
    "recognizability": "face hard to recognise",
}


def _weakest(q: Quality, n: int = 2) -> str:
    scored = sorted((c.score, name) for name, c in q.components.items() if c.score is not None)
    parts = []
    for score, name in scored[:n]:
        if score < 100:
            words = _PLAIN[name]
            if name == "exposure" and q.components[name].raw is not None:
                words = "face too dark" if q.components[name].raw < 128 else "face too bright"
            parts.append(f"{words} ({name} {score}/100)")
    return "; weakest: " + ", ".join(parts) if parts else ""


def problems(q: Quality, settings: Settings) -> list[str]:
    """Why this face may not be enrolled (empty: it may)."""
    out = []
    c = q.components
    eyes = c["interocular"].raw
    if eyes is not None and eyes < settings.quality_min_interocular:
        out.append(f"face too small: {eyes:.0f} px between the eyes, {settings.quality_min_interocular:g} needed")
    yaw = c["yaw"].raw
    if yaw is not None and abs(yaw) > settings.quality_max_yaw:
        out.append(f"head turned too far to the side: {abs(yaw):.0f} degrees, at most {settings.quality_max_yaw:g} allowed")
    pitch = c["pitch"].raw
    if pitch is not None and abs(pitch) > settings.quality_max_pitch:
        out.append(f"head tilted too far {'up' if pitch > 0 else 'down'}: {abs(pitch):.0f} degrees, at most {settings.quality_max_pitch:g} allowed")
    if q.unified < settings.quality_enrol_min:
        out.append(f"face quality too low: {q.unified} of 100, {settings.quality_enrol_min:g} needed{_weakest(q)}")
    return out


def enforce(q: Quality, settings: Settings, *, source: str | None = None) -> None:
    """Raise :class:`QualityRejected` (with ``reasons``) when the face may not be enrolled."""
    reasons = problems(q, settings)
    if reasons:
        raise QualityRejected("; ".join(reasons), source=source, reasons=reasons)


def is_low(q: Quality | None, settings: Settings) -> bool:
    """Marked low quality (kept, but flagged) in identification and indexing."""
    return q is not None and q.unified < settings.quality_mark_below
