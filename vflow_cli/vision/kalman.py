"""kalman: a constant-velocity Kalman filter over boxes, in media time.

The state of a box is (cx, cy, a, h, vcx, vcy, va, vh): centre, aspect (w / h), height, and
their rates of change per second. Noise is relative to the box height (a far, small person
moves fewer pixels than a near one), as in SORT, DeepSORT and ByteTrack, whose per-frame
weights (1/20 of the height for position, 1/160 for velocity) are kept for a frame of
REFERENCE seconds. A step of dt seconds adds dt / REFERENCE times that noise (a random
walk), so the filter behaves the same at 7, 25 or 60 frames a second and across a gap.
"""

from __future__ import annotations

from typing import Any

REFERENCE = 1 / 30  # seconds: the frame interval the noise weights were set for
POSITION = 1 / 20
VELOCITY = 1 / 160


def xyah(box: Any) -> Any:
    """(x1, y1, x2, y2) rows -> (cx, cy, w / h, h) rows."""
    import numpy as np

    box = np.asarray(box, np.float64)
    w = box[..., 2] - box[..., 0]
    h = np.maximum(box[..., 3] - box[..., 1], 1e-6)
    return np.stack(
        ((box[..., 0] + box[..., 2]) / 2, (box[..., 1] + box[..., 3]) / 2, w / h, h), -1
    )


def corners(state: Any) -> Any:
    """(cx, cy, a, h, ...) rows -> (x1, y1, x2, y2) rows."""
    import numpy as np

    state = np.asarray(state, np.float64)
    h = state[..., 3]
    w = state[..., 2] * h
    cx, cy = state[..., 0], state[..., 1]
    return np.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), -1)


class BoxFilter:
    """initiate / predict / update for one box at a time (predict also takes many)."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self.observe = np.eye(4, 8)

    def initiate(self, box: Any) -> tuple[Any, Any]:
        """(mean, covariance) for a box first seen now, its motion unknown."""
        np = self.np
        measured = xyah(box)
        h = measured[3]
        mean = np.concatenate((measured, np.zeros(4)))
        per_second = 1 / REFERENCE
        std = [
            2 * POSITION * h,
            2 * POSITION * h,
            1e-2,
            2 * POSITION * h,
            10 * VELOCITY * h * per_second,
            10 * VELOCITY * h * per_second,
            1e-5 * per_second,
            10 * VELOCITY * h * per_second,
        ]
        return mean, np.diag(np.square(std))

    def predict(self, means: Any, covariances: Any, dt: float) -> tuple[Any, Any]:
        """Move N states (N x 8, N x 8 x 8) dt seconds ahead."""
        np = self.np
        if dt <= 0 or not len(means):
            return means, covariances
        motion = np.eye(8)
        motion[:4, 4:] = dt * np.eye(4)
        h = means[:, 3]
        steps = dt / REFERENCE
        per_second = 1 / REFERENCE
        std = np.stack(
            (
                POSITION * h,
                POSITION * h,
                np.full_like(h, 1e-2),
                POSITION * h,
                VELOCITY * h * per_second,
                VELOCITY * h * per_second,
                np.full_like(h, 1e-5 * per_second),
                VELOCITY * h * per_second,
            ),
            1,
        )
        noise = np.zeros((len(h), 8, 8))
        idx = np.arange(8)
        noise[:, idx, idx] = np.square(std) * steps
        means = means @ motion.T
        covariances = motion @ covariances @ motion.T + noise
        return means, covariances

    def update(self, mean: Any, covariance: Any, box: Any) -> tuple[Any, Any]:
        """Correct one state with an observed box."""
        np = self.np
        measured = xyah(box)
        h = mean[3]
        noise = np.diag(np.square([POSITION * h, POSITION * h, 1e-1, POSITION * h]))
        projected = covariance[:4, :4] + noise
        gain = np.linalg.solve(projected, covariance[:4, :]).T  # P H^T S^-1, S symmetric
        mean = mean + gain @ (measured - mean[:4])
        covariance = covariance - gain @ projected @ gain.T
        return mean, covariance
