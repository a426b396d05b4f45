"""Names shared by every layer, declared once: artifact kinds, label keys, the model's prediction heads."""

from typing import Literal

ArtifactType = Literal["image", "audio", "video"]
ARTIFACT_TYPES: tuple[ArtifactType, ...] = ("image", "audio", "video")

# entity attributes that are labels, not inputs: the regression target, the binary class, the ranking grade
TARGET_KEYS = ("target_regression", "target_binary", "target_ranking")

# what a prediction answers, one value per head
HEADS = ("regression", "probability", "ranking_score")
