"""``lmaczs download dataset``: the publishers' archives of ESC-50, UrbanSound8K and Clotho,
verified and laid out as the loaders in :mod:`lmaczs_cli.data` read them (no heavy imports here).

- ``catalogue``: the files (URLs, sizes, checksums), licences and attributions;
- ``extract``: safe extraction of zip, tar and 7z archives;
- ``layout``: from downloaded files to the layout the loaders read, checked with the loaders;
- ``install``: ``install_dataset(name, dest)``, the whole procedure.
"""
