"""framing.arrays: arrays for incoming images, used again once nobody holds them."""

from __future__ import annotations

import sys
from typing import Any


class ArrayPool:
    """Arrays for incoming images, used again once nobody else holds them.

    A fresh multi-megabyte array costs the kernel a page-zeroing pass every frame (measured:
    about 2 ms for 1080p, as much as the copy out of the pipe). An array in the pool whose
    only references are the pool's own is free: no stage, packet or writer can see it.
    """

    KEEP = 4  # arrays kept per shape
    SHAPES = 4  # shapes kept

    def __init__(self) -> None:
        self._arrays: dict[tuple[Any, ...], list[Any]] = {}
        self._free = self._count_when_free()

    @staticmethod
    def _count_when_free() -> int:
        """What get()'s test reports for an object only the pool holds.

        Measured, not assumed: interpreters differ in the references a loop variable and a
        call argument add (CPython 3.14 borrows some), and a wrong guess would hand out an
        array that a packet still uses.
        """
        probe = [object()]
        for item in probe:
            return sys.getrefcount(item)
        raise AssertionError("unreachable")

    def get(self, shape: tuple[int, ...] | list[int], dtype: Any) -> Any:
        import numpy as np

        key = (*shape, dtype.str)
        arrays = self._arrays.get(key)
        if arrays is None:
            if len(self._arrays) >= self.SHAPES:
                self._arrays.clear()
            arrays = self._arrays[key] = []
        for array in arrays:
            if sys.getrefcount(array) == self._free:  # only the pool's list holds it
                return array
        array = np.empty(shape, dtype)
        if len(arrays) < self.KEEP:
            arrays.append(array)
        return array
