"""The web app without a browser: the processing function on a tiny model
(its files checked against the model's own outputs), the page's handler, and
tfunsup3d-app's one-line errors."""

import errno
import importlib.util
import json
import os

import numpy as np
from PIL import Image
import pytest

from tests import tiny
from tfunsup3d.app import process
from tfunsup3d.demo import inputs as inputs_lib
from tfunsup3d.demo import runner
from tfunsup3d.errors import UserError

HAS_GRADIO = importlib.util.find_spec('gradio') is not None
HAS_TRIMESH = importlib.util.find_spec('trimesh') is not None
NUM_FRAMES = 4


@pytest.fixture(scope='module')
def model():
  return tiny.tiny_model()


@pytest.fixture(scope='module')
def processor(model, workdir):
  options = runner.DemoOptions(output_size=model.cfg.image_size,
                               num_frames=NUM_FRAMES)
  return process.Processor(model, options, os.path.join(workdir, 'runs'))


@pytest.fixture(scope='module')
def result(processor):
  if not HAS_TRIMESH:
    pytest.skip('the mesh needs trimesh (the app extra)')
  return processor(process.example_images()[1])


def test_examples_are_small_images_the_model_takes():
  paths = process.example_images()
  assert len(paths) == 3
  for path in paths:
    assert os.path.getsize(path) < 8000, path
    with Image.open(path) as im:
      assert im.size == (64, 64) and im.mode == 'RGB'


def test_panels_hold_the_models_outputs(result, model):
  # The example is 64x64 = image_size: the network input is the file itself.
  with Image.open(process.example_images()[1]) as im:
    image = np.asarray(im, np.float32) / 255.0
  out = model.decompose(image[None])
  depth = out['canon_depth'][0].numpy()
  cfg = model.cfg
  want = np.clip((depth - cfg.min_depth) / (cfg.max_depth - cfg.min_depth),
                 0, 1) * 255.0
  with Image.open(result.panels['depth']) as im:
    got = np.asarray(im, np.float32)
  assert got.shape == (64, 64)
  assert np.abs(got - want).max() <= 1.0
  albedo = (out['canon_albedo'][0].numpy() + 1.0) / 2.0 * 255.0
  with Image.open(result.panels['albedo']) as im:
    assert np.abs(np.asarray(im, np.float32) - albedo).max() <= 1.0
  with Image.open(result.panels['input']) as im:
    assert np.abs(np.asarray(im, np.float32) - image * 255.0).max() <= 0.5
  for key, _, _ in process.PANELS:
    assert result.panels[key] and os.path.isfile(result.panels[key]), key


def test_mesh_is_the_models_depth(result, model):
  import trimesh  # pylint: disable=g-import-not-at-top
  with Image.open(process.example_images()[1]) as im:
    image = np.asarray(im, np.float32) / 255.0
  depth = model.decompose(image[None])['canon_depth'][0].numpy()
  mesh = trimesh.load(result.mesh, force='mesh', process=False)
  assert result.mesh.endswith('.glb')
  assert mesh.vertices.shape == (64 * 64, 3)
  assert len(mesh.faces) == 2 * 63 * 63
  # Viewer axes: z towards the viewer, origin at rot_center_depth.
  np.testing.assert_allclose(
      model.cfg.rot_center_depth - mesh.vertices[:, 2], depth.reshape(-1),
      atol=1e-5)


def test_animation_factors_and_files(result):
  assert result.animation.endswith('animation_textured.gif')
  with Image.open(result.animation) as im:
    assert im.n_frames == NUM_FRAMES
  with open(os.path.join(result.folder, 'factors.json')) as f:
    assert json.load(f) == result.factors
  text = process.describe(result)
  yaw = result.factors['view']['rotation_degrees']['yaw_y']
  assert f'yaw {yaw:.1f}°' in text
  assert 'centre square: 64x64 px' in text
  names = {os.path.basename(p) for p in result.files}
  assert {'mesh.glb', 'mesh.obj', 'canonical_depth.npy',
          'factors.json'} <= names


def test_user_errors(processor, workdir, monkeypatch):
  with pytest.raises(UserError, match='Upload a photo'):
    processor(None)
  bad = os.path.join(workdir, 'not_an_image.png')
  with open(bad, 'w') as f:
    f.write('text')
  with pytest.raises(UserError, match='Cannot read the photo'):
    processor(bad)
  monkeypatch.setattr(inputs_lib, 'mtcnn_available', lambda: False)
  with pytest.raises(UserError, match=r'mtcnn.*tfunsup3d\[demo\]'):
    processor(process.example_images()[0], detect=True)


def test_a_full_work_folder_is_a_user_error_and_leaves_no_folder(
    model, workdir, monkeypatch):
  processor = process.Processor(model, runner.DemoOptions(animations=False),
                                os.path.join(workdir, 'full'))

  def save_files(demo, prepared, res, out_dir, source):
    del demo, prepared, res, source
    os.makedirs(out_dir)
    raise OSError(errno.ENOSPC, 'No space left on device')

  monkeypatch.setattr(runner.Demo, '_save_files', save_files)
  with pytest.raises(UserError, match=r'Cannot write the results: No space '
                     r'left on device \(the disk is full.*the work folder'):
    processor(process.example_images()[0])
  assert os.listdir(processor.workdir) == []


