"""GradCAM and GradCAM++ on the audio encoder's last feature map, via pytorch-grad-cam.

The target is the zero-shot logit of the explained prompt. The CAM is taken
on the layer's own grid (rows = the encoder's mel-frequency axis, columns =
time), brought to the model's mel bands, mapped to linear-frequency bins with
the mel filterbank, then normalised like every other saliency map.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from lmaczs_cli.explainers.base import Explainer
from lmaczs_cli.explainers.saliency import saliency_to_mask
from lmaczs_cli.explainers.targets import FixedTextLogit
from lmaczs_cli.models.base import Encoded, ZeroShotModel


class _Identity:
    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return output[..., 0] if output.dim() > 0 else output


def _cam_class(plus: bool):
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus

    base = GradCAMPlusPlus if plus else GradCAM

    class LayerGridCAM(base):  # type: ignore[misc, valid-type]
        """Return the CAM on the target layer's grid instead of the input's size.

        Built once per explainer: its hooks on the target layer are attached only while
        :meth:`hooked` is active, so the model's other forward passes do not feed it.
        """

        def get_target_width_height(self, input_tensor):  # noqa: D401
            return self._layer_hw[1], self._layer_hw[0]

        def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):
            act = self.activations_and_grads.activations[0]
            self._layer_hw = tuple(act.shape[-2:])
            return super().compute_cam_per_layer(input_tensor, targets, eigen_smooth)

        @contextmanager
        def hooked(self):
            """Attach the activation and gradient hooks for one call, and remove them after."""
            aag = self.activations_and_grads
            for layer in self.target_layers:
                aag.handles.append(layer.register_forward_hook(aag.save_activation))
                aag.handles.append(layer.register_forward_hook(aag.save_gradient))
            try:
                yield self
            finally:
                aag.release()

    return LayerGridCAM


class GradCAMExplainer(Explainer):
    """GradCAM (Selvaraju et al. 2017); ``plus=True`` gives GradCAM++ (Chattopadhay et al. 2018).

    The CAM object (pytorch-grad-cam) is built once, for the model the explainer is bound to
    (:meth:`bind`; an explainer used without :func:`create_explainer` builds it at its first call,
    and again only if called with another model).
    """

    needs_grad = True

    def __init__(self, plus: bool = False) -> None:
        self.plus = plus
        self.name = "gradcam++" if plus else "gradcam"
        self._cam = None  # the CAM object for self._cam_model
        self._cam_model: ZeroShotModel | None = None
        self._wrapper: FixedTextLogit | None = None

    def bind(self, model: ZeroShotModel) -> None:
        super().bind(model)
        self.cam_for(model)

    def cam_for(self, model: ZeroShotModel):
        """The CAM object for ``model``: built on the first call, reused after."""
        if self._cam is None or self._cam_model is not model:
            layer, reshape = model.gradcam_target()
            self._wrapper = FixedTextLogit(model, None)
            cam = _cam_class(self.plus)(model=self._wrapper, target_layers=[layer], reshape_transform=reshape)
            cam.activations_and_grads.release()  # hooks only while a call runs (LayerGridCAM.hooked)
            self._cam, self._cam_model = cam, model
        return self._cam

    def compute_masks(self, model: ZeroShotModel, magnitude: torch.Tensor, text: torch.Tensor,
                      encoded: Encoded | None = None) -> torch.Tensor:
        import numpy as np

        cam = self.cam_for(model)
        assert self._wrapper is not None
        cam.device = next(self._wrapper.parameters(), magnitude).device  # the model may have moved
        self._wrapper.text = text.detach()
        try:
            with cam.hooked():
                x = magnitude.detach()[:, None].requires_grad_(True)
                grid = cam(input_tensor=x, targets=[_Identity() for _ in range(x.shape[0])])
        finally:
            self._wrapper.text = None  # hold no prompts between calls
        sal = torch.from_numpy(np.ascontiguousarray(grid)).to(magnitude.device).float()
        return saliency_to_mask(sal, magnitude.shape[1], magnitude.shape[2],
                                mel_fb=model.mel_filterbank())


def build_gradcam(model: ZeroShotModel) -> GradCAMExplainer:
    """Registry factory for ``gradcam``."""
    return GradCAMExplainer(plus=False)


def build_gradcam_pp(model: ZeroShotModel) -> GradCAMExplainer:
    """Registry factory for ``gradcam++``."""
    return GradCAMExplainer(plus=True)
