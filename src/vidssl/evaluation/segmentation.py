"""Unsupervised video object segmentation (UVOS) by clustering frozen features (SIGMA sec. 4.4,
protocol of TimeTuning): no training, no label propagation.

Per clip of ``num_frames`` frames:
1. the frozen encoder's space-time patch features (``[T',H',W',D]``, L2-normalised);
2. k-means (seeded, k-means++ init) over all of them, K = number of ground-truth classes in the
   clip ("clustering") or K = 10 ("over-clustering");
3. cluster scores (``-||f - c_k||^2``) upsampled bilinearly to the annotation size, each frame
   taking its tube's time slot, argmax -> a label map per frame;
4. clusters matched to ground-truth classes on the clip's annotated frames: one-to-one with the
   Hungarian algorithm on the IoU matrix (unmatched clusters count as background), or
   many-to-one, each cluster to the class on which its precision is highest;
5. IoU per ground-truth class present in the clip (background included), mean -> clip mIoU.
The reported numbers are clip mIoUs averaged over clips (percent).

Data: DAVIS layout ``JPEGImages/<video>/%05d.jpg`` + ``Annotations/<video>/%05d.png``
(palette/grey PNG of object ids, 0 = background, 255 = void), or DAVIS 2017's
``JPEGImages/480p/...``; frames without an annotation file are not scored.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.optimize import linear_sum_assignment
from torch import nn

from vidssl.data.clip_ops import IMAGENET_MEAN, IMAGENET_STD

VOID_LABEL = 255


# ---------------------------------------------------------------- clustering


def kmeans(points: torch.Tensor, k: int, *, iters: int = 100, seed: int = 0
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with k-means++ seeding; deterministic for a given ``seed``.

    Args:
        points: ``[N,D]``. k: number of clusters (1 <= k <= N).
    Returns:
        ``labels`` [N] (int64) and ``centers`` [k,D]. An emptied cluster is re-seeded with the
        point farthest from its centre.
    """
    points = points.detach().to("cpu", torch.float64)
    num = points.shape[0]
    if not 1 <= k <= num or iters < 1:
        raise ValueError(f"k-means needs 1 <= k <= {num} points and iters >= 1, got k={k}, "
                         f"iters={iters}")
    generator = torch.Generator().manual_seed(seed)
    centers = points[torch.randint(num, (1,), generator=generator)]
    for _ in range(1, k):
        nearest = torch.cdist(points, centers).min(dim=1).values.square()
        weights = nearest if nearest.sum() > 0 else torch.ones(num, dtype=points.dtype)
        centers = torch.cat([centers, points[torch.multinomial(weights, 1, generator=generator)]])
    labels = None
    for _ in range(iters):
        distances = torch.cdist(points, centers)
        new_labels = distances.argmin(dim=1)
        counts = torch.bincount(new_labels, minlength=k)
        for empty in (counts == 0).nonzero().flatten().tolist():
            far = distances.gather(1, new_labels[:, None]).squeeze(1).argmax()
            new_labels[far] = empty
            distances[far] = 0.0
            counts = torch.bincount(new_labels, minlength=k)
        sums = torch.zeros_like(centers).index_add_(0, new_labels, points)
        centers = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centers)
        if labels is not None and torch.equal(labels, new_labels):
            break
        labels = new_labels
    return labels, centers.float()


# ---------------------------------------------------------------- matching metrics


def confusion_matrix(pred: torch.Tensor, gt: torch.Tensor, num_pred: int, num_gt: int,
                     ignore_index: int = VOID_LABEL) -> torch.Tensor:
    """``C[g, p]`` = number of pixels with ground truth ``g`` and prediction ``p``."""
    pred, gt = pred.flatten().long(), gt.flatten().long()
    keep = gt != ignore_index
    pred, gt = pred[keep], gt[keep]
    if bool((pred < 0).any() | (pred >= num_pred).any() | (gt < 0).any() | (gt >= num_gt).any()):
        raise ValueError(f"labels out of range: predictions must be in [0, {num_pred}), ground "
                         f"truth in [0, {num_gt}) or {ignore_index}")
    return torch.bincount(gt * num_pred + pred, minlength=num_gt * num_pred).reshape(
        num_gt, num_pred).double()


