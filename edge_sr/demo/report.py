"""The demo's report: one self-contained HTML file (inline CSS, SVG charts, PNG crops as data URIs).

Numbers come from the demo's results (the same dict that is written as results.json); nothing here measures.
"""

import base64
import html
import io
from pathlib import Path

import numpy as np
from PIL import Image

from edge_sr.atomic import atomic_write

CROP = 80  # HR pixels on a side of each comparison crop
CROP_ZOOM = 2  # shown enlarged, pixel for pixel
COLORS = {"2dquant": "#1f77b4", "odm": "#d62728", "tflite-ptq": "#7f7f7f"}


def _png_uri(image):
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _detail_window(hr, bicubic, size):
    """(top, left) of the size×size window where bicubic misses most of the HR detail: where SR matters."""
    error = np.abs(hr.astype(np.float32) - bicubic.astype(np.float32)).sum(axis=2)
    height, width = error.shape
    stride = max(1, size // 4)
    windows = [
        (top, left) for top in range(0, height - size + 1, stride) for left in range(0, width - size + 1, stride)
    ]
    return max(windows, key=lambda w: error[w[0] : w[0] + size, w[1] : w[1] + size].sum())


def choose_crops(eval_sets, scale, sr_dir, keys):
    """Per evaluation image: the crop box and the crops of LR (nearest), every saved SR result in `keys` order
    (read from sr_dir/KEY/SET/xS/NAME.png, as evaluate_dataset writes them) and HR."""
    from edge_sr.data import open_benchmark, read_rgb

    crops = []
    for set_name, folder in eval_sets.items():
        for name, lr, hr in open_benchmark(folder, scale):
            results = {key: read_rgb(Path(sr_dir) / key / set_name / f"x{scale}" / f"{name}.png") for key in keys}
            size = min(CROP, *hr.shape[:2]) // scale * scale
            top, left = _detail_window(hr, results["bicubic"], size)
            top, left = top // scale * scale, left // scale * scale  # on the LR grid, so the LR crop aligns
            lr_crop = lr[top // scale : (top + size) // scale, left // scale : (left + size) // scale]
            tiles = [("LR (nearest)", np.repeat(np.repeat(lr_crop, scale, axis=0), scale, axis=1))]
            tiles += [(key, image[top : top + size, left : left + size]) for key, image in results.items()]
            tiles.append(("HR", hr[top : top + size, left : left + size]))
            crops.append({"set": set_name, "image": name, "box": [top, left, size], "tiles": tiles})
    return crops


def _fmt(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def results_table(results):
    """The results table as rows of cell strings (also what the test compares with results.json)."""
    sets = list(results["eval_sets"])
    headers = ["model", *(f"{s} PSNR / SSIM" for s in sets), "parity ΔPSNR", "file MB", "median ms", "× fp32"]
    rows = []
    for row in results["rows"]:
        latency = row.get("latency") or {}
        parity = row.get("parity")
        cells = [row["label"]]
        cells += [f"{row['scores'][s]['psnr']:.2f} / {row['scores'][s]['ssim']:.4f}" for s in sets]
        cells.append(f"{parity['delta_psnr']:+.3f}{'' if parity['ok'] else ' FAIL'}" if parity else "–")
        cells += [
            _fmt(latency.get(name), digits) for name, digits in (("file_mb", 2), ("median_ms", 1), ("ratio_to_fp32", 3))
        ]
        rows.append((row["key"], cells))
    return headers, rows


def _svg(width, height, body):
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="sans-serif" font-size="12">{body}</svg>'
    )


def psnr_bits_chart(results, set_name, width=420, height=300):
    """PSNR against bits for each method on one set, with FP32 and bicubic as horizontal references."""
    rows = {row["key"]: row for row in results["rows"]}
    psnr = {key: row["scores"][set_name]["psnr"] for key, row in rows.items()}
    series = {}
    for row in results["rows"]:
        if row["kind"] == "int8":
            method = row["key"].rsplit("-w", 1)[0]
            series.setdefault(method, []).append((row["bits"], psnr[row["key"]]))
    values = list(psnr.values())
    low, high = min(values) - 0.5, max(values) + 0.5
    left, right, top, bottom = 48, width - 60, 20, height - 56
    bits_axis = [2, 3, 4, 5, 6, 7, 8]

    def x(bits):
        return left + (bits - bits_axis[0]) / (bits_axis[-1] - bits_axis[0]) * (right - left)

    def y(value):
        return bottom - (value - low) / (high - low) * (bottom - top)

    parts = [f'<text x="{left}" y="13" font-weight="bold">{html.escape(set_name)}: PSNR (dB) vs bits</text>']
    for bits in bits_axis:
        parts.append(f'<text x="{x(bits):.1f}" y="{bottom + 16}" text-anchor="middle">W{bits}A{bits}</text>')
    for tick in np.linspace(low, high, 5):
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.1f}</text>')
    for key, label, dash in (("fp32", "FP32", "6 3"), ("bicubic", "bicubic", "2 3")):
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y(psnr[key]):.1f}" y2="{y(psnr[key]):.1f}" stroke="#333" '
            f'stroke-dasharray="{dash}"/><text x="{right + 4}" y="{y(psnr[key]) + 4:.1f}">{label}</text>'
        )
    for index, (method, points) in enumerate(sorted(series.items())):
        color = COLORS.get(method, "#2ca02c")
        points.sort()
        path = " ".join(f"{x(b):.1f},{y(v):.1f}" for b, v in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [f'<circle cx="{x(b):.1f}" cy="{y(v):.1f}" r="4" fill="{color}"/>' for b, v in points]
        legend = left + 110 * index  # one row under the axis
        parts.append(f'<circle cx="{legend + 5}" cy="{height - 12}" r="4" fill="{color}"/>')
        parts.append(f'<text x="{legend + 13}" y="{height - 8}" fill="{color}">{html.escape(method)}</text>')
    return _svg(width, height, "".join(parts))


def latency_chart(results, width=560):
    """Median latency per file (bars) with its p90 (tick), labelled with the ratio to fp32."""
    timed = [row for row in results["rows"] if row.get("latency")]
    bar, gap, left = 20, 8, 230
    height = 40 + len(timed) * (bar + gap)
    longest = max(row["latency"]["p90_ms"] for row in timed)
    scale = (width - left - 90) / longest
    size = results["settings"]["bench_size"]
    title = f"LiteRT latency, {size}×{size} LR, ms (bar: median, tick: p90)"
    parts = [f'<text x="0" y="13" font-weight="bold">{title}</text>']
    for index, row in enumerate(timed):
        top = 28 + index * (bar + gap)
        latency = row["latency"]
        color = COLORS.get(row["key"].rsplit("-w", 1)[0], "#555") if row["kind"] == "int8" else "#333"
        parts.append(f'<text x="{left - 6}" y="{top + 14}" text-anchor="end">{html.escape(row["label"])}</text>')
        length = latency["median_ms"] * scale
        parts.append(f'<rect x="{left}" y="{top}" width="{length:.1f}" height="{bar}" fill="{color}"/>')
        tick = left + latency["p90_ms"] * scale
        parts.append(f'<line x1="{tick:.1f}" x2="{tick:.1f}" y1="{top}" y2="{top + bar}" stroke="#000"/>')
        label = f"{latency['median_ms']:.1f} ms (×{latency['ratio_to_fp32']:.2f})"
        parts.append(f'<text x="{tick + 6:.1f}" y="{top + 14}">{label}</text>')
    return _svg(width, height, "".join(parts))


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.fail { color: #b00; font-weight: bold; }
.charts { display: flex; flex-wrap: wrap; gap: 2em; margin: 1em 0; }
.crops { display: flex; gap: 6px; margin-bottom: 1.5em; flex-wrap: wrap; }
.crops figure { margin: 0; text-align: center; font-size: 12px; }
.crops img { image-rendering: pixelated; display: block; }
.note { background: #fff4d6; padding: 0.6em 1em; border-left: 4px solid #e0a800; }
"""


def render_report(results, crops):
    labels = {row["key"]: row["label"].replace(" (.tflite)", "") for row in results["rows"]}
    scores = {row["key"]: row["scores"] for row in results["rows"]}
    headers, rows = results_table(results)
    settings = results["settings"]
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>edge_sr demo</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>edge_sr demo: {html.escape(results['model'])} ×{results['scale']}</h1>",
        f"<p>{html.escape(results['machine'])}; whole run {results['seconds'] / 60:.1f} min"
        f"{' (quick mode)' if results['quick'] else ''}. CPU schedules: 2DQuant {settings['dqc_iterations']} DQC "
        f"steps of batch {settings['dqc_batch']} (the paper: 3000 of 32), ODM {settings['qat_iterations']} steps of "
        f"batch {settings['qat_batch']} (the paper: 60K of 8). Every row but bicubic is a .tflite file run by LiteRT "
        "with XNNPACK; the int8 rows compute in integers only (uint8 in and out).</p>",
    ]
    for note in [results["note"], *results.get("notes", ()), *results.get("failures", ())]:
        if note:
            out.append(f"<p class='note'>{html.escape(note)}</p>")
    out.append("<h2>Results</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>")
    for key, cells in rows:
        tds = "".join(f"<td{' class=fail' if 'FAIL' in c else ''}>{html.escape(c)}</td>" for c in cells)
        out.append(f"<tr data-key='{key}'>{tds}</tr>")
    out.append(
        "</table><p>Parity: the int8 file against the Keras fake-quant model it computes, on the photos "
        "(limit ±0.02 dB). × fp32: median of per-round ratios, files timed in alternating rounds.</p>"
    )
    out.append("<div class='charts'>")
    out += [psnr_bits_chart(results, name) for name in results["eval_sets"]]
    out.append(latency_chart(results) + "</div><h2>Crops</h2>")
    for crop in crops:
        out.append(f"<h3>{html.escape(crop['set'])} / {html.escape(crop['image'])}</h3><div class='crops'>")
        for key, image in crop["tiles"]:
            per_image = scores.get(key, {}).get(crop["set"], {}).get("per_image", {})
            caption = labels.get(key, key)
            if crop["image"] in per_image:
                caption += f"<br>{per_image[crop['image']]:.2f} dB"
            side = image.shape[0] * CROP_ZOOM
            out.append(
                f"<figure><img src='{_png_uri(image)}' width='{side}' height='{side}'>"
                f"<figcaption>{html.escape(caption).replace('&lt;br&gt;', '<br>')}</figcaption></figure>"
            )
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(path, results, crops):
    atomic_write(path, lambda tmp: Path(tmp).write_text(render_report(results, crops), encoding="utf-8"))
