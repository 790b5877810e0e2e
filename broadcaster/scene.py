"""Scene schema: canvas, background, layers, anchor place, caption area and audio bed.

A scene is a YAML file under scenes/; asset paths are relative to that file. Loading checks
everything a broadcast would trip over later (sizes, colours, missing or unreadable images),
so `broadcaster check` catches it before going live.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from broadcaster.errors import ConfigError
from broadcaster.schema import Section, load_yaml_mapping

RGBA = tuple[int, int, int, int]
# Keys the live side reads and validates (tts and voice, responder, persona, script,
# chat_overlay, greeting); passed through untouched here.
FEATURE_KEYS = ("script", "persona", "tts", "responder", "chat_overlay", "voice", "greeting",
                "thanks")


@dataclass(frozen=True)
class Canvas:
    width: int = 854
    height: int = 480
    fps: int = 20


@dataclass(frozen=True)
class Background:
    kind: str = "color"               # color | gradient | image
    color: RGBA = (24, 28, 40, 255)
    color2: RGBA = (60, 40, 90, 255)  # gradient end
    direction: str = "vertical"       # vertical | horizontal | diagonal
    image: Path | None = None
    fit: str = "cover"                # cover | contain | stretch


@dataclass(frozen=True)
class ImageLayer:
    path: Path
    x: int
    y: int
    width: int | None = None
    height: int | None = None
    opacity: float = 1.0


@dataclass(frozen=True)
class TextLayer:
    text: str
    x: int
    y: int
    size: int = 28
    color: RGBA = (255, 255, 255, 255)
    font: Path | None = None
    background: RGBA | None = None
    padding: int = 8
    max_width: int | None = None


@dataclass(frozen=True)
class AnchorSpec:
    x: int
    y: int
    width: int
    height: int
    renderer: str = "static"          # static | puppet | wav2lip
    portrait: Path | None = None
    model: Path | None = None
    options: dict = field(default_factory=dict)
    video: Path | None = None         # wav2lip: a presenter clip looped instead of a still portrait
    clips: dict = field(default_factory=dict)   # name -> action clip Path, played on request


@dataclass(frozen=True)
class CaptionSpec:
    x: int
    y: int
    width: int
    height: int
    size: int = 26
    color: RGBA = (255, 255, 255, 255)
    background: RGBA | None = (0, 0, 0, 160)
    font: Path | None = None
    max_lines: int = 2
    align: str = "center"
    enabled: bool = True


@dataclass(frozen=True)
class AudioBed:
    file: Path | None = None
    volume: float = 0.2
    duck: float = 0.4                 # bed gain factor while the anchor speaks


@dataclass(frozen=True)
class Scene:
    name: str
    source: str
    base_dir: Path
    canvas: Canvas
    background: Background
    layers: tuple = ()
    anchor: AnchorSpec | None = None
    captions: CaptionSpec | None = None
    audio: AudioBed = field(default_factory=AudioBed)
    features: dict = field(default_factory=dict)

    def with_canvas(self, width: int | None = None, height: int | None = None,
                    fps: int | None = None) -> "Scene":
        """Override size/fps (from the command line); layout scales with the canvas."""
        canvas = Canvas(width or self.canvas.width, height or self.canvas.height, fps or self.canvas.fps)
        sx, sy = canvas.width / self.canvas.width, canvas.height / self.canvas.height
        if (sx, sy) == (1.0, 1.0):
            return replace(self, canvas=canvas)

        def box(item):
            changes = dict(x=_even(item.x * sx), y=_even(item.y * sy))
            if getattr(item, "width", None) is not None:
                changes["width"] = max(2, _even(item.width * sx))
            if getattr(item, "height", None) is not None:
                changes["height"] = max(2, _even(item.height * sy))
            if isinstance(item, (TextLayer, CaptionSpec)):
                changes["size"] = max(8, round(item.size * min(sx, sy)))
            return replace(item, **changes)

        features = dict(self.features)
        overlay = features.get("chat_overlay")
        if isinstance(overlay, dict):       # validated by render/overlay.py; scale what is numeric
            scaled = dict(overlay)
            for key, factor in (("x", sx), ("y", sy), ("width", sx), ("height", sy), ("size", min(sx, sy))):
                if isinstance(overlay.get(key), (int, float)) and not isinstance(overlay.get(key), bool):
                    scaled[key] = max(8 if key == "size" else 0, int(overlay[key] * factor))
            features["chat_overlay"] = scaled
        return replace(self, canvas=canvas, features=features,
                       layers=tuple(box(layer) for layer in self.layers),
                       anchor=box(self.anchor) if self.anchor else None,
                       captions=box(self.captions) if self.captions else None)


def _even(value: float) -> int:
    return int(value) // 2 * 2


def scene_path(scenes_dir: Path, name: str) -> Path:
    """A scene by name (scenes/NAME.yaml) or by path."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return Path(name)
    return scenes_dir / f"{name}.yaml"


