"""Progress bars for long work: shown on a terminal, silent in logs and CI (tqdm's auto mode)."""

from tqdm import tqdm


def progress(iterable=None, enabled=True, **kwargs):
    return tqdm(iterable, disable=None if enabled else True, dynamic_ncols=True, **kwargs)
