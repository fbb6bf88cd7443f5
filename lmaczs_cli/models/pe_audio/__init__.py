"""The Meta Perception Encoder audio family (``--clap pe-audio``, ``pe-audio:<repo-or-folder>``).

- :mod:`.family`: its record (name patterns, preflight, preset, help);
- :mod:`.model`: :class:`~lmaczs_cli.models.pe_audio.model.PeAudio` and its factories.

Import-light: nothing is imported here (the record is read without torch).
"""
