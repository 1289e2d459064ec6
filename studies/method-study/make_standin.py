"""Write a randomly initialised small DINOv2-architecture encoder (the study's stand-in) to a folder.

    python studies/method-study/make_standin.py study/standin-init

It is then pretrained with ``grpo-rm train`` like any encoder (see run.sh in this folder).
"""

import sys
from pathlib import Path

from grpo_rm.commands.demo import build_standin_encoder

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(build_standin_encoder(Path(sys.argv[1]), seed=0))
