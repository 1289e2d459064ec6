"""GRPO-RM inside other libraries' training loops: thin adapters over ``grpo_rm.methods`` and the objective.

- ``GrpoRmTrainer``: a ``transformers.Trainer`` that trains with GRPO-RM (change the class of a Trainer script);
- ``GrpoRmClassificationLoss``: a sentence-transformers loss (change the loss of a SentenceTransformerTrainer
  script); sentence-transformers is optional and imported only when this loss is used;
- ``GrpoRmArguments``: the objective's settings both take (default: the paper's).
"""

from .arguments import GrpoRmArguments
from .sentence_transformers_loss import GrpoRmClassificationLoss
from .trainer import GrpoRmTrainer

__all__ = ["GrpoRmArguments", "GrpoRmClassificationLoss", "GrpoRmTrainer"]
