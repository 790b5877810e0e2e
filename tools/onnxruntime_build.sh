# Sourced by tools/bootstrap.sh (and its test): onnxruntime_build, with $build = cpu or gpu and
# .venv in the current directory.
# Both wheels write the same `onnxruntime` package and every `pip install -e .` brings the CPU
# one back (piper-tts and faster-whisper depend on it): after each install, remove the one not
# wanted and lay the wanted one down again over the files that removal took with it.
onnxruntime_build() {
  local pip=(.venv/bin/python -m pip)
  if [ "$build" = gpu ]; then
    "${pip[@]}" show -q onnxruntime >/dev/null 2>&1 || return 0
    echo "bootstrap: NVIDIA GPU found: onnxruntime-gpu replaces onnxruntime" >&2
    "${pip[@]}" uninstall -q -y onnxruntime
    "${pip[@]}" install -q --force-reinstall --no-deps "$("${pip[@]}" freeze | grep -i '^onnxruntime[-_]gpu==')"
  elif "${pip[@]}" show -q onnxruntime-gpu >/dev/null 2>&1; then
    "${pip[@]}" uninstall -q -y onnxruntime-gpu onnxruntime
    "${pip[@]}" install -q --force-reinstall --no-deps onnxruntime
  fi
}
