"""The anchor renderer a scene asks for."""

from __future__ import annotations

import logging
from pathlib import Path

from broadcaster.scene import Scene

log = logging.getLogger(__name__)


def build_anchor(scene: Scene):
    """The anchor renderer the scene asks for: the ONNX puppet, a Wav2Lip export on a still
    portrait or a looped presenter clip, or a still portrait. An animated renderer that cannot load falls back to the still portrait (or no
    anchor) with the reason in the log: a broken model must not keep the broadcast off air."""
    spec = scene.anchor
    if spec is None:
        return None
    fps = scene.canvas.fps
    try:
        if spec.renderer == "puppet":
            from broadcaster.avatar.puppet import PuppetAnchor
            assets = spec.options.get("assets")
            if assets is not None:
                assets = Path(assets) if Path(assets).is_absolute() else scene.base_dir / assets
            return PuppetAnchor(spec.width, spec.height, fps=fps, assets=assets, model=spec.model)
        if spec.renderer == "wav2lip" and spec.video is not None:
            from broadcaster.avatar.video_anchor import VideoLoopAnchor
            box = spec.options.get("face_box")
            return VideoLoopAnchor(spec.width, spec.height, video=spec.video, model=spec.model,
                                   fps=fps, face_box=tuple(box) if box else None, clips=spec.clips,
                                   batch_size=spec.options.get("batch_size", 8),
                                   mouth_every=spec.options.get("mouth_every"))
        if spec.renderer == "wav2lip":
            from broadcaster.avatar.wav2lip import Wav2LipAnchor
            box = spec.options.get("face_box")
            return Wav2LipAnchor(spec.width, spec.height, image=spec.portrait, model=spec.model,
                                 face_box=tuple(box) if box else None, fps=fps)
    except Exception as exc:  # noqa: BLE001 - any load failure degrades, never stops the show
        log.error("%s: anchor renderer %r could not load (%s); showing %s instead", scene.source,
                  spec.renderer, exc, "the still portrait" if spec.portrait else "no anchor")
    if spec.portrait is not None:
        from broadcaster.avatar.static import StaticAnchor
        return StaticAnchor(spec.portrait, spec.width, spec.height)
    return None
