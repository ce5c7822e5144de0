"""Training: the loop, the recipe's losses and schedules, checkpoints, several processes.

Follow one run: :mod:`.cli` (the work dir's train.py) reads the flags and the template, :mod:`.trainer`
builds the datasets (:mod:`.datasets`), model, SGD (:mod:`.optim`), schedule (:mod:`.schedules`) and
loss (:mod:`.losses`), trains epoch by epoch on one or several processes (:mod:`.distributed`),
and writes checkpoints (:mod:`.checkpoint`) and logs (:mod:`.logs`).

The recipe is the original's (see the spec): AM-Softmax (margin 0.35, scale 30 -> 5 as a power-1.2
polynomial over 40 epochs, entropy penalty 0.085, only positive per-sample losses averaged) plus the
class-centre push loss, and for X3D the local push loss; or plain cross-entropy (``loss.type``);
SGD with momentum and weight decay on every parameter; head-only epochs at 10x the rate with the
backbone frozen and in eval mode (fine-tuning only), a cosine warm-up from 1 %, then step (S3D) or
cosine with q^1.5 progress down to 1 % (X3D); global-norm (S3D) or adaptive unit-wise (X3D) gradient
clipping; validation every epoch.

Left out of the original recipe, and why:
- X3D's sample filtering (frames weighted by the running confidence of the clips covering them, clip
  offsets drawn by weight from epoch 1): it needs per-frame bookkeeping shared between loader workers
  and processes and carried through checkpoints, and it makes a clip depend on every earlier epoch,
  which would break "resume == uninterrupted"; its gain was never published on its own. Clip offsets
  are drawn uniformly, as for S3D.
- After the head-only epochs the head trains at the base rate like the backbone (the multiplier is
  for the head-only phase alone), as the spec describes.
- Adaptive gradient clipping treats a 1-D parameter (BN weight or bias) as one unit (its whole norm),
  as timm's AGC does; the spec's "norm over all dims but 0" is undefined for them.
- The local push loss reuses ``loss.center_push_margin`` (0.1) for its threshold, as in the spec.
Additions: --resume, DDP (spawn or torchrun; gloo on CPU), mixed precision on CUDA (--amp), seeded
data order and per-clip augmentation, NaN/OOM checks.
"""

from action_rec.data.loading import DataError
from action_rec.training.trainer import TrainingError, TrainOptions, TrainResult, train

__all__ = ["DataError", "TrainOptions", "TrainResult", "TrainingError", "train"]