def list_scenes(scenes_dir: Path) -> list[Path]:
    return sorted(scenes_dir.glob("*.yaml"))


def load_scene(path: Path) -> Scene:
    data = load_yaml_mapping(path)
    top = Section(data, str(path))
    top.allow_only(("name", "canvas", "background", "layers", "anchor", "captions", "audio") + FEATURE_KEYS)
    base = path.resolve().parent
    canvas = _canvas(top.section("canvas"))
    return Scene(
        name=top.text("name", path.stem),
        source=str(path),
        base_dir=base,
        canvas=canvas,
        background=_background(top.section("background"), base),
        layers=tuple(_layer(top, i, item, base, canvas) for i, item in enumerate(top.items("layers"))),
        anchor=_anchor(top.section("anchor"), base, canvas) if top.has("anchor") else None,
        captions=_captions(top.section("captions"), base, canvas) if top.has("captions") else None,
        audio=_audio(top.section("audio"), base),
        features={k: data[k] for k in FEATURE_KEYS if k in data},
    )


def _canvas(sec: Section) -> Canvas:
    sec.allow_only(("width", "height", "fps"))
    width = sec.integer("width", 854, minimum=16, maximum=3840)
    height = sec.integer("height", 480, minimum=16, maximum=2160)
    for name, value in (("width", width), ("height", height)):
        if value % 2:
            raise sec.error(name, f"must be even (H.264 yuv420p needs it), got {value}")
    return Canvas(width, height, sec.integer("fps", 20, minimum=1, maximum=60))


def _asset(sec: Section, name: str, base: Path, *, image: bool = False, required: bool = True) -> Path | None:
    if not sec.has(name):
        if required:
            raise sec.error(name, "is required")
        return None
    raw = sec.text(name)
    path = Path(raw) if Path(raw).is_absolute() else base / raw
    if not path.is_file():
        raise sec.error(name, f"file not found: {path}")
    if image:
        from broadcaster.imagefile import ImageFileError, read_image_rgba
        try:
            read_image_rgba(path)
        except ImageFileError as exc:
            raise sec.error(name, f"{path}: {exc}") from None
    return path


def _background(sec: Section, base: Path) -> Background:
    sec.allow_only(("color", "gradient", "image", "fit"))
    chosen = [k for k in ("color", "gradient", "image") if sec.has(k)]
    if len(chosen) > 1:
        raise sec.error(chosen[1], f"choose one of color, gradient or image (got {', '.join(chosen)})")
    if not chosen or chosen[0] == "color":
        return Background(kind="color", color=sec.color("color", "#181c28"))
    if chosen[0] == "gradient":
        grad = sec.section("gradient")
        grad.allow_only(("from", "to", "direction"))
        return Background(kind="gradient", color=grad.color("from"), color2=grad.color("to"),
                          direction=grad.text("direction", "vertical",
                                              choices=("vertical", "horizontal", "diagonal")))
    return Background(kind="image", image=_asset(sec, "image", base, image=True),
                      fit=sec.text("fit", "cover", choices=("cover", "contain", "stretch")))


def _position(sec: Section, canvas: Canvas) -> tuple[int, int]:
    x = sec.integer("x", 0, minimum=-canvas.width, maximum=canvas.width)
    y = sec.integer("y", 0, minimum=-canvas.height, maximum=canvas.height)
    return x, y


def _layer(top: Section, index: int, item, base: Path, canvas: Canvas):
    sec = Section(item, top.source, top.path("layers") + f"[{index}]")
    if sec.has("image") == sec.has("text"):
        raise ConfigError(sec.source, sec.key, "each layer needs exactly one of 'image' or 'text'")
    x, y = _position(sec, canvas)
    if sec.has("image"):
        sec.allow_only(("image", "x", "y", "width", "height", "opacity"))
        width = sec.integer("width", 0, minimum=1, maximum=canvas.width * 2) if sec.has("width") else None
        height = sec.integer("height", 0, minimum=1, maximum=canvas.height * 2) if sec.has("height") else None
        return ImageLayer(path=_asset(sec, "image", base, image=True), x=x, y=y, width=width,
                          height=height, opacity=sec.number("opacity", 1.0, minimum=0, maximum=1))
    sec.allow_only(("text", "x", "y", "size", "color", "font", "background", "padding", "max_width"))
    return TextLayer(
        text=sec.text("text"), x=x, y=y, size=sec.integer("size", 28, minimum=6, maximum=400),
        color=sec.color("color", "#ffffff"), font=_asset(sec, "font", base, required=False),
        background=sec.color("background") if sec.has("background") else None,
        padding=sec.integer("padding", 8, minimum=0, maximum=200),
        max_width=sec.integer("max_width", 0, minimum=8, maximum=canvas.width) if sec.has("max_width") else None,
    )


