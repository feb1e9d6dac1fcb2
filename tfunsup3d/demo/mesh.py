"""Textured meshes of the canonical depth: OBJ (+ MTL + PNG) and GLB.

Vertices: one per depth pixel, `tfunsup3d.render.depth_to_points` of the
canonical depth (row-major, H*W vertices); faces: the renderer's grid mesh
(`tfunsup3d.render.grid_faces`, 2 (H-1)(W-1) triangles).

Axes: the renderer's camera space has x right, **y down** and z forward
(away from the camera). Viewers (OBJ, glTF) expect y up and a camera looking
down -z, so vertices are written as (x, -y, rot_center_depth - z): a 180
degree turn about x (no mirroring), moved so that the rotation centre
(0, 0, rot_center_depth) is the origin. The face seen by the model's camera
then faces +z, towards a viewer's default camera, and the triangles wind
counter-clockwise seen from there (front faces). Vertex normals are the
model's canonical normals turned the same way and flipped to point out of
the surface towards the viewer (the renderer's normals point away from the
camera).

UVs: vertex (i, j) samples the texture at its pixel centre,
u = (j + 0.5) / W, v = 1 - (i + 0.5) / H (OBJ convention, v up); the texture
PNG is the canonical albedo (default) at the depth map's size.
"""

import os
from typing import Dict, Optional, Tuple

import numpy as np
from PIL import Image

MATERIAL = 'unsup3d_albedo'


def grid_uvs(height: int, width: int) -> np.ndarray:
  """`[H*W, 2]` float32 texture coordinates at pixel centres (v up)."""
  i, j = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  u = (j + 0.5) / width
  v = 1.0 - (i + 0.5) / height
  return np.stack([u, v], -1).reshape(-1, 2).astype(np.float32)


def mesh_arrays(depth: np.ndarray, K, rot_center_depth: float,
                normals: Optional[np.ndarray] = None
                ) -> Dict[str, np.ndarray]:
  """Viewer-space mesh arrays of one canonical depth map.

  Args:
    depth: `[H, W]` canonical depth.
    K: `[3, 3]` camera matrix of the depth map's size.
    rot_center_depth: depth of the rotation centre (becomes the origin).
    normals: optional `[H, W, 3]` canonical normals (renderer convention).

  Returns:
    dict with `vertices` `[H*W, 3]` (y up), `faces` int32
    `[2 (H-1)(W-1), 3]`, `uvs` `[H*W, 2]` and, when given, `normals`
    `[H*W, 3]` (unit, pointing towards the viewer).
  """
  from tfunsup3d import render  # pylint: disable=g-import-not-at-top
  depth = np.asarray(depth, np.float32)
  h, w = depth.shape
  points = render.depth_to_points(depth[None], K).numpy()[0].reshape(-1, 3)
  vertices = np.stack([points[:, 0], -points[:, 1],
                       rot_center_depth - points[:, 2]], -1)
  out = {
      'vertices': vertices.astype(np.float32),
      'faces': render.grid_faces(h, w).numpy().astype(np.int32),
      'uvs': grid_uvs(h, w),
  }
  if normals is not None:
    n = np.asarray(normals, np.float32).reshape(-1, 3)
    # Renderer normals point away from the camera: flip to face the camera,
    # then turn like the vertices: (x, y, z) -> (x, -y, -z).
    n = np.stack([-n[:, 0], n[:, 1], n[:, 2]], -1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-12
    out['normals'] = n.astype(np.float32)
  return out


def to_uint8(image: np.ndarray) -> np.ndarray:
  """[0, 1] float -> uint8."""
  return np.clip(np.round(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


def write_obj(obj_path: str, arrays: Dict[str, np.ndarray],
              texture: np.ndarray) -> Tuple[str, str, str]:
  """Writes `X.obj`, `X.mtl` and the texture `X_texture.png`.

  Args:
    obj_path: path of the .obj file.
    arrays: from `mesh_arrays`.
    texture: `[H, W, 3]` in [0, 1].

  Returns:
    (obj path, mtl path, texture path).
  """
  base = os.path.splitext(obj_path)[0]
  mtl_path, tex_path = base + '.mtl', base + '_texture.png'
  Image.fromarray(to_uint8(texture)).save(tex_path)
  with open(mtl_path, 'w', encoding='ascii') as f:
    f.write(f'# tfunsup3d canonical albedo\nnewmtl {MATERIAL}\n'
            'Ka 1.000 1.000 1.000\nKd 1.000 1.000 1.000\n'
            'Ks 0.000 0.000 0.000\nd 1.0\nillum 1\n'
            f'map_Kd {os.path.basename(tex_path)}\n')
  v, f_, uv = arrays['vertices'], arrays['faces'] + 1, arrays['uvs']
  n = arrays.get('normals')
  lines = ['# tfunsup3d canonical shape: y up, origin at the rotation centre',
           f'mtllib {os.path.basename(mtl_path)}', 'o unsup3d']
  lines += [f'v {a:.6f} {b:.6f} {c:.6f}' for a, b, c in v]
  lines += [f'vt {a:.6f} {b:.6f}' for a, b in uv]
  if n is not None:
    lines += [f'vn {a:.6f} {b:.6f} {c:.6f}' for a, b, c in n]
  lines += [f'usemtl {MATERIAL}', 's 1']
  if n is not None:
    lines += [f'f {a}/{a}/{a} {b}/{b}/{b} {c}/{c}/{c}' for a, b, c in f_]
  else:
    lines += [f'f {a}/{a} {b}/{b} {c}/{c}' for a, b, c in f_]
  with open(obj_path, 'w', encoding='ascii') as f:
    f.write('\n'.join(lines) + '\n')
  return obj_path, mtl_path, tex_path


def write_glb(glb_path: str, arrays: Dict[str, np.ndarray],
              texture: np.ndarray) -> str:
  """Writes a binary glTF with the texture embedded (via trimesh)."""
  import trimesh  # pylint: disable=g-import-not-at-top
  material = trimesh.visual.material.PBRMaterial(
      baseColorTexture=Image.fromarray(to_uint8(texture)),
      metallicFactor=0.0, roughnessFactor=1.0, doubleSided=True)
  visual = trimesh.visual.TextureVisuals(uv=arrays['uvs'], material=material)
  mesh = trimesh.Trimesh(vertices=arrays['vertices'], faces=arrays['faces'],
                         vertex_normals=arrays.get('normals'), visual=visual,
                         process=False)
  mesh.export(glb_path, file_type='glb')
  return glb_path
