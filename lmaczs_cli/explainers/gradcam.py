"""GradCAM and GradCAM++ on the audio encoder's last feature map, via pytorch-grad-cam.

The target is the zero-shot logit of the explained prompt. The CAM is taken
on the layer's own grid (rows = the encoder's mel-frequency axis, columns =
time), brought to the model's mel bands, mapped to linear-frequency bins with
the mel filterbank, then normalised like every other saliency map.
"""

from __future__ import annotations

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
        """Return the CAM on the target layer's grid instead of the input's size."""

        def get_target_width_height(self, input_tensor):  # noqa: D401
            return self._layer_hw[1], self._layer_hw[0]

        def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):
            act = self.activations_and_grads.activations[0]
            self._layer_hw = tuple(act.shape[-2:])
            return super().compute_cam_per_layer(input_tensor, targets, eigen_smooth)

    return LayerGridCAM


class GradCAMExplainer(Explainer):
    """GradCAM (Selvaraju et al. 2017); ``plus=True`` gives GradCAM++ (Chattopadhay et al. 2018)."""

    needs_grad = True

    def __init__(self, plus: bool = False) -> None:
        self.plus = plus
        self.name = "gradcam++" if plus else "gradcam"

    def compute_masks(self, model: ZeroShotModel, magnitude: torch.Tensor, text: torch.Tensor,
                      encoded: Encoded | None = None) -> torch.Tensor:
        import numpy as np

        layer, reshape = model.gradcam_target()
        wrapper = FixedTextLogit(model, text.detach())
        cam_cls = _cam_class(self.plus)
        with cam_cls(model=wrapper, target_layers=[layer], reshape_transform=reshape) as cam:
            x = magnitude.detach()[:, None].requires_grad_(True)
            grid = cam(input_tensor=x, targets=[_Identity() for _ in range(x.shape[0])])
        sal = torch.from_numpy(np.ascontiguousarray(grid)).to(magnitude.device).float()
        return saliency_to_mask(sal, magnitude.shape[1], magnitude.shape[2],
                                mel_fb=model.mel_filterbank())


def build_gradcam(model: ZeroShotModel) -> GradCAMExplainer:
    """Registry factory for ``gradcam``."""
    return GradCAMExplainer(plus=False)


def build_gradcam_pp(model: ZeroShotModel) -> GradCAMExplainer:
    """Registry factory for ``gradcam++``."""
    return GradCAMExplainer(plus=True)
