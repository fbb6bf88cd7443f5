"""The ``Explainer`` interface every method implements, and a registry by name.

Like captum's ``attribute``, an explainer has one verb, :meth:`Explainer.masks`:
for B paired (clip_i, prompt_i) it returns B masks in [0, 1] at the linear
spectrogram's resolution. Metrics, writers and commands only use that verb.

Methods register a factory ``factory(model, **options) -> Explainer`` (imported
only when the method is created), as at the end of this file::

    register_explainer("gradcam", "lmaczs_cli.explainers.gradcam:build_gradcam")

Masks from saliency maps are made the same way for every baseline by
:func:`lmaczs_cli.explainers.saliency.saliency_to_mask`.

An explainer says which of its settings define its masks with :meth:`Explainer.identity`
(e.g. ``{"steps": "50"}`` for Integrated Gradients); run records and result rows carry it
(:func:`identity_string`), so ``--resume`` redoes rows made with other settings.
"""

from __future__ import annotations

import importlib
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lmaczs_cli.errors import UsageError

if TYPE_CHECKING:  # keep this module import-light (no torch at import time)
    import torch

    from lmaczs_cli.models.base import Encoded, ZeroShotModel


class Explainer(ABC):
    """A method that explains a zero-shot model's similarity between clips and prompts.

    Subclasses implement :meth:`compute_masks`; callers use :meth:`masks`, which
    checks the inputs and sets the grad mode the method needs (so no caller
    switches it), and returns detached float masks.
    """

    #: registry name, e.g. ``"lmaczs"``
    name: str = ""
    #: True when the method back-propagates through the model (gradient baselines)
    needs_grad: bool = False
    #: the model this explainer was created for (set once by :meth:`bind`, from :func:`create_explainer`)
    model: ZeroShotModel | None = None

    def bind(self, model: ZeroShotModel) -> None:
        """Tie the explainer to ``model`` (once, when it is created); subclasses may build what they
        keep for it here (GradCAM: its CAM object)."""
        self.model = model

    def identity(self) -> dict[str, str]:
        """The settings that define this explainer's masks, as strings (``{}``: none beyond the model).

        Two explainers of the same method with the same identity (and the same model) make the same
        masks; ``--resume`` redoes result rows whose identity differs. Options that only change
        speed or memory (internal batch sizes) are left out.
        """
        return {}

    def masks(
        self,
        model: ZeroShotModel | None,
        magnitude: torch.Tensor,
        text: torch.Tensor,
        encoded: Encoded | None = None,
    ) -> torch.Tensor:
        """Masks [B, F, T] in [0, 1] explaining ``text[i]`` (normalised, [B, D]) on clip i.

        ``model``: the model to explain (None: the one the explainer is bound to).
        ``magnitude``: the clips' linear magnitude spectrograms [B, F, T].
        ``encoded``: ``model.encode(magnitude)`` when the caller already has it.
        """
        import torch

        if model is None:
            model = self.model
        if magnitude.dim() != 3 or text.dim() != 2 or text.shape[0] != magnitude.shape[0]:
            raise ValueError(
                f"masks() pairs clip i with prompt i: expected magnitude [B, F, T] and text [B, D], "
                f"got {tuple(magnitude.shape)} and {tuple(text.shape)}"
            )
        with torch.set_grad_enabled(self.needs_grad):
            out = self.compute_masks(model, magnitude, text, encoded)
        return out.detach().float()

    @abstractmethod
    def compute_masks(
        self,
        model: ZeroShotModel,
        magnitude: torch.Tensor,
        text: torch.Tensor,
        encoded: Encoded | None,
    ) -> torch.Tensor:
        """The method itself (called by :meth:`masks` in the right grad mode)."""


def identity_value(value: Any) -> str:
    """A setting as the string :meth:`Explainer.identity` records: ints and floats canonical
    (``50``, ``0.15``, ``1.0``), sequences joined with ``x`` (a grid ``16x32``), the rest ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, (tuple, list)):
        return "x".join(identity_value(v) for v in value)
    return str(value)


def identity_string(identity: dict[str, str] | None) -> str:
    """An identity as one canonical, compact JSON object (keys sorted); ``""`` for none.

    This is the ``method_options`` column of result tables: equal strings, same settings.
    """
    if not identity:
        return ""
    return json.dumps({str(k): str(v) for k, v in identity.items()}, sort_keys=True, separators=(",", ":"))


# -- registry ------------------------------------------------------------------

_EXPLAINERS: dict[str, str] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_explainer(name: str, target: str, description: str = "") -> None:
    """Register ``name`` as built by ``target`` ("package.module:factory")."""
    _EXPLAINERS[name] = target
    _DESCRIPTIONS[name] = description


def list_explainers() -> list[str]:
    """Registered explainer names."""
    return sorted(_EXPLAINERS)


def describe_explainers() -> dict[str, str]:
    return {n: _DESCRIPTIONS[n] for n in list_explainers()}


def explainer_options(name: str) -> list[str]:
    """The options explainer ``name`` accepts (its factory's keyword arguments)."""
    return [p for p in inspect.signature(_factory(name)).parameters if p != "model"]


def _factory(name: str) -> Callable[..., Explainer]:
    if name not in _EXPLAINERS:
        raise UsageError(f"--method {name!r}: unknown method; choose one of: {', '.join(list_explainers())}")
    module, func = _EXPLAINERS[name].split(":")
    return getattr(importlib.import_module(module), func)


def create_explainer(name: str, model: ZeroShotModel, **options: Any) -> Explainer:
    """Build explainer ``name`` for ``model``; ``options`` go to its factory (unknown ones are refused)."""
    factory = _factory(name)
    known = explainer_options(name)
    unknown = [k for k in options if k not in known]
    if unknown:
        takes = f"its options: {', '.join(known)}" if known else "it takes no options"
        raise UsageError(f"method {name!r} has no option {', '.join(map(repr, unknown))}; {takes}")
    explainer = factory(model, **options)
    explainer.bind(model)
    return explainer


register_explainer(
    "lmaczs",
    "lmaczs_cli.explainers.lmaczs:build_lmaczs",
    "LMAC-ZS: a text-conditioned decoder trained to keep the model's similarities",
)
register_explainer("gradcam", "lmaczs_cli.explainers.gradcam:build_gradcam", "GradCAM")
register_explainer("gradcam++", "lmaczs_cli.explainers.gradcam:build_gradcam_pp", "GradCAM++")
register_explainer("smoothgrad", "lmaczs_cli.explainers.attribution:build_smoothgrad", "SmoothGrad")
register_explainer("ig", "lmaczs_cli.explainers.attribution:build_ig", "Integrated Gradients")
register_explainer(
    "lmaczs-perclip",
    "lmaczs_cli.explainers.perclip:build_perclip",
    "LMAC-ZS without a decoder: each pair's mask optimised under the evidence objective",
)
register_explainer(
    "sliding-window", "lmaczs_cli.explainers.sliding:build_sliding_window",
    "time only: the zero-shot similarity of 1 s windows (hop 0.25 s), constant over frequency",
)
register_explainer("all-ones", "lmaczs_cli.explainers.trivial:build_all_ones", "trivial: keep everything")
register_explainer("empty", "lmaczs_cli.explainers.trivial:build_empty", "trivial: keep nothing")
register_explainer(
    "random-rectangle", "lmaczs_cli.explainers.trivial:build_random_rectangle",
    "trivial: one random time-frequency rectangle per pair (seeded)",
)
