"""tfunsup3d-app as a user meets it: the server on 127.0.0.1, a real headless
chromium (selenium) uploads a photo, waits for the mesh, and checks what the
page shows. Saves a screenshot (to $TFUNSUP3D_APP_SCREENSHOT when set, e.g.
docs/app_screenshot.png; else into the test's scratch folder).

Marked `browser`; skips with the reason when chromium, chromedriver,
selenium or gradio is missing (Debian: apt-get install chromium
chromium-driver; pip install -e ".[app]" selenium). The model is a tiny
random one unless $TFUNSUP3D_APP_CHECKPOINT names a checkpoint.
"""

import importlib.util
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image
import pytest

from tests import tiny
from tfunsup3d.app import page
from tfunsup3d.app import process

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMEDRIVER = shutil.which('chromedriver')
_MISSING = [name for name, ok in (
    ('chromium', CHROMIUM), ('chromedriver', CHROMEDRIVER),
    ('selenium', importlib.util.find_spec('selenium')),
    ('gradio', importlib.util.find_spec('gradio')),
    ('trimesh', importlib.util.find_spec('trimesh'))) if not ok]
if _MISSING:
  pytest.skip(f'the browser test needs {", ".join(_MISSING)} (apt-get install '
              'chromium chromium-driver; pip install -e ".[app]" selenium)',
              allow_module_level=True)

# pylint: disable=g-import-not-at-top,g-bad-import-order
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
# pylint: enable=g-import-not-at-top,g-bad-import-order

SERVER_START_S = 300
RESULT_S = 300
MAX_UPLOAD_MB = 1
SCREENSHOT_ENV = 'TFUNSUP3D_APP_SCREENSHOT'
CHECKPOINT_ENV = 'TFUNSUP3D_APP_CHECKPOINT'


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def server(workdir):
  """The app's URL; the server runs as `python -m tfunsup3d.tools.app`."""
  checkpoint = os.environ.get(CHECKPOINT_ENV) or tiny.write_checkpoint(
      tiny.tiny_model(), os.path.join(workdir, 'ckpt'))
  port = _free_port()
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='',
             GRADIO_ANALYTICS_ENABLED='False',
             PYTHONPATH=os.pathsep.join(
                 [tiny.REPO_ROOT] + [p for p in [os.environ.get(
                     'PYTHONPATH')] if p]))
  log = open(os.path.join(workdir, 'server.log'), 'w+')
  proc = subprocess.Popen(
      [sys.executable, '-m', 'tfunsup3d.tools.app',
       f'--checkpoint={checkpoint}', f'--port={port}', '--num_frames=12',
       f'--max_upload_mb={MAX_UPLOAD_MB}'],
      cwd=tiny.REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
  url = f'http://127.0.0.1:{port}/'
  deadline = time.time() + SERVER_START_S
  try:
    while True:
      if proc.poll() is not None:
        log.seek(0)
        pytest.fail(f'tfunsup3d-app exited {proc.returncode}: '
                    f'{log.read()[-3000:]}')
      try:
        with urllib.request.urlopen(url, timeout=5) as response:
          if response.status == 200:
            break
      except OSError:
        pass
      if time.time() > deadline:
        pytest.fail(f'tfunsup3d-app did not serve {url} in {SERVER_START_S}s')
      time.sleep(1)
    yield url
  finally:
    proc.terminate()
    try:
      proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
      proc.kill()
    log.close()


@pytest.fixture(scope='module')
def browser():
  options = Options()
  options.binary_location = CHROMIUM
  for argument in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                   '--window-size=1400,1250', '--enable-unsafe-swiftshader'):
    options.add_argument(argument)
  driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
  yield driver
  driver.quit()


def _css(driver, selector):
  return driver.find_element(By.CSS_SELECTOR, selector)


def _image_src(driver, elem_id) -> str:
  return _css(driver, f'#{elem_id} img').get_attribute('src')


def _upload(url: str, size: int) -> int:
  """POSTs a file of `size` bytes to the page's upload route (as the page's
  own file input does); returns the HTTP status."""
  boundary = 'tfunsup3d-test-boundary'
  body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
          f'filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
          ).encode() + b'\0' * size + f'\r\n--{boundary}--\r\n'.encode()
  request = urllib.request.Request(
      url + 'gradio_api/upload', data=body, method='POST', headers={
          'Content-Type': f'multipart/form-data; boundary={boundary}'})
  try:
    with urllib.request.urlopen(request, timeout=60) as response:
      return response.status
  except urllib.error.HTTPError as e:
    return e.code


def test_uploads_over_the_limit_are_refused(server):
  assert _upload(server, 1000) == 200
  assert _upload(server, MAX_UPLOAD_MB * 1024 * 1024 + 1000) == 413


def test_upload_a_photo_and_see_it_in_3d(server, browser, workdir):
  browser.get(server)
  wait = WebDriverWait(browser, RESULT_S)
  upload = wait.until(EC.presence_of_element_located(
      (By.CSS_SELECTOR, f'#{page.ELEMENT_IDS["photo"]} input[type=file]')))
  assert 'tfunsup3d: 3D from one photo' in browser.title
  assert 'Examples' in browser.page_source
  upload.send_keys(process.example_images()[1])
  wait.until(EC.presence_of_element_located(
      (By.CSS_SELECTOR, f'#{page.ELEMENT_IDS["photo"]} img')))
  _css(browser, f'#{page.ELEMENT_IDS["run"]}').click()

  # The mesh arrives last of the outputs that the page draws itself.
  mesh = wait.until(EC.presence_of_element_located(
      (By.CSS_SELECTOR, f'#{page.ELEMENT_IDS["mesh"]} canvas')))
  wait.until(EC.text_to_be_present_in_element(
      (By.CSS_SELECTOR, f'#{page.ELEMENT_IDS["factors"]}'), 'Light'))
  for key, name, _ in process.PANELS:
    src = _image_src(browser, page.PANEL_ID_PREFIX + key)
    assert '/file=' in src and src.endswith('/' + name), (key, src)
    with urllib.request.urlopen(src, timeout=30) as response:
      with Image.open(io.BytesIO(response.read())) as im:
        assert im.size == (128, 128), (key, im.size)
  animation = _image_src(browser, page.ELEMENT_IDS['animation'])
  with urllib.request.urlopen(animation, timeout=30) as response:
    with Image.open(io.BytesIO(response.read())) as im:
      assert im.format == 'GIF' and im.n_frames == 12
  text = _css(browser, f'#{page.ELEMENT_IDS["factors"]}').text
  for word in ('Light', 'View', 'yaw', 'Crop'):
    assert word in text
  assert not browser.find_elements(By.CSS_SELECTOR, '.toast-body.error')

  time.sleep(3)  # Lets the 3D view finish drawing.
  with Image.open(io.BytesIO(mesh.screenshot_as_png)) as im:
    pixels = np.asarray(im.convert('L'), np.float32)
  # Drawn: the white background plus a textured surface, not one colour.
  assert pixels.std() > 10.0 and (pixels < 200).mean() > 0.02, (
      pixels.std(), (pixels < 200).mean())
  shot = os.environ.get(SCREENSHOT_ENV) or os.path.join(workdir, 'app.png')
  browser.save_screenshot(shot)
  with Image.open(shot) as im:
    assert im.size[0] >= 1000
