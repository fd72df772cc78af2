"""Where the procedural toon faces (gan.data.toon) have their 5 landmarks: ground truth for the
alignment tests and the toon alignment template.

The positions restate the drawing geometry of gan.data.toon (eye centres, nose tip, mouth
corners relative to the face centre and size), then apply the pose the way `render_toon` does:
the head rotates counter-clockwise about the picture's centre, then moves by `translate`.
If the drawing changes, tests/gan/test_photo_align.py notices (aligned renders stop matching).
"""

from __future__ import annotations

import math

import numpy as np

from gan.data.toon import MOUTHS, ToonIdentity, ToonPose

FACE_CENTRE = (0.5, 0.45)  # where gan.data.toon draws the head, image units


def toon_landmarks(identity: ToonIdentity, style: str, pose: ToonPose | None = None) -> np.ndarray:
    """float64 [5, 2] (x, y) in image units (0..1): left eye, right eye, nose, mouth left and right."""
    pose = pose if pose is not None else ToonPose()
    cx, cy = FACE_CENTRE
    fw, fh = identity.face_width, identity.face_height
    anime = style == "anime"
    half = fw * (0.4 + 0.08 * identity.eye_spacing) + (0.05 * fw if anime else 0.0)
    ey = cy + fh * (0.12 if anime else 0.02)
    my = cy + fh * 0.66
    kind = MOUTHS[identity.mouth]
    if anime:
        nose = (cx - fw * 0.005, cy + fh * 0.395)  # the middle of the short nose stroke
        mw = fw * 0.2
        if kind == "open":
            mouth_half, mouth_y = mw, my - fh * 0.02
        elif kind == "smile":
            a = math.pi * 0.15  # the arc's end points
            mouth_half, mouth_y = mw * math.cos(a), my - fh * 0.05 + fh * 0.07 * math.sin(a)
        else:
            mouth_half, mouth_y = mw * 0.6, my
    else:
        nose = (cx, cy + fh * 0.44)
        mw = fw * 0.36
        if kind == "open":
            mouth_half, mouth_y = mw * 0.8, my
        elif kind == "smile":
            mouth_half, mouth_y = mw, my - fh * 0.05
        else:
            mouth_half, mouth_y = mw, my
    points = np.array(
        [
            (cx - half, ey),
            (cx + half, ey),
            nose,
            (cx - mouth_half, mouth_y),
            (cx + mouth_half, mouth_y),
        ],
        dtype=np.float64,
    )
    return pose_points(points, pose)


def pose_points(points: np.ndarray, pose: ToonPose) -> np.ndarray:
    """Image-unit points moved like the head: rotated counter-clockwise (on screen, y down) by
    pose.rotate degrees about (0.5, 0.5), then shifted by pose.translate."""
    t = math.radians(pose.rotate)
    d = np.asarray(points, dtype=np.float64) - 0.5
    x = d[:, 0] * math.cos(t) + d[:, 1] * math.sin(t)
    y = -d[:, 0] * math.sin(t) + d[:, 1] * math.cos(t)
    return np.stack([x + 0.5 + pose.translate[0], y + 0.5 + pose.translate[1]], axis=1)