def _box(sec: Section, canvas: Canvas) -> tuple[int, int, int, int]:
    x = sec.integer("x", minimum=0, maximum=canvas.width - 2)
    y = sec.integer("y", minimum=0, maximum=canvas.height - 2)
    w = sec.integer("width", minimum=2, maximum=canvas.width)
    h = sec.integer("height", minimum=2, maximum=canvas.height)
    if x + w > canvas.width:
        raise sec.error("width", f"x + width = {x + w} goes past the canvas width {canvas.width}")
    if y + h > canvas.height:
        raise sec.error("height", f"y + height = {y + h} goes past the canvas height {canvas.height}")
    return _even(x), _even(y), _even(w), _even(h)


def _anchor(sec: Section, base: Path, canvas: Canvas) -> AnchorSpec:
    sec.allow_only(("x", "y", "width", "height", "renderer", "portrait", "model", "options",
                    "video", "clips"))
    x, y, w, h = _box(sec, canvas)
    renderer = sec.text("renderer", "static", choices=("static", "puppet", "wav2lip"))
    options = sec.raw("options", {})
    if not isinstance(options, dict):
        raise sec.error("options", "must be a mapping")
    video, clips = _anchor_video(sec, base, renderer)
    portrait = _asset(sec, "portrait", base, image=True,
                      required=renderer == "static" or (renderer == "wav2lip" and video is None))
    model = _asset(sec, "model", base, required=renderer == "wav2lip")
    if renderer == "puppet" and "assets" in options:
        assets = Path(str(options["assets"]))
        assets = assets if assets.is_absolute() else base / assets
        if not (assets / "geometry.json").is_file():
            raise ConfigError(sec.source, sec.path("options.assets"),
                              f"{assets} is not a puppet asset folder (no geometry.json)")
    if renderer == "wav2lip" and "face_box" in options:
        box = options["face_box"]
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) and v >= 0 for v in box)):
            raise ConfigError(sec.source, sec.path("options.face_box"),
                              "must be [x, y, width, height] in pixels of the portrait")
    for key, low, high in (("batch_size", 1, 64), ("mouth_every", 1, 10)):
        value = options.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool)
                                      and low <= value <= high):
            raise ConfigError(sec.source, sec.path(f"options.{key}"),
                              f"must be a whole number from {low} to {high}")
    return AnchorSpec(x, y, w, h, renderer=renderer, portrait=portrait, model=model, options=options,
                      video=video, clips=clips)


def _clip_asset(sec: Section, name: str, base: Path) -> Path:
    from broadcaster.avatar.videoclip import probe_clip
    path = _asset(sec, name, base)
    problem = probe_clip(path)
    if problem:
        raise sec.error(name, f"{path} {problem}")
    return path


def _anchor_video(sec: Section, base: Path, renderer: str) -> tuple[Path | None, dict]:
    """The presenter clip and the named action clips; a video is for the wav2lip renderer."""
    if not (sec.has("video") or sec.has("clips")):
        return None, {}
    key = "video" if sec.has("video") else "clips"
    if renderer != "wav2lip":
        raise sec.error(key, "needs renderer: wav2lip")
    video = _clip_asset(sec, "video", base)
    clips = {}
    if sec.has("clips"):
        raw = sec.raw("clips")
        if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                               for k, v in raw.items()):
            raise sec.error("clips", "must map names to video files, e.g. {wave: wave.mp4}")
        clips_sec = sec.section("clips")
        for name in raw:
            clips[name] = _clip_asset(clips_sec, name, base)
    return video, clips


def _captions(sec: Section, base: Path, canvas: Canvas) -> CaptionSpec:
    sec.allow_only(("x", "y", "width", "height", "size", "color", "background", "font",
                    "max_lines", "align", "enabled"))
    x, y, w, h = _box(sec, canvas)
    background: RGBA | None = (0, 0, 0, 160)
    if sec.has("background"):
        none = str(sec.raw("background")).lower() == "none"
        background = None if none else sec.color("background")
    return CaptionSpec(
        x, y, w, h, size=sec.integer("size", 26, minimum=6, maximum=300),
        color=sec.color("color", "#ffffff"), background=background,
        font=_asset(sec, "font", base, required=False),
        max_lines=sec.integer("max_lines", 2, minimum=1, maximum=10),
        align=sec.text("align", "center", choices=("left", "center", "right")),
        enabled=sec.boolean("enabled", True),
    )


def _audio(sec: Section, base: Path) -> AudioBed:
    sec.allow_only(("bed", "volume", "duck"))
    bed = None
    if sec.has("bed") and str(sec.raw("bed")).lower() not in ("silence", "none"):
        bed = _asset(sec, "bed", base)
        from broadcaster.media.mixer import probe_bed
        problem = probe_bed(bed)
        if problem:
            raise sec.error("bed", f"{bed}: {problem}")
    return AudioBed(file=bed, volume=sec.number("volume", 0.2, minimum=0, maximum=1),
                    duck=sec.number("duck", 0.4, minimum=0, maximum=1))
