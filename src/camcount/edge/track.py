"""Tracking: SORT (Bewley et al. 2016) with a constant-velocity Kalman filter per object.

Each frame: every track predicts its box; predictions are matched to detections by IoU
with the Hungarian method (``scipy.optimize.linear_sum_assignment``); left-overs get a
second chance matched on centre distance, which rescues small fast objects whose
predicted box no longer overlaps. Unmatched detections start tentative tracks; a track is
*confirmed* after ``min_hits`` matched frames and only confirmed tracks ever count.
Tracks unmatched for more than ``max_age`` frames end.

A detection that lies mostly inside a confirmed track's box does not start a new track:
motion blobs sometimes split (a person's legs and torso), and a fragment turned into a
second track would be a second count of the same object.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from camcount.edge.detectors import Box, Detection

FloatArray = NDArray[np.float64]

# State: centre x, centre y, width, height and their velocities (per frame).
_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)


class KalmanBox:
    """Constant-velocity Kalman filter over a box; noise scales with the box size."""

    def __init__(self, box: Box) -> None:
        cx, cy, w, h = _to_cxcywh(box)
        self.x: FloatArray = np.array([cx, cy, w, h, 0.0, 0.0, 0.0, 0.0])
        size = max(w, h)
        self.P: FloatArray = np.diag(
            np.square([size / 10, size / 10, size / 10, size / 10, size, size, size / 4, size / 4])
        )

    def predict(self) -> Box:
        size = max(self.x[2], self.x[3], 1.0)
        q = np.square(
            [size / 20, size / 20, size / 20, size / 20, size / 40, size / 40, size / 80, size / 80]
        )
        self.x = _F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)
        self.P = _F @ self.P @ _F.T + np.diag(q)
        return self.box

    def update(self, box: Box) -> None:
        z = np.array(_to_cxcywh(box))
        size = max(z[2], z[3], 1.0)
        r = np.diag(np.square([size / 20, size / 20, size / 10, size / 10]))
        s = _H @ self.P @ _H.T + r
        gain = self.P @ _H.T @ np.linalg.inv(s)
        self.x = self.x + gain @ (z - _H @ self.x)
        self.P = (np.eye(8) - gain @ _H) @ self.P

    @property
    def box(self) -> Box:
        cx, cy, w, h = (float(v) for v in self.x[:4])
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


@dataclass
class Track:
    track_id: int
    label: str
    kalman: KalmanBox
    hits: int = 1
    age: int = 1  # frames since birth, matched or not
    time_since_update: int = 0
    confirmed: bool = False
    score_sum: float = 0.0

    @property
    def box(self) -> Box:
        return self.kalman.box

    @property
    def confidence(self) -> float:
        """Mean detection score, discounted for short tracks (few hits = weak evidence)."""
        mean_score = self.score_sum / max(self.hits, 1)
        return mean_score * min(1.0, 0.5 + self.hits / 20)


@dataclass
class TrackerUpdate:
    active: list[Track]  # tracks matched in this frame (the ones with a trustworthy position)
    ended: list[Track]  # tracks removed in this frame


@dataclass
class SortTracker:
    max_age: int = 12
    min_hits: int = 3
    iou_threshold: float = 0.15
    distance_gate: float = 0.8  # second-stage match: centre distance / box size below this
    tracks: list[Track] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def update(self, detections: list[Detection]) -> TrackerUpdate:
        predicted = [track.kalman.predict() for track in self.tracks]
        for track in self.tracks:
            track.age += 1
            track.time_since_update += 1
        matches, free_tracks, free_dets = _associate(
            predicted, [d.box for d in detections], self.iou_threshold
        )
        if free_tracks and free_dets:
            more = _match_by_distance(
                [predicted[i] for i in free_tracks],
                [detections[j].box for j in free_dets],
                self.distance_gate,
            )
            for ti, dj in more:
                matches.append((free_tracks[ti], free_dets[dj]))
            used_d = {free_dets[dj] for _, dj in more}
            free_dets = [j for j in free_dets if j not in used_d]
        active = []
        for ti, dj in matches:
            track, det = self.tracks[ti], detections[dj]
            track.kalman.update(det.box)
            track.hits += 1
            track.time_since_update = 0
            track.score_sum += det.score
            track.confirmed = track.confirmed or track.hits >= self.min_hits
            active.append(track)
        covering = [t.box for t in active if t.confirmed]
        for dj in free_dets:
            det = detections[dj]
            if any(_inside_fraction(det.box, box) > 0.6 for box in covering):
                continue
            track = Track(next(self._ids), det.label, KalmanBox(det.box), score_sum=det.score)
            track.confirmed = self.min_hits <= 1
            self.tracks.append(track)
            active.append(track)
        ended = [t for t in self.tracks if t.time_since_update > self.max_age]
        if ended:
            self.tracks = [t for t in self.tracks if t.time_since_update <= self.max_age]
        return TrackerUpdate(active, ended)

    def drain(self) -> list[Track]:
        """End every track (end of the stream)."""
        ended, self.tracks = self.tracks, []
        return ended


def _to_cxcywh(box: Box) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    return (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 1.0), max(y2 - y1, 1.0)


def iou_matrix(a: list[Box], b: list[Box]) -> FloatArray:
    if not a or not b:
        return np.zeros((len(a), len(b)))
    aa, bb = np.asarray(a, dtype=np.float64)[:, None, :], np.asarray(b, dtype=np.float64)[None, :, :]
    iw = np.clip(np.minimum(aa[..., 2], bb[..., 2]) - np.maximum(aa[..., 0], bb[..., 0]), 0, None)
    ih = np.clip(np.minimum(aa[..., 3], bb[..., 3]) - np.maximum(aa[..., 1], bb[..., 1]), 0, None)
    inter = iw * ih
    area_a = (aa[..., 2] - aa[..., 0]) * (aa[..., 3] - aa[..., 1])
    area_b = (bb[..., 2] - bb[..., 0]) * (bb[..., 3] - bb[..., 1])
    result: FloatArray = inter / np.maximum(area_a + area_b - inter, 1e-9)
    return result


def _associate(
    tracks: list[Box], dets: list[Box], threshold: float
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    iou = iou_matrix(tracks, dets)
    matches: list[tuple[int, int]] = []
    if iou.size:
        rows, cols = linear_sum_assignment(-iou)
        matches = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= threshold]
    matched_t, matched_d = {m[0] for m in matches}, {m[1] for m in matches}
    return (
        matches,
        [i for i in range(len(tracks)) if i not in matched_t],
        [j for j in range(len(dets)) if j not in matched_d],
    )


def _match_by_distance(tracks: list[Box], dets: list[Box], gate: float) -> list[tuple[int, int]]:
    t = np.array([_to_cxcywh(b) for b in tracks])
    d = np.array([_to_cxcywh(b) for b in dets])
    dist = np.hypot(t[:, None, 0] - d[None, :, 0], t[:, None, 1] - d[None, :, 1])
    size = np.maximum(np.maximum(t[:, None, 2], t[:, None, 3]), np.maximum(d[None, :, 2], d[None, :, 3]))
    cost = dist / size
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] < gate]


def _inside_fraction(inner: Box, outer: Box) -> float:
    iw = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    ih = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    area = max((inner[2] - inner[0]) * (inner[3] - inner[1]), 1e-9)
    return iw * ih / area
