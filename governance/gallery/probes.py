"""The face of a probe photo: an erasure preview and a search both compare one face only.

A caller names it by its index among the detected faces (a search may also give its box); a
probe holding several faces and naming none is refused with ``MultipleFaces``.
"""

from __future__ import annotations

from biometrics.ports import Face
from governance.core.errors import InvalidInput

__all__ = ["MultipleFaces", "box_of", "face_at"]


class MultipleFaces(InvalidInput):
    """The probe holds several faces: say which one to compare."""

    code = "multiple-faces"


def box_of(face: Face) -> list[float]:
    """The face's box as a probe shows and records it: ``[x1, y1, x2, y2]``, to one decimal."""
    return [round(v, 1) for v in (face.box.x1, face.box.y1, face.box.x2, face.box.y2)]


def face_at(faces: list[Face], index: int) -> Face:
    """The face ``index`` names among the probe's detected faces.

    Raises InvalidInput when it names none of them.
    """
    if not 0 <= index < len(faces):
        raise InvalidInput(
            "face_index selects no face",
            fields={"face_index": [f"Must be between 0 and {len(faces) - 1}."]},
        )
    return faces[index]
