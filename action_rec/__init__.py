"""action_rec: train, evaluate, export and run lightweight video action recognizers on a CPU.

The pipeline, one subpackage a stage: data -> models -> training -> evaluation -> export -> inference.
"""

__version__ = "0.1.0"


def build_model(template, num_classes=None):
    """Build the network a template describes (see action_rec.models.build_model)."""
    from action_rec.models import build_model as _build_model

    return _build_model(template, num_classes=num_classes)


__all__ = ["build_model", "__version__"]
