"""Label lists for ``--labels esc50|esc10|us8k|FILE`` and the prompt template.

Label *texts* are the public class names with ``_`` replaced by a space
("crying_baby" -> "crying baby"); the loaders use the same texts for
``AudioItem.label``, so an item's label is found in these lists as is.
"""

from __future__ import annotations

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

#: built-in label sets by ``--labels`` name
LABEL_SETS: dict[str, tuple[str, ...]] = {
    "esc50": ESC50_LABELS,
    "esc10": ESC10_LABELS,
    "us8k": US8K_LABELS,
}


def load_labels(spec: str | Path) -> list[str]:
    """Labels for ``--labels``: a built-in set name, or a file with one label per line.

    In a file, blank lines and ``#`` comments are skipped and duplicates dropped
    (first one kept); labels are used verbatim.
    """
    key = str(spec).strip()
    if key.lower() in LABEL_SETS:
        return list(LABEL_SETS[key.lower()])
    path = Path(key).expanduser()
    names = ", ".join(LABEL_SETS)
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


def prompt_for(label: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The prompt for ``label``: ``template`` with ``{label}`` (or ``{}``) filled in."""
    if "{label}" in template:
        return template.replace("{label}", label)
    if "{}" in template:
        return template.replace("{}", label)
    raise UsageError(f"prompt template {template!r} must contain {{label}}")
