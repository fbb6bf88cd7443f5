"""The Hugging Face ``ClapModel`` family (``--clap hf:<repo-or-folder>``, ``hf-htsat-tiny``, ``-base``).

- :mod:`.family`: its record (name patterns, how ``lmaczs download clap hf:ID`` fetches, preset, help);
- :mod:`.clap`: :class:`~lmaczs_cli.models.hf.clap.HfClap`; :mod:`.build`: its factories;
- :mod:`.configs`: the named architectures; :mod:`.source`: finding a folder or hub snapshot offline.

Import-light: nothing is imported here (the record is read without torch).
"""
