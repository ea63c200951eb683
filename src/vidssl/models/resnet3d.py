"""R(2+1)D-18 / R3D-18 video ResNets with torchvision's state-dict layout.

Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition" (CVPR 2018).
Key names and shapes equal torchvision's ``r2plus1d_18`` / ``r3d_18`` (``stem.0..5``,
``layerN.M.conv1.0.0/0.1/0.3``, ``downsample.0/1``, ``fc``) so torchvision and SEVERE weights
load strictly. A (2+1)D conv factorizes a ``t x d x d`` conv into a spatial ``1 x d x d`` conv to
``M`` channels and a temporal ``t x 1 x 1`` conv, with ``M`` chosen so the parameter count
matches the full 3D conv (torchvision's rule)::

    M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out))

``width`` scales every channel count (stem 45/64, stages 64..512) for cheap CPU variants.
"""
from __future__ import annotations

import torch
from torch import nn

STAGE_CHANNELS = (64, 128, 256, 512)
R2PLUS1D_STEM_MID = 45


def scaled(channels: int, width: float) -> int:
    """Channel count ``channels * width``, rounded, at least 1."""
    return max(1, round(channels * width))


def midplanes(in_planes: int, out_planes: int) -> int:
    """Hidden width of a (2+1)D 3x3x3 conv with the parameter count of the full 3D conv."""
    return (in_planes * out_planes * 3 * 3 * 3) // (in_planes * 3 * 3 + 3 * out_planes)


