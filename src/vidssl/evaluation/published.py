"""Published SEVERE numbers of K400-pretrained R(2+1)D-18 backbones, for the reference table.

Source: the SEVERE++ paper tables (Thoker et al., IJCV 2026, Tables 3-10) as transcribed in
``bpiyush/SEVERE-plus-plus-website/data.js``; the CNN rows are believed identical to the
ECCV 2022 paper (unconfirmed, see docs/references). Full fine-tuning, test-split model
selection (the original protocol). Accuracy / mAP in percent; ``ucf_rc`` is the normalized
counting error (lower is better). Keys are the experiment names of the bundled ``full`` suite.
"""
from __future__ import annotations

SOURCE = (
    "SEVERE++ paper tables (transcribed in bpiyush/SEVERE-plus-plus-website data.js); "
    "K400-pretrained R(2+1)D-18, full fine-tuning, checkpoints selected on the test split"
)

_DOMAIN = ("ucf101", "ntu60", "gym99", "ssv2", "epic100_verbs")  # data.js ft[1:]
_SAMPLES = ("ucf101_1000", "gym99_1000")  # smp
_ACTIONS = ("gym99_actions", "gym_vault", "gym_floor", "gym_fx_s1", "gym_ub_s1",
            "gym288")  # act: mean per-class accuracy
_TASKS = ("ucf_rc", "arrow_of_time", "charades")  # tsk[1], tsk[2], tsk[4]

# method: (ft[K400, UCF101, NTU60, Gym99, SSv2, EK100], smp, act[Gym99, Vault, Floor, FX-S1,
#          UB-S1, Gym288], tsk[STAD, RepCount, AoT, TAL, Charades, AVA, TAL-ood])
_ROWS: dict[str, tuple[list, list, list, list]] = {
    "SeLaVi": ([65.5, 85.2, 92.8, 88.9, 56.2, 33.8], [69.1, 28.3],
               [84.5, 25.4, 76.0, 51.3, 80.9, 52.8], [.419, .162, 77.4, 31.9, 8.4, 10.2, 34.9]),
    "MoCo": ([64.3, 83.3, 93.4, 90.7, 57.1, 26.4], [60.6, 29.0],
             [86.5, 33.2, 83.3, 65.0, 84.5, 55.1], [.416, .208, 80.3, 41.2, 8.3, 11.7, 34.5]),
    "VideoMoCo": ([65.0, 84.9, 94.1, 90.3, 59.0, 43.6], [65.8, 19.1],
                  [85.9, 28.4, 79.5, 57.3, 83.9, 54.1], [.440, .185, 72.9, 44.1, 10.5, 13.1, 34.7]),
    "Pretext-Contrast": ([66.1, 87.7, 93.9, 90.5, 56.9, 34.3], [62.7, 25.9],
                         [86.0, 28.5, 81.4, 66.1, 86.1, 52.7],
                         [.462, .164, 77.2, 41.0, 8.9, 12.7, 34.7]),
    "RSPNet": ([66.4, 88.7, 93.9, 91.1, 59.0, 42.7], [75.6, 32.2],
               [86.9, 33.4, 82.7, 65.4, 83.6, 55.2], [.467, .145, 87.0, 49.5, 9.0, 14.1, 35.9]),
    "AVID-CMA": ([66.6, 88.8, 94.0, 90.4, 52.0, 29.9], [68.8, 32.1],
                 [85.7, 30.4, 82.7, 68.0, 87.3, 52.5], [.435, .148, 83.3, 43.8, 8.2, 10.0, 35.5]),
    "CtP": ([67.1, 90.1, 94.3, 92.0, 59.6, 42.8], [63.7, 31.2],
            [88.1, 26.8, 86.2, 79.1, 88.8, 56.5], [.465, .178, 77.1, 33.5, 9.6, 10.0, 33.2]),
    "TCLR": ([68.1, 90.8, 94.1, 91.6, 59.8, 36.2], [70.5, 24.4],
             [87.7, 29.8, 84.3, 60.7, 84.7, 55.4], [.476, .142, 85.6, 32.4, 12.2, 10.8, 34.3]),
    "GDT": ([67.1, 91.3, 93.9, 90.5, 58.0, 37.3], [77.8, 44.0],
            [86.6, 36.9, 83.6, 66.0, 83.4, 55.4], [.463, .123, 76.4, 48.7, 8.5, 12.6, 35.9]),
    "Tubelet-Contrast": ([65.8, 91.0, 93.7, 92.8, 60.2, 43.1], [67.7, 44.6],
                         [88.9, 28.4, 87.7, 80.1, 91.0, 57.4],
                         [.463, .150, 79.1, 35.5, 9.9, 10.3, 35.4]),
    "Supervised (K400)": ([None, 91.4, 93.9, 92.1, 60.8, 47.7], [86.0, 51.2],
                          [88.6, 37.7, 86.1, 79.0, 87.1, 58.4],
                          [.482, .132, 77.0, 60.7, 23.5, 17.9, 36.3]),
}


def _flatten(ft: list, smp: list, act: list, tsk: list) -> dict[str, float]:
    row = dict(zip(_DOMAIN, ft[1:]))
    row.update(zip(_SAMPLES, smp))
    row.update(zip(_ACTIONS, act))
    row.update(zip(_TASKS, (tsk[1], tsk[2], tsk[4])))
    return row


PUBLISHED: dict[str, dict[str, float]] = {name: _flatten(*r) for name, r in _ROWS.items()}
"""method -> experiment name -> published primary metric."""
