"""Training: the loop, the recipe's losses and schedules, checkpoints, several processes.

Follow one run: :mod:`.cli` (the work dir's train.py) reads the flags and the template; :mod:`.launch`
starts one or several processes (:mod:`.distributed`); in each, :mod:`.trainer` builds the datasets
(:mod:`action_rec.data.loading`), model, optimizer (:mod:`.optim`), schedule (:mod:`.schedules`), loss
(:mod:`.losses`), which part trains (:mod:`.freezing`), class balance (:mod:`.balance`) and sample
filtering (:mod:`.sample_filter`), runs :func:`.engine.train_one_epoch` epoch by epoch, validates with
:mod:`action_rec.evaluation.loop`, and writes checkpoints (:mod:`.checkpoint`) and logs (:mod:`.logs`).

The recipe is the original's (see the spec): AM-Softmax (margin 0.35, scale 30 -> 5 by the original's
PolyScalarScheduler over 40 epochs, entropy penalty 0.085, only positive per-sample losses averaged) plus
the class-centre push loss, and for X3D the local push loss (threshold without gradient) and sample
filtering (:mod:`.sample_filter`); or plain cross-entropy (``loss.type``); SGD with momentum and weight
decay on every parameter; head-only epochs at 10x the rate with the backbone frozen and in eval mode
(fine-tuning only), a cosine warm-up from 1 %, then step (S3D) or cosine with q^1.5 progress down to
1 % (X3D); global-norm (S3D) or adaptive unit-wise (X3D, per element for 1-D tensors) gradient
clipping; validation every epoch.

Where it differs from the original, and why:
- The scale's iteration counter continues on --resume (the original restarted it at 0 in every run),
  so that a resumed run ends exactly as an uninterrupted one.
- Sample filtering draws an epoch's clip offsets when the epoch starts (see :mod:`.sample_filter`).
- After the head-only epochs the head trains at the base rate like the backbone (the multiplier is
  for the head-only phase alone), as the spec describes.
- The local push loss reuses ``loss.center_push_margin`` (0.1) for its threshold, as in the spec.
- Real photometric distortion (the original's was a no-op): see the templates' ``data.colour``.
Additions: --resume, DDP (spawn or torchrun; gloo on CPU), mixed precision on CUDA (--amp), seeded
data order and per-clip augmentation, NaN/OOM checks.
"""

from action_rec.data.loading import DataError
from action_rec.training.engine import TrainingError
from action_rec.training.launch import train
from action_rec.training.trainer import TrainOptions, TrainResult

__all__ = ["DataError", "TrainOptions", "TrainResult", "TrainingError", "train"]
