import os

import torch

# Two OpenMP threads collapse when the other core is busy; tests run single-threaded.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
