"""Deployment: SavedModel for TF Serving and TFLite.

* `saved_model`: `export_saved_model(model, export_dir, name, version)` writes
  `<export_dir>/<name>/<version>/` (the TF Serving layout) with the signatures
  `serving_default` (float images) and `predict_encoded` (JPEG/PNG bytes).
* `tflite`: `export_tflite(model, out_dir)` converts the encoders and the
  canonical decomposition to float32 / float16 / int8 (dynamic range) and
  reports their error against Keras.

Models to export are loaded with `tfunsup3d.saving.load`, which also reads a
SavedModel written here back into an `Unsup3D`.

Heavy modules load lazily: `import tfunsup3d.export` does not import
TensorFlow.
"""

__all__ = ['saved_model', 'tflite']


def __getattr__(name):
  if name in __all__:
    import importlib  # pylint: disable=g-import-not-at-top
    return importlib.import_module(f'tfunsup3d.export.{name}')
  raise AttributeError(f'module tfunsup3d.export has no attribute {name!r}')
