"""The ``vidssl`` command. Thin: parse arguments, load configs, call library code."""
from __future__ import annotations

import argparse
import sys

from vidssl import __version__

TRAINING_FLAGS_HELP = "training flags shared by every command that trains"
SEGMENTATION_COMMAND = "evaluate-segmentation"
AVA_MAP_COMMAND = "evaluate-ava-map"


def _add_training_flags(parser: argparse.ArgumentParser, out_default: str | None = None) -> None:
    group = parser.add_argument_group(TRAINING_FLAGS_HELP)
    group.add_argument("--out", default=out_default, required=out_default is None,
                       help="run directory: config.yaml, metrics.csv, checkpoints/")
    group.add_argument("--seed", type=int, help="random seed (a CPU run is reproducible bit for bit)")
    group.add_argument("--device", help="cpu or cuda (cuda:N)")
    group.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    group.add_argument("--checkpoint-every", type=int, help="write a checkpoint every N steps")
    group.add_argument("--resume", help="'auto' (continue OUT/checkpoints/last.pt if present) or a checkpoint path")


def _training_overrides(args: argparse.Namespace) -> list[str]:
    pairs = {"train.seed": args.seed, "train.device": args.device,
             "train.max_steps": args.max_steps, "train.checkpoint_every": args.checkpoint_every}
    return [f"{key}={value}" for key, value in pairs.items() if value is not None]


# ----------------------------------------------------------------------------- commands
def cmd_pretrain(args: argparse.Namespace) -> int:
    from vidssl.pretrain import load_pretrain_config, run_pretrain

    cfg = load_pretrain_config(args.config, [*args.overrides, *_training_overrides(args)])
    result = run_pretrain(cfg, args.out, resume=args.resume)
    print(f"pretraining finished: {result.step} steps, last checkpoint {result.last_checkpoint}")
    return 0


def cmd_configs_list(args: argparse.Namespace) -> int:
    from vidssl.bundled import KINDS, bundled_dir, bundled_names

    for kind in KINDS:
        print(f"{kind} ({bundled_dir(kind)}):")
        for name in bundled_names(kind):
            print(f"  {name}")
    return 0


def cmd_configs_show(args: argparse.Namespace) -> int:
    from vidssl.bundled import resolve_config

    print(resolve_config(args.name, args.kind).read_text(), end="")
    return 0