def _iou_table(confusion: torch.Tensor) -> torch.Tensor:
    """``IoU[g, p] = C[g,p] / (|gt = g| + |pred = p| - C[g,p])``."""
    union = confusion.sum(1, keepdim=True) + confusion.sum(0, keepdim=True) - confusion
    return confusion / union.clamp_min(1.0)


def _miou_after_mapping(confusion: torch.Tensor, mapping: torch.Tensor) -> float:
    """Mean IoU over ground-truth classes once prediction ``p`` is relabelled ``mapping[p]``."""
    num_gt = confusion.shape[0]
    merged = torch.zeros(num_gt, num_gt, dtype=confusion.dtype).index_add_(
        1, mapping.long(), confusion)
    return _iou_table(merged).diagonal().mean().item()


def hungarian_miou(confusion: torch.Tensor) -> float:
    """One-to-one matching maximising the summed IoU (``linear_sum_assignment``); clusters left
    unmatched (more clusters than classes) are relabelled background (class 0)."""
    iou = _iou_table(confusion)
    gt_index, pred_index = linear_sum_assignment(iou.numpy(), maximize=True)
    mapping = torch.zeros(confusion.shape[1], dtype=torch.long)
    mapping[torch.as_tensor(pred_index)] = torch.as_tensor(gt_index)
    return _miou_after_mapping(confusion, mapping)


def many_to_one_miou(confusion: torch.Tensor) -> float:
    """Each cluster goes to the class with the highest precision ``C[g,p] / |pred = p|``
    (TimeTuning's ``many_to_one=True, precision_based=True``); ties go to the lower class."""
    return _miou_after_mapping(confusion, confusion.argmax(dim=0))


# ---------------------------------------------------------------- data


@dataclass
class AnnotatedVideo:
    """Frame files of one video and, per frame, its annotation file (``None`` if absent)."""

    name: str
    frames: list[Path]
    annotations: list[Path | None]


def find_videos(root: str | os.PathLike, videos: list[str] | None = None) -> list[AnnotatedVideo]:
    """Index a DAVIS-style folder: ``JPEGImages/[480p/]<video>``, ``Annotations/[480p/]<video>``."""
    root = Path(root)
    images, annotations = root / "JPEGImages", root / "Annotations"
    if (images / "480p").is_dir() and (annotations / "480p").is_dir():
        images, annotations = images / "480p", annotations / "480p"
    if not images.is_dir() or not annotations.is_dir():
        raise FileNotFoundError(f"{root}: expected DAVIS layout JPEGImages/<video>/%05d.jpg and "
                                f"Annotations/<video>/%05d.png")
    names = videos or sorted(p.name for p in annotations.iterdir() if p.is_dir())
    found = []
    for name in names:
        frames = sorted(p for p in (images / name).glob("*") if p.suffix.lower() in
                        (".jpg", ".jpeg", ".png"))
        if not frames:
            raise FileNotFoundError(f"{images / name}: no frames")
        masks = [annotations / name / f"{frame.stem}.png" for frame in frames]
        found.append(AnnotatedVideo(name, frames, [m if m.is_file() else None for m in masks]))
    if not found:
        raise FileNotFoundError(f"{annotations}: no annotated videos")
    return found


def read_annotation(path: Path) -> np.ndarray:
    """Object ids ``uint8 [H,W]`` from a palette or grey PNG; an RGB PNG maps each distinct
    colour to an id (black -> 0)."""
    with Image.open(path) as image:
        if image.mode == "1":
            return np.array(image, dtype=bool).astype(np.uint8)
        if image.mode in ("P", "L"):
            return np.array(image, dtype=np.uint8)
        rgb = np.array(image.convert("RGB")).reshape(-1, 3)
    colours, ids = np.unique(rgb, axis=0, return_inverse=True)
    if len(colours) > VOID_LABEL:
        raise ValueError(f"{path}: more than {VOID_LABEL} colours; not a label image")
    return ids.reshape(image.size[1], image.size[0]).astype(np.uint8)


