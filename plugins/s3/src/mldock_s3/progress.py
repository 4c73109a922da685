"""Progress of s3transfer's transfers, fed into core's throttled :class:`TransferProgress`.

s3transfer calls back from its worker threads with every chunk; :func:`subscriber` passes those
counts on, and core's meter turns them into a few readable lines.
"""

from __future__ import annotations

from typing import Any

from mldock.cas.progress import TransferProgress, human

__all__ = ["TransferProgress", "human", "subscriber"]


def subscriber(meter: TransferProgress) -> Any:
    """An s3transfer subscriber feeding ``meter``."""
    from s3transfer.subscribers import BaseSubscriber

    class _Subscriber(BaseSubscriber):
        def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
            meter.add(bytes_transferred)

    return _Subscriber()
