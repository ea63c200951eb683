"""The one training loop (``fit``), distributed helpers, checkpoints and logging."""
from vidssl.engine.loop import FitResult, TrainingDiverged, fit, seed_everything

__all__ = ["FitResult", "TrainingDiverged", "fit", "seed_everything"]
