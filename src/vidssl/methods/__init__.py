"""Self-supervised objectives, one file per method, registered by name in ``METHODS``."""
from vidssl.methods import (  # noqa: F401  (registers them)
    sigma,
    supervised,
    tubelet_contrast,
    video_moco,
    videomae,
)
from vidssl.methods.base import METHODS, SSLMethod, parse_method_section, register_method

__all__ = ["METHODS", "SSLMethod", "parse_method_section", "register_method"]