def _read_frame(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


# ---------------------------------------------------------------- features


def _input_geometry(backbone: nn.Module, num_frames: int | None, size: int | None
                    ) -> tuple[int, tuple[int, int], int]:
    """(frames, (H,W), frames per token slot): a ViT's own geometry (fixed by its position
    table); other backbones take ``num_frames`` x ``size`` x ``size`` clips."""
    embed = getattr(backbone, "patch_embed", None)
    if embed is not None and hasattr(embed, "grid_size"):
        tubelet, patch_h, patch_w = embed.proj.kernel_size
        slots, grid_h, grid_w = embed.grid_size
        return slots * tubelet, (grid_h * patch_h, grid_w * patch_w), tubelet
    if num_frames is None or size is None:
        raise ValueError("this backbone has no fixed input geometry; pass num_frames and size")
    return num_frames, (size, size), 0


@torch.no_grad()
def clip_features(backbone: nn.Module, video: torch.Tensor) -> torch.Tensor:
    """``video`` [1,3,T,H,W] (normalised) -> L2-normalised patch features ``[T',H',W',D]``."""
    tokens = backbone.forward_features(video)["tokens"]
    if tokens.dim() == 5:  # CNN feature map [B,D,T',H',W']
        grid = tokens[0].permute(1, 2, 3, 0)
    else:
        grid = tokens[0].reshape(*backbone.patch_embed.grid_size, -1)
    return F.normalize(grid.float(), dim=-1)


def cluster_label_maps(features: torch.Tensor, k: int, frame_slots: list[int],
                       size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """k-means over ``features`` [T',H',W',D]; label maps ``[len(frame_slots), H, W]`` for frames
    whose token slots are ``frame_slots``, from bilinearly upsampled cluster scores."""
    slots, height, width, dim = features.shape
    centers = kmeans(features.reshape(-1, dim), k, seed=seed)[1]
    scores = -torch.cdist(features.reshape(-1, dim).cpu().float(), centers).square()
    scores = scores.reshape(slots, height, width, k).permute(0, 3, 1, 2)
    maps = [F.interpolate(scores[slot][None], size=size, mode="bilinear",
                          align_corners=False)[0].argmax(dim=0) for slot in frame_slots]
    return torch.stack(maps)


# ---------------------------------------------------------------- evaluation


@dataclass
class SegmentationResult:
    """Clip-averaged mIoU (percent) of both matching protocols and per-clip rows."""

    clustering_miou: float
    overclustering_miou: float
    num_clips: int
    overclustering_k: int
    clips: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _clip_starts(num_video_frames: int, span: int, max_clips: int | None) -> list[int]:
    starts = list(range(0, max(num_video_frames - span, 0) + 1, span))
    return starts[:max_clips] if max_clips else starts


def evaluate_clip(backbone: nn.Module, frames: list[np.ndarray], masks: list[np.ndarray | None],
                  *, tubelet: int, size: tuple[int, int], overclustering_k: int = 10,
                  seed: int = 0) -> dict | None:
    """Both mIoUs (fractions) of one clip; ``None`` if no frame of it is annotated."""
    scored = [i for i, m in enumerate(masks) if m is not None]
    if not scored:
        return None
    device = next(backbone.parameters()).device
    video = torch.from_numpy(np.stack(frames)).to(device).permute(3, 0, 1, 2).float() / 255.0
    video = F.interpolate(video, size=size, mode="bilinear", antialias=True, align_corners=False)
    mean = video.new_tensor(IMAGENET_MEAN)[:, None, None, None]
    std = video.new_tensor(IMAGENET_STD)[:, None, None, None]
    features = clip_features(backbone, ((video - mean) / std)[None])
    gt = torch.from_numpy(np.stack([masks[i] for i in scored])).long()
    classes = torch.unique(gt[gt != VOID_LABEL])
    if classes.numel() == 0:
        return None
    dense_gt = torch.full_like(gt, VOID_LABEL)
    for new_id, old_id in enumerate(classes.tolist()):
        dense_gt[gt == old_id] = new_id
    slots_per_frame = tubelet or max(len(frames) // features.shape[0], 1)
    frame_slots = [min(i // slots_per_frame, features.shape[0] - 1) for i in scored]
    result = {}
    for protocol, k, metric in (("clustering", classes.numel(), hungarian_miou),
                                ("overclustering", overclustering_k, many_to_one_miou)):
        k = min(k, features[..., 0].numel())
        pred = cluster_label_maps(features, k, frame_slots, tuple(gt.shape[1:]), seed)
        result[protocol] = metric(confusion_matrix(pred, dense_gt, k, classes.numel()))
    return result


def _read_clip(video: AnnotatedVideo, index: list[int]
               ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Frames at ``index``; annotations for the first occurrence of each annotated frame."""
    frames = [_read_frame(video.frames[i]) for i in index]
    masks = []
    for j, i in enumerate(index):
        repeated = j > 0 and index[j - 1] == i
        path = video.annotations[i]
        masks.append(read_annotation(path) if path is not None and not repeated else None)
    shapes = {frame.shape[:2] for frame in frames} | {m.shape for m in masks if m is not None}
    if len(shapes) > 1:
        raise ValueError(f"frames and annotations differ in size: {sorted(shapes)}")
    return frames, masks


def _load_backbone(checkpoint, format: str, model: str | None) -> nn.Module:
    """A backbone module as is; a vidssl checkpoint rebuilt from its ``model_spec``; a
    published file into ``model`` (backbone name) or into the architecture its shapes imply."""
    if isinstance(checkpoint, nn.Module):
        return checkpoint
    from vidssl.models import build_backbone
    from vidssl.models.checkpoints import build_from_checkpoint, load_pretrained

    if model is None:
        return build_from_checkpoint(checkpoint, format=format)[0]
    backbone = build_backbone(model)
    load_pretrained(backbone, checkpoint, format=format)
    return backbone


def _write_json(result: SegmentationResult, out: str | os.PathLike) -> Path:
    path = Path(out)
    if path.suffix != ".json":
        path = path / "segmentation.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=2))
    return path


def evaluate_segmentation(checkpoint, data: str | os.PathLike, *, out: str | os.PathLike | None
                          = None, format: str = "auto", model: str | None = None,
                          num_frames: int | None = None, size: int | None = None,
                          frame_stride: int = 1, overclustering_k: int = 10,
                          max_clips_per_video: int | None = None, videos: list[str] | None = None,
                          device: str = "cpu", seed: int = 0, verbose: bool = True
                          ) -> SegmentationResult:
    """UVOS mIoU of a frozen backbone on a DAVIS-style folder (see module docstring).

    Args:
        checkpoint: vidssl or published checkpoint file, or a backbone module.
        data: dataset root with ``JPEGImages/`` and ``Annotations/``.
        out: write the result as JSON there (a ``.json`` path or a folder).
        format, model: checkpoint format (``auto``) and backbone name for published files.
        num_frames, size: clip length and square frame size for backbones without a fixed
            geometry (a ViT always uses its own).
        frame_stride: take every ``frame_stride``-th frame. overclustering_k: K of the
            many-to-one protocol. max_clips_per_video: cap on consecutive clips per video.
        videos: subset of video names. verbose: progress bar and a printed summary.
    """
    from rich.progress import Progress

    from vidssl.engine.logging import console

    backbone = _load_backbone(checkpoint, format, model).to(device).eval()
    clip_len, frame_size, tubelet = _input_geometry(backbone, num_frames, size)
    span = clip_len * frame_stride
    result = SegmentationResult(0.0, 0.0, 0, overclustering_k)
    annotated = find_videos(data, videos)
    with Progress(console=console, disable=not verbose) as progress:
        task = progress.add_task("segmentation", total=len(annotated))
        for video in annotated:
            for start in _clip_starts(len(video.frames), span, max_clips_per_video):
                index = [min(start + i * frame_stride, len(video.frames) - 1)
                         for i in range(clip_len)]
                try:
                    frames, masks = _read_clip(video, index)
                except (OSError, ValueError) as error:
                    result.skipped.append(f"{video.name}: {error}")
                    break
                scores = evaluate_clip(backbone, frames, masks, tubelet=tubelet,
                                       size=frame_size, overclustering_k=overclustering_k,
                                       seed=seed)
                if scores is not None:
                    result.clips.append({"video": video.name, "start": start, **scores})
            progress.advance(task)
    if not result.clips:
        raise ValueError(f"{data}: no annotated clip could be evaluated "
                         f"({len(result.skipped)} videos skipped: {result.skipped[:3]})")
    result.num_clips = len(result.clips)
    result.clustering_miou = 100.0 * float(np.mean([c["clustering"] for c in result.clips]))
    result.overclustering_miou = 100.0 * float(np.mean([c["overclustering"] for c in result.clips]))
    if out is not None:
        path = _write_json(result, out)
    if verbose:
        console.print(f"UVOS on {data}: {result.num_clips} clips, mIoU clustering "
                      f"{result.clustering_miou:.1f}, over-clustering (K={overclustering_k}) "
                      f"{result.overclustering_miou:.1f}"
                      + (f"; {len(result.skipped)} videos skipped" if result.skipped else "")
                      + (f"; wrote {path}" if out is not None else ""))
    return result
