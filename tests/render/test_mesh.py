"""Tests for tfunsup3d.render.mesh."""

import tensorflow as tf

from tfunsup3d.render import mesh


class MeshTest(tf.test.TestCase):

  def test_grid_faces_preset(self):
    faces = mesh.grid_faces(3, 4).numpy()
    self.assertEqual(faces.shape, (12, 3))
    # Cell (0,0): first triangle [(0,0),(1,0),(0,1)] = ids [0, 4, 1].
    self.assertAllEqual(faces[0], [0, 4, 1])
    # Last first-triangle: cell (1,2) -> [(1,2),(2,2),(1,3)] = [6, 10, 7].
    self.assertAllEqual(faces[5], [6, 10, 7])
    # Second triangles follow: cell (0,0) -> [(0,1),(1,0),(1,1)] = [1, 4, 5].
    self.assertAllEqual(faces[6], [1, 4, 5])
    self.assertAllEqual(faces[11], [7, 10, 11])

  def test_every_cell_covered_once(self):
    faces = mesh.grid_faces(5, 5).numpy()
    cells = set()
    for f in faces:
      rows = {int(v) // 5 for v in f}
      cols = {int(v) % 5 for v in f}
      cells.add((min(rows), min(cols), tuple(sorted(f))))
    self.assertLen(cells, 32)

  def test_too_small(self):
    with self.assertRaisesRegex(ValueError, '2x2'):
      mesh.grid_faces(1, 5)


if __name__ == '__main__':
  tf.test.main()
