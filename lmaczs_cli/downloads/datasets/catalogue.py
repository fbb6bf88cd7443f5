"""The data sets ``lmaczs download dataset`` knows: the publishers' files, their checksums, licences.

Values and where each comes from (also in the report of the change that added them):

- UrbanSound8K: Zenodo record 1203745 (DOI 10.5281/zenodo.1203745); the MD5 is the one
  Zenodo publishes for ``UrbanSound8K.tar.gz`` (the same value in soundata, PaddleAudio and
  others); the size as those projects pin it.
- Clotho v2.1: Zenodo record 4783391; MD5s as Zenodo publishes them (identical in soundata
  and aac-datasets); sizes where a public pin exists (the evaluation files have none: their
  size is then the server's ``Content-Length``, the MD5 still decides).
- ESC-50: a GitHub archive of karolpiczak/ESC-50 at a pinned commit. GitHub builds such
  archives on request and does not promise the same bytes forever, so the archive's size and
  SHA-256 (as observed for this commit) are *not* published digests: a different archive is
  accepted only if its content passes the checks below (``meta/esc50.csv`` with the MD5 that
  several projects pin, 2000 clips all present); a broken zip fails its CRC-32 checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ZENODO = "https://zenodo.org/records/"
ESC50_COMMIT = "33c8ce9eb2cf0b1c2f8bcf322eb349b6be34dbb6"


@dataclass(frozen=True)
class Archive:
    """One file a data set is made of (an archive, or a plain file such as a CSV)."""

    name: str  #: saved under this name
    url: str
    kind: str  #: "zip", "tar" (any compression), "7z" or "file" (placed as it is)
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    #: the digests are the publisher's: a mismatch refuses the file. Otherwise they describe
    #: the bytes last seen, and the data set's content checks decide.
    published: bool = True
    #: the archive holds one top-level folder, whose content is the data set
    unwrap: bool = False
    #: entries of that content to keep (None: all)
    keep: tuple[str, ...] | None = None
    #: for display when ``size`` is not pinned
    approx_size: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A data set: its files, how the finished folder must look, its licence and attribution."""

    name: str
    title: str
    version: str
    homepage: str
    licence: str
    attribution: str
    archives: tuple[Archive, ...]
    #: split (None: the whole set) -> clips its loader must find, none missing
    clips: Mapping[str | None, int]
    #: files of the finished folder with a pinned MD5
    file_md5: Mapping[str, str] = field(default_factory=dict)

    def download_size(self) -> int:
        """Bytes to download (pinned sizes, else the approximate ones)."""
        return sum(a.size or a.approx_size or 0 for a in self.archives)


ESC50 = DatasetSpec(
    name="esc50",
    title="ESC-50: 2000 environmental sound clips (5 s), 50 classes, 5 folds",
    version=f"github:{ESC50_COMMIT}",
    homepage="https://github.com/karolpiczak/ESC-50",
    licence="CC BY-NC 3.0 (https://creativecommons.org/licenses/by-nc/3.0/); "
    "the ESC-10 subset: CC BY 3.0",
    attribution=(
        "ESC-50: Dataset for Environmental Sound Classification, by Karol J. Piczak.\n"
        "Clips cut from Freesound.org recordings; each clip's source, author and licence: LICENSE.\n"
        'Cite: K. J. Piczak, "ESC: Dataset for Environmental Sound Classification", Proc. 23rd ACM\n'
        "International Conference on Multimedia, 2015, pp. 1015-1018, doi:10.1145/2733373.2806390."
    ),
    archives=(
        Archive(
            f"ESC-50-{ESC50_COMMIT}.zip",
            f"https://github.com/karolpiczak/ESC-50/archive/{ESC50_COMMIT}.zip",
            "zip",
            size=645_832_161,
            sha256="661183a6f53ef04f12c9bd618fed0ddc1713280d6c94a5a5431e844ba6f6a21f",
            published=False,
            unwrap=True,
            keep=("meta", "audio", "LICENSE", "README.md"),
        ),
    ),
    clips={None: 2000},
    file_md5={"meta/esc50.csv": "54a0d0055a10bb7df84ad340a148722e"},
)

