"""GET /metrics and GET /healthz on the control plane's aiohttp app."""

from __future__ import annotations

from aiohttp import web

from broadcaster.service.health import Health
from broadcaster.service.metrics import CONTENT_TYPE, Metrics

METRICS_KEY = web.AppKey("broadcaster_metrics", Metrics)
HEALTH_KEY = web.AppKey("broadcaster_health", Health)


def add_service_routes(app: web.Application, metrics: Metrics, health: Health) -> None:
    """Add /metrics (Prometheus text) and /healthz (JSON; 200 on air, 503 not) to app.

    Call before the app starts (aiohttp freezes the router). Also binds the on_air metric
    to health, so the core only calls health.set_on_air().
    """
    metrics.bind_health(health)
    app[METRICS_KEY] = metrics
    app[HEALTH_KEY] = health
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_KEY].render_metrics()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _healthz(request: web.Request) -> web.Response:
    health = request.app[HEALTH_KEY]
    snapshot = health.snapshot()
    return web.json_response(snapshot, status=health.http_status(snapshot))
