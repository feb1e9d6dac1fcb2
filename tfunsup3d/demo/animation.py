"""Yaw turntables of the canonical shape, written as GIF (and MP4).

Frames come from `tfunsup3d.render.render_yaw`: the canonical mesh, coloured
per vertex (the shaded canonical image, or the normal map), turned about the
vertical axis through (0, 0, rot_center_depth) by a smooth back-and-forth
sweep in [-max_yaw, max_yaw] that loops without a jump.

GIF uses PIL (always available); MP4 uses imageio with the imageio-ffmpeg
package (`pip install imageio-ffmpeg`, part of the `demo` extra) and is
skipped when that is missing.
"""

import importlib.util
import math
from typing import Optional

import numpy as np
from PIL import Image


def yaw_angles(num_frames: int, max_yaw: float) -> np.ndarray:
  """`[T]` yaw angles in radians: max_yaw * sin(2 pi t / T), t = 0..T-1."""
  if num_frames < 1:
    raise ValueError(f'num_frames must be >= 1. Received: {num_frames}')
  t = np.arange(num_frames, dtype=np.float64)
  return (math.radians(max_yaw) * np.sin(2.0 * math.pi * t / num_frames)
          ).astype(np.float32)


# Pixels (frames x H x W) rendered in one call: the z-buffer holds about
# 0.9 KB a pixel (2x2 samples and the per-frame mesh), so a call stays near
# 0.5 GB whatever the turntable's length and size.
CHUNK_PIXELS = 1 << 19


def render_turntable(image, depth, K, rot_center_depth: float,
                     angles: np.ndarray, background: float = 1.0,
                     anti_aliasing: bool = True) -> np.ndarray:
  """Renders `[1, H, W, C]` colours in [-1, 1] on `[1, H, W]` canonical depth.

  The frames are rendered in as few equal chunks as keep each near
  `CHUNK_PIXELS` pixels (one frame at least; the last chunk padded with its
  own last angle), one tensor shape for all.

  Returns:
    uint8 frames `[T, H, W, 3]` (colours mapped from [-1, 1]).
  """
  from tfunsup3d import render  # pylint: disable=g-import-not-at-top
  angles = np.asarray(angles, np.float32).reshape([-1])
  t, (h, w) = len(angles), np.shape(depth)[1:3]
  calls = -(-t * h * w // CHUNK_PIXELS)  # ceil
  chunk = -(-t // calls)  # At most calls - 1 frames padded.
  padded = np.pad(angles, (0, -t % chunk), mode='edge')
  parts = []
  for start in range(0, len(padded), chunk):
    frames = render.render_yaw(image, depth, K, rot_center_depth,
                               rotations=padded[start:start + chunk],
                               anti_aliasing=anti_aliasing,
                               background=background)[0].numpy()
    frames = (frames + 1.0) / 2.0
    if frames.shape[-1] == 1:
      frames = np.repeat(frames, 3, axis=-1)
    parts.append(np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8))
  return np.concatenate(parts)[:t]


def write_gif(path: str, frames: np.ndarray, fps: float = 12.0) -> str:
  """Writes uint8 `[T, H, W, 3]` frames as a looping GIF (PIL)."""
  images = [Image.fromarray(f) for f in frames]
  duration = int(round(1000.0 / max(fps, 1e-3)))
  images[0].save(path, save_all=True, append_images=images[1:],
                 duration=duration, loop=0, optimize=False, disposal=2)
  return path


def mp4_available() -> bool:
  """Whether imageio and imageio-ffmpeg (its bundled ffmpeg) are installed."""
  return (importlib.util.find_spec('imageio') is not None and
          importlib.util.find_spec('imageio_ffmpeg') is not None)


def write_mp4(path: str, frames: np.ndarray, fps: float = 12.0
              ) -> Optional[str]:
  """Writes an H.264 MP4 with imageio-ffmpeg; None when unavailable."""
  if not mp4_available():
    return None
  import imageio.v2 as imageio  # pylint: disable=g-import-not-at-top
  frames = np.asarray(frames)
  h, w = frames.shape[1:3]
  # yuv420p needs even sides; pad by edge replication if odd.
  frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)),
                  mode='edge')
  with imageio.get_writer(path, fps=fps, codec='libx264', quality=8,
                          macro_block_size=1, pixelformat='yuv420p',
                          ffmpeg_log_level='error') as writer:
    for frame in frames:
      writer.append_data(frame)
  return path
