"""GZ-CLIP: a vision tower trained on galaxies (contrastive image-text loss and/or a morphology head on vote shares).

`train_clip.py` is the command line; the steps live here: `arguments` (recipe + flags), `questions` (which vote
shares the head predicts, and how a mirror flip permutes them), `data` (gz-talk-instruct rows or the GZ2 catalogue ->
image/text/vote tensors), `augment` (label-respecting rot90/flip/crop), `losses`, `model` (dual encoder + head),
`run` (Trainer), `metrics` and `evaluate` (real test split), `card` (model card).

Importing this package registers `VisionTextDualEncoderModel` for `AutoModelForZeroShotImageClassification`, so a
dual-encoder folder works with `pipeline("zero-shot-image-classification", model=folder)` in this process.
"""

from transformers import AutoModelForZeroShotImageClassification, VisionTextDualEncoderConfig, VisionTextDualEncoderModel

AutoModelForZeroShotImageClassification.register(VisionTextDualEncoderConfig, VisionTextDualEncoderModel, exist_ok=True)
