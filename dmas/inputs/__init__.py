"""Model inputs from raw rows: one code path for training, batch scoring and online scoring.

`EntityRows` holds what the store says about some entities (their attributes, events, links,
artifacts); `encode` turns it into the model's fixed-shape arrays with a run's vocabularies and
training-split normalisation (`InputEncoding`), or fits those on the training split when training.
"""

from dmas.inputs.encode import ARTIFACT_TYPE_INDEX, EncodedInputs, InputEncoding, InputLimits, encode
from dmas.inputs.rows import EntityRows, rows_from_tables

__all__ = ["ARTIFACT_TYPE_INDEX", "EncodedInputs", "EntityRows", "InputEncoding", "InputLimits", "encode",
           "rows_from_tables"]
