"""One photo -> the demo's outputs, for the web app (no Gradio here).

`Processor(model)(path, detect)` crops the photo (largest centred square, or
around the largest face with mtcnn), runs the model, and writes every file of
`tfunsup3d-demo` (`tfunsup3d.demo.runner.Demo.save`: the decomposition PNGs,
the turntable GIF/MP4, the textured mesh as OBJ and GLB, factors.json) into a
fresh folder; `Result` names the files the page shows.
"""

import dataclasses
import glob
import json
import os
import shutil
import tempfile
import time
from typing import Any, Dict, List, Optional

from tfunsup3d import errors
from tfunsup3d.demo import inputs as inputs_lib
from tfunsup3d.demo import runner
from tfunsup3d.errors import UserError

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'examples')
# The decomposition panels: (key, file name in the demo folder, label).
PANELS = (
    ('input', runner.OUTPUT_FILES['input'], 'Network input (crop)'),
    ('albedo', runner.OUTPUT_FILES['albedo'], 'Albedo'),
    ('depth', runner.OUTPUT_FILES['depth'], 'Depth (near = dark)'),
    ('normal', runner.OUTPUT_FILES['normal'], 'Normals'),
    ('shading', runner.OUTPUT_FILES['shading'], 'Diffuse shading'),
    ('canonical_image', runner.OUTPUT_FILES['canonical_image'],
     'Shaded, canonical view'),
    ('reconstruction', runner.OUTPUT_FILES['reconstruction'],
     'Reconstruction'),
    ('confidence', runner.CONFIDENCE_FILES['conf_sigma_l1'],
     'Confidence (1 / (1 + sigma))'),
)
NO_PHOTO = 'Upload a photo or pick an example first.'
NO_MTCNN = ('The face crop needs the mtcnn package: pip install '
            '"tfunsup3d[demo]"; untick it for a photo cropped to the face.')
NO_FACE = ('No face found in the photo; untick the face crop for a photo '
           'cropped to the face.')


def example_images() -> List[str]:
  """The example photos shipped with the package (sorted paths)."""
  return sorted(glob.glob(os.path.join(EXAMPLES_DIR, '*.png')))


@dataclasses.dataclass
class Result:
  """What one photo produced.

  Attributes:
    folder: the demo folder holding every file.
    panels: panel key (`PANELS`) -> PNG path, None where the model has no
      such output (confidence without `use_conf_map`).
    mesh: the textured mesh, binary glTF (`mesh.glb`).
    animation: the yaw turntable GIF of the shaded canonical image (the
      MP4, written with imageio-ffmpeg, is among `files`).
    factors: the contents of factors.json (light, view, crop box, ...).
    files: every file written, full paths.
    seconds: the processing time.
  """
  folder: str
  panels: Dict[str, Optional[str]]
  mesh: str
  animation: str
  factors: Dict[str, Any]
  files: List[str]
  seconds: float


class Processor:
  """Runs the demo on one photo at a time.

  Args:
    model: an `Unsup3D`.
    options: `runner.DemoOptions` (default: the demo's; the mesh is always
      written).
    workdir: where the per-photo folders go (default: a new temporary
      folder).
    keep: how many of the newest per-photo folders to keep on disk.
  """

  def __init__(self, model, options: Optional[runner.DemoOptions] = None,
               workdir: Optional[str] = None, keep: int = 8):
    options = dataclasses.replace(options or runner.DemoOptions(), mesh=True)
    self.demo = runner.Demo(model, options)
    self.workdir = workdir or tempfile.mkdtemp(prefix='tfunsup3d_app_')
    self.keep = max(int(keep), 1)
    self._count = 0
    self._detector = None

  @property
  def model(self):
    return self.demo.model

  def _face_detector(self) -> inputs_lib.FaceDetector:
    if not inputs_lib.mtcnn_available():
      raise UserError(NO_MTCNN)
    if self._detector is None:
      self._detector = inputs_lib.FaceDetector()
    return self._detector

  def _prepare(self, path: Optional[str], detect: bool
               ) -> inputs_lib.Prepared:
    if not path:
      raise UserError(NO_PHOTO)
    detector = self._face_detector() if detect else None
    prepared = inputs_lib.read_and_prepare(path, self.model.cfg.image_size,
                                           detector)
    if isinstance(prepared, inputs_lib.Prepared):
      return prepared
    if prepared.reason == inputs_lib.NO_FACE:
      raise UserError(NO_FACE)
    if prepared.reason == inputs_lib.UNREADABLE:
      raise UserError(f'Cannot read the photo: {prepared.detail}')
    raise UserError(f'Cannot use the photo: {prepared.reason} '
                    f'({prepared.detail})')

  def _prune(self) -> None:
    folders = sorted(glob.glob(os.path.join(self.workdir, 'photo_*')))
    for folder in folders[:-self.keep]:
      shutil.rmtree(folder, ignore_errors=True)

  def __call__(self, path: Optional[str], detect: bool = False) -> Result:
    """Decomposes the photo at `path` and writes the demo's files.

    Raises:
      UserError: no photo, an unreadable one, no face found, the face crop
        asked for without mtcnn, or a full (or read-only) work folder.
    """
    start = time.time()
    prepared = self._prepare(path, detect)
    res = self.demo.decompose(prepared.image)
    self._count += 1
    folder = os.path.join(self.workdir, f'photo_{self._count:06d}')
    try:
      names = self.demo.save(prepared, res, folder, path)
    except Exception as e:  # pylint: disable=broad-except
      if not errors.is_disk_failure(e):
        raise
      # `save` has removed the half-written folder.
      raise UserError('Cannot write the results: '
                      f'{errors.write_failure(e, "the work folder")} '
                      f'({self.workdir})') from e
    self._prune()
    with open(os.path.join(folder, runner.OUTPUT_FILES['factors']),
              encoding='utf-8') as f:
      factors = json.load(f)
    panels = {}
    for key, name, _ in PANELS:
      panels[key] = (os.path.join(folder, name) if name in names else None)
    gif = os.path.join(folder, runner.ANIMATION_FILES['textured'] + '.gif')
    return Result(
        folder=folder, panels=panels,
        mesh=os.path.join(folder, runner.MESH_FILES['glb']),
        animation=gif,
        factors=factors, files=[os.path.join(folder, n) for n in names],
        seconds=time.time() - start)


def describe(result: Result) -> str:
  """Markdown: light, view, crop and time of one result."""
  light, view = result.factors['light'], result.factors['view']
  angles = view['rotation_degrees']
  direction = ', '.join(f'{v:.2f}' for v in light['direction'])
  translation = ', '.join(f'{v:.3f}' for v in view['translation'])
  y0, x0, h, w = result.factors['crop_box_yxhw']
  crop = 'around the face' if result.factors['face_detection'] else (
      'centre square')
  return (
      f'**Light** ambient {light["ambient"]:.2f}, diffuse '
      f'{light["diffuse"]:.2f}, direction ({direction})  \n'
      f'**View** yaw {angles["yaw_y"]:.1f}°, pitch {angles["pitch_x"]:.1f}°, '
      f'roll {angles["roll_z"]:.1f}°, translation ({translation})  \n'
      f'**Crop** {crop}: {w}x{h} px at (x {x0}, y {y0}) of the '
      f'{result.factors["source_size_hw"][1]}x'
      f'{result.factors["source_size_hw"][0]} photo; '
      f'{result.seconds:.1f} s')
