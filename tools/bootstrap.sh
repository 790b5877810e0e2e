#!/usr/bin/env bash
# One-step set-up on a fresh Debian/Ubuntu machine, then run the broadcaster or its tests.
#   bash tools/bootstrap.sh run [broadcaster run options...]   # the default broadcast (records to recordings/)
#   bash tools/bootstrap.sh test [pytest options...]           # the whole test suite
# Installs Debian packages with apt-get (when missing) and Python packages into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-dev
  ffmpeg                         # the ffmpeg CLI: reference pipe in tools/bench_encode.py
  nginx libnginx-mod-rtmp        # a real RTMP ingest for the tests
  srt-tools libsrt1.5-gnutls     # libsrt for SRT output; srt-live-transmit as a test listener
  ngircd                         # a real IRC server for chat tests
  espeak-ng sox                  # real speech for the microphone/ASR tests
  libopus0 libportaudio2         # opuslib and sounddevice load these
  fonts-noto-cjk fonts-dejavu-core   # captions in Latin and CJK scripts
  iproute2                       # tc/netns for the bandwidth step test
  util-linux                     # prlimit: the descriptor-flood test runs under a 1024 file limit
)
mode=${1:-run}
if [ "$mode" = test ]; then
  APT_PACKAGES+=(chromium)       # the studio page's browser test (Playwright drives this browser)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
shift || true
# `run` installs what running needs; `test` adds the test extra (pytest, torch for the model
# exports, onnx, matplotlib). A stamp per mode and pyproject.toml skips a repeated install.
sha=$(sha1sum pyproject.toml | cut -c1-12)
want=run; [ "$mode" = test ] && want=test
if [ ! -f ".venv/.installed-$want-$sha" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$want" = test ]; then
    .venv/bin/python -m pip install -q -e ".[test]"
  else
    .venv/bin/python -m pip install -q -e .
  fi
  find .venv -maxdepth 1 -name '.installed-*' ! -name "*-$sha" -delete
  touch ".venv/.installed-$want-$sha"
  [ "$want" = test ] && touch ".venv/.installed-run-$sha"
fi

case "$mode" in
  run)  exec .venv/bin/broadcaster run "$@" ;;
  test) exec .venv/bin/python -m pytest -q "$@" ;;
  *)    echo "usage: bash tools/bootstrap.sh run|test [args...]" >&2; exit 2 ;;
esac
