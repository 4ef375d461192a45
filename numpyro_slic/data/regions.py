"""Rectangular image regions, and splitting an image into disjoint training and validation parts."""

from __future__ import annotations

import dataclasses

__all__ = ["Region", "split_regions"]


@dataclasses.dataclass(frozen=True)
class Region:
    """The half-open pixel rectangle ``rows [row0, row1) x cols [col0, col1)`` of an image.

    ``image[region.slices]`` is the region's part of an image.
    """

    row0: int
    row1: int
    col0: int
    col1: int

    def __post_init__(self):
        for name in ("row0", "row1", "col0", "col1"):
            value = getattr(self, name)
            if isinstance(value, bool) or not hasattr(value, "__index__"):
                raise TypeError(f"Region.{name} must be an int, got {value!r}.")
            # numpy integers are stored as plain ints so that regions serialise to JSON.
            object.__setattr__(self, name, int(value))
        if not (0 <= self.row0 < self.row1 and 0 <= self.col0 < self.col1):
            raise ValueError(
                f"Region needs 0 <= row0 < row1 and 0 <= col0 < col1, got {self.as_tuple()}."
            )

    @classmethod
    def full(cls, shape: tuple[int, int]) -> "Region":
        """The whole of an image of shape ``(H, W)``."""
        return cls(0, int(shape[0]), 0, int(shape[1]))

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row0, self.row1), slice(self.col0, self.col1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.row1 - self.row0, self.col1 - self.col0

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.row0, self.row1, self.col0, self.col1

    def fits_in(self, shape: tuple[int, int]) -> bool:
        """Whether the region lies inside an image of shape ``(H, W)``."""
        return self.row1 <= shape[0] and self.col1 <= shape[1]

    def overlaps(self, other: "Region") -> bool:
        """Whether the two regions share at least one pixel."""
        rows = self.row0 < other.row1 and other.row0 < self.row1
        cols = self.col0 < other.col1 and other.col0 < self.col1
        return rows and cols


def split_regions(
    shape: tuple[int, int],
    val_fraction: float = 0.2,
    *,
    axis: int = 0,
    gap: int = 0,
    val_at_end: bool = True,
) -> tuple[Region, Region]:
    """Cuts an image of shape ``(H, W)`` into a training and a validation rectangle with no shared pixel.

    The cut runs across ``axis`` (0: a band of rows, 1: a band of columns). The validation band takes
    ``round(val_fraction * (L - gap))`` of the ``L`` rows/columns, at the end (``val_at_end``) or at
    the start, and ``gap`` rows/columns between the two bands belong to neither. Noise is correlated
    over a few pixels (lag-1 correlation 0.3 to 0.5 in the shipped JWST / HST images), so a gap of a
    few pixels also makes the two bands statistically independent, not only disjoint.

    Returns:
        ``(train_region, val_region)``.
    """
    if len(shape) != 2:
        raise ValueError(f"split_regions needs an image shape (H, W), got {shape!r}.")
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (split rows) or 1 (split columns), got {axis!r}.")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}.")
    if int(gap) < 0:
        raise ValueError(f"gap must be >= 0 pixels, got {gap!r}.")
    length = int(shape[axis])
    n_val = int(round(val_fraction * (length - gap)))
    n_train = length - gap - n_val
    if n_val < 1 or n_train < 1:
        raise ValueError(
            f"Cannot split {length} pixels along axis {axis} with val_fraction={val_fraction} and gap={gap}: "
            "one side would be empty."
        )
    if val_at_end:
        train_span, val_span = (0, n_train), (n_train + gap, length)
    else:
        val_span, train_span = (0, n_val), (n_val + gap, length)
    other = (0, int(shape[1 - axis]))
    if axis == 0:
        return Region(*train_span, *other), Region(*val_span, *other)
    return Region(*other, *train_span), Region(*other, *val_span)
