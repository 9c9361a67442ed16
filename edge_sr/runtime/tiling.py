"""Tiled inference: an image of any size upscaled tile by tile in bounded memory, the overlapping tiles blended
without seams (or meeting at a seam bit for bit where the receptive field allows)."""

import numpy as np

from edge_sr.errors import EdgeSRError

DEFAULT_OVERLAP = 32  # LR pixels shared by neighbouring tiles (at most a quarter of the tile)
MIN_TILE = 16  # LR pixels: in a smaller tile the network sees mostly the tile's edges, not the image
MIN_IMAGE = 4  # LR pixels a side: a smaller image is mostly border to a network of 3×3 convolutions


def tiling(model, tile=None, overlap=None):
    """The (tile as (h, w) or None, overlap) that `upscale` uses: a fixed-tile model's own tile, else `tile` if
    given (`model` None: a Keras reference run as such a file runs); `overlap` defaults to the model's
    `seam_overlap` where it has one and the tile is at least twice that, else to DEFAULT_OVERLAP, at most a
    quarter of the tile."""
    tile = None if tile is None else _tile_shape(tile)
    if tile is not None and min(tile) < MIN_TILE and (model is None or model.input_size is None):
        raise EdgeSRError(f"a tile must be at least {MIN_TILE} pixels a side, not {tile[1]}×{tile[0]}; or 0 for none")
    if model is not None and model.input_size is not None:
        if tile is not None and tile != model.input_size:
            raise EdgeSRError(
                f"{model.name} was exported for {model.input_size[1]}×{model.input_size[0]} tiles; leave out --tile "
                f"or pass {model.input_size[0]}"
            )
        tile = model.input_size
    if tile is None:
        return None, 0
    seam = None if model is None else model.seam_overlap
    if overlap is None:
        fits = seam is not None and seam <= min(tile) // 2
        overlap = seam if fits else min(DEFAULT_OVERLAP, min(tile) // 4)
    _check_overlap(tile, overlap)
    return tile, overlap


def upscale(model, image, tile=None, overlap=None):
    """uint8 SR of an H×W×3 image with a TFLiteModel, whole or tile by tile (see `tiling`)."""
    tile, overlap = tiling(model, tile, overlap)
    if min(np.shape(image)[:2]) < MIN_IMAGE:
        raise EdgeSRError(
            f"a {np.shape(image)[1]}×{np.shape(image)[0]} image is too small to upscale; super-resolution needs at "
            f"least {MIN_IMAGE}×{MIN_IMAGE} pixels"
        )
    if tile is None:
        return to_uint8(model(image))
    fixed = model.input_size is not None
    seam = model.seam_overlap is not None and overlap >= model.seam_overlap  # else blended, as a float file
    return upscale_tiled(model, image, model.scale, tile, overlap, fixed=fixed, uint8=True, seam=seam)


def upscale_tiled(model_fn, image, scale, tile, overlap, fixed=False, uint8=False, seam=False):
    """SR of `image` (H×W×3) made from overlapping tiles: float32 in [0, 255], or rounded to uint8 (`uint8`).

    `model_fn` maps an LR tile to its SR (×`scale`). Tiles are `tile` (int or (h, w)) LR pixels, spread evenly so
    that neighbours share at least `overlap` pixels. Across each shared band a tile's weight is 0 on the outer
    quarter (where the network sees the tile's edge rather than the image), a linear cross-fade on the middle
    half and 1 on the inner quarter: a network that looks less than overlap/4 pixels around each pixel gives the
    whole-image result, and a wider one blends without seams. That suits float models, whose outputs move by a
    fraction of a level where the tile's edge is within reach. An integer model rounds at every layer, so there
    the same small change flips codes that the following layers carry on, several levels deep: with `seam` each
    tile's result is taken up to the middle of the shared band (weights 0 then 1), and a network that looks at
    most overlap/2 pixels around each pixel gives the whole-image result bit for bit. The weights are separable
    and the tiles form a grid, so the normaliser is an outer product of two 1-D sums, and rows are finished one
    row of tiles at a time: besides the result, memory holds one tile and one row of tiles.

    `fixed`: the model takes exactly tile-sized input, so a tile cut from a smaller image is reflect-padded and
    its SR cropped; otherwise such a tile is just the whole (smaller) extent.
    """
    image = np.asarray(image)
    tile = _tile_shape(tile)
    _check_overlap(tile, overlap)
    height, width = image.shape[:2]
    out = np.empty((scale * height, scale * width, 3), np.uint8 if uint8 else np.float32)
    for first_row, strip in _blended_strips(model_fn, image, scale, tile, overlap, fixed, seam):
        out[first_row : first_row + len(strip)] = to_uint8(strip) if uint8 else strip
    return out


def _blended_strips(model_fn, image, scale, tile, overlap, fixed, seam):
    """(first SR row, finished rows) from top to bottom: a row is finished once no later tile covers it."""
    (height, width), (tile_h, tile_w) = image.shape[:2], tile
    rows, row_norm = _axis_plan(height, tile_h, overlap, scale, seam)
    cols, col_norm = _axis_plan(width, tile_w, overlap, scale, seam)
    done = 0  # SR rows above this one have been yielded
    pending = np.zeros((0, scale * width, 3), np.float32)  # weighted sums of the rows from `done` down
    for top, tile_rows, row_weight in rows:
        start, stop = scale * top, scale * (top + tile_rows)
        if start > done:
            finished = pending[: start - done] / row_norm[done:start, None, None] / col_norm[None, :, None]
            yield done, finished
            pending, done = pending[start - done :], start
        pending = np.concatenate([pending, np.zeros((stop - done - len(pending), scale * width, 3), np.float32)])
        for left, tile_cols, col_weight in cols:
            piece = image[top : top + tile_rows, left : left + tile_cols]
            if fixed and piece.shape[:2] != tile:
                piece = np.pad(piece, ((0, tile_h - tile_rows), (0, tile_w - tile_cols), (0, 0)), mode="reflect")
            sr = model_fn(piece)[: scale * tile_rows, : scale * tile_cols]
            window = row_weight[:, None, None] * col_weight[None, :, None]
            pending[:, scale * left : scale * (left + tile_cols)] += sr * window
    yield done, pending / row_norm[done:, None, None] / col_norm[None, :, None]


def _tile_shape(tile):
    tile = (tile, tile) if np.isscalar(tile) else tuple(tile)
    if min(tile) < 1:
        raise EdgeSRError(f"tiles must be at least 1 pixel, not {tile[1]}×{tile[0]}")
    return tuple(int(n) for n in tile)


def _check_overlap(tile, overlap):
    if not 0 <= overlap <= min(tile) // 2:
        raise EdgeSRError(f"tiles of {tile[1]}×{tile[0]} need an overlap from 0 to half the tile, not {overlap}")


def _axis_plan(length, tile, overlap, scale, seam=False):
    """Tiles along one axis as (start, size, SR weights), and the SR weights' sum over tiles. Neighbours share at
    least `overlap` pixels (rounding the even spread only widens the band)."""
    if length <= tile:
        starts = [0]
    else:
        count = -(-(length - overlap) // (tile - overlap))
        starts = [round(i * (length - tile) / (count - 1)) for i in range(count)]
    size = min(tile, length)
    plan, norm = [], np.zeros(scale * length, np.float32)
    for i, start in enumerate(starts):
        weight = np.ones(scale * size, np.float32)
        if i > 0:  # the band shared with the previous tile
            band = scale * (starts[i - 1] + size - start)
            weight[:band] *= _fade_in(band, seam)
        if i + 1 < len(starts):  # the band shared with the next tile
            band = scale * (start + size - starts[i + 1])
            weight[scale * size - band :] *= _fade_in(band, seam)[::-1]
        plan.append((start, size, weight))
        norm[scale * start : scale * (start + size)] += weight
    return plan, norm


def _fade_in(band, seam=False):
    """Weights across a shared band, from the tile's edge inwards: 0 for a quarter, a linear ramp, then 1; with
    `seam`, 0 for the outer half and 1 for the inner one."""
    if seam:
        return np.concatenate([np.zeros(band // 2), np.ones(band - band // 2)]).astype(np.float32)
    margin = band // 4
    ramp = band - 2 * margin
    return np.concatenate([np.zeros(margin), (np.arange(ramp) + 0.5) / ramp, np.ones(margin)]).astype(np.float32)


def to_uint8(image):
    """Model output in [0, 255] → uint8 (clipped, rounded half up): what a user's file would hold."""
    return np.clip(np.floor(np.asarray(image, dtype=np.float32) + 0.5), 0, 255).astype(np.uint8)
