"""Input pipelines: image collections, ground-truth depth pairs, synthetic."""

from tfunsup3d.data.images import build_dataset
from tfunsup3d.data.images import count
from tfunsup3d.data.images import decode_depth
from tfunsup3d.data.images import list_split
from tfunsup3d.data.images import load_image_file
from tfunsup3d.data.images import SkippedFiles