class _FakeDetector:
  """Stands in for mtcnn: a fixed face box, or none."""
  box = None

  def detect(self, image):
    del image
    return None if self.box is None else {'box': self.box,
                                          'confidence': 0.99}


def test_face_crop_uses_the_detector(model, workdir, monkeypatch):
  if not HAS_TRIMESH:
    pytest.skip('the mesh needs trimesh (the app extra)')
  monkeypatch.setattr(inputs_lib, 'mtcnn_available', lambda: True)
  monkeypatch.setattr(inputs_lib, 'FaceDetector', _FakeDetector)
  options = runner.DemoOptions(output_size=64, animations=False)
  face = process.Processor(model, options, os.path.join(workdir, 'face'))
  photo = tiny.write_image(os.path.join(workdir, 'photo.png'))  # 120x90.
  with pytest.raises(UserError, match='No face found'):
    face(photo, detect=True)
  _FakeDetector.box = [40, 20, 30, 40]  # x, y, w, h.
  try:
    result = face(photo, detect=True)
  finally:
    _FakeDetector.box = None
  # inputs.face_box: side 2 * int((40 + 30) / 4 * 1.1) = 38 around the box.
  assert result.factors['crop_box_yxhw'][2:] == [38, 38]
  assert result.factors['face_detection']['box'] == [40, 20, 30, 40]
  assert 'around the face: 38x38 px' in process.describe(result)
  assert face(photo).factors['crop_box_yxhw'] == [0, 15, 90, 90]


def test_keeps_only_the_newest_folders(model, workdir):
  if not HAS_TRIMESH:
    pytest.skip('the mesh needs trimesh (the app extra)')
  options = runner.DemoOptions(output_size=64, num_frames=1,
                               animations=False)
  root = os.path.join(workdir, 'keep')
  small = process.Processor(model, options, root, keep=2)
  folders = [small(path).folder for path in process.example_images()]
  assert sorted(os.listdir(root)) == [os.path.basename(f)
                                      for f in folders[1:]]


@pytest.mark.skipif(not HAS_GRADIO, reason='gradio (the app extra) missing')
def test_page_handler_and_elements(processor, result):
  from tfunsup3d.app import page  # pylint: disable=g-import-not-at-top
  del result  # The handler runs after the shared result (warm model).
  values = page.make_handler(processor)(process.example_images()[0], False)
  assert len(values) == 2 + len(process.PANELS) + 2
  assert values[0].endswith('mesh.glb') and os.path.isfile(values[0])
  assert values[2 + 2] == os.path.join(os.path.dirname(values[0]),
                                       'canonical_depth.png')
  assert values[-2].startswith('**Light**')
  blocks = page.build(processor, 'ckpt')
  ids = {getattr(b, 'elem_id', None) for b in blocks.blocks.values()}
  assert set(page.ELEMENT_IDS.values()) <= ids
  assert {page.PANEL_ID_PREFIX + k for k, _, _ in process.PANELS} <= ids
  import gradio as gr  # pylint: disable=g-import-not-at-top
  with pytest.raises(gr.Error, match='Upload a photo'):
    page.make_handler(processor)(None, False)


def test_cli_helpfull_lists_the_app_flags():
  proc = tiny.run_script('app', '--helpfull')
  assert proc.returncode == 0, proc.stderr[-2000:]
  for flag in ('--checkpoint', '--host', '--port', '--num_frames',
               '--config'):
    assert flag in proc.stdout, flag
  assert "default: '127.0.0.1'" in proc.stdout


def test_cli_port_out_of_range_is_one_line():
  proc = tiny.run_script('app', '--port=99999')  # gradio: OverflowError
  tiny.assert_one_line_error(proc, 'app', '--port=99999',
                             'not an integer in the range [1, 65535]')


def test_cli_without_checkpoint_is_one_line(workdir):
  proc = tiny.run_script('app', f'--checkpoint_dir={workdir}/nothing_here')
  if HAS_GRADIO and HAS_TRIMESH:
    tiny.assert_one_line_error(proc, 'app', 'No checkpoint',
                               '--checkpoint=', 'nothing_here')
  else:
    tiny.assert_one_line_error(proc, 'app', 'tfunsup3d[app]')


def test_cli_unloadable_checkpoint_is_one_line(workdir):
  if not (HAS_GRADIO and HAS_TRIMESH):
    pytest.skip('gradio and trimesh (the app extra) missing')
  bad = os.path.join(workdir, 'bad.pth')
  with open(bad, 'w') as f:
    f.write('not a checkpoint')
  proc = tiny.run_script('app', f'--checkpoint={bad}')
  tiny.assert_one_line_error(proc, 'app', 'bad.pth')