class Conv2Plus1D(nn.Sequential):
    """Spatial 1x3x3 conv -> BN -> ReLU -> temporal 3x1x1 conv (keys ``0``, ``1``, ``3``)."""

    def __init__(self, in_planes: int, out_planes: int, mid_planes: int, stride: int = 1):
        super().__init__(
            nn.Conv3d(in_planes, mid_planes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
            nn.BatchNorm3d(mid_planes),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid_planes, out_planes, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
        )


def conv2plus1d(in_planes: int, out_planes: int, mid_planes: int, stride: int = 1) -> nn.Module:
    return Conv2Plus1D(in_planes, out_planes, mid_planes, stride)


def conv3d_simple(in_planes: int, out_planes: int, mid_planes: int, stride: int = 1) -> nn.Module:
    """Full 3x3x3 conv (R3D); ``mid_planes`` is unused, kept for a common builder signature."""
    return nn.Conv3d(in_planes, out_planes, 3, stride, 1, bias=False)


def tclr_conv(in_planes: int, out_planes: int) -> nn.Module:
    """TCLR's layer4 entry conv: full 3x3x3, temporal dilation 2, no temporal stride."""
    return nn.Conv3d(in_planes, out_planes, 3, (1, 2, 2), (2, 1, 1), dilation=(2, 1, 1), bias=False)


class BasicBlock(nn.Module):
    """Residual block ``relu(conv2(conv1(x)) + downsample(x))``; each conv is followed by BN."""

    def __init__(self, conv1: nn.Module, conv2: nn.Module, planes: int,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Sequential(conv1, nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv2, nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class VideoResNet(nn.Module):
    """18-layer video ResNet (R(2+1)D, R3D or the TCLR variant) in torchvision's layout.

    Args:
        conv_type: ``"2plus1d"`` (R(2+1)D) or ``"3d"`` (R3D).
        num_classes: size of ``fc``; ``None`` builds no classifier and ``forward`` returns
            pooled features.
        width: channel multiplier (1.0 = the published network).
        tclr_layer4: TCLR's variant: ``layer4.0.conv1.0`` is a full 3x3x3 conv with temporal
            dilation 2 and neither it nor ``layer4.0.downsample.0`` stride in time.
        zero_init_residual: zero the last BN of each block (starts every block as identity).
    """

    head_prefixes = ("fc.",)  # task classifier: trained per task, never a pretrained feature
    layout_prefixes: tuple[str, ...] = ()

    def __init__(self, conv_type: str = "2plus1d", num_classes: int | None = None,
                 width: float = 1.0, tclr_layer4: bool = False, zero_init_residual: bool = False):
        super().__init__()
        if conv_type not in ("2plus1d", "3d"):
            raise ValueError(f"conv_type must be '2plus1d' or '3d', got {conv_type!r}")
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        if tclr_layer4 and conv_type != "2plus1d":
            raise ValueError("tclr_layer4 applies to the R(2+1)D network only")
        self.conv_type = conv_type
        channels = [scaled(c, width) for c in STAGE_CHANNELS]
        self.stem = self._make_stem(conv_type, channels[0], width)
        in_planes = channels[0]
        for index, planes in enumerate(channels):
            stride = 1 if index == 0 else 2
            tclr = tclr_layer4 and index == 3
            setattr(self, f"layer{index + 1}", self._make_layer(in_planes, planes, stride, tclr))
            in_planes = planes
        self.num_features = channels[-1]
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else None
        self._init_weights(zero_init_residual)

    @staticmethod
    def _make_stem(conv_type: str, out_planes: int, width: float) -> nn.Sequential:
        if conv_type == "3d":
            return nn.Sequential(
                nn.Conv3d(3, out_planes, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                nn.BatchNorm3d(out_planes), nn.ReLU(inplace=True))
        mid = scaled(R2PLUS1D_STEM_MID, width)
        return nn.Sequential(
            nn.Conv3d(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
            nn.Conv3d(mid, out_planes, (3, 1, 1), 1, (1, 0, 0), bias=False),
            nn.BatchNorm3d(out_planes), nn.ReLU(inplace=True))

    def _make_layer(self, in_planes: int, planes: int, stride: int, tclr: bool) -> nn.Sequential:
        conv = conv2plus1d if self.conv_type == "2plus1d" else conv3d_simple
        downsample = None
        if stride != 1 or in_planes != planes:
            ds_stride = (1, stride, stride) if tclr else stride
            downsample = nn.Sequential(nn.Conv3d(in_planes, planes, 1, ds_stride, bias=False),
                                       nn.BatchNorm3d(planes))
        # As torchvision (and CtP): both convs of a block share the hidden width computed
        # from the block's input and output widths.
        first_mid, mid = midplanes(in_planes, planes), midplanes(planes, planes)
        first_conv = tclr_conv(in_planes, planes) if tclr else conv(in_planes, planes, first_mid,
                                                                      stride)
        blocks = [BasicBlock(first_conv, conv(planes, planes, first_mid), planes, downsample),
                  BasicBlock(conv(planes, planes, mid), conv(planes, planes, mid), planes)]
        return nn.Sequential(*blocks)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """torchvision's init: Kaiming-normal (fan_out) convs, unit BN, N(0, 0.01) linear."""
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, BasicBlock):
                    nn.init.zeros_(module.conv2[1].weight)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` [B,3,T,H,W] -> ``{"pooled": [B,D], "tokens": [B,D,T',H',W']}``."""
        if x.dim() != 5:
            raise ValueError(f"expected video input [B,C,T,H,W], got shape {tuple(x.shape)}")
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return {"pooled": self.avgpool(x).flatten(1), "tokens": x}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.forward_features(x)["pooled"]
        return pooled if self.fc is None else self.fc(pooled)


def r2plus1d_18(num_classes: int | None = None, width: float = 1.0,
                zero_init_residual: bool = False) -> VideoResNet:
    """R(2+1)D-18 (31.5M parameters with a 400-class ``fc``, as torchvision's)."""
    return VideoResNet("2plus1d", num_classes, width, zero_init_residual=zero_init_residual)


def r3d_18(num_classes: int | None = None, width: float = 1.0,
           zero_init_residual: bool = False) -> VideoResNet:
    """R3D-18: every conv a full 3x3x3 conv (33.4M parameters with a 400-class ``fc``)."""
    return VideoResNet("3d", num_classes, width, zero_init_residual=zero_init_residual)


def r2plus1d_18_tclr(num_classes: int | None = None, width: float = 1.0,
                     zero_init_residual: bool = False) -> VideoResNet:
    """TCLR's R(2+1)D-18: layer4 keeps the temporal resolution (dilated 3x3x3 entry conv)."""
    return VideoResNet("2plus1d", num_classes, width, tclr_layer4=True,
                       zero_init_residual=zero_init_residual)
