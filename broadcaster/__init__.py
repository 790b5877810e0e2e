"""broadcaster: keeps one AI anchor on air as a continuous H.264/AAC stream."""

import os

# numpy's OpenBLAS starts a thread per core and lets it spin after every small matrix product
# (the yuv conversion, the mel filterbank), taking a core from the renderer. The work here is
# many small products on the media thread, so one BLAS thread. Set before numpy loads; an
# operator's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
