"""The studio page: the program, its state and the operator's actions in a browser window,
served by the control endpoint (static files in static/, JSON routes in stage.py)."""

from broadcaster.service.studio.stage import Studio

__all__ = ["Studio"]
