"""vidssl: self-supervised video representation learning and the SEVERE generalization benchmark."""

__version__ = "0.1.0"
