"""Model directories: arrays + JSON with a format version and checksums (no pickle).

* :mod:`leapscreen.persist.model` - what a saved model holds, save / load / validation;
* :mod:`leapscreen.persist.atomic` - how files and directories are written safely (atomic publish,
  locks, never replacing what leapscreen did not write).
"""

from leapscreen.persist.model import (
    FORMAT,
    FORMAT_VERSION,
    META_FILE,
    load_model,
    read_model_meta,
    save_model,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "META_FILE", "load_model", "read_model_meta", "save_model"]
