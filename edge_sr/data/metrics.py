"""PSNR and SSIM as SR papers report them: on the BT.601 luma (Y) channel with `shave` border pixels removed.

Both take uint8 (or [0, 255] float) H×W×3 RGB images. Y is computed in float from the 8-bit values, without
rounding it back to 8 bits (the BasicSR convention; MATLAB's rounded Y differs by about 0.01 dB).
"""

import numpy as np

from edge_sr.errors import EdgeSRError


def rgb_to_y(rgb):
    """BT.601 studio-swing luma in [16, 235] for RGB in [0, 255]."""
    rgb = np.asarray(rgb, dtype=np.float64) / 255.0
    return 16.0 + rgb @ np.array([65.481, 128.553, 24.966])


def _prepare(sr, hr, shave, y_channel):
    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.shape != hr.shape:
        raise EdgeSRError(f"SR and HR sizes differ: {sr.shape} vs {hr.shape}")
    if y_channel:
        sr, hr = rgb_to_y(sr), rgb_to_y(hr)
    else:
        sr, hr = sr.astype(np.float64), hr.astype(np.float64)
    if shave:
        if min(sr.shape[:2]) <= 2 * shave:
            raise EdgeSRError(f"image {sr.shape[:2]} is too small to shave {shave} pixels per border")
        sr, hr = sr[shave:-shave, shave:-shave], hr[shave:-shave, shave:-shave]
    return sr, hr


def psnr(sr, hr, shave=0, y_channel=True):
    """Peak signal-to-noise ratio in dB (peak 255); inf for identical images."""
    sr, hr = _prepare(sr, hr, shave, y_channel)
    mse = np.mean((sr - hr) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def _gaussian_window(size=11, sigma=1.5):
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    g /= g.sum()
    return g


def _filter_valid(image, kernel):
    """Separable 'valid' correlation of a 2-D image with a 1-D kernel along both axes."""
    size = kernel.size
    rows = sum(kernel[i] * image[i : image.shape[0] - size + 1 + i] for i in range(size))
    return sum(kernel[i] * rows[:, i : rows.shape[1] - size + 1 + i] for i in range(size))


def _ssim_2d(x, y):
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    window = _gaussian_window()
    mu_x, mu_y = _filter_valid(x, window), _filter_valid(y, window)
    var_x = _filter_valid(x * x, window) - mu_x**2
    var_y = _filter_valid(y * y, window) - mu_y**2
    cov = _filter_valid(x * y, window) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


def ssim(sr, hr, shave=0, y_channel=True):
    """Structural similarity (Wang et al. 2004): Gaussian 11×11, σ 1.5, valid region; RGB averages channels."""
    sr, hr = _prepare(sr, hr, shave, y_channel)
    if min(sr.shape[:2]) < 11:
        raise EdgeSRError(f"SSIM needs at least 11×11 pixels after shaving, got {sr.shape[:2]}")
    if y_channel:
        return _ssim_2d(sr, hr)
    return float(np.mean([_ssim_2d(sr[..., c], hr[..., c]) for c in range(sr.shape[2])]))
