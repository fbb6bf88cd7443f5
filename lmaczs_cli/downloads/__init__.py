"""Everything lmaczs downloads, and where it keeps it: the only code that uses the network.

Nothing else in lmaczs touches the network; the ``lmaczs download`` command
(``cli/download.py``) calls into these modules, and the model loaders only read the caches.

- ``cache``: where downloaded files live and finding them again offline (no network);
- ``fetch``: one file over HTTP(S), resumable and verified (:func:`~lmaczs_cli.downloads.fetch.download`);
- ``models``: the CLAP checkpoints and tokenizer files ``lmaczs download clap/tokenizer`` know
  (read from the model families' records, ``lmaczs_cli/models/<family>/family.py``);
- ``hf``: Hugging Face hub repos (``hf:`` CLAP models, decoder repos);
- ``datasets``: the data sets ``lmaczs download dataset`` installs (ESC-50, UrbanSound8K, Clotho).
"""
