"""Checkpoint interop: read published video SSL checkpoints safely and load them strictly.

``load_pretrained(model, path)`` detects the format (torchvision, SEVERE's SeLaVi / MoCo /
VideoMoCo / Pretext-Contrast / RSPNet / AVID-CMA / CtP / TCLR / GDT, Tubelet-Contrast,
VideoMAE pretrain and finetune, SIGMA, vidssl), maps the keys explicitly and returns a
``LoadReport``; ``inspect_checkpoint`` / ``convert_checkpoint`` back ``vidssl weights``.
"""
from vidssl.models.checkpoints.formats import (
                                               FORMATS,
                                               VIDSSL_FORMAT,
                                               CheckpointFormat,
                                               detect_format,
                                               get_format,
)
from vidssl.models.checkpoints.loading import LoadReport, load_pretrained, plan_load
from vidssl.models.checkpoints.reading import ALLOWED_GLOBALS, CheckpointError, read_checkpoint
from vidssl.models.checkpoints.tools import (
                                               build_from_checkpoint,
                                               convert_checkpoint,
                                               infer_model_spec,
                                               inspect_checkpoint,
)

__all__ = [
                                               "ALLOWED_GLOBALS",
                                               "FORMATS",
                                               "VIDSSL_FORMAT",
                                               "CheckpointError",
                                               "CheckpointFormat",
                                               "LoadReport",
                                               "build_from_checkpoint",
                                               "convert_checkpoint",
                                               "detect_format",
                                               "get_format",
                                               "infer_model_spec",
                                               "inspect_checkpoint",
                                               "load_pretrained",
                                               "plan_load",
                                               "read_checkpoint",
]
