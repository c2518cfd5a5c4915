#!/usr/bin/env bash
# Installs what perslm-voice needs, idempotently: Debian packages (when root or sudo allows),
# a virtual environment in .venv, and the project with its extras. Quiet and quick when all is there.
#   scripts/setup.sh            # the assistant (with the Piper voice)
#   scripts/setup.sh test       # the assistant and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
want="${1:-run}"
extras="piper,whisper-base,server"
[ "$want" = test ] && extras="piper,whisper-base,server,test"

say() { printf '\033[1mperslm-voice setup:\033[0m %s\n' "$*" >&2; }

# 1. Debian packages: PortAudio (microphone), espeak-ng (fallback voice), ffmpeg (audio files),
#    python3-venv; for the tests sox, tmux, and chromium with its driver (the browser test of
#    `serve`). Missing ones are installed when we may; otherwise we say so and go on: the
#    assistant starts without them, degraded, and tells you what is missing.
debs="libportaudio2 espeak-ng libespeak-ng1 ffmpeg python3-venv"
[ "$want" = test ] && debs="$debs sox tmux chromium chromium-driver"
missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $debs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="none"; fi
  if [ "$sudo" != none ] && command -v apt-get >/dev/null; then
    say "installing Debian packages:$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    say "cannot install$missing (not root, no sudo): run: sudo apt-get install$missing"
  fi
fi

# 2. Python >= 3.10 and the virtual environment.
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { say "Python 3.10 or newer is needed"; exit 1; }
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi

# 3. llama.cpp compiles from source. On x86-64 it is built portable (AVX2, no AMX): a
#    -march=native build uses AMX tiles where the CPU has them, and where the kernel does not
#    grant them (containers, some VMs) the first reply dies with a general protection fault.
#    The wheel is kept in the user's cache, so a new .venv (CI's clean clone) reuses it.
LLAMA_SPEC="llama-cpp-python==0.3.36"
llama_flags=""
if [ "$(uname -m)" = x86_64 ]; then
  llama_flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  llama_flags="$llama_flags -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
fi
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/perslm-voice/wheels/$(printf '%s %s' "$LLAMA_SPEC" "$llama_flags" | sha256sum | cut -c1-12)"

# 4. The project. A stamp of pyproject.toml, the extras and the llama.cpp build skips pip when
#    nothing changed.
stamp=".venv/.perslm-voice-$want"
digest="$(sha256sum < pyproject.toml | cut -c1-16)-$extras-${PERSLM_VOICE_SKIP_TORCH:-}-$(basename "$wheels")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  say "installing Python packages into .venv (the first time builds llama.cpp: about 5 minutes)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    say "building llama.cpp ($LLAMA_SPEC${llama_flags:+, portable x86-64 build})"
    mkdir -p "$wheels"
    # Every core for the compiler; no pip cache, or a native build cached earlier comes back.
    CMAKE_ARGS="$llama_flags" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
      .venv/bin/python -m pip wheel -q --no-deps --no-cache-dir -w "$wheels" "$LLAMA_SPEC"
  fi
  .venv/bin/python -m pip install -q --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl
  .venv/bin/python -m pip install -q -e ".[$extras]"
  if [ "$want" = test ] && [ "${PERSLM_VOICE_SKIP_TORCH:-}" != 1 ]; then
    # The openai-whisper backend is tested with real (converted) weights. Its torch is pinned to
    # the CPU build this machine kind keeps on disk; elsewhere set PERSLM_VOICE_SKIP_TORCH=1 to
    # skip it (a multi-GB CUDA download) and its test is skipped, naming the extra.
    .venv/bin/python -m pip install -q "torch==2.13.0" && \
      .venv/bin/python -m pip install -q -e ".[openai-whisper]" || \
      say "torch/openai-whisper not installed: the openai-whisper test will be skipped"
  fi
  echo "$digest" > "$stamp"
fi
