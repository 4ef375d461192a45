"""Rectangular image regions, and splitting an image into disjoint training and validation parts."""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Bool

__all__ = ["Region", "interleaved_zones", "split_regions"]


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


def interleaved_zones(
    shape: tuple[int, int],
    cell: int | tuple[int, int],
    *,
    gap: int,
    val_every: int = 3,
    fold: int = 0,
) -> tuple[Bool[np.ndarray, "H W"], Bool[np.ndarray, "H W"]]:
    """Cuts an image of shape ``(H, W)`` into a lattice of cells and deals them to training and
    validation: fold ``fold`` of a ``val_every``-fold cross-validation.

    Cell ``(i, j)`` covers rows ``[i * pitch_r, i * pitch_r + cell_r)`` and columns ``[j * pitch_c,
    j * pitch_c + cell_c)``, ``pitch = cell + gap``: the ``gap`` rows and columns between
    neighbouring cells belong to neither set (a few pixels make the sets independent, not only
    disjoint, see ``split_regions``); cells cut by the image's far edges are kept as far as they go.
    Cell ``(i, j)`` is held out when ``(i + s * j) % val_every == fold``, with ``s = 2`` for odd
    ``val_every`` and 1 for even (coprime to it, so that a lattice one cell tall still reaches every
    fold): no two held-out cells share a side (a checkerboard at ``val_every = 2``), and folds ``0 ..
    val_every - 1`` hold out every cell exactly once. A cell as tall as the image,
    ``(H, w)``, gives ``val_every`` contiguous column bands at ``w = (W - (val_every - 1) * gap) //
    val_every``, each held out by one fold.

    Where one band split (``split_regions``) compares one side of an image with the other, the
    noise level and tails may differ between the sides (depth, detector region); square cells take
    that difference out of the comparison, and the folds together hold out the whole image.

    Returns:
        ``(train_zone, val_zone)``: bool ``(H, W)`` arrays, ``True`` on the pixels of each set's
        cells; no pixel is ``True`` in both.
    """
    if len(shape) != 2:
        raise ValueError(f"interleaved_zones needs an image shape (H, W), got {shape!r}.")
    cells = (int(cell), int(cell)) if np.ndim(cell) == 0 else tuple(int(c) for c in cell)
    gap, val_every, fold = int(gap), int(val_every), int(fold)
    if len(cells) != 2 or min(cells) < 1 or gap < 0:
        raise ValueError(f"Need cell >= 1 (an int or (rows, cols)) and gap >= 0 pixels, got cell={cell!r} "
                         f"and gap={gap}.")
    if val_every < 2:
        raise ValueError(f"val_every must be >= 2 (hold out one cell in val_every), got {val_every}.")
    if not 0 <= fold < val_every:
        raise ValueError(f"fold must lie in 0 .. {val_every - 1} (val_every={val_every}), got {fold}.")
    pitch = [c + gap for c in cells]
    index = [np.arange(n) // p for n, p in zip(shape, pitch)]
    inside = [np.arange(n) % p < c for n, p, c in zip(shape, pitch, cells)]
    n_cells = [int(ix[ins].max()) + 1 for ix, ins in zip(index, inside)]
    if n_cells[0] * n_cells[1] < val_every:
        raise ValueError(
            f"An image of shape {tuple(shape)} holds {n_cells[0]} x {n_cells[1]} cells of {cells} pixels "
            f"{gap} apart, fewer than val_every={val_every}: use smaller cells or a smaller val_every."
        )
    step = 2 if val_every % 2 else 1
    held_out = (index[0][:, None] + step * index[1][None, :]) % val_every == fold
    in_cell = inside[0][:, None] & inside[1][None, :]
    return in_cell & ~held_out, in_cell & held_out
