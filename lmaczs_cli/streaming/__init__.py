"""Long clips explained with memory bounded by a few model windows (see :mod:`.engine`).

``lmaczs explain`` streams clips of at least ``engine.STREAM_MIN_WINDOWS`` model windows;
:func:`lmaczs_cli.api.explain_to_folder` does the same from Python.
"""

from lmaczs_cli.streaming.engine import StreamedExplanation, explain_clip_streaming, is_long, streamable

__all__ = ["StreamedExplanation", "explain_clip_streaming", "is_long", "streamable"]
