"""The Microsoft CLAP family (``--clap ms-clap-2022``, ``ms-clap-2023``), from ``msclap`` ``.pth`` files.

- :mod:`.family`: its record (name patterns, checkpoint catalogue, tokenizer files, presets, help);
- :mod:`.model`: :class:`~lmaczs_cli.models.msclap.model.MsClap` and its factories;
- :mod:`.checkpoint`: reading ``.pth`` files offline; :mod:`.text`: BERT / GPT-2 text side;
- :mod:`.upstream` / :mod:`.reference`: the ``msclap`` package's own modules, loaded without side
  effects, and the package's own path for parity tests.

Import-light: nothing is imported here (the record is read without torch).
"""
