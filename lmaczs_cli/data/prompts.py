"""Prompts: label sets (``--labels esc50|esc10|us8k|synth|FILE``), templates and their validation.

The one place that turns labels into prompts. Label *texts* are the public
class names with ``_`` replaced by a space ("crying_baby" -> "crying baby");
the loaders use the same texts for ``AudioItem.label``, so an item's label is
found in these lists as is. A template must contain ``{label}`` (and no other
placeholder); ``"this is a sound of {label}"`` is the default everywhere.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lmaczs_cli.errors import UsageError

#: ESC-50 ``category`` names in ``target`` order (0-49)
ESC50_CATEGORIES: tuple[str, ...] = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind",
    "pouring_water", "toilet_flush", "thunderstorm",
    "crying_baby", "sneezing", "clapping", "breathing", "coughing", "footsteps", "laughing",
    "brushing_teeth", "snoring", "drinking_sipping",
    "door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks", "can_opening",
    "washing_machine", "vacuum_cleaner", "clock_alarm", "clock_tick", "glass_breaking",
    "helicopter", "chainsaw", "siren", "car_horn", "engine", "train", "church_bells",
    "airplane", "fireworks", "hand_saw",
)  # fmt: skip

#: the ESC-10 subset (rows with ``esc10 == True``), in ESC-50 target order
ESC10_CATEGORIES: tuple[str, ...] = (
    "dog", "rooster", "rain", "sea_waves", "crackling_fire", "crying_baby", "sneezing",
    "clock_tick", "helicopter", "chainsaw",
)  # fmt: skip

#: UrbanSound8K ``class`` names in ``classID`` order (0-9)
US8K_CLASSES: tuple[str, ...] = (
    "air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
    "engine_idling", "gun_shot", "jackhammer", "siren", "street_music",
)  # fmt: skip

DEFAULT_TEMPLATE = "this is a sound of {label}"


def label_text(name: str) -> str:
    """A class name as prompt text: ``"crying_baby"`` -> ``"crying baby"``."""
    return " ".join(name.replace("_", " ").split())


ESC50_LABELS: tuple[str, ...] = tuple(label_text(c) for c in ESC50_CATEGORIES)
ESC10_LABELS: tuple[str, ...] = tuple(label_text(c) for c in ESC10_CATEGORIES)
US8K_LABELS: tuple[str, ...] = tuple(label_text(c) for c in US8K_CLASSES)

#: built-in label sets by ``--labels`` name (``synth``, the synthetic world's classes, is added below)
LABEL_SETS: dict[str, tuple[str, ...]] = {
    "esc50": ESC50_LABELS,
    "esc10": ESC10_LABELS,
    "us8k": US8K_LABELS,
}
LABEL_SET_NAMES: tuple[str, ...] = (*LABEL_SETS, "synth")


def builtin_labels(name: str) -> list[str] | None:
    """The built-in label set ``name`` (any case), or None if there is none of that name."""
    key = name.strip().lower()
    if key == "synth":
        from lmaczs_cli.data.synthetic import class_names

        return class_names()
    return list(LABEL_SETS[key]) if key in LABEL_SETS else None


def load_labels(spec: str | Path) -> list[str]:
    """Labels for ``--labels``: a built-in set name, or a file with one label per line.

    In a file, blank lines and ``#`` comments are skipped and duplicates dropped
    (first one kept); labels are used verbatim.
    """
    key = str(spec).strip()
    builtin = builtin_labels(key)
    if builtin is not None:
        return builtin
    path = Path(key).expanduser()
    names = ", ".join(LABEL_SET_NAMES)
    if not path.exists():
        raise UsageError(f"--labels {key}: not a built-in set ({names}) and no such file")
    if not path.is_file():
        raise UsageError(f"--labels {key}: is a folder, expected a file with one label per line")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--labels {key}: cannot read ({e})") from None
    labels = [ln.strip() for ln in text.splitlines()]
    labels = [ln for ln in labels if ln and not ln.startswith("#")]
    if not labels:
        raise UsageError(f"--labels {key}: no labels in file (one per line, # for comments)")
    return list(dict.fromkeys(labels))


def check_template(template: str, option: str = "--prompt-template") -> str:
    """``template`` if it contains ``{label}`` and no other placeholder; else a one-line usage error."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:  # unbalanced braces
        raise UsageError(f"{option} {template!r}: {e}; write the label's place as {{label}}") from None
    if "label" not in fields or any(f != "label" for f in fields):
        raise UsageError(
            f"{option} {template!r} must contain {{label}} (and no other {{...}} field), "
            f"e.g. {DEFAULT_TEMPLATE!r}"
        )
    return template


def prompt_for(label: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The prompt for ``label``: ``template`` (checked) with ``{label}`` filled in."""
    return check_template(template).format(label=label)


def label_prompts(labels: Sequence[str], template: str = DEFAULT_TEMPLATE) -> list[str]:
    """One prompt per label, in order."""
    check_template(template)
    return [template.format(label=lab) for lab in labels]


@dataclass(frozen=True)
class Prompt:
    """A prompt to explain: ``label`` (short name for files/tables) and ``text`` (what is embedded)."""

    label: str
    text: str


def check_prompt(text: str, where: str = "--prompt") -> str:
    """A prompt with its outer whitespace removed; an empty one is a usage error."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"{where}: empty prompt; give the text to explain, e.g. --prompt 'dog barking'")
    return text.strip()


def resolve_prompts(
    prompts: Sequence[str] | None = None,
    prompts_file: Path | None = None,
    labels: str | None = None,
    template: str = DEFAULT_TEMPLATE,
) -> list[Prompt]:
    """Prompts from ``--prompt`` (verbatim), ``--prompts-file`` and ``--labels`` (via ``template``)."""
    check_template(template)
    out = [Prompt(t, t) for t in (check_prompt(p) for p in prompts or [])]
    if prompts_file is not None:
        out += [Prompt(t, t) for t in _prompt_file(Path(prompts_file))]
    if labels is not None:
        out += [Prompt(lab, template.format(label=lab)) for lab in load_labels(labels)]
    if not out:
        raise UsageError("no prompts: give --prompt TEXT, --prompts-file FILE or --labels SET")
    return list(dict.fromkeys(out))


def duplicate_warning(prompts: Sequence[Prompt]) -> str | None:
    """A warning when prompts differ only in case or spacing (``dog`` and ``Dog``): the model sees
    near-identical texts, so they split the probability and the ranking between them."""
    groups: dict[str, list[str]] = {}
    for p in prompts:
        groups.setdefault(" ".join(p.text.casefold().split()), []).append(p.text)
    dups = [g for g in groups.values() if len(g) > 1]
    if not dups:
        return None
    shown = "; ".join(" / ".join(repr(t) for t in g) for g in dups[:3])
    more = f" and {len(dups) - 3} more groups" if len(dups) > 3 else ""
    return (f"{sum(len(g) for g in dups)} prompts differ only in case or spacing ({shown}{more}): "
            "each group splits the probability and the top-k places between near-identical texts; "
            "keep one of each")


def _prompt_file(path: Path) -> list[str]:
    if not path.is_file():
        raise UsageError(f"--prompts-file {path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--prompts-file {path}: cannot read ({e})") from None
    lines = [ln.strip() for ln in text.splitlines()]
    found = [ln for ln in lines if ln and not ln.startswith("#")]
    if not found:
        raise UsageError(f"--prompts-file {path}: no prompts in file (one per line, # for comments)")
    return found
