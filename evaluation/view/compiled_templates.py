"""The view's templates compiled once and kept between starts: compiling the summary
page's (with its layout) was ~0.03 s of `evalflow view`'s first page, every time.

Jinja's own file cache, in its folder for this user in the system's temp folder (made
private to the user; Jinja refuses one that is not). A kept template is used only while
its source is unchanged (Jinja compares a checksum of it) and Jinja and Python are the
versions that compiled it; the file names carry the environment's options that shape the
compiled code, so an environment set otherwise never reads another's. A cache that
cannot be made, read or written is no cache: the template is compiled, as without one.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping

from jinja2 import BytecodeCache, FileSystemBytecodeCache
from jinja2.bccache import Bucket


class _KeptTemplates(FileSystemBytecodeCache):
    """Jinja's file cache, where a file that cannot be read or written is a miss."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError):  # unreadable: compiled again
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):  # a full or read-only temp folder: kept nowhere
            super().dump_bytecode(bucket)


def compiled_templates(name: str, options: Mapping[str, object]) -> BytecodeCache | None:
    """The cache of environment ``name``'s compiled templates, for an environment made
    with ``options`` (those that shape its compiled code: whitespace control, what is
    autoescaped); None where the temp folder offers none."""
    shape = hashlib.sha256(repr(sorted(options.items())).encode()).hexdigest()[:12]
    try:
        return _KeptTemplates(pattern=f"__evalflow_{name}_{shape}_%s.cache")
    except (OSError, RuntimeError):  # no private folder can be made there
        return None
