"""Import TensorFlow without the C++ start-up chatter, for command-line tools.

TensorFlow's C++ runtime prints informational lines (CUDA probing, oneDNN,
"All log messages before absl::InitializeLog()") to file descriptor 2 while
it is imported, before `TF_CPP_MIN_LOG_LEVEL` takes effect. Entry points set
`TF_CPP_MIN_LOG_LEVEL=3`, and then a user's mistake should read as one line,
so the import is done with file descriptor 2 pointed at /dev/null. Library
users who leave the variable unset see TensorFlow's usual output. An import
error is raised after stderr is restored, so it is never hidden.
"""

import os
import sys


def import_tensorflow_quietly():
    """Imports TensorFlow with fd 2 silenced, when TF_CPP_MIN_LOG_LEVEL >= 3."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "3":
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
