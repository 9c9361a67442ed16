"""The demo (`python -m edge_sr.demo`, its front in __main__.py): the whole pipeline on an embedded default
(showcase.py), written up as an HTML report (report.py)."""
