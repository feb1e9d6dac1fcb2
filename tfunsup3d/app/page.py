"""The Gradio page of `tfunsup3d-app`: photo in, 3D out.

Left: the photo (upload, paste, or an example), the face-crop switch and the
button. Then the textured mesh (`gr.Model3D`, the demo's `mesh.glb`: drag to
turn it) and the yaw turntable; below, the decomposition panels
(`process.PANELS`), the light and view, and every file for download. Page
elements carry `elem_id`s (`ELEMENT_IDS`) so that a browser test can find
them.
"""

import os

from tfunsup3d.app import process
from tfunsup3d.demo import inputs as inputs_lib
from tfunsup3d.errors import UserError

ELEMENT_IDS = {
    'photo': 'photo',
    'detect': 'detect',
    'run': 'run',
    'mesh': 'mesh',
    'animation': 'animation',
    'factors': 'factors',
    'files': 'files',
}
PANEL_ID_PREFIX = 'panel-'
DETECT_LABEL = 'Crop around the face (mtcnn)'
DETECT_MISSING = ('Needs the mtcnn package: pip install "tfunsup3d[demo]". '
                  'Without it the centre square of the photo is used.')
DETECT_INFO = ('Off: the centre square of the photo is used (for photos '
               'cropped to the face).')
# System fonts: the page makes no request outside this machine.
_FONTS = ['ui-sans-serif', 'system-ui', 'sans-serif']
_MONO_FONTS = ['ui-monospace', 'monospace']
_PANELS_PER_ROW = 4


def _intro(processor: process.Processor, checkpoint: str) -> str:
  cfg = processor.model.cfg
  return (
      '## tfunsup3d: 3D from one photo\n'
      'Unsup3D (Wu, Rupprecht, Vedaldi, CVPR 2020) splits a photo into '
      'depth, albedo, light and view, learnt without 3D supervision. '
      f'Model: `{checkpoint}` ({cfg.model_name}, {cfg.image_size}x'
      f'{cfg.image_size} px input); runs on this machine.')


def make_handler(processor: process.Processor):
  """The button's function: (photo path, detect) -> the output values."""
  import gradio as gr  # pylint: disable=g-import-not-at-top

  def handle(path, detect):
    try:
      result = processor(path, bool(detect))
    except UserError as e:
      raise gr.Error(str(e)) from None
    panels = [result.panels[key] for key, _, _ in process.PANELS]
    return ([result.mesh, result.animation] + panels +
            [process.describe(result), result.files])

  return handle


def build(processor: process.Processor, checkpoint: str = ''):
  """The page as `gr.Blocks` (not launched)."""
  os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
  import gradio as gr  # pylint: disable=g-import-not-at-top
  ids = ELEMENT_IDS
  detect_ok = inputs_lib.mtcnn_available()
  with gr.Blocks(title='tfunsup3d: 3D from one photo',
                 analytics_enabled=False) as blocks:
    gr.Markdown(_intro(processor, checkpoint))
    with gr.Row():
      with gr.Column(scale=2):
        photo = gr.Image(type='filepath', label='Photo',
                         sources=['upload', 'clipboard'], elem_id=ids['photo'])
        detect = gr.Checkbox(value=False, label=DETECT_LABEL,
                             info=DETECT_INFO if detect_ok else DETECT_MISSING,
                             interactive=detect_ok, elem_id=ids['detect'])
        run = gr.Button('Reconstruct 3D', variant='primary',
                        elem_id=ids['run'])
        gr.Examples(process.example_images(), inputs=photo,
                    label='Examples (synthetic faces, tfunsup3d-synth)')
      with gr.Column(scale=3):
        mesh = gr.Model3D(label='Textured mesh (drag to turn)',
                          clear_color=(1.0, 1.0, 1.0, 1.0),
                          elem_id=ids['mesh'])
      with gr.Column(scale=2):
        turntable = gr.Image(label='Rotation', type='filepath',
                             interactive=False, elem_id=ids['animation'])
    panels = []
    for start in range(0, len(process.PANELS), _PANELS_PER_ROW):
      with gr.Row():
        panels += [gr.Image(label=label, type='filepath', interactive=False,
                            elem_id=PANEL_ID_PREFIX + key, min_width=120)
                   for key, _, label in
                   process.PANELS[start:start + _PANELS_PER_ROW]]
    factors = gr.Markdown(elem_id=ids['factors'])
    with gr.Accordion('All files (mesh .glb/.obj, depth .npy and 16-bit PNG, '
                      'factors.json, ...)', open=False):
      files = gr.File(file_count='multiple', show_label=False,
                      interactive=False, elem_id=ids['files'])
    run.click(make_handler(processor), inputs=[photo, detect],
              outputs=[mesh, turntable] + panels + [factors, files])
  return blocks


def launch(blocks, host: str = '127.0.0.1', port: int = 7860,
           max_upload_mb: int = 50) -> str:
  """Starts serving the page in the background; returns its URL. Uploads
  over `max_upload_mb` are refused (HTTP 413) before they reach the disk.

  `wait(blocks)` then serves until Ctrl-C.

  Raises:
    UserError: the address cannot be served (port in use, bad host).
  """
  import gradio as gr  # pylint: disable=g-import-not-at-top
  theme = gr.themes.Default(font=_FONTS, font_mono=_MONO_FONTS)
  try:
    blocks.launch(server_name=host, server_port=port, share=False,
                  inbrowser=False, theme=theme, quiet=True,
                  prevent_thread_lock=True,
                  max_file_size=f'{int(max_upload_mb)}mb')
  except OSError as e:
    raise UserError(f'Cannot serve on {host}:{port}: {e} (pass --port=N or '
                    '--host=ADDRESS)') from None
  return f'http://{host}:{port}/'


def wait(blocks) -> None:
  """Serves until Ctrl-C, then stops the server."""
  blocks.block_thread()