def cmd_world(args: argparse.Namespace) -> int:
    from vidssl.data.world import generate_world
    from vidssl.data.world.presets import resolve_preset

    manifest = generate_world(args.out, preset=resolve_preset(args.preset, args.p_context),
                              seed=args.seed, workers=args.workers)
    how = "reused" if manifest.elapsed_s is None else f"generated in {manifest.elapsed_s:.1f}s"
    print(f"world '{args.preset}' (seed {args.seed}) {how}: {args.out}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    import yaml

    from vidssl.data.check import check_dataset

    options = {}
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--option {item!r}: expected KEY=VALUE")
        options[key.strip()] = yaml.safe_load(value)
    ok, report = check_dataset(args.dataset, args.root, splits=args.split or None, **options)
    print(report)
    return 0 if ok else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from vidssl.evaluation import compare_runs, run_suite

    if args.compare:
        compare_runs(args.compare, args.out)
        return 0
    if not args.suite or not args.data_root:
        raise SystemExit("vidssl evaluate: --suite and --data-root are required (or --compare DIR ...)")
    checkpoint = args.checkpoint[0] if args.checkpoint and len(args.checkpoint) == 1 else args.checkpoint
    run_suite(args.suite, checkpoint=checkpoint, format=args.format, model=args.model,
              data_root=args.data_root, out=args.out, seeds=args.seeds,
              device=args.device or "cpu", seed=args.seed or 0, max_steps=args.max_steps,
              resume=args.resume, overrides=args.overrides, model_kwargs=args.model_kwargs,
              protocol=args.protocol)
    return 0


def cmd_evaluate_segmentation(args: argparse.Namespace) -> int:
    from vidssl.evaluation.segmentation import evaluate_segmentation

    evaluate_segmentation(args.checkpoint, args.data, out=args.out, format=args.format,
                          model=args.model, device=args.device)
    return 0


def cmd_evaluate_ava_map(args: argparse.Namespace) -> int:
    import math

    from vidssl.evaluation.detection import ava_frame_map

    result = ava_frame_map(args.groundtruth, args.detections, args.labelmap, args.excluded,
                           max_detections_per_image=args.max_detections_per_image)
    for name, ap in result["per_class"].items():
        print(f"AP@0.5IOU {name}: " + ("no ground truth" if math.isnan(ap) else f"{ap:.4f}"))
    skipped = {key: value for key, value in result.items()
               if key.startswith(("skipped", "capped", "invalid")) and value}
    if skipped:
        print("skipped: " + ", ".join(f"{key}={value}" for key, value in skipped.items()))
    print(f"mAP@0.5IOU: {result['mAP']:.4f} ({result['num_classes_evaluated']} classes)")
    return 0


def cmd_weights_inspect(args: argparse.Namespace) -> int:
    from vidssl.models.checkpoints import inspect_checkpoint

    print(inspect_checkpoint(args.file))
    return 0


def cmd_weights_convert(args: argparse.Namespace) -> int:
    from vidssl.models.checkpoints import convert_checkpoint

    report = convert_checkpoint(args.file, args.out, backbone=args.backbone, format=args.format)
    print(report)
    print(f"wrote {args.out}")
    return 0


def cmd_show_tubelets(args: argparse.Namespace) -> int:
    import torch

    from vidssl.io import probe, read_clip
    from vidssl.viz.tubelets import render_tubelet_examples

    clips = None
    if args.video:
        if len(args.video) < 2:
            raise SystemExit("vidssl show tubelets: --video needs at least two files (pairs are "
                             "made of different videos)")
        frames = [read_clip(v, list(range(min(16, probe(v).num_frames))), size=(112, 112))
                  for v in args.video]
        length = min(f.shape[0] for f in frames)
        clips = torch.stack([f[:length].permute(3, 0, 1, 2).float() / 255 for f in frames])
    render_tubelet_examples(args.out, clips=clips, num_pairs=max(1, len(args.video or []) - 1)
                            if args.video else 3, seed=args.seed)
    print(f"wrote {args.out}")
    return 0


def cmd_show_masking(args: argparse.Namespace) -> int:
    from vidssl.viz.masking import render_masking

    render_masking(args.out, checkpoint=args.checkpoint, video=args.video, seed=args.seed)
    print(f"wrote {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vidssl.demo import run_demo

    run_demo(args.out, preset=args.preset, quick=args.quick, device=args.device or "cpu",
             seed=args.seed or 0, data_dir=args.data, seeds=args.seeds,
             pretrain_epochs=args.pretrain_epochs, p_context=args.p_context, workers=args.workers,
             detection=args.detection, pretrain_runs=args.pretrain_runs)
    return 0


# ----------------------------------------------------------------------------- parser
def _yaml_mapping(text: str) -> dict:
    import yaml

    value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a YAML mapping such as '{{width: 0.25}}', got {text!r}")
    return value


P_CONTEXT_HELP = ("P(a UCF-like / pretraining video shows its class's typical prop and set), "
                  "per cue (default: the preset's, 0.5); 0 = labels carried by motion only")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidssl",
        description="Self-supervised video representation learning and the SEVERE "
                    "generalization benchmark (Tubelet-Contrast, SIGMA, VideoMAE, video MoCo).")
    parser.add_argument("--version", action="version", version=f"vidssl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("world", help="generate the synthetic motion world (built-in data)",
                       description="Render the procedural video world in the official layouts of "
                                   "the real datasets (UCF101, FineGym, SSv2, UCFRep, Charades, DAVIS).")
    p.add_argument("--preset", default="mini", choices=["tiny", "mini", "small", "full"])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="parallel rendering processes")
    p.add_argument("--p-context", type=float, default=None, help=P_CONTEXT_HELP)
    p.set_defaults(func=cmd_world)

    p = sub.add_parser("data", help="dataset utilities (check a dataset on disk)")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data_sub.add_parser("check", help="validate a dataset: counts per split/class, missing "
                                          "or undecodable files; exits non-zero on problems")
    q.add_argument("--dataset", required=True, help="dataset name, e.g. ucf101, gym99, ssv2")
    q.add_argument("--root", required=True, help="dataset root in its official layout")
    q.add_argument("--split", action="append", help="split to check (repeatable; default: all)")
    q.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="adapter option (repeatable), e.g. fps=8 for a world ava_like")
    q.set_defaults(func=cmd_data_check)

    p = sub.add_parser("configs", help="the configs bundled with vidssl (pretraining, suites)")
    c_sub = p.add_subparsers(dest="configs_command", metavar="ACTION", required=True)
    q = c_sub.add_parser("list", help="names of the bundled pretraining configs and suites")
    q.set_defaults(func=cmd_configs_list)
    q = c_sub.add_parser("show", help="print a bundled config (copy it to edit your own)")
    q.add_argument("name", help="e.g. tubelet_contrast_world, or severe with --kind evaluate")
    q.add_argument("--kind", default="pretrain", choices=["pretrain", "evaluate"])
    q.set_defaults(func=cmd_configs_show)

    p = sub.add_parser("pretrain", help="self-supervised pretraining from a YAML config",
                       description="Pretrain a backbone. Example: vidssl pretrain --config "
                                   "tubelet_contrast_world --out runs/tc "
                                   "data.root=runs/world/pretrain optim.lr=0.05")
    p.add_argument("--config", required=True,
                   help="a bundled config name (`vidssl configs list`) or a YAML path")
    _add_training_flags(p)
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=0.01 data.batch_size=8")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("evaluate", help="SEVERE evaluation suites, comparisons, segmentation",
                       description="Evaluate a backbone on a suite (severe, full, mini): "
                                   "vidssl evaluate --suite mini --checkpoint FILE --data-root DIR "
                                   "--out DIR [recipe.epochs=2 ...]. Segmentation: vidssl evaluate "
                                   "segmentation --checkpoint FILE --data DIR")
    p.add_argument("--suite", help="a bundled suite (severe, full, mini) or a YAML path")
    p.add_argument("--protocol", choices=["paper", "validation"],
                   help="paper: train on all of train, select on the test split, as published "
                        "(default of severe/full); validation: select on 10%% of train held out "
                        "(default of mini; unbiased). See docs/severe_protocol.md")
    p.add_argument("--checkpoint", action="append",
                   help="vidssl or published checkpoint; omit for a scratch backbone; repeat it "
                        "for several pretraining runs of one method (seed i reads run i mod K)")
    p.add_argument("--format", default="auto", help="checkpoint format (default: detect)")
    p.add_argument("--model", help="backbone name for published checkpoints or scratch, e.g. r2plus1d_18")
    p.add_argument("--model-kwargs", type=_yaml_mapping, default=None,
                   help="backbone kwargs as a YAML mapping, e.g. \"{width: 0.25}\"")
    p.add_argument("--data-root", help="folder holding the suite's datasets")
    p.add_argument("--seeds", type=int, default=1, help="repeat every experiment with N seeds")
    p.add_argument("--compare", nargs="+", metavar="RUN_DIR", help="merge finished runs into one report")
    _add_training_flags(p, out_default="runs/evaluate")
    p.add_argument("overrides", nargs="*", help="dotted overrides of the suite, e.g. recipe.epochs=2")
    p.set_defaults(func=cmd_evaluate)

    # `vidssl evaluate segmentation ...` is routed here by main() (see SEGMENTATION_COMMAND)
    q = sub.add_parser(SEGMENTATION_COMMAND, prog="vidssl evaluate segmentation",
                       help="= `vidssl evaluate segmentation`: unsupervised video object segmentation",
                       description="Unsupervised video object segmentation on a DAVIS-style "
                                   "layout: k-means over frozen space-time patch features, "
                                   "Hungarian and many-to-one matching, mIoU.")
    q.add_argument("--checkpoint", required=True)
    q.add_argument("--data", required=True, help="folder with JPEGImages/ and Annotations/")
    q.add_argument("--format", default="auto")
    q.add_argument("--model", help="backbone name for published checkpoints")
    q.add_argument("--device", default="cpu")
    q.add_argument("--out", default=None, help="where to write segmentation.json")
    q.set_defaults(func=cmd_evaluate_segmentation)

    # `vidssl evaluate ava-map ...` is routed here by main() (see AVA_MAP_COMMAND)
    q = sub.add_parser(AVA_MAP_COMMAND, prog="vidssl evaluate ava-map",
                       help="= `vidssl evaluate ava-map`: AVA frame mAP of a detections CSV",
                       description="Frame-level AVA mAP at IoU 0.5 from the official CSV / "
                                   "pbtxt files, as the ActivityNet evaluator computes it.")
    q.add_argument("--groundtruth", required=True, help="e.g. ava_val_v2.2.csv")
    q.add_argument("--detections", required=True,
                   help="video_id,timestamp,x1,y1,x2,y2,action_id,score rows")
    q.add_argument("--labelmap", required=True,
                   help="e.g. ava_action_list_v2.2_for_activitynet_2019.pbtxt")
    q.add_argument("--excluded", help="e.g. ava_val_excluded_timestamps_v2.2.csv")
    q.add_argument("--max-detections-per-image", type=int, default=50,
                   help="keep the top N detections of each keyframe (official 50; "
                        "0 = all, as PySlowFast's evaluator)")
    q.set_defaults(func=cmd_evaluate_ava_map)

    p = sub.add_parser("weights", help="inspect or convert published checkpoints")
    w_sub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    q = w_sub.add_parser("inspect", help="detected format, parameters per module, what loads where")
    q.add_argument("file")
    q.set_defaults(func=cmd_weights_inspect)
    q = w_sub.add_parser("convert", help="write a clean vidssl checkpoint")
    q.add_argument("file")
    q.add_argument("out")
    q.add_argument("--backbone", help="backbone name when the file does not say (e.g. r2plus1d_18)")
    q.add_argument("--format", default="auto")
    q.set_defaults(func=cmd_weights_convert)

    p = sub.add_parser("show", help="render pictures: tubelets, masking")
    s_sub = p.add_subparsers(dest="show_command", metavar="WHAT", required=True)
    q = s_sub.add_parser("tubelets", help="GIF of tubelet-contrast positive pairs")
    q.add_argument("--out", default="tubelets.gif")
    q.add_argument("--video", nargs="+", help="two or more videos to paste on (default: "
                                              "procedural textured clips)")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=cmd_show_tubelets)
    q = s_sub.add_parser("masking", help="VideoMAE/SIGMA masks, reconstructions, cluster assignments")
    q.add_argument("--out", default="masking.png")
    q.add_argument("--checkpoint", help="a VideoMAE or SIGMA checkpoint (default: untrained tiny model)")
    q.add_argument("--video", help="video to mask (default: a generated clip)")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=cmd_show_masking)

    p = sub.add_parser("demo", help="the main job: world -> pretraining -> SEVERE-style report",
                       description="Generate the mini world, pretrain every method, run the mini "
                                   "suite for each backbone and write report.md/results.csv/plots.")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--preset", default="mini", choices=["mini", "small", "full"])
    p.add_argument("--quick", action="store_true",
                   help="2-minute smoke run: the 'tiny' world, a few steps per method")
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--data", default=None, help="world folder (default: OUT/world)")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per experiment (default 3; 2 with --quick)")
    p.add_argument("--pretrain-epochs", type=int, default=None,
                   help="pretraining epochs for every method (default: a step budget per preset)")
    p.add_argument("--pretrain-runs", type=int, default=1,
                   help="pretrain every method N times (N divides --seeds); seed i evaluates "
                        "run i mod N, so a pretrained row's spread includes its pretraining's "
                        "randomness (default 1: N times the pretraining time)")
    p.add_argument("--p-context", type=float, default=None, help=P_CONTEXT_HELP)
    p.add_argument("--workers", type=int, default=None,
                   help="processes running the stages side by side (default: one per CPU "
                        "core, at most 2; 1 with --device cuda)")
    p.add_argument("--detection", action="store_true",
                   help="also evaluate every row on the AVA-like and UCF101-24-like detection "
                        "parts (the full `mini` suite; ~46 CPU-s more per row)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from vidssl.errors import ConfigError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["evaluate", "segmentation"]:
        argv = [SEGMENTATION_COMMAND, *argv[2:]]
    if argv[:2] == ["evaluate", "ava-map"]:
        argv = [AVA_MAP_COMMAND, *argv[2:]]
    args = build_parser().parse_args(argv)
    from vidssl.engine.distributed import shutdown

    succeeded = False
    try:
        code = args.func(args)
        succeeded = True
        return code
    except (ConfigError, FileNotFoundError, ValueError) as exc:  # user errors: no traceback
        print(f"vidssl: error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutdown(wait=succeeded)


if __name__ == "__main__":
    raise SystemExit(main())
