#!/usr/bin/env bash
# One entry point for a fresh Debian machine with Python 3.11:
#   ./dev.sh demo   set up .venv, then train the NMT model on the built-in corpus (about 11 min)
#   ./dev.sh test   set up .venv, then run ruff and the whole test suite
#   ./dev.sh setup  set up .venv only
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}

die() { echo "dev.sh: $*" >&2; exit 2; }

find_python() {
  for py in "${PYTHON:-}" python3.11 python3; do
    [[ -n "$py" ]] || continue
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$@"
}

setup() {
  local py stamp want apt_pid="" missing=()
  py=$(find_python) || die "Python 3.11 not found: install python3.11 (Debian: apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"
  if [[ ! -x "$VENV/bin/python" ]]; then
    "$py" -m venv "$VENV" 2>/dev/null || {
      rm -rf "$VENV"
      apt_install python3-venv || die "could not create $VENV: install python3-venv"
      "$py" -m venv "$VENV"
    }
  fi
  # The GAN's offline default dataset (IDX files in /usr/share/datasets/fashion-mnist/), and
  # headless Chromium and its WebDriver for the dashboard's browser tests (tests/dashboard/).
  [[ -d /usr/share/datasets/fashion-mnist ]] || missing+=(dataset-fashion-mnist)
  [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] || missing+=(chromium chromium-driver)
  if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -eq 0 ]]; then
      # As root nothing asks for a password: apt works beside the Python install below.
      apt_install "${missing[@]}" >/dev/null &
      apt_pid=$!
    else
      apt_install "${missing[@]}" || apt_failed "${missing[@]}"
    fi
  fi
  stamp="$VENV/.installed"
  want=$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    # uv installs the same versions as pip (the same resolution of setup.cfg) in half the
    # time, downloading and compiling on both cores; pip if uv is out of reach. Compiled
    # up front, as pip does: where PYTHONDONTWRITEBYTECODE is set (CI), every process would
    # otherwise compile what it imports, again (a fresh clone's .ci/run: 975 s, compiled 830 s).
    if "$VENV/bin/python" -m pip install -q uv 2>/dev/null; then
      "$VENV/bin/uv" pip install -q --compile-bytecode --python "$VENV/bin/python" -e '.[test]'
    else
      "$VENV/bin/python" -m pip install -q --upgrade pip
      "$VENV/bin/python" -m pip install -q -e '.[test]'
    fi
    echo "$want" > "$stamp"
  fi
  if [[ -n "$apt_pid" ]]; then
    wait "$apt_pid" || apt_failed "${missing[@]}"
  fi
}

apt_failed() {
  echo "dev.sh: could not apt-get install $*; gan.train needs dataset-fashion-mnist, and" \
       "the browser tests are skipped without chromium and chromium-driver" >&2
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case "$cmd" in
  setup) setup ;;
  demo)
    setup
    dir=runs/translate_builtin
    "$VENV/bin/python" -m translate.train --model_dir="$dir" "$@"
    printf 'Sunday, March 21, 1999\neight hundred and seventeen thousand, eight hundred and sixty-five\n' |
      "$VENV/bin/python" -m translate.translate --model_dir="$dir" --beam_width=5 --plot_dir="$dir/plots"
    echo "metrics: $dir/metrics.json; attention heatmaps: $dir/plots/; TensorBoard: tensorboard --logdir $dir"
    ;;
  test)
    setup
    "$VENV/bin/ruff" check .
    # The whole suite on TensorFlow and, at the same time, the layer tests again on JAX to
    # show they are backend-neutral. The TensorFlow pass leaves part of the two cores idle
    # (its workers wait on subprocesses and on each other's shared fixtures), which the JAX
    # pass's one process fills; its report is printed after the TensorFlow pass's. The JAX
    # pass collects tests/layers only (every backend_neutral module is there; conftest refuses
    # one elsewhere): collecting the apps' tests imports them, seconds for nothing.
    # Three processes share two cores: each computes on one thread (TensorFlow's intra-op
    # pool, XLA's CPU pool) rather than two that contend for the same cores. The processes
    # the tests start inherit it.
    export TF_NUM_INTRAOP_THREADS="${TF_NUM_INTRAOP_THREADS:-1}"
    # (XLA stops reading XLA_FLAGS at a word that is not a flag: each must start with --xla.)
    export XLA_FLAGS="${XLA_FLAGS:---xla_cpu_multi_thread_eigen=false}"
    jax_log=$(mktemp)
    # Most of the JAX pass is XLA compiling the small programs JAX runs eagerly (one per
    # primitive and shape, one per weight initializer): 210 of its 330 CPU-s. Most of a
    # compile is XLA's backend optimization; without it the pass takes 187 CPU-s instead
    # of 317, and these tiny programs hardly run slower. Only here: the TensorFlow pass
    # trains its agents under XLA, and a tiny learning test may take another path when the
    # rounding changes.
    XLA_FLAGS="$XLA_FLAGS --xla_backend_optimization_level=0" KERAS_BACKEND=jax \
      "$VENV/bin/python" -m pytest -q -n 0 -m backend_neutral tests/layers "$@" \
      >"$jax_log" 2>&1 &
    jax_pid=$!
    trap 'kill "$jax_pid" 2>/dev/null || true; rm -f "$jax_log"' EXIT
    # Ctrl-C reaches the TensorFlow pass; the background JAX pass ignores it (a script's
    # background jobs do), so stop it through the EXIT trap rather than wait for it.
    trap 'exit 130' INT TERM
    tf_status=0
    # Whole files to each worker (module fixtures are built once), in the order conftest.py
    # sets: longest first.
    "$VENV/bin/python" -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder tests "$@" \
      || tf_status=$?
    jax_status=0
    wait "$jax_pid" || jax_status=$?
    echo "=== the layer tests on JAX (KERAS_BACKEND=jax) ==="
    cat "$jax_log"
    [[ $tf_status -eq 0 ]] || exit "$tf_status"
    exit "$jax_status"
    ;;
  *) die "expected one of: setup, demo, test. Received: command='$cmd'" ;;
esac
