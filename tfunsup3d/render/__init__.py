"""Photo-geometric image formation: pure TF functions on NHWC tensors."""

from tfunsup3d.render.camera import depth_to_points, intrinsics, points_to_grid
from tfunsup3d.render.mesh import grid_faces
from tfunsup3d.render.normals import depth_to_normals
from tfunsup3d.render.rasterizer import rasterize_attributes, rasterize_depth
from tfunsup3d.render.reprojection import (grid_sample, inverse_warp_grid,
                                           render_depth, render_yaw)
from tfunsup3d.render.shading import diffuse_shading, shade
from tfunsup3d.render.symmetry import symmetry_axis, symmetry_line
from tfunsup3d.render.view import (rotation_matrix, transform_points,
                                   view_to_transform)
