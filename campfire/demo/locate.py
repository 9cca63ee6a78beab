"""Where the demo archive is: :func:`ensure` finds a complete one, or builds it once.

Light on purpose: every example of the reference starts with ``campfire.demo.ensure()``
(and ``archive: demo`` in a workflow), and a demo already built needs only its marker read;
the builder (scipy, the survey plan: ~0.5 s of imports) is imported only to build.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
from typing import Iterator

from campfire import config
from campfire.demo.identity import is_complete, validate_size_seed

__all__ = ["ensure"]


@contextlib.contextmanager
def _file_lock(path: pathlib.Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def ensure(size: str | None = None, *, seed: int | None = None, root: str | os.PathLike | None = None,
           progress: bool = True, workers: int | None = None) -> pathlib.Path:
    """The demo archive root, built first if it is missing, incomplete or outdated.

    Safe when several processes call it at once: a file lock beside the root lets one
    build while the others wait, then find it complete.

    Parameters
    ----------
    size : {'small', 'full', 'catalog'}, optional
        None (default) accepts a complete ``'small'`` or ``'full'`` demo already there
        and builds ``'small'`` when there is none; a size asks for exactly that one
        (rebuilding if needed).
    seed : int, optional
        None accepts any seed (builds with 0); an int asks for exactly that one.
    root : path, optional
        Default :func:`campfire.config.demo_root`.
    progress : bool
        Progress bar while building.
    workers : int, optional
        Worker processes for a build.

    Returns
    -------
    pathlib.Path
        The demo archive root (use it as ``Campfire(data_dir=...)`` or ``$CAMPFIRE_ROOT``).

    Examples
    --------
    >>> import campfire.demo
    >>> from campfire import Campfire
    >>> cf = Campfire(data_dir=campfire.demo.ensure())  # doctest: +SKIP
    """
    if size is not None:
        size, _ = validate_size_seed(size, 0)
    if seed is not None:
        _, seed = validate_size_seed("small", seed)
    root = pathlib.Path(root).expanduser() if root is not None else config.demo_root()
    root = root.absolute()
    if is_complete(root, size, seed):
        return root
    with _file_lock(root.parent / f".{root.name}.lock"):
        if is_complete(root, size, seed):  # another process built it while we waited
            return root
        # builds are renamed into place whole, so a directory without the marker is not
        # a half-built demo but someone's data: build() refuses to touch it
        from campfire.demo.builder import build  # scipy and the survey plan: only to build

        return build(root, size=size or "small", seed=0 if seed is None else seed, workers=workers,
                     progress=progress, overwrite=True)
