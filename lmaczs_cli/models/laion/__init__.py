"""The LAION-CLAP family (``--clap laion-*``): HTSAT audio + RoBERTa text, from ``laion_clap`` ``.pt`` files.

- :mod:`.family`: its record (name patterns, checkpoint catalogue, tokenizer files, preset, help);
- :mod:`.model`: :class:`~lmaczs_cli.models.laion.model.LaionClap` (non-fusion) and its factories;
- :mod:`.fusion`: the fusion checkpoints (whole clip seen as the model sees it);
- :mod:`.checkpoint`: reading ``.pt`` files offline; :mod:`.tokenizer`: the RoBERTa files;
- :mod:`.upstream` / :mod:`.reference`: the ``laion_clap`` package's own modules, loaded without
  side effects, and the package's own path for parity tests.

Import-light: nothing is imported here (the record is read without torch).
"""
