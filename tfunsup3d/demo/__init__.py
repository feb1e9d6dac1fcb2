"""The demo: decompose photos into depth, albedo, light and view, and show them.

* `inputs`: listing and reading input images (files, several, folders),
  face detection (optional, `mtcnn`) or a centre square crop, resizing.
* `runner`: `Demo` (one image -> every output file) and `run_demo` (many
  images, progress, counted skips).
* `mesh`: textured OBJ (+ MTL + PNG) and GLB (trimesh) of the canonical
  depth.
* `animation`: yaw turntables rendered with `tfunsup3d.render.render_yaw`,
  written as GIF (and MP4 with imageio-ffmpeg).
* `explain`: saliency and Grad-CAM++ maps of the light and view encoders
  (tf-keras-vis).
* `cli`: the flags the demo, explain and export scripts share.

Heavy modules load on first use: `import tfunsup3d.demo` stays light.
"""

__all__ = ['inputs', 'runner', 'mesh', 'animation', 'explain', 'cli']


def __getattr__(name):
  if name in __all__:
    import importlib  # pylint: disable=g-import-not-at-top
    return importlib.import_module(f'tfunsup3d.demo.{name}')
  raise AttributeError(f'module tfunsup3d.demo has no attribute {name!r}')