US8K = DatasetSpec(
    name="us8k",
    title="UrbanSound8K: 8732 urban sound clips (up to 4 s), 10 classes, 10 folds",
    version="1.0",
    homepage="https://urbansounddataset.weebly.com/urbansound8k.html",
    licence="CC BY-NC 3.0 (https://creativecommons.org/licenses/by-nc/3.0/)",
    attribution=(
        "UrbanSound8K, by Justin Salamon, Christopher Jacoby and Juan Pablo Bello\n"
        "(MARL and CUSP, New York University). Clips cut from Freesound.org recordings;\n"
        "the recordings' authors: FREESOUNDCREDITS.txt.\n"
        'Cite: J. Salamon, C. Jacoby and J. P. Bello, "A Dataset and Taxonomy for Urban Sound\n'
        'Research", Proc. 22nd ACM International Conference on Multimedia, 2014, pp. 1041-1044,\n'
        "doi:10.1145/2647868.2655045."
    ),
    archives=(
        Archive(
            "UrbanSound8K.tar.gz",
            ZENODO + "1203745/files/UrbanSound8K.tar.gz?download=1",
            "tar",
            size=6_023_741_708,
            md5="9aa69802bbf37fb986f71ec1483a196e",
            unwrap=True,
        ),
    ),
    clips={None: 8732},
)


def _clotho_files() -> tuple[Archive, ...]:
    url = ZENODO + "4783391/files/{}?download=1"
    audio = (  # (split, size, md5)
        ("development", 4_541_582_263, "c8b05bc7acdb13895bb3c6a29608667e"),
        ("validation", 1_260_701_425, "7dba730be08bada48bd15dc4e668df59"),
        ("evaluation", None, "4569624ccadf96223f19cb59fe4f849f"),
    )
    csvs = (  # (file, size, md5)
        ("clotho_captions_development.csv", 1_336_762, "d4090b39ce9f2491908eebf4d5b09bae"),
        ("clotho_captions_validation.csv", 367_649, "5879e023032b22a2c930aaa0528bead4"),
        ("clotho_captions_evaluation.csv", None, "1b16b9e57cf7bdb7f13a13802aeb57e2"),
        ("clotho_metadata_development.csv", 830_797, "170d20935ecfdf161ce1bb154118cda5"),
        ("clotho_metadata_validation.csv", 224_803, "2e010427c56b1ce6008b0f03f41048ce"),
        ("clotho_metadata_evaluation.csv", None, "13946f054d4e1bf48079813aac61bf77"),
    )
    archives = [
        Archive(f"clotho_audio_{s}.7z", url.format(f"clotho_audio_{s}.7z"), "7z", size=n, md5=m,
                approx_size=None if n else 1_300_000_000)
        for s, n, m in audio
    ]
    archives += [Archive(f, url.format(f), "file", size=n, md5=m, approx_size=None if n else 400_000)
                 for f, n, m in csvs]
    return tuple(archives)


CLOTHO = DatasetSpec(
    name="clotho",
    title="Clotho v2.1: 5929 clips (15-30 s) with 5 captions each; development, validation, evaluation",
    version="2.1",
    homepage="https://zenodo.org/records/4783391",
    licence="audio and clotho_metadata_*.csv: each clip's Freesound licence (column 'license' of "
    "clotho_metadata_<split>.csv); captions: Tampere University licence (non-commercial, with "
    "attribution; LICENSE at https://zenodo.org/records/4783391)",
    attribution=(
        "Clotho v2.1, by Konstantinos Drossos, Samuel Lipping and Tuomas Virtanen (Audio Research\n"
        "Group, Tampere University). Audio from Freesound.org; each clip's uploader and licence:\n"
        "clotho_metadata_<split>.csv.\n"
        'Cite: K. Drossos, S. Lipping and T. Virtanen, "Clotho: an Audio Captioning Dataset",\n'
        "Proc. IEEE ICASSP 2020, pp. 736-740, doi:10.1109/ICASSP40776.2020.9052990."
    ),
    archives=_clotho_files(),
    clips={"development": 3839, "validation": 1045, "evaluation": 1045},
)

#: name -> data set, in ``--list`` order
DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (ESC50, US8K, CLOTHO)}
