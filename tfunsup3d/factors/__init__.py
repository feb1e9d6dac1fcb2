"""The four canonical factors of Unsup3D (depth, albedo, light, view) and the
confidence maps: post-processing of raw network outputs, pure functions."""
